package unwind

import (
	"errors"
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
)

// step replaces u.cur by its caller. It returns false when the walk ends
// (u.finish or u.fail has been called).
func (u *Unwinder) step() bool {
	f := u.cur
	if u.scan.active {
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
		if try(u.sigframeStep(next)) {
			return u.commit(next)
		}
	}
	// Kernel entry frames: an encoded rbp, or a pt_regs right at SP.
	if u.opts.Kernel && u.has(MethodPtRegs) {
		ok, end, err := u.entryStep(next)
		if end {
			u.finish(StopEndOfStack, true)
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
			if err := u.cfiEnd(); err != nil {
				u.fail(err)
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
		if stub := u.stubName(); entryFromSymbol(stub) != "" {
			if try(u.stubStep(next, stub)) {
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
			u.finish(StopEndOfStack, err == nil)
			return false
		}
		if try(ok, err) {
			return u.commit(next)
		}
	}
	if u.opts.Kernel && u.has(MethodPtRegs) {
		// The last resort: the frame at the top of the stack skips
		// whatever frames lie between (a guess, never reliable).
		if try(u.stackTopStep(next)) {
			next.Reliable = false
			return u.commit(next)
		}
	}
	if u.has(MethodScan) && u.opts.Code != nil && u.startScan() {
		u.scan.why = why
		return u.scanNext()
	}
	if why == nil {
		why = errors.New("no strategy found a caller")
	}
	u.fail(fmt.Errorf("frame %d at %#x: %w", f.Index, f.PC, why))
	return false
}

// commit makes next the current frame.
func (u *Unwinder) commit(next *Frame) bool {
	u.cur = next
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
	next.PC, next.LookupPC, next.SP, next.CFA, next.Slot = ra, ra-1, sp, cfa, slot
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
	next.Stack = Stack{}
	next.SymOK = false // emit looks the symbol up
}

// accept checks a candidate caller against the stack rules: the stack
// pointer moves up within a stack, stacks are left only outward, and no stack
// is entered twice. On success it records the stack switch and fills
// next.Stack.
func (u *Unwinder) accept(next *Frame) error {
	f := u.cur
	if next.SP == 0 && next.PC == 0 {
		return errors.New("caller has no pc and no sp")
	}
	sb := u.opts.Stacks
	userFrame := u.opts.Kernel && next.Kind == KindInterrupted && ptregs.UserMode(next.PtRegs.CS)
	if sb == nil {
		if next.SP <= f.SP && next.Method != MethodPtRegs && next.Method != MethodSignal && !userFrame {
			return fmt.Errorf("stack pointer %#x does not move up from %#x", next.SP, f.SP)
		}
		return nil
	}
	if userFrame {
		next.Stack = Stack{Kind: StackUser, CPU: -1}
		if s, ok := sb.StackOf(next.SP); ok {
			next.Stack = s
		}
		return nil
	}
	var ns Stack
	if u.curStackOK && u.curStack.Contains(next.SP) {
		ns = u.curStack // the common case: no oracle call
	} else {
		var ok bool
		if ns, ok = sb.StackOf(next.SP); !ok {
			if u.opts.Kernel {
				return fmt.Errorf("stack pointer %#x is on no known stack", next.SP)
			}
			// A user stack the oracle does not know (a sigaltstack, a
			// stack a core did not describe): only monotonicity holds.
			if next.SP <= f.SP && next.Method != MethodSignal && next.Method != MethodPtRegs {
				return fmt.Errorf("stack pointer %#x does not move up from %#x", next.SP, f.SP)
			}
			next.Stack = Stack{Kind: StackUser, CPU: -1}
			u.curStack, u.curStackOK = Stack{}, false
			return nil
		}
	}
	// The frame's stack for display: where its return address lies.
	next.Stack = ns
	if next.Kind == KindCall && next.Slot != 0 && !ns.Contains(next.Slot) {
		if s, ok := sb.StackOf(next.Slot); ok {
			next.Stack = s
		}
	}
	if !u.curStackOK {
		u.curStack, u.curStackOK = ns, true
		return nil
	}
	cs := u.curStack
	if ns.Lo == cs.Lo && ns.Hi == cs.Hi {
		if next.SP <= f.SP && u.nestedNMI(next, cs) {
			return nil
		}
		if next.SP <= f.SP {
			return fmt.Errorf("stack pointer %#x does not move up from %#x on the %s stack", next.SP, f.SP, cs.Kind)
		}
		return nil
	}
	if stackRank(ns.Kind) < stackRank(cs.Kind) {
		return fmt.Errorf("stack switch from %s to %s goes inward", cs.Kind, ns.Kind)
	}
	for i := 0; i < u.nvisited; i++ {
		if u.visited[i] == ns.Lo {
			return fmt.Errorf("stack %s at %#x entered twice", ns.Kind, ns.Lo)
		}
	}
	if u.nvisited < len(u.visited) {
		u.visited[u.nvisited] = cs.Lo
		u.nvisited++
	} else {
		return errors.New("too many stack switches")
	}
	u.curStack = ns
	return nil
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
	return !f.SymOK || entryFromSymbol(f.Sym.Name) != ""
}

// cfiEnd judges a CFI row that ends the stack (the return address
// undefined or 0). In a kernel walk that is a proper end only in a known
// outermost function (_start, ret_from_fork…): entry code also leaves the
// return address undefined where it is only in a per-CPU slot (the int3
// trampolines' first instruction), and a walk stopping there is truncated.
func (u *Unwinder) cfiEnd() error {
	f := u.cur
	if !u.opts.Kernel || u.endOfChain(f) == nil {
		return nil
	}
	return fmt.Errorf("frame %d at %#x: cfi: return address undefined outside an outermost frame", f.Index, f.PC)
}

// stubName returns the symbol name of the current frame's function.
func (u *Unwinder) stubName() string {
	f := u.cur
	if f.SymOK {
		return f.Sym.Name
	}
	if c := u.opts.Code; c != nil {
		if s, ok := c.Symbol(f.LookupPC); ok {
			return s.Name
		}
	}
	return ""
}

// nestedNMI reports whether next, on the NMI stack cs at or below the
// current frame, is the one legitimate move down a stack: an NMI that
// arrived while an outer NMI ran on the same stack (after an IRET in the
// outer's handler unblocked NMIs, the IST pointer reset RSP to the top).
// Its hardware frame lies at the very top of the NMI stack and names the
// outer NMI's code, lower on the same stack. Allowed once per walk.
func (u *Unwinder) nestedNMI(next *Frame, cs Stack) bool {
	if u.nestedSeen || cs.Kind != StackNMI || next.Kind != KindInterrupted || next.Entry != "nmi" ||
		next.RegsAddr != cs.Hi-ptregs.IretFrameSize || ptregs.UserMode(next.PtRegs.CS) {
		return false
	}
	if entryFromSymbol(u.stubName()) != "nmi" {
		return false
	}
	u.nestedSeen = true
	return true
}
