package cli

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// prodKdump returns the prod corpus's kdump capture and its vmlinux.
func prodKdump(t *testing.T) (string, string) {
	dir := corpus.Dir(t, "prod")
	return filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"), filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")
}

type psJSON struct {
	Version int `json:"version"`
	Tasks   []struct {
		PID     int    `json:"pid"`
		TGID    int    `json:"tgid"`
		PPID    int    `json:"ppid"`
		Comm    string `json:"comm"`
		State   string `json:"state"`
		CPU     int    `json:"cpu"`
		KThread bool   `json:"kthread"`
		Address string `json:"address"`
		Running bool   `json:"running"`
		Idle    bool   `json:"idle"`
	} `json:"tasks"`
}

// TestPsProd: ps on the prod kdump (golden), and -o json with the same
// tasks: the idle task of each CPU, the two sh running on the CPUs, and
// the states the kernel's sysrq-t print shows.
func TestPsProd(t *testing.T) {
	vmcore, vmlinux := prodKdump(t)
	out, errOut, code := run(t, "ps", vmcore, "--sym", vmlinux)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "prod-kdump-ps.golden", out)
	jout, errOut, code := run(t, "ps", vmcore, "--sym", vmlinux, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ps psJSON
	if err := json.Unmarshal([]byte(jout), &ps); err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(out, "\n") - 1; rows != len(ps.Tasks) || len(ps.Tasks) < 50 {
		t.Errorf("%d text rows, %d JSON tasks", rows, len(ps.Tasks))
	}
	idle, running := 0, map[int]bool{}
	for _, p := range ps.Tasks {
		if p.Idle {
			idle++
			if p.PID != 0 || !p.KThread || !strings.HasPrefix(p.Comm, "swapper/") {
				t.Errorf("idle task %+v", p)
			}
		}
		if p.Running {
			running[p.PID] = true
		}
		if p.PID == 2 && (p.Comm != "kthreadd" || p.State != "S" || !p.KThread || p.PPID != 0) {
			t.Errorf("kthreadd: %+v", p)
		}
		if p.PID == 107 && (p.Comm != "sleep" || p.State != "S" || p.KThread || p.PPID != 1) {
			t.Errorf("sleep: %+v", p)
		}
	}
	if idle != 2 || len(running) != 2 || !running[118] || !running[110] {
		t.Errorf("%d idle tasks, running %v; want 2, pids 110 and 118", idle, running)
	}
}

// TestBtTasksProd: bt --tasks on the prod kdump groups identical stacks
// (golden), --no-group and -o json list every task, --pid picks tasks
// and names the valid choices for a pid that is not there.
func TestBtTasksProd(t *testing.T) {
	vmcore, vmlinux := prodKdump(t)
	grouped, errOut, code := run(t, "bt", vmcore, "--sym", vmlinux, "--tasks")
	if code != 0 && code != ExitPartial {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "prod-kdump-tasks.golden", grouped)
	all, _, _ := run(t, "bt", vmcore, "--sym", vmlinux, "--tasks", "--no-group")
	jout, _, _ := run(t, "bt", vmcore, "--sym", vmlinux, "--tasks", "-o", "json")
	var doc struct {
		Threads []struct {
			TID  int  `json:"tid"`
			CPU  *int `json:"cpu"`
			Task *struct {
				PID   int    `json:"pid"`
				Comm  string `json:"comm"`
				State string `json:"state"`
				CPU   int    `json:"cpu"`
			} `json:"task"`
			Frames []json.RawMessage `json:"frames"`
		} `json:"threads"`
	}
	if err := json.Unmarshal([]byte(jout), &doc); err != nil {
		t.Fatal(err)
	}
	psOut, _, _ := run(t, "ps", vmcore, "--sym", vmlinux, "-o", "json")
	var ps psJSON
	if err := json.Unmarshal([]byte(psOut), &ps); err != nil {
		t.Fatal(err)
	}
	if len(doc.Threads) != len(ps.Tasks) || strings.Count(all, "Call Trace:") != len(ps.Tasks) {
		t.Fatalf("%d JSON threads, %d traces with --no-group, ps has %d tasks", len(doc.Threads), strings.Count(all, "Call Trace:"), len(ps.Tasks))
	}
	for i, th := range doc.Threads {
		p := ps.Tasks[i]
		if th.Task == nil || th.Task.PID != p.PID || th.Task.Comm != p.Comm || th.Task.State != p.State || th.Task.CPU != p.CPU {
			t.Errorf("thread %d: task %+v, ps %+v", i, th.Task, p)
		}
		if (th.CPU != nil) != p.Running || (th.CPU != nil && *th.CPU != p.CPU) {
			t.Errorf("pid %d: cpu %v, running %v on %d", p.PID, th.CPU, p.Running, p.CPU)
		}
		if len(th.Frames) == 0 {
			t.Errorf("pid %d: no frames", p.PID)
		}
	}
	// Grouped: fewer traces, every task named once in a heading.
	heads := regexp.MustCompile(`(?m)^(\d+) tasks: (.*)$`).FindAllStringSubmatch(grouped, -1)
	if len(heads) < 3 || strings.Count(grouped, "Call Trace:") >= len(ps.Tasks) {
		t.Errorf("%d groups, %d traces", len(heads), strings.Count(grouped, "Call Trace:"))
	}
	inGroups := 0
	for _, h := range heads {
		if n := len(strings.Fields(h[2])); h[1] != strconv.Itoa(n) {
			t.Errorf("heading %q names %d tasks", h[0], n)
		}
		inGroups += len(strings.Fields(h[2]))
	}
	if single := strings.Count(grouped, "Call Trace:") - len(heads); single+inGroups != len(ps.Tasks) {
		t.Errorf("%d grouped + %d single traces, %d tasks", inGroups, single, len(ps.Tasks))
	}

	// Without --tasks, each CPU's trace carries its running task.
	cpuOut, _, _ := run(t, "bt", vmcore, "--sym", vmlinux, "-o", "json")
	doc.Threads = nil
	if err := json.Unmarshal([]byte(cpuOut), &doc); err != nil {
		t.Fatal(err)
	}
	for _, th := range doc.Threads {
		if th.CPU == nil || th.Task == nil || th.Task.PID != th.TID || th.Task.CPU != *th.CPU || th.Task.State != "R" {
			t.Errorf("CPU thread %d: cpu %v task %+v", th.TID, th.CPU, th.Task)
		}
	}
	if len(doc.Threads) != 2 {
		t.Errorf("%d CPU threads", len(doc.Threads))
	}

	out, _, code := run(t, "bt", vmcore, "--sym", vmlinux, "--pid", "107", "--pid", "2")
	if code != 0 || strings.Count(out, "Call Trace:") != 2 ||
		!strings.Contains(out, "task:sleep           state:S pid:107") || !strings.Contains(out, "kthreadd+0x2bc/0x2d0\n ret_from_fork+0x22/0x30\n </TASK>\n(5 frames, reliable, stopped: end of stack)") {
		t.Errorf("bt --pid 107 --pid 2: exit %d\n%s", code, out)
	}
	_, errOut, code = run(t, "bt", vmcore, "--sym", vmlinux, "--pid", "77")
	if code != ExitUsage || !strings.Contains(errOut, "no task with pid 77; `unwind ps` lists them") {
		t.Errorf("bt --pid 77: exit %d: %s", code, errOut)
	}
	_, errOut, code = run(t, "bt", vmcore, "--sym", vmlinux, "--pid", "2", "--cpu", "0")
	if code != ExitUsage {
		t.Errorf("bt --pid 2 --cpu 0: exit %d: %s", code, errOut)
	}
}

// BenchmarkBtTasksProd is `unwind bt VMCORE --sym vmlinux --tasks
// --no-group` on the prod kdump, the whole command per op: open the dump,
// load vmlinux, list every task, unwind and print each.
func BenchmarkBtTasksProd(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	vmcore := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	vmlinux := filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")
	args := []string{"bt", vmcore, "--sym", vmlinux, "--tasks", "--no-group"}
	b.ReportAllocs()
	tasks := 0
	for b.Loop() {
		var out, errOut bytes.Buffer
		code := Run(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
		if code != 0 && code != ExitPartial {
			b.Fatalf("exit %d: %s", code, errOut.String())
		}
		tasks += strings.Count(out.String(), "Call Trace:")
	}
	b.ReportMetric(float64(tasks)/b.Elapsed().Seconds(), "tasks/s")
}
