package unwind

import (
	"github.com/unwind-dev/unwind/ptregs"
)

// maxScanWords bounds one scan (64 KiB of stack).
const maxScanWords = 8192

// scanState is the position of the last-resort stack scan.
type scanState struct {
	active bool
	addr   uint64 // next word to look at
	hi     uint64 // end of the scanned stack
	left   int    // words left in the budget
	callee uint64 // start of the function of the frame below
	found  int    // frames this scan produced
	why    error  // why the normal strategies failed
}

// startScan begins scanning the stack above the current frame's SP.
func (u *Unwinder) startScan() bool {
	f := u.cur
	sp := f.SP
	if f.Kind == KindScan {
		sp = f.Slot + 8
	}
	if sp+7 < sp {
		return false
	}
	sp = (sp + 7) &^ 7
	hi := sp + maxScanWords*8
	if hi < sp {
		hi = ^uint64(0) &^ 7
	}
	if s, ok := u.stackOf(sp); ok {
		hi = s.Hi
	}
	if hi <= sp {
		return false
	}
	u.scan = scanState{active: true, addr: sp, hi: hi, left: maxScanWords, callee: u.calleeStart(f)}
	return true
}

// scanNext reports the next validated return address above the scan
// position as a KindScan, or ends the walk. A word counts only when it is
// text and the bytes before it are a call consistent with the frame below
// (a direct call to that function or a stub, or an indirect call). When the
// found frame has CFI, the walk resumes normal unwinding from it.
func (u *Unwinder) scanNext() bool {
	s := &u.scan
	for s.addr < s.hi && s.left > 0 {
		a := s.addr
		s.addr += 8
		s.left--
		w, ok := u.read64(a)
		if !ok {
			break
		}
		if w == 0 || !u.isRetText(w) || !u.callsiteOK(w, s.callee) {
			continue
		}
		var regs ptregs.Regs
		next := u.spare()
		callFrame(next, w, a+8, 0, a, &regs, MethodScan, false)
		next.Kind = KindScan
		if !u.opts.Kernel && u.has(MethodSignal) && u.atRestoreRTCached(w) {
			// A signal trampoline is returned to, never called: look
			// it up (symbol, CFI) at its own address, as emit does.
			next.LookupPC = w
		}
		if sb := u.opts.Stacks; sb != nil {
			if st, ok := u.stackOf(a); ok {
				next.Stack = st
			} else if !u.opts.Kernel {
				next.Stack = Stack{Kind: StackUser, CPU: -1} // as accept has it
			}
		}
		u.tainted = true
		s.found++
		s.callee = u.calleeStart(next)
		if u.has(MethodCFI) {
			var row = u.hasCFI(next.LookupPC)
			if row {
				s.active = false
			}
		}
		u.cur = next
		return true
	}
	s.active = false
	if s.found == 0 {
		why := s.why
		if why == nil {
			why = errNoStrategy
		}
		u.failAt(failScan, u.cur.Index, u.cur.PC, why)
		return false
	}
	u.finish(StopEndOfStack, false)
	return false
}
