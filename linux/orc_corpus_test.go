package linux

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// taskTruth is one task of the truth file (prodTruth's).
type taskTruth = struct {
	PID        int      `json:"pid"`
	Comm       string   `json:"comm"`
	State      string   `json:"state"`
	Frames     []string `json:"frames"`
	Printed    []string `json:"printed"`
	Expect     []string `json:"expect"`
	Confidence string   `json:"confidence"`
}

// orcTruthFile is the part of the production corpus's truth-dev.json these
// tests read.
type orcTruthFile struct {
	Captures []struct {
		Name string `json:"name"`
		CPUs []struct {
			CPU          int      `json:"cpu"`
			Confidence   string   `json:"confidence"`
			Frames       []string `json:"frames"`
			Expect       []string `json:"expect"`
			ExpectSuffix []string `json:"expect_suffix"`
		} `json:"cpus"`
	} `json:"captures"`
}

const prodRelease = "6.1.0-47-cloud-amd64"

// strippedVmlinux returns the production vmlinux without .debug_frame
// (objcopy --remove-section .debug_frame); see objcopyVmlinux.
func strippedVmlinux(t *testing.T, vmlinux string) string {
	return objcopyVmlinux(t, vmlinux, "no-debug-frame", "--remove-section", ".debug_frame")
}

// objcopyVmlinux returns the production vmlinux as objcopy with args
// leaves it, made once into the user cache directory's unwind-test under
// a name with what (and the original's size); the test is skipped when
// objcopy (binutils) is not installed.
func objcopyVmlinux(t *testing.T, vmlinux, what string, args ...string) string {
	t.Helper()
	objcopy := corpus.Tool(t, "objcopy")
	fi, err := os.Stat(vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "unwind-test")
	out := filepath.Join(dir, fmt.Sprintf("vmlinux-%s-%s-%d", prodRelease, what, fi.Size()))
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := out + ".tmp"
	if b, err := exec.Command(objcopy, append(args, vmlinux, tmp)...).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v: %s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

var offsetRE = regexp.MustCompile(`\+0x[0-9a-f]+/0x[0-9a-f]+( \[[^]]+\])?$`)

// truthTokens normalises a truth sequence: offsets and module names
// dropped; a leading "RIP: 0010:f" (the registers the dump holds for the
// CPU) becomes frame f after the first section marker, as a walk starting
// from those registers lists it.
func truthTokens(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, offsetRE.ReplaceAllString(s, ""))
	}
	if len(out) > 1 && strings.HasPrefix(out[0], "RIP: 0010:") && strings.HasPrefix(out[1], "<") {
		f := strings.TrimPrefix(out[0], "RIP: 0010:")
		out = append([]string{out[1], f}, out[2:]...)
	}
	return out
}

// walkTokens renders a walk as the kernel prints it, in truthTokens' form:
// section markers from each frame's stack, each frame's ELF symbol, each
// crossed pt_regs as a RIP: line, guesses (scan frames) left out as the
// kernel's "?" lines are left out of the truth. unreliable lists the
// symbols of call frames not proved reliable.
func walkTokens(fs []unwind.Frame) (out, unreliable []string) {
	cur := ""
	for _, f := range fs {
		if f.Inlined || f.Kind == unwind.KindScan {
			continue
		}
		sec := ""
		switch f.Stack.Kind {
		case unwind.StackTask:
			sec = "TASK"
		case unwind.StackIRQ, unwind.StackSoftIRQ:
			sec = "IRQ"
		case unwind.StackNMI:
			sec = "NMI"
		}
		if sec != "" && sec != cur {
			if cur != "" {
				out = append(out, "</"+cur+">")
			}
			out = append(out, "<"+sec+">")
			cur = sec
		}
		name := f.Sym.Name
		if !f.SymOK {
			name = fmt.Sprintf("%#x", f.PC)
		}
		switch {
		case f.Kind == unwind.KindInterrupted && ptregs.UserMode(f.PtRegs.CS):
			out = append(out, fmt.Sprintf("RIP: 0033:%#x", f.PC))
		case f.Kind == unwind.KindInterrupted:
			out = append(out, "RIP: 0010:"+name)
		default:
			out = append(out, name)
		}
		if !f.Reliable {
			unreliable = append(unreliable, name)
		}
	}
	if cur != "" {
		out = append(out, "</"+cur+">")
	}
	return out, unreliable
}

// TestProdORCTruth unwinds every CPU and every high-confidence task of the
// production dumps three ways —
// with the debug vmlinux, with that vmlinux stripped of .debug_frame (ORC
// alone describes the frames), and with System.map only (ORC read from
// the dump's memory) — and compares the built-in kernel frames with what
// the kernel printed (truth-dev.json: expect, else frames; expect_suffix
// for a CPU caught moving). A CPU whose frames start in module code
// (prodcrash) is checked only once the walk can name module code: module
// symbols and tables are not loaded by linux.Open yet.
// freedInitText are the functions of the prod kernel's init text that the
// idle task's stack returns into after boot freed it.
var freedInitText = map[string]bool{"arch_call_rest_init": true, "start_kernel": true}

func TestProdORCTruth(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	vmlinux := filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)
	sysmap := filepath.Join(dir, "kernel", "System.map-"+prodRelease)
	b, err := os.ReadFile(filepath.Join(dir, "truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth orcTruthFile
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	_, taskFile := readProdTruth(t)
	tasks := map[string][]taskTruth{}
	for _, c := range taskFile.Captures {
		tasks[c.Name] = c.Tasks
	}
	modes := []struct {
		name string
		opts func(t *testing.T) dump.SymbolOptions
	}{
		{"vmlinux", func(*testing.T) dump.SymbolOptions { return dump.SymbolOptions{Files: []string{vmlinux}} }},
		{"no-debug-frame", func(t *testing.T) dump.SymbolOptions {
			return dump.SymbolOptions{Files: []string{strippedVmlinux(t, vmlinux)}}
		}},
		{"system-map", func(*testing.T) dump.SymbolOptions { return dump.SymbolOptions{SystemMap: sysmap} }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			opts := m.opts(t)
			for _, c := range truth.Captures {
				d, err := dump.Open(filepath.Join(dir, c.Name))
				if err != nil {
					t.Fatalf("%s: %v", c.Name, err)
				}
				k, err := Open(d, opts)
				if err != nil {
					d.Close()
					t.Fatalf("%s: %v", c.Name, err)
				}
				if !k.Symbols().HasORC() {
					t.Errorf("%s: no ORC (warnings %v)", c.Name, k.Warnings())
				}
				for _, tc := range c.CPUs {
					i := -1
					for j, th := range k.CPUs() {
						if th.CPU == tc.CPU {
							i = j
						}
					}
					if i < 0 {
						t.Errorf("%s cpu %d: not in the dump", c.Name, tc.CPU)
						continue
					}
					tr, err := k.UnwindCPU(i, unwind.Options{})
					if err != nil {
						t.Fatal(err)
					}
					got, unrel := walkTokens(tr.Frames)
					want, suffix := tc.Expect, false
					if len(want) == 0 {
						want = tc.Frames
					}
					if len(tc.ExpectSuffix) > 0 {
						want, suffix = tc.ExpectSuffix, true
					}
					want = truthTokens(want)
					where := fmt.Sprintf("%s %s cpu %d", m.name, c.Name, tc.CPU)
					if len(got) > 1 && strings.HasPrefix(got[1], "0x") && strings.HasPrefix(truthTokens(tc.Frames)[1], "prod_") {
						t.Logf("%s: starts in module code (%s), which needs the module's symbols and ORC: not checked; walk %q", where, got[1], got)
						continue
					}
					corpus.Checked(t, 1)
					ok := strings.Join(got, "|") == strings.Join(want, "|")
					if suffix {
						ok = len(got) >= len(want) && strings.Join(got[len(got)-len(want):], "|") == strings.Join(want, "|")
					}
					if !ok {
						t.Errorf("%s:\n got %q\nwant %q (suffix %v); stop %q", where, got, want, suffix, tr.StopReason)
					}
					if tr.Err != nil {
						t.Errorf("%s: the walk ends on an error: %v", where, tr.Err)
					}
					for _, f := range tr.Frames {
						if f.Method == unwind.MethodCFI || f.Method == unwind.MethodFP {
							if f.Sym.Name != "__crash_kexec" && f.Sym.Name != "panic" {
								t.Errorf("%s: %s found by %v, not ORC", where, f.Sym.Name, f.Method)
							}
						}
					}
					// Every frame the kernel printed without "? " must be
					// reliable here too, but for the boot CPU's frames in
					// init text the kernel freed (and filled with int3)
					// when no vmlinux holds their code for the call-site
					// check.
					// (The frames above such a frame are guesses too.)
					pastInit := false
					for _, name := range unrel {
						pastInit = pastInit || m.name == "system-map" && freedInitText[name]
						if !pastInit {
							t.Errorf("%s: %s is not reliable (stop %q)", where, name, tr.StopReason)
						}
					}
				}
				checkORCTasks(t, m.name, c.Name, k, tasks[c.Name])
				d.Close()
			}
		})
	}
}

// checkORCTasks compares the high-confidence tasks of a capture (the
// kernel's sysrq-t print) with their walks, as TestProdTasksMatchSysrqT
// does with the debug vmlinux, so that each of the three modes is held to
// the same truth.
func checkORCTasks(t *testing.T, mode, capture string, k *Kernel, want []taskTruth) {
	t.Helper()
	tasks, err := k.Tasks()
	if err != nil {
		t.Fatalf("%s %s: %v", mode, capture, err)
	}
	byPID := map[int]Task{}
	for _, tk := range tasks {
		byPID[tk.PID] = tk
	}
	n := 0
	for _, w := range want {
		if w.Confidence != "high" {
			continue
		}
		tk, ok := byPID[w.PID]
		if !ok {
			t.Errorf("%s %s: no task %d", mode, capture, w.PID)
			continue
		}
		tr, err := k.UnwindTask(tk, unwind.Options{})
		if err != nil {
			t.Errorf("%s %s pid %d: %v", mode, capture, w.PID, err)
			continue
		}
		names := truthFunctionNames(w.Expect, w.Frames)
		if got := traceNames(tr); strings.Join(got, "|") != strings.Join(names, "|") {
			t.Errorf("%s %s pid %d (%s):\n got %q\nwant %q (%s)", mode, capture, w.PID, w.Comm, got, names, tr.StopReason)
		}
		if tr.Err != nil {
			t.Errorf("%s %s pid %d (%s): the walk ends on an error: %v", mode, capture, w.PID, w.Comm, tr.Err)
		}
		if _, unrel := walkTokens(tr.Frames); len(unrel) > 0 {
			t.Errorf("%s %s pid %d (%s): not reliable: %v (stop %q)", mode, capture, w.PID, w.Comm, unrel, tr.StopReason)
		}
		n++
	}
	if n == 0 {
		t.Errorf("%s %s: no high-confidence task in the truth", mode, capture)
	}
	corpus.Checked(t, n)
}
