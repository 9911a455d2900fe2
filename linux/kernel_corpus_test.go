package linux

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
)

// vmcore returns the decompressed kernel corpus dump fp/SCENARIO/NAME.
func vmcore(t testing.TB, scenario, name string) string {
	t.Helper()
	return corpus.Vmcore(t, scenario, name)
}

var qemuRegRE = regexp.MustCompile(`([A-Z0-9]+)\s*=([0-9a-f]{16})`)

// qemuRegs parses NAME.qemu-regs.txt ("info registers -a").
func qemuRegs(t *testing.T, path string) []map[string]uint64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cpus []map[string]uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "CPU#") {
			cpus = append(cpus, map[string]uint64{})
			continue
		}
		if len(cpus) == 0 {
			continue
		}
		for _, m := range qemuRegRE.FindAllStringSubmatch(line, -1) {
			v, _ := strconv.ParseUint(m[2], 16, 64)
			cpus[len(cpus)-1][strings.ToLower(m[1])] = v
		}
	}
	return cpus
}

func kernelDir(t *testing.T) string { return kernelDirTB(t) }

func kernelDirTB(tb testing.TB) string { return filepath.Join(corpus.Dir(tb, "kernel"), "fp") }

// openKernel opens a kernel corpus capture with vmlinux and System.map.
func openKernel(t *testing.T, scenario, name string) *Kernel {
	kd := kernelDir(t)
	return openWith(t, vmcore(t, scenario, name), dump.SymbolOptions{Files: []string{filepath.Join(kd, "vmlinux")}, SystemMap: filepath.Join(kd, "System.map")})
}

// openWith opens the vmcore at path with opts.
func openWith(t testing.TB, path string, opts dump.SymbolOptions) *Kernel {
	t.Helper()
	d, err := dump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	k, err := Open(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVmcoreRegistersMatchQEMU(t *testing.T) {
	regs, _ := filepath.Glob(filepath.Join(kernelDir(t), "*", "*.qemu-regs.txt"))
	if len(regs) == 0 {
		t.Fatalf("no qemu-regs.txt files in the kernel corpus %s", kernelDir(t))
	}
	type capture struct{ scenario, name string }
	var caps []capture
	for _, r := range regs {
		caps = append(caps, capture{filepath.Base(filepath.Dir(r)), strings.TrimSuffix(filepath.Base(r), ".qemu-regs.txt")})
	}
	for _, c := range caps {
		t.Run(c.name, func(t *testing.T) {
			d := openKernel(t, c.scenario, c.name)
			if d.Dump().Kind() != dump.KindVmcore || d.Dump().Release() != "6.1.192" {
				t.Errorf("kind %q release %q", d.Dump().Kind(), d.Dump().Release())
			}
			want := qemuRegs(t, filepath.Join(kernelDir(t), c.scenario, c.name+".qemu-regs.txt"))
			th := d.CPUs()
			if len(th) != len(want) {
				t.Fatalf("%d CPUs, qemu has %d", len(th), len(want))
			}
			for i, thr := range th {
				if thr.CPU != i {
					t.Errorf("thread %d has CPU %d", i, thr.CPU)
				}
				for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
					got, _ := thr.Regs.Get(r)
					if w, ok := want[i][r.String()]; ok && got != w {
						t.Errorf("cpu %d %s = %#x, qemu %#x", i, r, got, w)
					}
				}
				if s, ok := d.Dump().QEMUState(i); !ok || s.CR3 != want[i]["cr3"] {
					t.Errorf("cpu %d CR3 %#x, qemu %#x", i, s.CR3, want[i]["cr3"])
				}
				sp, _ := thr.Regs.SP()
				st := d.Stacks(i)
				if s, ok := st.StackOf(sp); !ok {
					t.Errorf("cpu %d: sp %#x on no stack of %+v", i, sp, st)
				} else {
					t.Logf("cpu %d sp %#x on %v %s [%#x,%#x) comm %q tid %d", i, sp, s.Kind, s.Name, s.Lo, s.Hi, thr.Comm, thr.TID)
					buf := make([]byte, s.Hi-sp)
					if _, err := d.Dump().Memory().ReadAt(buf, sp); err != nil {
						t.Errorf("cpu %d: reading the stack: %v", i, err)
					}
				}
			}
		})
	}
}

func TestVmcorePanicMessage(t *testing.T) {
	for _, c := range []struct{ scenario, name, want string }{
		// Stopped at panic()'s first instruction: the message is not printed yet.
		{"panic", "panic-entry", ""},
		{"oops", "oops-die", "BUG: "},
		{"idle", "idle", ""},
	} {
		d := openWith(t, vmcore(t, c.scenario, c.name), dump.SymbolOptions{})
		recs := d.Log(1000)
		msg := d.PanicMessage()
		t.Logf("%s: %d records, last %q, panic %q", c.name, len(recs), recs[len(recs)-1].Text, msg)
		if !strings.HasPrefix(msg, c.want) || (c.want == "") != (msg == "") {
			t.Errorf("%s: panic message %q, want prefix %q", c.name, msg, c.want)
		}
		if c.name == "panic-entry" && recs[len(recs)-1].Text != "sysrq: Trigger a crash" {
			t.Errorf("last record %q", recs[len(recs)-1].Text)
		}
	}
}

var crashDateRE = regexp.MustCompile(`(?m)^\s+DATE: (.*)$`)

// TestVmcoreIdentity checks what Info says of every developer capture:
// the kernel's uname and taint state (which make the first line of a
// kernel stack dump), its wall clock at the dump against crash's DATE, the
// crash message, and the crashing CPU with the reason.
func TestVmcoreIdentity(t *testing.T) {
	for _, c := range []struct {
		scenario, name string
		crashed        int
		reason, panic  string
	}{
		{"idle", "idle", -1, "", ""},
		{"irq", "irq", -1, "", ""},
		{"irq", "irq-paging", -1, "", ""},
		{"nmibt", "nmibt", -1, "", ""},
		{"nmibt", "nmibt-paging", -1, "", ""},
		{"qnmi", "qnmi", -1, "", ""},
		{"pf", "pf-kernel", -1, "", ""},
		// Stopped in __die: oops_begin has set die_owner, panic_cpu is unset.
		{"oops", "oops-die", 0, "die_owner", "BUG: kernel NULL pointer dereference"},
		// Stopped at panic's first instruction: nothing is set yet.
		{"panic", "panic-entry", 0, "stopped in panic()", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := openKernel(t, c.scenario, c.name)
			uts, ok := d.UTSName()
			if !ok || uts.Sysname != "Linux" || uts.Release != "6.1.192" || !strings.HasPrefix(uts.Version, "#3 SMP ") || uts.Machine != "x86_64" {
				t.Errorf("utsname %+v %v", uts, ok)
			}
			if taint, ok := d.Taint(); taint != "Not tainted" || !ok {
				t.Errorf("taint %q %v", taint, ok)
			}
			if h := d.StackHeader(); h != "Not tainted 6.1.192 #3" {
				t.Errorf("stack header %q", h)
			}
			in := d.Info()
			crash, err := os.ReadFile(filepath.Join(kernelDir(t), c.scenario, c.name+".crash.txt"))
			if err != nil {
				t.Fatal(err)
			}
			m := crashDateRE.FindSubmatch(crash)
			if m == nil {
				t.Fatal("no DATE in crash.txt")
			}
			if in.CrashTime == nil || in.CrashTimeSource != "tk_core" || in.CrashTime.Format("Mon Jan _2 15:04:05 MST 2006") != string(m[1]) {
				t.Errorf("crash time %v (%s), crash says %s", in.CrashTime, in.CrashTimeSource, m[1])
			}
			if in.Crashed != c.crashed || !strings.Contains(in.Reason, c.reason) {
				t.Errorf("crashed %d (%q), want %d (%q)", in.Crashed, in.Reason, c.crashed, c.reason)
			}
			if !strings.HasPrefix(in.Panic, c.panic) || (c.panic == "") != (in.Panic == "") {
				t.Errorf("panic %q, want %q", in.Panic, c.panic)
			}
			if in.LogTime == nil || *in.LogTime <= 0 || in.Version != uts.Version || in.Taint != "Not tainted" {
				t.Errorf("info %+v", in)
			}
			for i, th := range in.Threads {
				if th.Comm == "" || th.Mode != "kernel" {
					t.Errorf("cpu %d: %+v", i, th)
				}
			}
		})
	}
}

// TestCrashCPUFromLog: without kernel symbols (no panic_cpu, no current
// tasks), a crash message printed from interrupt context still names its
// CPU through printk's caller id.
func TestCrashCPUFromLog(t *testing.T) {
	d := openWith(t, vmcore(t, "oops", "oops-die"), dump.SymbolOptions{})
	rec, ok := d.crashRecord()
	if !ok || rec.Caller == 0 {
		t.Fatalf("crash record %+v %v", rec, ok)
	}
	// The oops was printed by sh (pid 38) in task context.
	if rec.Caller != 38 {
		t.Errorf("caller id %#x, want pid 38", rec.Caller)
	}
	if in := d.Info(); in.Crashed != -1 {
		t.Errorf("without symbols a pid caller names no CPU, got %d (%s)", in.Crashed, in.Reason)
	}
	d.threads[1].TID = 38
	d.detectCrash(nil)
	if in := d.Info(); in.Crashed != 1 || !strings.Contains(in.Reason, "pid 38") {
		t.Errorf("the CPU running pid 38 is not marked: %d %q", in.Crashed, in.Reason)
	}
}
