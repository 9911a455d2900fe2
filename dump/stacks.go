package dump

import (
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// Stacks returns the stack-bounds oracle for thread index i of Threads()
// (a user thread) or for CPU i (a kernel dump or emulator snapshot).
//
// For a user thread it is the memory segments (adjacent ones joined
// downwards, as a stack grows) holding the thread's stack pointer: as
// StackUser, unless the core shows that the thread's own stack lies
// elsewhere (see ownStack). Then the thread runs on some other stack, a
// sigaltstack or a coroutine's, and the oracle says StackUnknown. A core
// does not say whether that is a sigaltstack (the kernel writes no
// sigaltstack note): the unwinder learns it from uc_stack in the signal
// frame above, and reports other frames on a StackUnknown user stack as
// StackUser.
//
// For an emulator CPU it is the stacks the snapshot records. A kernel
// CPU's stacks come from the kernel's per-CPU data: use linux.Kernel's
// Stacks; here they are nil, as for an unknown index.
func (d *Dump) Stacks(i int) unwind.Stacks {
	if i < 0 || i >= len(d.threads) {
		return nil
	}
	switch {
	case d.kern != nil:
		return nil
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
	if own, ok := d.ownStack(i, sm); ok && own.addr != s.addr {
		// Not the thread's own stack: only the kind says so; the
		// bounds, and so the checks of a walk, stay what they were.
		return unwind.Stacks{{Kind: unwind.StackUnknown, Lo: lo, Hi: hi, CPU: -1, Name: "not the thread's own stack"}}
	}
	if tcb, ok := d.threadTCB(i, sm); ok && tcb > sp && tcb < hi {
		// A thread's stack ends below its control block: what lies
		// above is its TLS and, in one mapping, maybe another
		// thread's stack (a stack scan must not run on into it).
		hi = tcb
	}
	return unwind.Stacks{{Kind: unwind.StackUser, Lo: lo, Hi: hi, CPU: -1, Name: "user"}}
}

// threadTCB returns the thread control block of thread i, not the
// process's main thread, when the core shows one at its thread pointer:
// glibc and musl put a thread's control block (struct pthread, whose
// first word points to itself) at the top of its stack block, with the
// static TLS below it and the stack below that. A runtime that uses the
// thread pointer otherwise (Go's) has no self pointer there.
func (d *Dump) threadTCB(i int, sm *segMemory) (uint64, bool) {
	u := d.user
	if u == nil || u.ps == nil {
		return 0, false
	}
	th := &d.threads[i]
	fs := th.PrStatus.Regs.FSBase
	if th.TID == u.ps.Pid || fs == 0 || fs&7 != 0 {
		return 0, false
	}
	self, err := unwind.ReadU64(sm, fs)
	if err != nil || self != fs {
		return 0, false
	}
	return fs, true
}

// Auxiliary-vector entries that point into the initial stack of a process.
const (
	atPlatform = 15
	atRandom   = 25
	atExecFn   = 31
)

// ownStack returns the segment that holds thread i's own stack, when the
// core shows it: for the process's main thread (its TID is the PID of
// NT_PRPSINFO) the initial stack, which holds the strings and bytes the
// auxiliary vector points to (AT_EXECFN, AT_RANDOM, AT_PLATFORM); for
// another thread the segment holding its thread pointer (fs_base), since
// glibc and musl put a thread's control block at the top of its stack
// block, given or allocated. Memory the kernel merged into one mapping
// with the stack (an anonymous mapping right above a thread's stack)
// counts as that stack.
func (d *Dump) ownStack(i int, sm *segMemory) (span, bool) {
	u := d.user
	if u == nil || u.ps == nil {
		return span{}, false
	}
	th := &d.threads[i]
	if th.TID == u.ps.Pid {
		for _, a := range u.auxv {
			switch a.Tag {
			case atExecFn, atRandom, atPlatform:
				if s, ok := sm.segmentOf(a.Val); ok && a.Val != 0 && s.flags&pfW != 0 {
					return s, true
				}
			}
		}
		return span{}, false
	}
	if fs := th.PrStatus.Regs.FSBase; fs != 0 {
		if s, ok := sm.segmentOf(fs); ok && s.flags&pfW != 0 {
			return s, true
		}
	}
	return span{}, false
}
