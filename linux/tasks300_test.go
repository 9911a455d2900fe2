package linux

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

// sysrqTask is one task of a sysrq-t print: its pid, comm, state and the
// frames the kernel printed, "? " guesses left out, as traceNames writes
// them (function names, "RIP: 0033:0x…" for the user registers).
type sysrqTask struct {
	pid         int
	comm, state string
	frames      []string
}

var (
	sysrqTimeRE  = regexp.MustCompile(`^\[\s*\d+\.\d+\] ?`)
	sysrqTaskRE  = regexp.MustCompile(`^task:(.{15}) state:(\S)`)
	sysrqPIDRE   = regexp.MustCompile(` pid:(\d+) `)
	sysrqFrameRE = regexp.MustCompile(`^ ([A-Za-z0-9_.$]+)\+0x[0-9a-f]+/0x[0-9a-f]+`)
	sysrqRIPRE   = regexp.MustCompile(`^RIP: (0033:0x[0-9a-f]+)$`)
)

// readSysrqT reads the sysrq-t print that scripts/make-taskdump.sh's
// /init asked for: the console lines after its TASKDUMP-SYSRQ-T marker up
// to TASKDUMP-READY.
func readSysrqT(t *testing.T, path string) map[int]*sysrqTask {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tasks := map[int]*sysrqTask{}
	var cur *sysrqTask
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "TASKDUMP-SYSRQ-T":
			in = true
			continue
		case line == "TASKDUMP-READY":
			in = false
		}
		if !in {
			continue
		}
		line = sysrqTimeRE.ReplaceAllString(line, "")
		if m := sysrqTaskRE.FindStringSubmatch(line); m != nil {
			p := sysrqPIDRE.FindStringSubmatch(line)
			if p == nil {
				t.Fatalf("%s: no pid in %q", path, line)
			}
			pid, _ := strconv.Atoi(p[1])
			cur = &sysrqTask{pid: pid, comm: strings.TrimRight(m[1], " "), state: m[2]}
			tasks[pid] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := sysrqFrameRE.FindStringSubmatch(line); m != nil {
			cur.frames = append(cur.frames, m[1])
		} else if m := sysrqRIPRE.FindStringSubmatch(line); m != nil {
			cur.frames = append(cur.frames, "RIP: "+m[1])
		} else if line == " </TASK>" {
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tasks
}

// TestTasks300MatchSysrqT checks the ~300-task dump scripts/make-taskdump.sh
// makes against the kernel's own sysrq-t print in its serial.log: every
// printed task is in the dump with its comm, and every user task /init
// left blocked for good (sleeping, not running, not init, which was
// printing) has the printed trace frame for frame, reliably. Kernel
// threads may have run between the print and the dump (rcu_preempt,
// kworkers): their differences are logged, not failed. Skipped when the
// dump was not made.
func TestTasks300MatchSysrqT(t *testing.T) {
	path, vmlinux := corpus.TaskDump(t)
	printed := readSysrqT(t, filepath.Join(filepath.Dir(path), "serial.log"))
	if len(printed) < 250 {
		t.Fatalf("serial.log's sysrq t print has %d tasks, want the ~300 /init starts", len(printed))
	}
	d, err := dump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	k, err := Open(d, dump.SymbolOptions{Files: []string{vmlinux}})
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := k.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	byPID := map[int]Task{}
	for _, tk := range tasks {
		byPID[tk.PID] = tk
	}
	checked, kdiff := 0, 0
	for pid, want := range printed {
		tk, ok := byPID[pid]
		if !ok {
			t.Errorf("pid %d (%s): printed by sysrq t, not in the dump's task list", pid, want.comm)
			continue
		}
		if tk.Comm != want.comm {
			t.Errorf("pid %d: comm %q, printed %q", pid, tk.Comm, want.comm)
		}
		if tk.Running || pid == 1 || want.state == "R" || tk.State != want.state {
			continue
		}
		tr, err := k.UnwindTask(tk, unwind.Options{})
		if err != nil {
			t.Errorf("pid %d (%s): %v", pid, tk.Comm, err)
			continue
		}
		got := traceNames(tr)
		if tk.KThread {
			if !slices.Equal(got, want.frames) {
				kdiff++
				t.Logf("kernel thread pid %d (%s) differs (may have run since the print):\n got %v\nprinted %v", pid, tk.Comm, got, want.frames)
			}
			continue
		}
		if !slices.Equal(got, want.frames) || !tr.Reliable {
			t.Errorf("pid %d (%s): reliable %v (%s)\n got %v\nprinted %v", pid, tk.Comm, tr.Reliable, tr.StopReason, got, want.frames)
		}
		checked++
	}
	if checked < 200 {
		t.Errorf("%d user tasks checked, want the ~270 /init starts", checked)
	}
	t.Logf("%d tasks printed, %d in the dump; %d user tasks checked frame for frame; %d kernel threads differ", len(printed), len(tasks), checked, kdiff)
}
