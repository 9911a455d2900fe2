package linux

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

// truthCPU is the part of kernel-truth-dev.json this package checks: the
// stack each CPU stopped on and the pt_regs crossed.
type truthCPU struct {
	Frames      []string `json:"frames"`
	Sections    []string `json:"sections"`
	Interrupted []struct {
		RSP      string `json:"rsp"`
		UserMode bool   `json:"user_mode"`
	} `json:"interrupted"`
	Stopped struct {
		RIP string `json:"rip"`
		RSP string `json:"rsp"`
	} `json:"stopped"`
}

func TestVmcoreStacksMatchTruth(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	b, err := os.ReadFile(corpus.File(t, "kernel-truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]json.RawMessage
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	for name, raw := range truth {
		if name[0] == '_' {
			continue
		}
		var capt struct {
			CPUs map[string]truthCPU `json:"cpus"`
		}
		if err := json.Unmarshal(raw, &capt); err != nil {
			t.Fatal(err)
		}
		matches, _ := filepath.Glob(filepath.Join(kdir, "fp", "*", name+".vmcore.zst"))
		if len(matches) != 1 {
			t.Errorf("%s: %d dumps", name, len(matches))
			continue
		}
		scenario := filepath.Base(filepath.Dir(matches[0]))
		t.Run(name, func(t *testing.T) {
			d := openKernel(t, scenario, name)
			set := d.Symbols()
			for c, want := range capt.CPUs {
				cpu, _ := strconv.Atoi(c)
				if cpu >= len(d.CPUs()) || d.CPUs()[cpu].CPU != cpu {
					t.Errorf("cpu %s of the truth: not thread %d of the dump (%d threads)", c, cpu, len(d.CPUs()))
					continue
				}
				corpus.Checked(t, 1)
				rip, _ := strconv.ParseUint(want.Stopped.RIP[2:], 16, 64)
				if got, _ := d.CPUs()[cpu].Regs.PC(); got != rip {
					t.Errorf("cpu %d: rip %#x, truth %#x", cpu, got, rip)
				}
				if s, ok := set.Symbol(rip); !ok || s.Name != want.Frames[0] {
					t.Errorf("cpu %d: rip %#x symbol %q, truth %q", cpu, rip, s.Name, want.Frames[0])
				}
				st := d.Stacks(cpu)
				sp, _ := strconv.ParseUint(want.Stopped.RSP[2:], 16, 64)
				if s, ok := st.StackOf(sp); !ok || s.Kind.String() != want.Sections[0] {
					t.Errorf("cpu %d: stopped rsp %#x on %v, truth %s (stacks %+v)", cpu, sp, s.Kind, want.Sections[0], st)
				}
				for _, in := range want.Interrupted {
					rsp, _ := strconv.ParseUint(in.RSP[2:], 16, 64)
					if in.UserMode {
						continue
					}
					if s, ok := st.StackOf(rsp); !ok || s.Kind == unwind.StackUnknown {
						t.Errorf("cpu %d: interrupted rsp %#x on no known stack", cpu, rsp)
					}
				}
			}
		})
	}
}

// TestVmcoreStacksFromSymbolsAlone: a kdump /proc/vmcore or makedumpfile
// dump has no QEMU note (no TR, IDT or GS base), so the stacks must come
// from the kernel's own per-CPU symbols alone: __per_cpu_offset,
// current_task / cpu_current_top_of_stack / hardirq_stack_ptr, cpu_tss_rw
// for the IST and entry stacks and idt_table for the IST slots. They must
// be the ones the QEMU state gives.
func TestVmcoreStacksFromSymbolsAlone(t *testing.T) {
	for _, c := range []struct{ scenario, name string }{{"nmibt", "nmibt"}, {"qnmi", "qnmi"}, {"irq", "irq"}} {
		t.Run(c.name, func(t *testing.T) {
			d := openKernel(t, c.scenario, c.name)
			var want []unwind.Stacks
			for i := range d.CPUs() {
				want = append(want, d.Stacks(i))
			}
			d.qemu = nil
			for i := range d.CPUs() {
				got := d.Stacks(i)
				kinds := map[unwind.StackKind]bool{}
				for _, s := range got {
					kinds[s.Kind] = true
				}
				for _, k := range []unwind.StackKind{unwind.StackTask, unwind.StackIRQ, unwind.StackNMI, unwind.StackDB, unwind.StackDF, unwind.StackMC} {
					if !kinds[k] {
						t.Errorf("cpu %d: no %v stack from the symbols: %+v", i, k, got)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want[i]) {
					t.Errorf("cpu %d: stacks from symbols\n%+v\nfrom QEMU's state\n%+v", i, got, want[i])
				}
			}
		})
	}
}
