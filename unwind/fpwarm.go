package unwind

import (
	"encoding/binary"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// fpWarm is step for the common frame-pointer case once the caches know
// the frame: a call frame of a function that set up rbp, in a walk where
// the frame pointer is the first strategy that applies to it (no CFI; in a
// kernel walk, no entry-frame signal at this frame), on a known stack. It
// reads the frame record, checks it as fpStep and accept do, and fills
// next as they would. It uses only what the caches hold and returns false,
// having changed nothing but next, for anything else: then the general
// path runs and fills the caches for the next walk. An incremental walk
// logs its reads (readAt).
func (u *Unwinder) fpWarm(f, next *Frame) bool {
	e := u.warm // the entry of the frame the last fpWarm made: most likely f's
	if e == nil || e.pc != f.PC || uint64(e.delta) != f.PC-f.LookupPC || e.flags&efValid == 0 {
		e = u.entry(f.PC, f.LookupPC)
	}
	u.warm = nil
	const need = efSt0 | efFn
	if e.flags&need != need || !e.st0.ok {
		return false
	}
	if (u.opts.Kernel || u.has(MethodSignal) || f.Index == 0) && !u.quietBefore(f, e, true) {
		return false // (otherwise nothing comes before the frame pointer)
	}
	// The analysis, as scalars: the entry may be reused by the lookup of
	// the caller's PC.
	rbpFrame, rbpSaved, cfaOff, rbpSlot := e.st0.rbpFrame, e.st0.rbpSaved, e.st0.cfaOff, e.st0.rbpSlot
	fnStart := e.fnStart
	rbp, okBP := f.Regs.Get(ptregs.RBP)
	var ra, sp, slot, nbp uint64
	var okNBP, reliable bool
	var re *pcEntry
	if !rbpFrame {
		// Frameless here: the return address is at the CFA the analysis
		// found (fpStep's first branch), taken when its call site is
		// valid.
		cfa := f.SP + uint64(cfaOff)
		var ok bool
		if ra, ok = u.read64(cfa - 8); !ok || ra == 0 {
			return false
		}
		re = u.entry(ra, ra-1)
		if valid, known := u.warmCallsite(ra, fnStart, re); !known || !valid {
			return false
		}
		if rbpSaved {
			nbp, okNBP = u.read64(cfa + uint64(rbpSlot))
		} else {
			nbp, okNBP = rbp, okBP
		}
		sp, slot, reliable = cfa, cfa-8, f.Index == 0 && u.siteWarm(ra, cfa-8, fnStart, re) // top: a call frame
	} else {
		// The rbp chain.
		if !okBP || rbp == 0 || rbp&7 != 0 || rbp < f.SP {
			return false
		}
		if u.opts.Stacks != nil {
			if !u.curStackOK || !u.curStack.holds(rbp) || !u.curStack.holds(rbp+15) {
				return false
			}
		} else if rbp-f.SP > maxFrameSize {
			return false
		}
		if b := u.win[stackWin].at(rbp, 16); b != nil && u.rec == nil {
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
		re = u.entry(ra, ra-1)
		if re.flags&(efRT|efRetText) != efRT|efRetText {
			return false
		}
		// fpStep's verdict for a function with an rbp frame: reliable
		// when the call site is (emit's callSiteCheck).
		sp, slot, okNBP = rbp+16, rbp+8, true
		// siteWarm, inlined.
		if b := u.win[codeWin].at(ra-9, 9); b != nil && ra >= 9 && u.rec == nil && re.flags&siteWarmNeed == siteWarmNeed &&
			re.callee == fnStart && slot != u.opts.ForkReturnSlot && re.callWin == [9]byte(b) {
			reliable = true
		} else {
			reliable = u.siteSlow(ra, slot, fnStart, re)
		}
	}
	sb := u.opts.Stacks != nil
	if sp <= f.SP || sb && (!u.curStackOK || !u.curStack.holds(sp) || !u.curStack.holds(slot)) {
		return false
	}
	if u.opts.Kernel && sb && u.stackAt(sp).irqTop {
		return false // fixIRQTop moves the SP
	}
	// callFrame(next, ra, sp, sp, slot, {rbp}, MethodFP, reliable), then
	// accept's next.Stack, each field written once.
	if next.Kind != KindCall || next.RegsAddr != 0 {
		next.PtRegs = ptregs.PtRegs{}
	}
	next.PC, next.LookupPC, next.SP, next.calleeCFA, next.Slot = ra, ra-1, sp, sp, slot
	// Regs{rbp, rip, rsp}. A register that is not valid is zero, so when
	// the buffer held no other register (the frame two steps up, made
	// here too) only these three are written.
	if next.Regs.Mask()&^(1<<ptregs.RBP|1<<ptregs.RIP|1<<ptregs.RSP) != 0 {
		next.Regs = ptregs.Regs{}
	}
	if okNBP {
		next.Regs.Set(ptregs.RBP, nbp)
	} else {
		next.Regs.Clear(ptregs.RBP)
	}
	next.Regs.Set(ptregs.RIP, ra)
	next.Regs.Set(ptregs.RSP, sp)
	next.Kind, next.Method, next.Reliable = KindCall, MethodFP, reliable
	if next.Entry != "" {
		next.Entry = ""
	}
	next.Partial, next.RegsAddr = false, 0
	if sb {
		// accept, on the same stack. (A plain store: comparing first,
		// to skip a store of the same value, costs more.)
		next.Stack = u.curStack
	} else {
		next.Stack = Stack{}
	}
	next.SymOK = false
	u.warm = re
	return true
}

// warmCallsite is callsiteOK(ra, callee) when the entry re of ra holds
// the verdict for callee and memory still holds the bytes it was decoded
// from; known is false otherwise.
func (u *Unwinder) warmCallsite(ra, callee uint64, re *pcEntry) (valid, known bool) {
	if re.flags&efCall == 0 || re.callee != callee || !u.sameCallWindow(ra, re) {
		return false, false
	}
	return re.has(efCallOK), true
}

// sameCallWindow reports whether memory still holds, before ra, the
// bytes re's call-site verdict was decoded from.
func (u *Unwinder) sameCallWindow(ra uint64, re *pcEntry) bool {
	var win [9]byte
	n := u.callWindow(ra, &win)
	return re.has(efCallMem) == (n == 9) && re.callWin == win
}

// emitWarm is emit for a frame fpWarm just made, when the caches know its
// symbol (and that it is no signal trampoline) and, with a LineSource,
// its source lines: what emit would do, without the lookups.
func (u *Unwinder) emitWarm() bool {
	f, e := u.cur, u.warm
	if e == nil || u.lines != nil && !e.has(efLines) || u.n >= u.max || !e.has(efSymOK) ||
		!u.opts.Kernel && u.has(MethodSignal) && (!e.has(efTramp) || e.has(efTrampOK)) {
		return u.emit()
	}
	f.Index = u.n
	if u.tainted {
		f.Reliable = false
	}
	if !f.Reliable {
		u.allGood = false
		u.tainted = true
	} else if u.istRead != 0 {
		u.confirmIST()
	}
	if f.File != "" {
		f.File = ""
	}
	f.Line, f.Inlined = 0, false
	if e.has(efSymOK) {
		f.Sym, f.SymOK, f.Function = e.sym, true, e.sym.Name
	} else {
		f.Sym, f.SymOK, f.Function = symbols.Sym{}, false, ""
	}
	u.inline = u.inline[:0]
	u.inlineAt = 0
	if u.lines != nil {
		// emit's source lines, from the entry.
		u.inline = e.lines
		if len(u.inline) > 0 {
			l := &u.inline[0]
			if l.Function != "" {
				f.Function = l.Function
			}
			f.File, f.Line, f.Inlined = l.File, l.Line, l.Inlined
			u.inlineAt = 1
		}
	}
	u.prevPC, u.lastPC = u.lastPC, f.LookupPC
	u.n++
	u.outInline = false
	return true
}

// cfiWarm is step for the common CFI case once the caches know the frame:
// a row the fast step applies (no expressions, no signal frame), where CFI
// is the first strategy that applies to the frame (quietBefore), staying
// on the same stack. It does what cfiStep and
// accept would do, and returns false, having changed nothing but next, for
// anything else. Its memory reads go through fastStep (and readAt), so an
// incremental walk logs them.
func (u *Unwinder) cfiWarm(f, next *Frame) bool {
	e := u.warm
	if e == nil || e.pc != f.PC || uint64(e.delta) != f.PC-f.LookupPC || e.flags&efValid == 0 {
		e = u.entry(f.PC, f.LookupPC)
	}
	u.warm = nil
	p := &u.c.crows
	if e.flags&(efRow|efRowMiss) != efRow || e.rowGen != p.gen {
		return false
	}
	row := &p.rows[e.row]
	if !row.fast || row.signal || row.raKind == cfi.RuleUndefined {
		return false
	}
	kernel := u.opts.Kernel
	if (kernel || u.has(MethodSignal) || f.Index == 0 || f.Kind != KindCall) && !u.quietBefore(f, e, false) {
		return false // (otherwise nothing comes before CFI)
	}
	raSlot, raOff := row.raKind == cfi.RuleOffset, row.raOff
	var cfa uint64
	if !u.fastStep(row, &f.Regs, &next.Regs, &cfa) {
		return false
	}
	pc, okPC := next.Regs.PC()
	if !okPC || pc == 0 {
		return false
	}
	re := u.entry(pc, pc-1)
	if re.flags&(efRT|efRetText) != efRT|efRetText {
		return false
	}
	sp, okSP := next.Regs.SP()
	if !okSP {
		sp = cfa
	}
	slot := uint64(0)
	if raSlot {
		slot = cfa + uint64(raOff)
	}
	if !e.has(efFn) {
		return false // the callee's start, for the call-site check
	}
	// siteWarm, inlined.
	var reliable bool
	if b := u.win[codeWin].at(pc-9, 9); b != nil && pc >= 9 && u.rec == nil && re.flags&siteWarmNeed == siteWarmNeed &&
		re.callee == e.fnStart && slot != u.opts.ForkReturnSlot && re.callWin == [9]byte(b) {
		reliable = true
	} else {
		reliable = u.siteSlow(pc, slot, e.fnStart, re)
	}
	// accept, on the same stack (fixIRQTop leaves the SP alone).
	if sp <= f.SP {
		return false
	}
	sb := u.opts.Stacks != nil
	if sb {
		if !u.curStackOK || !u.curStack.holds(sp) || slot != 0 && !u.curStack.holds(slot) {
			return false
		}
		if kernel && u.stackAt(sp).irqTop {
			return false
		}
	}
	// callFrame(next, pc, sp, cfa, slot, &next.Regs, MethodCFI, true),
	// then accept's next.Stack.
	if next.Kind != KindCall || next.RegsAddr != 0 {
		next.PtRegs = ptregs.PtRegs{}
	}
	next.PC, next.LookupPC, next.SP, next.calleeCFA, next.Slot = pc, pc-1, sp, cfa, slot
	next.Regs.Set(ptregs.RIP, pc)
	next.Regs.Set(ptregs.RSP, sp)
	next.Kind, next.Method, next.Reliable = KindCall, MethodCFI, reliable
	if next.Entry != "" {
		next.Entry = ""
	}
	next.Partial, next.RegsAddr = false, 0
	if sb {
		next.Stack = u.curStack
	} else {
		next.Stack = Stack{}
	}
	next.SymOK = false
	u.warm = re
	return true
}

// quietBefore reports whether the strategies step tries before CFI (or,
// with fp, before the frame pointer) leave frame f, whose cache entry is
// e, alone, and the walk goes on from it: it is not a user-mode frame
// ending a kernel walk, not a signal trampoline, not in an entry stub,
// without an encoded or marker rbp at its SP, not on the task stack's
// pt_regs, not at a PC that is not code, and (fp) not unknown code on an
// IST stack. What it does not know from the caches counts as not quiet.
func (u *Unwinder) quietBefore(f *Frame, e *pcEntry, fp bool) bool {
	kernel := u.opts.Kernel
	if kernel && f.Kind == KindInterrupted && ptregs.UserMode(f.PtRegs.CS) {
		return false // the walk ends here
	}
	if !kernel && u.has(MethodSignal) && (f.Kind != KindCall || !e.has(efTramp) || e.has(efTrampOK)) {
		return false // maybe a signal trampoline: sigframeStep first
	}
	if kernel && u.has(MethodPtRegs) {
		// entryStep's signals, and (fp) the entry stub's hardware frame.
		if !e.has(efStub) || e.entry != "" {
			return false
		}
		if rbp, ok := f.Regs.Get(ptregs.RBP); ok {
			if rbp&1 == 1 && rbp > 1 && rbp-1 == f.SP {
				return false // an encoded rbp
			}
			if rbp&7 == 0 && rbp == f.SP {
				// entryStep reads the word above the frame record: a
				// marker return address?
				if m, ok := u.read64(rbp + 8); ok && u.isEntryMarker(m) {
					return false
				}
			}
		}
		if f.Index > 0 && u.opts.Stacks != nil && u.stackAt(f.SP).taskTop {
			return false
		}
	}
	if u.has(MethodFP) && (f.Index == 0 || f.Interrupted()) && (f.PC == 0 || !u.isText(f.PC)) {
		return false // badPCStep first
	}
	if fp && kernel && u.has(MethodPtRegs) && u.opts.Stacks != nil && !f.SymOK {
		if a := u.stackAt(f.SP); a.ok && stackRank(a.s.Kind) == 1 {
			return false // unknown code on an IST stack: stackTopStep first
		}
	}
	return true
}
