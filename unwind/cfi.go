package unwind

import (
	"encoding/binary"
	"fmt"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
)

// cfiStep unwinds with the CFI row at the frame's lookup PC. end is set at
// the outermost frame (an undefined return address, or a zero one).
func (u *Unwinder) cfiStep(next *Frame) (ok, end bool, err error) {
	f := u.cur
	row, err := u.findCRow(f)
	if err != nil {
		if isNoFDE(err) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("cfi: %w", err)
	}
	if row.raKind == cfi.RuleUndefined {
		return false, true, nil
	}
	// Copy what is needed of the row: it lives in a cache entry that a
	// later lookup may reuse.
	signal, r15Full := row.signal, row.r15Full
	raSlot, raOff := row.raKind == cfi.RuleOffset, row.raOff
	// The caller's registers are built in place: whichever strategy
	// finds the caller overwrites them.
	caller := &next.Regs
	var cfa uint64
	fast := false
	if row.fast {
		fast = u.fastStep(row, &f.Regs, caller, &cfa)
	}
	if !fast {
		full, ferr := u.findRow(f.LookupPC)
		if ferr != nil {
			return false, false, fmt.Errorf("cfi: %w", ferr)
		}
		*caller, cfa, err = full.Step(&f.Regs, u.mem)
	}
	if err != nil {
		return false, false, fmt.Errorf("cfi: %w", err)
	}
	pc, okPC := caller.PC()
	if !okPC {
		return false, false, errCFINoRA
	}
	// The caller of a kernel entry stub's signal frame is interrupted
	// code: its RIP need not be text (a call through a NULL pointer
	// faults with RIP 0; the next step takes the caller from [sp]).
	entry := signal && u.opts.Kernel
	switch {
	case entry:
		if !ptregs.Canonical(pc) {
			return false, false, u.errorf("cfi: interrupted rip %#x is not canonical", xarg(pc))
		}
	case pc == 0:
		// A return address of 0 read from the stack ends the walk only
		// in a function that starts a stack (_start, clone3...): a stack
		// zeroed under a live frame reads the same. start_thread, an
		// end for frame pointers, has clone3 above it.
		if !u.outermost(f) || f.SymOK && f.Sym.Name == "start_thread" {
			return false, false, errCFIZeroRA
		}
		return false, true, nil
	case !u.isRetText(pc):
		return false, false, u.errorf("cfi: return address %#x is not text", xarg(pc))
	}
	sp, okSP := caller.SP()
	if !okSP {
		sp = cfa
	}
	slot := uint64(0)
	if raSlot {
		slot = cfa + uint64(raOff)
	}
	callFrame(next, pc, sp, cfa, slot, caller, MethodCFI, true)
	if signal {
		next.LookupPC = pc
		if u.opts.Kernel {
			u.cfiEntryFrame(next, r15Full, cfa)
		} else {
			next.Kind = KindSignal
			next.Entry = "signal"
		}
	}
	u.fixIRQTop(next)
	return true, false, nil
}

// cfiEntryFrame turns the caller of a kernel entry stub whose CFI is a
// signal frame into the interrupted frame: the entry is named from the
// stub, and the hardware iret frame at the end of the CFA (CFA-40: on
// entry CFA = rsp+40, the end of the frame the CPU pushed, or of the copy
// the stub describes) gives CS, RFLAGS and SS once it agrees with the RIP
// and RSP the CFI recovered. When the row shows the whole pt_regs saved
// (r15 at CFA-168) the frame carries it; before that it is Partial.
func (u *Unwinder) cfiEntryFrame(next *Frame, r15Full bool, cfa uint64) {
	f := u.cur
	next.Kind = KindInterrupted
	next.nullCall = next.PC == 0 // the stub's CFI signal frame is cross-checked
	stub, e := u.stubOf(f)
	b := u.scratch[:ptregs.IretFrameSize]
	iret := cfa - ptregs.IretFrameSize
	p := ptregs.PtRegs{IP: next.PC, SP: next.SP, OrigAX: ^uint64(0)}
	if n, _ := u.readAt(b, iret); n == len(b) {
		if fr, err := ptregs.DecodeIretFrame(b); err == nil && fr.IP == next.PC && fr.SP == next.SP {
			p.CS, p.Flags, p.SS = fr.CS, fr.Flags, fr.SS
			next.RegsAddr = iret
			next.Slot = iret
		}
	}
	next.Partial = true
	if next.RegsAddr != 0 && r15Full {
		addr := cfa - ptregs.PtRegsSize
		if n, _ := u.readAt(u.block[:], addr); n == len(u.block) {
			if full, err := ptregs.DecodePtRegs(u.block[:]); err == nil && full.IP == p.IP && full.SP == p.SP &&
				full.CS == p.CS && full.Flags == p.Flags && full.SS == p.SS {
				p = full
				next.RegsAddr = addr
				next.Partial = false
			}
		}
	}
	if next.Partial && e == "syscall" && p.CS == 0 {
		// SYSCALL pushes no frame: the interrupted context is user mode,
		// with the user RSP the CFI recovered. While the stub keeps that
		// RSP only in a per-CPU slot the CFI says so (undefined), and the
		// CFA stands in for it: a kernel address is no user RSP.
		p.CS, p.SS = ptregs.UserCS, ptregs.UserDS
		// SYSCALL put RFLAGS in r11, where it stays until the stub
		// saves it in pt_regs->flags (the CFI says so: column 49 is in
		// r11); Regs has no RFLAGS column, so take it here.
		if fl, ok := f.Regs.Get(ptregs.R11); ok {
			p.Flags = fl
		}
		if !ptregs.Canonical(next.SP) || next.SP >= 1<<47 {
			next.Regs.Clear(ptregs.RSP)
			next.Reliable = false
		}
	}
	s, _ := u.stackOf(next.RegsAddr)
	next.PtRegs = p
	next.Entry = entryNameOf(stub, e, &p, s.Kind)
}

// fastStep applies a row whose rules are all simple (CFA = reg+offset;
// undefined, same-value, offset, val-offset and register columns) without
// going through the general evaluator, into caller and cfa. It returns
// false when a read failed, so that Row.Step reports the error. The saved
// registers are read with one memory access when they lie within maxSpan
// bytes; when that read fails, one by one (the span may cover memory no
// rule reads).
func (u *Unwinder) fastStep(row *crow, callee, caller *ptregs.Regs, cfa *uint64) bool {
	base, okB := callee.Get(ptregs.Reg(row.cfaReg))
	if !okB {
		return false
	}
	c := base + uint64(row.cfaOff)
	var span []byte
	if row.spanN > 0 && u.mem != nil {
		a := c + uint64(row.spanLo)
		if b := u.splicedAt(stackWin, a, int(row.spanN)); b != nil {
			span = b
		} else {
			b := u.span[:row.spanN]
			if n, _ := u.readAt(b, a); n == len(b) {
				span = b
			}
		}
	}
	*caller = ptregs.Regs{}
	caller.Copy(callee, row.same)
	for i := range row.rules[:row.n] {
		r := &row.rules[i]
		col := ptregs.Reg(r.col)
		switch r.kind {
		case cfi.RuleOffset:
			if span != nil {
				caller.Set(col, binary.LittleEndian.Uint64(span[r.off-row.spanLo:]))
				break
			}
			v, ok := u.read64(c + uint64(r.off))
			if !ok {
				return false
			}
			caller.Set(col, v)
		case cfi.RuleValOffset:
			caller.Set(col, c+uint64(r.off))
		case cfi.RuleRegister:
			if v, ok := callee.Get(ptregs.Reg(r.reg)); ok {
				caller.Set(col, v)
			}
		}
	}
	ra := row.retReg
	if int(ra) < cfi.NumCols && ra != uint8(ptregs.RIP) {
		if v, ok := caller.Get(ptregs.Reg(ra)); ok {
			caller.Set(ptregs.RIP, v)
		} else {
			caller.Clear(ptregs.RIP)
		}
	}
	if row.rspCFA {
		caller.Set(ptregs.RSP, c)
	}
	*cfa = c
	return true
}
