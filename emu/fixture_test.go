package emu

import (
	"fmt"
	"github.com/unwind-dev/unwind/internal/corpus"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func loadFixture(t testing.TB, variant string, cpus int) *Machine {
	t.Helper()
	b, err := os.ReadFile("../fixtures/kernel/build/kernel-" + variant + ".elf")
	if err != nil {
		t.Fatalf("committed fixture kernel missing: %v", err)
	}
	m, err := New(b, cpus)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFixtureKernelModes runs every boot_args mode of the fixture kernel and
// checks the exit status its own self-check reports (fixtures/kernel/README.md).
func TestFixtureKernelModes(t *testing.T) {
	want := map[int]uint32{0: 0, 1: 1, 2: 2, 3: 0, 4: 0, 6: 0, 7: 7, 8: 0, 9: 0, 10: 0, 11: 0, 12: 0}
	cpus := map[int]int{4: 2, 5: 2}
	for _, variant := range []string{"fp", "nofp"} {
		for mode := 0; mode <= 12; mode++ {
			t.Run(fmt.Sprintf("%s/mode%d", variant, mode), func(t *testing.T) {
				n := cpus[mode]
				if n == 0 {
					n = 1
				}
				m := loadFixture(t, variant, n)
				ba, _ := m.SymbolByName("boot_args")
				m.mem.write(ba.Addr, 8, uint64(mode))
				m.EnableChecks()
				_, err := m.Run(3_000_000)
				c := m.CPUs[0]
				t.Logf("mode %d: err=%v done=%v status=%d insns=%d console=%q violations=%d", mode, err, c.Done, c.ExitStatus, m.Instructions(), tail(m.Console()), len(m.Violations()))
				var checks []string
				for _, v := range m.Violations() {
					checks = append(checks, v.Check)
				}
				wantChecks := map[int]string{1: "no-frame-clobber", 2: "idt-restored", 6: "no-frame-clobber", 7: "no-frame-clobber stack-intact iret-resumes"}
				if got := strings.Join(checks, " "); mode != 5 && got != wantChecks[mode] {
					t.Errorf("mode %d: violations %q, want %q", mode, got, wantChecks[mode])
				}
				if w, ok := want[mode]; ok {
					if err != nil || !c.Done || c.ExitStatus != w {
						t.Errorf("mode %d: err %v done %v status %d, want %d", mode, err, c.Done, c.ExitStatus, w)
					}
				}
			})
		}
	}
}

func tail(b []byte) string {
	if len(b) > 120 {
		b = b[len(b)-120:]
	}
	return string(b)
}

// TestFixtureScenarios runs every scenario under fixtures/scenarios: no
// unexpected invariant failure, every snapshot taken.
func TestFixtureScenarios(t *testing.T) {
	files, _ := filepath.Glob("../fixtures/scenarios/*.scenario")
	if len(files) == 0 {
		t.Fatal("no scenarios under ../fixtures/scenarios")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".scenario")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := ParseScenario(name, text)
			if err != nil {
				t.Fatal(err)
			}
			kernel, err := os.ReadFile("../fixtures/kernel/build/kernel-" + sc.Kernel + ".elf")
			if err != nil {
				t.Fatal(err)
			}
			res, err := RunScenario(sc, kernel, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, fl := range res.Failures {
				t.Errorf("%s", fl)
			}
			for _, s := range res.Snapshots {
				var fns []string
				for _, fr := range s.Info.CPUs[s.CPU].Truth {
					e := ""
					if fr.Entry != "" {
						e = "<" + fr.Entry + ">"
					}
					fns = append(fns, e+fr.Function+"@"+fr.Stack)
				}
				t.Logf("%s: %s: %s", s.Name, s.Where, strings.Join(fns, " "))
			}
		})
	}
}

// TestShadowConsistentWithMemory checks the ground truth at every
// instruction boundary of several fixture modes: each caller frame's PC is
// the return address stored just below its callee's CFA.
func TestShadowConsistentWithMemory(t *testing.T) {
	for _, mode := range []int{0, 6, 8, 9, 10, 11} {
		t.Run(fmt.Sprint("mode", mode), func(t *testing.T) {
			m := loadFixture(t, "fp", 1)
			ba, _ := m.SymbolByName("boot_args")
			m.mem.write(ba.Addr, 8, uint64(mode))
			bad := 0
			for step := 0; step < 200000; step++ {
				if err := m.Step(); err != nil {
					break
				}
				fr := m.ShadowStack(0)
				for i := 1; i < len(fr); i++ {
					callee, f := fr[i-1], fr[i]
					if f.Kind == FrameInterrupted || f.Entry != "" || callee.CFA == 0 {
						continue
					}
					if strings.HasPrefix(callee.Function, "int3_tramp_") && strings.HasSuffix(m.Where(callee.PC), "+0x0") {
						// At int3_tramp_*+0 the return address is still in the
						// per-CPU slot (the trampoline pushes it): compare with it.
						continue
					}
					got, ok := m.mem.read(callee.CFA-8, 8)
					if !ok || got != f.PC {
						bad++
						if bad <= 3 {
							t.Errorf("insn %d at %s: frame %d %s pc %#x, but [%s CFA %#x - 8] = %#x",
								m.CPUs[0].Insns, m.Where(m.CPUs[0].RIP), i, f.Function, f.PC, callee.Function, callee.CFA, got)
						}
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d inconsistent frames", bad)
			}
		})
	}
}

var gdbFrame = regexp.MustCompile(`(?m)^#\d+\s+(?:0x[0-9a-f]+ in )?([A-Za-z_][A-Za-z0-9_.]*|<signal handler called>)`)

// TestFixtureSnapshotGDB opens fixture snapshots with gdb next to the
// kernel ELF and checks that gdb's frames through C code are the ground
// truth's (gdb shows an entry stub as "<signal handler called>").
func TestFixtureSnapshotGDB(t *testing.T) {
	gdb := corpus.Tool(t, "gdb")
	kpath := "../fixtures/kernel/build/kernel-fp.elf"
	kernel, err := os.ReadFile(kpath)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nmi-irq-task", "syscall-irq", "pf-kernel"} {
		text, err := os.ReadFile("../fixtures/scenarios/" + name + ".scenario")
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ParseScenario(name, text)
		if err != nil {
			t.Fatal(err)
		}
		res, err := RunScenario(sc, kernel, RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Snapshots[len(res.Snapshots)-1]
		core := filepath.Join(t.TempDir(), s.Name+".core")
		os.WriteFile(core, s.Core, 0o644)
		out, err := exec.Command(gdb, "-nx", "-batch", "-ex", "bt", kpath, core).CombinedOutput()
		if err != nil {
			t.Fatalf("gdb: %v\n%s", err, out)
		}
		var got, want []string
		for _, m := range gdbFrame.FindAllStringSubmatch(string(out), -1) {
			if m[1] != "<signal handler called>" {
				got = append(got, m[1])
			}
		}
		got = got[1:] // gdb prints frame #0 twice (once for the core's stop)
		for _, f := range s.Info.CPUs[s.CPU].Truth {
			if f.Kind == "user" {
				break // gdb stops at the kernel/user boundary differently
			}
			if !strings.HasPrefix(f.Function, "asm_") && !strings.HasPrefix(f.Function, "entry_") {
				want = append(want, f.Function)
			}
		}
		if len(got) > len(want) {
			got = got[:len(want)]
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s/%s: gdb frames\n%s\ntruth (C frames)\n%s\ngdb output:\n%s", name, s.Name, strings.Join(got, " "), strings.Join(want, " "), out)
		}
	}
}
