package unwind

import (
	"encoding/binary"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// fpWarm is step for the common frame-pointer case once the caches know
// the frame: a call frame (not frame 0) of a function that set up rbp, in
// a walk where the frame pointer is the first strategy that applies (no
// CFI, not a kernel walk with entry frames), on a known stack. It reads
// the frame record, checks it as fpStep and accept do, and fills next as
// they would. It uses only what the caches hold and returns false, having
// changed nothing but next, for anything else: then the general path runs
// and fills the caches for the next walk.
func (u *Unwinder) fpWarm(f, next *Frame) bool {
	if u.rec != nil {
		return false // an incremental walk logs its reads through readAt
	}
	e := u.warm // the entry of the frame the last fpWarm made: most likely f's
	if e == nil || e.pc != f.PC || uint64(e.delta) != f.PC-f.LookupPC || e.flags&efValid == 0 {
		e = u.entry(f.PC, f.LookupPC)
	}
	u.warm = nil
	const need = efSt0 | efFn
	if e.flags&need != need || !e.st0.ok || !e.st0.rbpFrame {
		return false
	}
	if u.has(MethodSignal) && (!e.has(efTramp) || e.has(efTrampOK)) {
		return false // maybe a signal trampoline: sigframeStep first
	}
	rbp, okBP := f.Regs.Get(ptregs.RBP)
	if !okBP || rbp == 0 || rbp&7 != 0 || rbp < f.SP {
		return false
	}
	sb := u.opts.Stacks != nil
	if sb {
		if !u.curStackOK || !u.curStack.holds(rbp) || !u.curStack.holds(rbp+15) {
			return false
		}
	} else if rbp-f.SP > maxFrameSize {
		return false
	}
	var nbp, ra uint64
	if b := u.win[stackWin].at(rbp, 16); b != nil {
		nbp, ra = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	} else {
		var ok bool
		if nbp, ra, ok = u.read2x64(rbp); !ok {
			return false
		}
	}
	if ra == 0 {
		return false
	}
	re := u.entry(ra, ra-1)
	if re.flags&(efRT|efRetText|efCall) != efRT|efRetText|efCall || re.callee != e.fnStart {
		return false
	}
	if b := u.win[codeWin].at(ra-9, 9); b != nil && ra >= 9 {
		if !re.has(efCallMem) || re.callWin != [9]byte(b) {
			return false
		}
	} else {
		var win [9]byte
		if n := u.callWindow(ra, &win); re.has(efCallMem) != (n == 9) || re.callWin != win {
			return false
		}
	}
	// fpStep's verdict for a function with an rbp frame: reliable when
	// the call site is valid.
	sp := rbp + 16
	if sp <= f.SP || sb && !u.curStack.holds(sp) {
		return false
	}
	// callFrame(next, ra, sp, sp, rbp+8, {rbp: nbp}, MethodFP, verdict),
	// then accept's next.Stack, each field written once.
	if next.Kind != KindCall || next.RegsAddr != 0 {
		next.PtRegs = ptregs.PtRegs{}
	}
	next.PC, next.LookupPC, next.SP, next.CFA, next.Slot = ra, ra-1, sp, sp, rbp+8
	next.Regs = ptregs.Regs{}
	next.Regs.Set(ptregs.RBP, nbp)
	next.Regs.Set(ptregs.RIP, ra)
	next.Regs.Set(ptregs.RSP, sp)
	next.Kind, next.Method, next.Reliable = KindCall, MethodFP, re.has(efCallOK)
	next.Entry, next.Partial, next.RegsAddr = "", false, 0
	if sb {
		// accept on the same stack; the return-address slot lies
		// between rbp and rbp+15.
		next.Stack = u.curStack
	} else {
		next.Stack = Stack{}
	}
	next.SymOK = false
	u.warm = re
	return true
}

// emitWarm is emit for a frame fpWarm just made, when the caches know its
// symbol (and that it is no signal trampoline) and there are no source
// lines to add: what emit would do, without the lookups.
func (u *Unwinder) emitWarm() bool {
	f, e := u.cur, u.warm
	if e == nil || u.lines != nil || u.n >= u.max || !e.has(efSym) ||
		u.has(MethodSignal) && (!e.has(efTramp) || e.has(efTrampOK)) {
		return u.emit()
	}
	f.Index = u.n
	if u.tainted {
		f.Reliable = false
	}
	if !f.Reliable {
		u.allGood = false
		u.tainted = true
	}
	f.File, f.Line, f.Inlined = "", 0, false
	if e.has(efSymOK) {
		f.Sym, f.SymOK, f.Function = e.sym, true, e.sym.Name
	} else {
		f.Sym, f.SymOK, f.Function = symbols.Sym{}, false, ""
	}
	u.inline = u.inline[:0]
	u.inlineAt = 0
	u.n++
	u.outInline = false
	return true
}
