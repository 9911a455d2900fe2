package unwind

import (
	"errors"

	"github.com/unwind-dev/unwind/ptregs"
)

// step replaces u.cur by its caller. It returns false when the walk ends
// (u.finish or u.fail has been called).
func (u *Unwinder) step() bool {
	f := u.cur
	u.def.set, u.lazy.set, u.pend.set = false, false, false
	u.memErr = nil
	if u.scan.active {
		// A scanned return address to the signal trampoline: the caller
		// is the code the signal interrupted, in the rt_sigframe, not a
		// word further up (the scan would read into the sigcontext).
		if f.Kind == KindScan && !u.opts.Kernel && u.has(MethodSignal) && u.atRestoreRTCached(f.PC) {
			next := u.spare()
			if ok, _ := u.crossSigframe(next); ok {
				u.scan.active = false
				return u.commit(next)
			}
		}
		return u.scanNext()
	}
	if u.opts.Kernel && f.Kind == KindInterrupted && ptregs.UserMode(f.PtRegs.CS) {
		u.finish(StopUserMode, true)
		return false
	}
	next := u.spare()
	var why error

	try := func(ok bool, err error) bool {
		if err != nil && why == nil {
			why = err
		}
		if !ok {
			return false
		}
		if err := u.accept(next); err != nil {
			if why == nil {
				why = err
			}
			return false
		}
		return true
	}

	// A user-space signal trampoline: the caller is the interrupted code.
	if !u.opts.Kernel && u.has(MethodSignal) && u.atRestoreRTCached(f.PC) {
		ok, err := u.crossSigframe(next)
		if ok {
			return u.commit(next)
		}
		if why == nil {
			why = err
		}
	}
	// The kernel's own tables, first where they exist.
	if u.orc != nil {
		ok, end, err := u.orcStep(next)
		if end {
			u.finish(StopEndOfStack, true)
			return false
		}
		if try(ok, err) {
			return u.commit(next)
		}
	}
	// Kernel entry frames: an encoded rbp, or a pt_regs right at SP.
	if u.opts.Kernel && u.has(MethodPtRegs) {
		ok, end, err := u.entryStep(next)
		if end {
			if err != nil {
				// A pt_regs at the top of the task stack that is
				// neither user mode nor a kernel thread's bottom.
				u.failAt(failStep, f.Index, f.PC, err)
			} else {
				u.finish(StopEndOfStack, true)
			}
			return false
		}
		if try(ok, err) {
			return u.commit(next)
		}
	}
	// A call through a NULL or non-text pointer: the caller is at [sp].
	if u.has(MethodFP) && u.opts.Code != nil && (f.Index == 0 || f.Interrupted()) && (f.PC == 0 || !u.isText(f.PC)) {
		if try(u.badPCStep(next)) {
			return u.commit(next)
		}
	}
	if u.has(MethodCFI) && u.opts.Code != nil {
		ok, end, err := u.cfiStep(next)
		if end {
			if u.cfiEndImproper() {
				u.failAt(failCFIUndef, f.Index, f.PC, nil)
			} else {
				u.finish(StopEndOfStack, true)
			}
			return false
		}
		if try(ok, err) {
			return u.commit(next)
		}
	}
	if u.opts.Kernel && u.has(MethodPtRegs) {
		// In an entry stub without its pt_regs (yet, or any more): the
		// hardware frame the CPU pushed; in unknown code on an IST
		// stack: the frame at the top of that stack.
		if stub, e := u.stubOf(f); e != "" {
			if try(u.stubStep(next, stub, e)) {
				return u.commit(next)
			}
		} else if u.atISTEntry() {
			if try(u.stackTopStep(next)) {
				return u.commit(next)
			}
		}
	}
	if u.has(MethodFP) {
		ok, end, err := u.fpStep(next)
		if end {
			if err != nil {
				// The chain ends outside an outermost function: the
				// trace may be cut short.
				u.failAt(failStep, f.Index, f.PC, err)
			} else {
				u.finish(StopEndOfStack, true)
			}
			return false
		}
		if try(ok, err) {
			return u.commit(next)
		}
	}
	if u.opts.Kernel && u.has(MethodPtRegs) {
		// The last resort: the frame at the top of the stack skips
		// whatever frames lie between (a guess, never reliable).
		u.guessing = true
		ok := try(u.stackTopStep(next))
		u.guessing = false
		if ok {
			next.Reliable = false
			// A guess does not refute a caller rejected because its
			// stack is inconsistent: the finding stands.
			u.settle(true)
			return u.commit(next)
		}
	}
	if u.pend.set {
		// A caller rejected because its stack is inconsistent says
		// more than the other strategies' failures.
		why = u.pendErr
	}
	if u.has(MethodScan) && u.opts.Code != nil && u.startScan() {
		u.scan.why = u.realize(why) // the deferred description does not outlive the step
		u.settle(false)             // the scan's frames are guesses: the finding stands, its error says it
		return u.scanNext()
	}
	if why == nil {
		why = errNoStrategy
	}
	u.failAt(failStep, f.Index, f.PC, why)
	return false
}

// Errors without details, shared so that a rejected candidate costs no
// allocation.
var (
	errNoStrategy      = errors.New("no strategy found a caller")
	errNoCaller        = errors.New("caller has no pc and no sp")
	errTooManySwitches = errors.New("too many stack switches")
	errCFINoRA         = errors.New("cfi: return address unknown")
	errCFIZeroRA       = errors.New("cfi: return address 0 where the CFI defines one")
	errNoStubFrame     = errors.New("no hardware frame above sp in the entry stub")
	errNoIRQPrev       = errors.New("irq stack top holds no previous stack pointer")
	errFPNoRBP         = errors.New("fp: rbp unknown")
)

// commit makes next the current frame. A candidate of another strategy
// rejected on the way is forgotten: the walk goes on on consistent stacks.
func (u *Unwinder) commit(next *Frame) bool {
	u.cur = next
	u.pend.set = false
	return true
}

// callFrame fills next as a Call frame reached through a return address
// read from slot; regs (which may be &next.Regs) are the caller's
// registers other than RIP and RSP.
func callFrame(next *Frame, ra, sp, cfa, slot uint64, regs *ptregs.Regs, m Method, reliable bool) {
	// Field by field: the buffer is reused, and clearing the whole frame
	// (its pt_regs block above all) costs more than the rest of a step.
	if next.Kind != KindCall || next.RegsAddr != 0 {
		next.PtRegs = ptregs.PtRegs{}
	}
	next.PC, next.LookupPC, next.SP, next.calleeCFA, next.Slot = ra, ra-1, sp, cfa, slot
	if ra == 0 {
		next.LookupPC = 0
	}
	if regs != &next.Regs {
		next.Regs = *regs
	}
	next.Regs.Set(ptregs.RIP, ra)
	next.Regs.Set(ptregs.RSP, sp)
	next.Kind, next.Method, next.Reliable = KindCall, m, reliable
	next.Entry, next.Partial, next.RegsAddr = "", false, 0
	next.nullCall = false
	next.Stack = Stack{}
	next.SymOK = false // emit looks the symbol up
}

// accept checks a candidate caller against the stack rules: the stack
// pointer moves up within a stack, stacks are left only outward, and no stack
// is entered twice. On success it records the stack switch and fills
// next.Stack. A candidate that breaks a rule on a known stack records the
// stack as inconsistent (corrupt): when no strategy finds a caller, the
// walk's error names the frames read from its memory.
func (u *Unwinder) accept(next *Frame) error {
	if u.nestCeil != 0 {
		return u.acceptBelowNested(next)
	}
	return u.acceptStack(next)
}

// acceptStack is accept without the nested-NMI bound.
func (u *Unwinder) acceptStack(next *Frame) error {
	f := u.cur
	if next.SP == 0 && next.PC == 0 {
		return errNoCaller
	}
	sb := u.opts.Stacks
	userFrame := u.opts.Kernel && next.Kind == KindInterrupted && ptregs.UserMode(next.PtRegs.CS)
	if sb == nil {
		if next.SP <= f.SP && next.Method != MethodPtRegs && next.Method != MethodSignal && !userFrame {
			return u.errorf("stack pointer %#x does not move up from %#x", xarg(next.SP), xarg(f.SP))
		}
		return nil
	}
	if userFrame {
		next.Stack = Stack{Kind: StackUser, CPU: -1}
		if s, ok := u.stackOf(next.SP); ok {
			next.Stack = s
		}
		return nil
	}
	if u.curStackOK && u.curStack.holds(next.SP) {
		// The common case: the caller is on the same stack, no oracle
		// call. (The general path below, with ns = u.curStack.)
		next.Stack = u.curStack
		if next.Kind == KindCall && next.Slot != 0 && !u.curStack.holds(next.Slot) {
			if s, ok := u.stackOf(next.Slot); ok {
				next.Stack = s
			}
		}
		if next.SP <= f.SP && u.nestedNMI(next, u.curStack) {
			return nil
		}
		if next.SP <= f.SP {
			return u.corrupt(u.curStack, u.curRead, u.errorf("stack pointer %#x does not move up from %#x on the %s stack",
				xarg(next.SP), xarg(f.SP), karg(u.curStack.Kind)))
		}
		return nil
	}
	ns, ok := u.stackOf(next.SP)
	if !ok {
		if u.opts.Kernel {
			return u.errorf("stack pointer %#x is on no known stack", xarg(next.SP))
		}
		// A user stack the oracle does not know (a sigaltstack, a
		// stack a core did not describe): only monotonicity holds.
		if next.SP <= f.SP && next.Method != MethodSignal && next.Method != MethodPtRegs {
			return u.errorf("stack pointer %#x does not move up from %#x", xarg(next.SP), xarg(f.SP))
		}
		next.Stack = Stack{Kind: StackUser, CPU: -1}
		u.curStack, u.curStackOK = Stack{}, false
		u.curRead, u.curLow = 0, 0
		return nil
	}
	// The frame's stack for display: where its return address lies.
	next.Stack = ns
	if next.Kind == KindCall && next.Slot != 0 && !ns.holds(next.Slot) {
		if s, ok := u.stackOf(next.Slot); ok {
			next.Stack = s
		}
	}
	if !u.curStackOK {
		u.curStack, u.curStackOK = ns, true
		u.enterStack(next)
		return nil
	}
	cs := u.curStack
	if ns.Lo == cs.Lo && ns.Hi == cs.Hi {
		if next.SP <= f.SP && u.nestedNMI(next, cs) {
			return nil
		}
		if next.SP <= f.SP {
			return u.corrupt(cs, u.curRead, u.errorf("stack pointer %#x does not move up from %#x on the %s stack",
				xarg(next.SP), xarg(f.SP), karg(cs.Kind)))
		}
		return nil
	}
	if stackRank(ns.Kind) < stackRank(cs.Kind) {
		// The caller was read from this stack: its memory is suspect.
		return u.corrupt(cs, u.curRead, u.errorf("stack switch from %s to %s goes inward", karg(cs.Kind), karg(ns.Kind)))
	}
	for i := 0; i < u.nvisited; i++ {
		if u.visited[i] == ns.Lo {
			// Either the frames read from ns's memory the first time
			// or this caller are wrong: all are suspect.
			return u.corrupt(ns, u.visitRead[i], u.errorf("stack %s at %#x entered twice", karg(ns.Kind), xarg(ns.Lo)))
		}
	}
	if u.nvisited < len(u.visited) {
		u.visited[u.nvisited] = cs.Lo
		u.visitRead[u.nvisited] = u.curRead
		u.nvisited++
	} else {
		return errTooManySwitches
	}
	u.curStack = ns
	u.enterStack(next)
	return nil
}

// enterStack notes that next is the first frame on the current stack: the
// lowest stack pointer on it, and, when next's return-address slot (or
// pt_regs) lies on it, that next is the first frame read from its memory
// (otherwise the step from next will be; Next notes it).
func (u *Unwinder) enterStack(next *Frame) {
	u.curLow = next.SP
	u.curRead = 0
	if next.Slot != 0 && u.curStack.holds(next.Slot) {
		u.readFrom(u.n)
	}
}

// readFrom notes that frame i is the first read from the current stack's
// memory. On an exception stack, the first such frame of the walk opens
// what the walk must confirm by leaving the exception stacks (confirmIST).
func (u *Unwinder) readFrom(i int) {
	u.curRead = i
	if u.istRead == 0 && !u.tainted && stackRank(u.curStack.Kind) == 1 {
		u.istRead, u.istStack = i, u.curStack
	}
}

// confirmIST is called for every reliable frame while frames read from an
// exception stack are unconfirmed: a frame on an outer stack (entry, IRQ,
// task...) confirms them. An exception stack is the one stack the CPU
// writes over live frames on: delivery through an IST gate resets RSP to
// the top of its stack even when a handler already runs there (mechanisms
// 1 and 3 of the emulator). What shows that it did not, for the frames a
// walk read there, lies below them: no stack entered twice, no stack
// pointer moving down, until the walk leaves the exception stacks (it
// never returns to them: stacks are left only outward). A walk that ends
// or turns to a guess before that has not shown it (settle).
func (u *Unwinder) confirmIST() {
	if u.curStackOK && stackRank(u.curStack.Kind) > 1 {
		u.istRead = 0
	}
}

// stackRank orders stack kinds from the innermost (exception stacks) to
// the outermost (user); an unwind only moves to equal or higher ranks.
func stackRank(k StackKind) int {
	switch k {
	case StackNMI, StackDB, StackDF, StackMC, StackVC:
		return 1
	case StackEntry:
		return 2
	case StackIRQ:
		return 3
	case StackSoftIRQ:
		return 4
	case StackTask:
		return 5
	case StackAltSignal:
		return 6
	case StackUser:
		return 7
	}
	return 0
}

// atISTEntry reports whether the current frame is entry code (or unknown
// code) on an exception (IST) stack, where the hardware iret frame at the
// top of the stack is the way out.
func (u *Unwinder) atISTEntry() bool {
	f := u.cur
	s, ok := u.stackOf(f.SP)
	if !ok || stackRank(s.Kind) != 1 {
		return false
	}
	if !f.SymOK {
		return true
	}
	_, e := u.stubOf(f) // the frame's own symbol's name
	return e != ""
}

// cfiEndImproper judges a CFI row that ends the stack (the return address
// undefined or 0). That is a proper end only in a known outermost function
// (_start, clone3, ret_from_fork…): kernel entry code also
// leaves the return address undefined where it is only in a per-CPU slot
// (the int3 trampolines' first instruction), and a return address of 0
// read mid-stack (an overwritten stack) cuts a trace short.
func (u *Unwinder) cfiEndImproper() bool {
	return !u.outermost(u.cur)
}

// nestedNMI reports whether next, on the NMI stack cs at or below the
// current frame, is the one legitimate move down a stack: an NMI that
// arrived while an outer NMI ran on the same stack (after an IRET in the
// outer's handler unblocked NMIs, the IST pointer reset RSP to the top).
// Its hardware frame lies at the very top of the NMI stack and names the
// outer NMI's code, lower on the same stack. Allowed once per walk.
//
// The nested NMI's frames lie from the lowest stack pointer the walk saw on
// that stack (curLow) to its top; the interrupted NMI's must lie below
// them: its stack pointer to begin with, then, until the walk leaves the
// NMI stack, everything a step reads there (accept checks it,
// acceptBelowNested). A walk that ends before it leaves has not confirmed
// them (settle).
func (u *Unwinder) nestedNMI(next *Frame, cs Stack) bool {
	if u.nestedSeen || cs.Kind != StackNMI || next.Kind != KindInterrupted || next.Entry != "nmi" ||
		next.RegsAddr != cs.Hi-ptregs.IretFrameSize || ptregs.UserMode(next.PtRegs.CS) || next.SP >= u.curLow {
		return false
	}
	if _, e := u.stubOf(u.cur); e != "nmi" {
		return false
	}
	u.nestedSeen = true
	if !u.tainted && !u.guessing {
		// A guess leaves the walk unreliable anyway: no bound
		// to check, no finding to make.
		u.nestCeil = u.curLow
	}
	return true
}
