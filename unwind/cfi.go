package unwind

import (
	"errors"
	"fmt"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// rowCache is a small direct-mapped cache of CFI rows (and misses) keyed by
// lookup PC, so a warm walk makes no Code.FindCFI call.
type rowCache struct {
	e [64]struct {
		pc   uint64
		set  bool
		miss bool
		err  error
		row  symbols.CFIRow
	}
}

func (u *Unwinder) findRow(pc uint64) (*symbols.CFIRow, error) {
	if u.c == nil {
		if err := u.opts.Code.FindCFI(pc, &u.rowBuf); err != nil {
			return nil, err
		}
		return &u.rowBuf, nil
	}
	e := &u.c.rows.e[slot(pc, 6)]
	if e.set && e.pc == pc {
		if e.miss {
			return nil, e.err
		}
		return &e.row, nil
	}
	err := u.opts.Code.FindCFI(pc, &e.row)
	e.pc, e.set, e.miss, e.err = pc, true, err != nil, err
	if err != nil {
		return nil, err
	}
	return &e.row, nil
}

// cfiStep unwinds with the CFI row at the frame's lookup PC. end is set at
// the outermost frame (an undefined return address, or a zero one).
func (u *Unwinder) cfiStep(next *Frame) (ok, end bool, err error) {
	f := u.cur
	row, err := u.findRow(f.LookupPC)
	if err != nil {
		if errors.Is(err, cfi.ErrNoFDE) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("cfi: %w", err)
	}
	ra := row.RetAddrReg
	if int(ra) >= len(row.Regs) {
		ra = uint8(ptregs.RIP)
	}
	if row.Regs[ra].Kind == cfi.RuleUndefined {
		return false, true, nil
	}
	caller, cfa, fast := u.fastStep(row, &f.Regs)
	if !fast {
		caller, cfa, err = row.Step(&f.Regs, u.mem)
	}
	if err != nil {
		return false, false, fmt.Errorf("cfi: %w", err)
	}
	pc, okPC := caller.PC()
	if !okPC {
		return false, false, errors.New("cfi: return address unknown")
	}
	// The caller of a kernel entry stub's signal frame is interrupted
	// code: its RIP need not be text (a call through a NULL pointer
	// faults with RIP 0; the next step takes the caller from [sp]).
	entry := row.SignalFrame && u.opts.Kernel
	switch {
	case entry:
		if !ptregs.Canonical(pc) {
			return false, false, fmt.Errorf("cfi: interrupted rip %#x is not canonical", pc)
		}
	case pc == 0:
		return false, true, nil
	case !u.isRetText(pc):
		return false, false, fmt.Errorf("cfi: return address %#x is not text", pc)
	}
	sp, okSP := caller.SP()
	if !okSP {
		sp = cfa
	}
	slot := uint64(0)
	if r := row.Regs[ra]; r.Kind == cfi.RuleOffset {
		slot = cfa + uint64(r.Offset)
	}
	callFrame(next, pc, sp, cfa, slot, &caller, MethodCFI, true)
	if row.SignalFrame {
		next.LookupPC = pc
		if u.opts.Kernel {
			u.cfiEntryFrame(next, row, cfa)
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
func (u *Unwinder) cfiEntryFrame(next *Frame, row *symbols.CFIRow, cfa uint64) {
	f := u.cur
	next.Kind = KindInterrupted
	stub := ""
	if f.SymOK {
		stub = f.Sym.Name
	} else if s, ok := u.opts.Code.Symbol(f.LookupPC); ok {
		stub = s.Name
	}
	b := u.scratch[:ptregs.IretFrameSize]
	iret := cfa - ptregs.IretFrameSize
	p := ptregs.PtRegs{IP: next.PC, SP: next.SP, OrigAX: ^uint64(0)}
	if n, _ := u.mem.ReadAt(b, iret); n == len(b) {
		if fr, err := ptregs.DecodeIretFrame(b); err == nil && fr.IP == next.PC && fr.SP == next.SP {
			p.CS, p.Flags, p.SS = fr.CS, fr.Flags, fr.SS
			next.RegsAddr = iret
			next.Slot = iret
		}
	}
	next.Partial = true
	if r := row.Regs[ptregs.R15]; next.RegsAddr != 0 && r.Kind == cfi.RuleOffset && r.Offset == -ptregs.PtRegsSize {
		addr := cfa - ptregs.PtRegsSize
		if n, _ := u.mem.ReadAt(u.block[:], addr); n == len(u.block) {
			if full, err := ptregs.DecodePtRegs(u.block[:]); err == nil && full.IP == p.IP && full.SP == p.SP &&
				full.CS == p.CS && full.Flags == p.Flags && full.SS == p.SS {
				p = full
				next.RegsAddr = addr
				next.Partial = false
			}
		}
	}
	if next.Partial && entryFromSymbol(stub) == "syscall" && p.CS == 0 {
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
	next.Entry = entryName(stub, &p, s.Kind)
}

// fastStep applies a row whose rules are all simple (CFA = reg+offset;
// undefined, same-value, offset, val-offset and register columns) without
// going through the general evaluator. ok is false when the row needs the
// general one (expressions) or a read failed, so Row.Step reports the error.
func (u *Unwinder) fastStep(row *symbols.CFIRow, callee *ptregs.Regs) (caller ptregs.Regs, cfa uint64, ok bool) {
	if row.CFA.Kind != cfi.RuleCFA {
		return caller, 0, false
	}
	base, okB := callee.Get(ptregs.Reg(row.CFA.Reg))
	if !okB {
		return caller, 0, false
	}
	cfa = base + uint64(row.CFA.Offset)
	for col := range row.Regs {
		r := &row.Regs[col]
		switch r.Kind {
		case cfi.RuleUndefined:
		case cfi.RuleSameValue:
			if v, ok := callee.Get(ptregs.Reg(col)); ok {
				caller.Set(ptregs.Reg(col), v)
			}
		case cfi.RuleOffset:
			v, ok := u.read64(cfa + uint64(r.Offset))
			if !ok {
				return caller, 0, false
			}
			caller.Set(ptregs.Reg(col), v)
		case cfi.RuleValOffset:
			caller.Set(ptregs.Reg(col), cfa+uint64(r.Offset))
		case cfi.RuleRegister:
			if v, ok := callee.Get(ptregs.Reg(r.Reg)); ok {
				caller.Set(ptregs.Reg(col), v)
			}
		default:
			return caller, 0, false
		}
	}
	ra := row.RetAddrReg
	if int(ra) < len(row.Regs) && ra != uint8(ptregs.RIP) {
		if v, ok := caller.Get(ptregs.Reg(ra)); ok {
			caller.Set(ptregs.RIP, v)
		} else {
			caller.Clear(ptregs.RIP)
		}
	}
	if row.Regs[ptregs.RSP].Kind == cfi.RuleUndefined || row.Regs[ptregs.RSP].Kind == cfi.RuleSameValue {
		caller.Set(ptregs.RSP, cfa)
	}
	return caller, cfa, true
}
