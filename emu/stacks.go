package emu

import (
	"github.com/unwind-dev/unwind/unwind"
)

// Stack sizes of the fixture kernel (fixtures/kernel/src/kernel.h).
const (
	threadSize     = 16384
	irqStackSize   = 16384
	exceptionStack = 8192
	userStackSize  = 8192
)

// stackSymbols maps the fixture kernel's per-CPU stack arrays to their
// kinds (fixtures/kernel/README.md). Arrays not found are skipped.
var stackSymbols = []struct {
	name string
	kind unwind.StackKind
	size uint64 // per CPU
}{
	{"task_stacks", unwind.StackTask, threadSize},
	{"irq_stacks", unwind.StackIRQ, irqStackSize},
	{"nmi_stacks", unwind.StackNMI, exceptionStack},
	{"db_stacks", unwind.StackDB, exceptionStack},
	{"df_stacks", unwind.StackDF, exceptionStack},
	{"mc_stacks", unwind.StackMC, exceptionStack},
	{"user_stacks", unwind.StackUser, userStackSize},
}

// computeStacks derives each CPU's stacks from the kernel's stack arrays
// ([MAX_CPUS][size] objects: CPU n's stack is [sym+n*size, sym+(n+1)*size)).
func (m *Machine) computeStacks() {
	for _, ss := range stackSymbols {
		s, ok := m.syms.byName[ss.name]
		if !ok {
			continue
		}
		for cpu := range m.CPUs {
			lo := s.Addr + uint64(cpu)*ss.size
			if s.Size != 0 && lo+ss.size > s.Addr+s.Size {
				break
			}
			m.stacks[cpu] = append(m.stacks[cpu], unwind.Stack{Kind: ss.kind, Lo: lo, Hi: lo + ss.size, CPU: cpu, Name: ss.name})
		}
	}
}

// Stacks returns CPU cpu's known stacks: from the kernel's stack symbols
// when it has them, else from the TSS (RSP0 and IST1–4 tops) the CPU has
// loaded, with the sizes of fixtures/kernel/src/kernel.h.
func (m *Machine) Stacks(cpu int) unwind.Stacks {
	if cpu < 0 || cpu >= len(m.CPUs) {
		return nil
	}
	if len(m.stacks[cpu]) > 0 {
		return m.stacks[cpu]
	}
	return m.tssStacks(cpu)
}

func (m *Machine) tssStacks(cpu int) unwind.Stacks {
	c := m.CPUs[cpu]
	if c.TSSBase == 0 {
		return nil
	}
	var out unwind.Stacks
	if top, ok := m.mem.read(c.TSSBase+4, 8); ok && top != 0 {
		out = append(out, unwind.Stack{Kind: unwind.StackTask, Lo: top - threadSize, Hi: top, CPU: cpu, Name: "rsp0"})
	}
	kinds := [4]unwind.StackKind{unwind.StackDF, unwind.StackNMI, unwind.StackDB, unwind.StackMC}
	for i, k := range kinds {
		if top, ok := m.mem.read(c.TSSBase+0x24+uint64(i)*8, 8); ok && top != 0 {
			out = append(out, unwind.Stack{Kind: k, Lo: top - exceptionStack, Hi: top, CPU: cpu, Name: "ist"})
		}
	}
	return out
}

func (m *Machine) stackKind(cpu int, sp uint64) unwind.StackKind {
	if len(m.stacks[cpu]) > 0 {
		for _, s := range m.stacks[cpu] {
			if sp >= s.Lo && sp <= s.Hi { // the top address itself counts (empty stack)
				return s.Kind
			}
		}
		return unwind.StackUnknown
	}
	if sp < 1<<47 && m.CPUs[cpu].CPL() == 3 {
		return unwind.StackUser
	}
	return unwind.StackUnknown
}
