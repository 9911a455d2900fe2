package emu

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
)

// cfiOracle unwinds a live CPU with the kernel's .eh_frame: an independent
// check of the shadow stack (the way gdb unwinds a snapshot).
type cfiOracle struct {
	t *cfi.Table
}

func newCFIOracle(tb testing.TB, variant string) *cfiOracle {
	tb.Helper()
	f, err := elf.Open("../fixtures/kernel/build/kernel-" + variant + ".elf")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".eh_frame")
	data, err := s.Data()
	if err != nil {
		tb.Fatal(err)
	}
	t, err := cfi.Parse(data, cfi.EHFrame, s.Addr, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return &cfiOracle{t: t}
}

// functions returns the function names of the CFI unwind of c, innermost
// first, down to (not including) the first CPL 3 frame or an undefined RIP.
func (o *cfiOracle) functions(m *Machine, c *CPU) ([]string, error) {
	var regs ptregs.Regs
	for d := ptregs.Reg(0); d < 16; d++ {
		regs.Set(d, c.GPR[dwarfToHW[d]])
	}
	regs.Set(ptregs.RIP, c.RIP)
	var out []string
	signal := true
	var row cfi.Row
	for i := 0; i < 64; i++ {
		pc, ok := regs.PC()
		if !ok {
			return out, nil
		}
		if pc < 1<<47 {
			return out, nil // user mode
		}
		look := pc
		if !signal {
			look--
		}
		out = append(out, m.syms.name(look))
		if err := o.t.Find(look, &row); err != nil {
			if errors.Is(err, cfi.ErrNoFDE) {
				return out, fmt.Errorf("no FDE at %s", m.Where(pc))
			}
			return out, err
		}
		caller, _, err := row.Step(&regs, m.mem)
		if err != nil {
			return out, err
		}
		signal = row.SignalFrame
		regs = caller
	}
	return out, fmt.Errorf("too deep")
}

func shadowFunctions(m *Machine, cpu int) []string {
	var out []string
	for _, f := range m.ShadowStack(cpu) {
		if f.Kind == FrameUser {
			break
		}
		out = append(out, f.Function)
	}
	return out
}

// TestShadowAgreesWithCFI compares the shadow stack with a CFI unwind at
// every kernel boundary of the modes that do not corrupt their stacks.
func TestShadowAgreesWithCFI(t *testing.T) {
	modes := []int{0, 3, 4, 6, 8, 9, 10, 11}
	if s := os.Getenv("ORACLE_MODES"); s != "" {
		modes = nil
		for _, f := range strings.Split(s, ",") {
			var n int
			fmt.Sscan(f, &n)
			modes = append(modes, n)
		}
	}
	for _, variant := range []string{"fp", "nofp"} {
		o := newCFIOracle(t, variant)
		for _, mode := range modes {
			t.Run(fmt.Sprintf("%s/mode%d", variant, mode), func(t *testing.T) {
				cpus := 1
				if mode == 4 {
					cpus = 2
				}
				m := loadFixture(t, variant, cpus)
				ba, _ := m.SymbolByName("boot_args")
				m.mem.write(ba.Addr, 8, uint64(mode))
				bad, n := 0, 0
				seen := map[string]bool{}
				for step := 0; step < 3_000_000; step++ {
					stop := false
					for cpu := range m.CPUs {
						c := m.CPUs[cpu]
						if c.Done {
							continue
						}
						if c.CPL() != 3 && c.IDTR.Limit != 0 {
							n++
							want := shadowFunctions(m, cpu)
							got, err := o.functions(m, c)
							g, w := strings.Join(got, " "), strings.Join(want, " ")
							// CFI stops at int3_tramp_*+0 by design (RIP undefined):
							// the truth goes on; an unwinder must stop flagged there.
							early := len(got) > 0 && strings.HasPrefix(got[len(got)-1], "int3_tramp_") && strings.HasPrefix(w, g+" ")
							if err != nil || g != w && !early {
								bad++
								key := m.Where(c.RIP)
								if !seen[key] && len(seen) < 15 {
									seen[key] = true
									t.Logf("cpu %d insn %d at %s:\n  shadow %v\n  cfi    %v err %v", cpu, c.Insns, key, want, got, err)
								}
							}
						}
						if e := m.StepCPU(cpu); e != nil && !errors.Is(e, ErrStopped) {
							stop = true
						}
					}
					done := true
					for _, c := range m.CPUs {
						if !c.Done {
							done = false
						}
					}
					if done || stop {
						break
					}
				}
				t.Logf("mode %d: %d boundaries, %d mismatches", mode, n, bad)
				if n == 0 {
					t.Errorf("mode %d: no kernel boundary checked", mode)
				}
				if bad > 0 {
					t.Errorf("mode %d: the shadow stack and the CFI unwind differ at %d of %d boundaries (first ones logged above)", mode, bad, n)
				}
			})
		}
	}
}
