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
	if pc == 0 {
		return false, true, nil
	}
	if !u.isRetText(pc) {
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
	callFrame(next, pc, sp, cfa, slot, caller, MethodCFI, true)
	if row.SignalFrame {
		next.Kind = KindSignal
		next.LookupPC = pc
		next.Entry = "signal"
	}
	u.fixIRQTop(next)
	return true, false, nil
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
