package linux

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

const prodVmlinux = "vmlinux-" + prodRelease

// prodTruth is the part of the prod corpus's truth-dev.json the task tests
// read.
type prodTruth struct {
	Captures []struct {
		Name  string `json:"name"`
		Tasks []struct {
			PID        int      `json:"pid"`
			Comm       string   `json:"comm"`
			State      string   `json:"state"`
			Frames     []string `json:"frames"`
			Printed    []string `json:"printed"`
			Expect     []string `json:"expect"`
			Confidence string   `json:"confidence"`
		} `json:"tasks"`
	} `json:"captures"`
}

func readProdTruth(t *testing.T) (string, prodTruth) {
	dir := corpus.Dir(t, "prod")
	b, err := os.ReadFile(filepath.Join(dir, "truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr prodTruth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Captures) == 0 {
		t.Fatal("truth-dev.json has no captures")
	}
	return dir, tr
}

func openProd(t testing.TB, dir, capture string) *Kernel {
	return openWith(t, filepath.Join(dir, capture), dump.SymbolOptions{Files: []string{filepath.Join(dir, "kernel", prodVmlinux)}})
}

// traceNames renders a trace as the truth writes it: the physical
// function of every frame that is not a scan guess (the kernel's "? "
// lines are left out of the truth), and "RIP: 0033:0x…" for the user
// registers at the top of the stack.
func traceNames(tr dump.Trace) []string {
	var out []string
	for _, f := range tr.Frames {
		switch {
		case f.Kind == unwind.KindScan || f.Inlined:
		case f.Kind == unwind.KindInterrupted && ptregs.UserMode(f.PtRegs.CS):
			out = append(out, fmt.Sprintf("RIP: %04x:%#x", f.PtRegs.CS&0xffff, f.PtRegs.IP))
		default:
			out = append(out, f.Sym.Name)
		}
	}
	return out
}

// TestProdTasksMatchSysrqT checks every task of the prod corpus's truth
// (the kernel's own sysrq-t print of the tasks that cannot have moved
// since) against the dumped kernel: exactly one task with its pid, comm
// and state, and its trace frame for frame, on the kdump capture and the
// QEMU ELF capture.
// The prodsleep kthread's frames are in the module prodcrash: they need
// the module's symbols and unwind tables, which linux.Open finds.
func TestProdTasksMatchSysrqT(t *testing.T) {
	dir, truth := readProdTruth(t)
	for _, c := range truth.Captures {
		t.Run(c.Name, func(t *testing.T) {
			k := openProd(t, dir, c.Name)
			tasks, err := k.Tasks()
			if err != nil {
				t.Fatal(err)
			}
			byPID := map[int][]Task{}
			for _, tk := range tasks {
				byPID[tk.PID] = append(byPID[tk.PID], tk)
			}
			checked := 0
			for _, want := range c.Tasks {
				if want.Confidence != "high" {
					continue
				}
				got := byPID[want.PID]
				if len(got) != 1 {
					t.Errorf("pid %d (%s): %d tasks in the dump, want exactly 1", want.PID, want.Comm, len(got))
					continue
				}
				tk := got[0]
				if tk.Comm != want.Comm || tk.State != want.State || tk.Running {
					t.Errorf("pid %d: comm %q state %s running %v, truth %q %s", want.PID, tk.Comm, tk.State, tk.Running, want.Comm, want.State)
				}
				tr, err := k.UnwindTask(tk, unwind.Options{})
				if err != nil {
					t.Errorf("pid %d (%s): %v", want.PID, want.Comm, err)
					continue
				}
				w := truthFunctionNames(want.Expect, want.Frames)
				g := traceNames(tr)
				if tk.KThread && (!tr.Reliable || tr.StopReason != "end of stack") {
					// A kernel thread ends at ret_from_fork on the
					// all-zero pt_regs at the top of its stack.
					t.Errorf("pid %d (%s): kernel thread's trace not reliable (%s)", want.PID, want.Comm, tr.StopReason)
				} else if !tr.Reliable {
					t.Errorf("pid %d (%s): trace not reliable (%s)", want.PID, want.Comm, tr.StopReason)
				}
				if !slices.Equal(g, w) {
					t.Errorf("pid %d (%s):\n got %v\nwant %v", want.PID, want.Comm, g, w)
				}
				checked++
				corpus.Checked(t, 1)
			}
			if checked == 0 {
				t.Fatal("no task of high confidence in the truth")
			}
		})
	}
}

var drgnTaskRE = regexp.MustCompile(`^=== PID (\d+) comm (.*) cpu (\d+)$`)
var drgnFrameRE = regexp.MustCompile(`^#\d+\s+0x([0-9a-f]+) (\S+)( \(inline\))?`)

// drgnTasks reads drgn's stack_trace(task) of every task that was not
// running (the "=== PID" sections): pid → the pcs of its physical frames
// in the kernel half.
func drgnTasks(t *testing.T, path string) map[int][]uint64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[int][]uint64{}
	pid := -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := drgnTaskRE.FindStringSubmatch(line); m != nil {
			pid, _ = strconv.Atoi(m[1])
			out[pid] = []uint64{}
			continue
		}
		if strings.HasPrefix(line, "===") {
			pid = -1
			continue
		}
		m := drgnFrameRE.FindStringSubmatch(line)
		if m == nil || pid < 0 || m[3] != "" {
			continue
		}
		pc, _ := strconv.ParseUint(m[1], 16, 64)
		if pc >= startKernelMap {
			out[pid] = append(out[pid], pc)
		}
	}
	return out
}

// TestProdTasksMatchDrgn compares every sleeping task's kernel frames,
// address for address, with drgn's stack_trace(task) of the same dump
// (the second reference: drgn reads the kdump capture, and the QEMU one
// converted to virtual addresses), module frames included.
func TestProdTasksMatchDrgn(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	for _, c := range []struct {
		capture, drgn string
		wrong         map[int]string // drgn's traces known wrong, and why
	}{
		{"kdump-sysrqc/vmcore.kdump-lzo", "kdump-sysrqc/vmcore.kdump-lzo.drgn.txt", nil},
		{"live/vmcore.qemu-elf", "live/vmcore.qemu-elf.drgn-converted.txt", map[int]string{
			// QEMU's notes number vCPUs pr_pid = cpu+1: drgn takes
			// pid 1 for the task running on CPU 0 ("crashed thread:
			// pid 1") and prints CPU 0's idle loop as init's stack.
			1: "drgn unwinds CPU 0's registers for it (QEMU's pr_pid 1)",
		}},
	} {
		t.Run(c.capture, func(t *testing.T) {
			want := drgnTasks(t, filepath.Join(dir, c.drgn))
			if len(want) < 40 {
				t.Fatalf("%d tasks in %s", len(want), c.drgn)
			}
			k := openProd(t, dir, c.capture)
			tasks, err := k.Tasks()
			if err != nil {
				t.Fatal(err)
			}
			byPID := map[int][]Task{}
			for _, tk := range tasks {
				byPID[tk.PID] = append(byPID[tk.PID], tk)
			}
			for pid, pcs := range want {
				got := byPID[pid]
				if len(got) != 1 {
					t.Errorf("pid %d: %d tasks, want 1", pid, len(got))
					continue
				}
				if why, ok := c.wrong[pid]; ok {
					t.Logf("pid %d: not compared: %s", pid, why)
					continue
				}
				if got[0].Running {
					continue // a CPU's trace: the CPU tests check those
				}
				if len(pcs) == 0 {
					t.Errorf("pid %d (%s): drgn has no frames for a task that is not running", pid, got[0].Comm)
					continue
				}
				tr, err := k.UnwindTask(got[0], unwind.Options{})
				if err != nil {
					t.Errorf("pid %d: %v", pid, err)
					continue
				}
				var g []uint64
				for _, f := range tr.Frames {
					if f.Inlined || f.Kind == unwind.KindScan || f.PC < startKernelMap {
						continue
					}
					g = append(g, f.PC)
				}
				corpus.Checked(t, 1)
				if !slices.Equal(g, pcs) {
					t.Errorf("pid %d (%s): pcs\n %x\ndrgn\n %x", pid, got[0].Comm, g, pcs)
				}
			}
		})
	}
}

// TestLabTasks lists the tasks of every lab vmcore (corpus "kernel", a
// frame-pointer 6.1.192 kernel): init, kthreadd and one idle task per CPU
// are there, and every kernel thread that is not running ends reliably at
// ret_from_fork.
func TestLabTasks(t *testing.T) {
	matches, _ := filepath.Glob(filepath.Join(kernelDir(t), "*", "*.vmcore.zst"))
	if len(matches) == 0 {
		t.Fatal("no vmcores in the kernel corpus")
	}
	for _, src := range matches {
		name := strings.TrimSuffix(filepath.Base(src), ".vmcore.zst")
		scenario := filepath.Base(filepath.Dir(src))
		t.Run(name, func(t *testing.T) {
			k := openKernel(t, scenario, name)
			tasks, err := k.Tasks()
			if err != nil {
				t.Fatal(err)
			}
			idle, kthreads := 0, 0
			pids := map[int]string{}
			for _, tk := range tasks {
				if tk.Idle {
					idle++
					continue
				}
				pids[tk.PID] = tk.Comm
				if !tk.KThread || tk.Running {
					continue
				}
				tr, err := k.UnwindTask(tk, unwind.Options{})
				if err != nil {
					t.Errorf("pid %d (%s): %v", tk.PID, tk.Comm, err)
					continue
				}
				kthreads++
				corpus.Checked(t, 1)
				names := traceNames(tr)
				if !tr.Reliable || tr.StopReason != "end of stack" || len(names) < 3 || names[len(names)-1] != "ret_from_fork" || names[0] != "__schedule" {
					t.Errorf("pid %d (%s): %v reliable=%v (%s)", tk.PID, tk.Comm, names, tr.Reliable, tr.StopReason)
				}
			}
			if idle != len(k.CPUs()) || pids[1] == "" || pids[2] != "kthreadd" || kthreads < 10 {
				t.Errorf("%d idle tasks for %d CPUs, pid 1 %q, pid 2 %q, %d kernel threads", idle, len(k.CPUs()), pids[1], pids[2], kthreads)
			}
		})
	}
}

// With System.map alone the kernel's own BTF gives the task layout: each
// CPU of the prod dumps names its current task, as with vmlinux.
func TestProdCPUTasksSystemMapOnly(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	sysmap := filepath.Join(dir, "kernel", "System.map-"+prodRelease)
	want := map[string][]string{
		"kdump-sysrqc/vmcore.kdump-lzo": {"118 sh", "110 sh"},
		"live/vmcore.qemu-elf":          {"0 swapper/0", "109 dd"},
	}
	for name, w := range want {
		d, err := dump.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		k, err := Open(d, dump.SymbolOptions{SystemMap: sysmap})
		if err != nil {
			d.Close()
			t.Fatal(err)
		}
		var got []string
		for _, c := range k.CPUs() {
			got = append(got, fmt.Sprintf("%d %s", c.TID, c.Comm))
		}
		if strings.Join(got, ", ") != strings.Join(w, ", ") {
			t.Errorf("%s: CPUs' tasks %q, want %q (warnings %q)", name, got, w, k.Warnings())
		}
		corpus.Checked(t, len(w))
		d.Close()
	}
}

// truthFunctionNames is a truth entry's expected chain (expect where the
// dump differs from the print, else the print) without section markers.
func truthFunctionNames(expect, printed []string) []string {
	frames := expect
	if frames == nil {
		frames = printed
	}
	var names []string
	for _, f := range frames {
		if !strings.HasPrefix(f, "<") {
			names = append(names, f)
		}
	}
	return names
}
