package dump

import (
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// Stacks returns the stack-bounds oracle for thread index i of Threads()
// (a user thread) or for CPU i (a kernel dump or emulator snapshot).
//
// For a user thread it is the memory segments (adjacent ones joined) holding
// the thread's stack pointer, as StackUser. A core does not say whether that
// is a sigaltstack: the unwinder learns it from uc_stack in a signal frame.
// For a kernel CPU it is the task, IRQ, exception and entry stacks found
// from the kernel's per-CPU data. An unknown index gives nil.
func (d *Dump) Stacks(i int) unwind.Stacks {
	if i < 0 || i >= len(d.threads) {
		return nil
	}
	switch {
	case d.kern != nil:
		return d.kernelStacks(i)
	case d.emu != nil:
		return d.emulatorStacks(i)
	}
	return d.userStacks(i)
}

func (d *Dump) userStacks(i int) unwind.Stacks {
	sp, ok := d.threads[i].Regs.Get(ptregs.RSP)
	if !ok {
		return nil
	}
	sm, ok := d.mem.(*segMemory)
	if !ok {
		return nil
	}
	s, ok := sm.segmentOf(sp)
	if !ok {
		return nil
	}
	// Grow across adjacent segments (a stack may be split by a guard or
	// by permission changes), bounded by the segment list.
	lo, hi := s.addr, s.addr+s.memsz
	for {
		p, ok := sm.segmentOf(lo - 1)
		if !ok || lo == 0 || p.addr+p.memsz != lo {
			break
		}
		lo = p.addr
	}
	return unwind.Stacks{{Kind: unwind.StackUser, Lo: lo, Hi: hi, CPU: -1, Name: "user"}}
}
