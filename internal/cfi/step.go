package cfi

import (
	"fmt"
	"sync"

	"github.com/unwind-dev/unwind/ptregs"
)

// scratchPool holds 8-byte read buffers so that reads through the Memory
// interface do not allocate in steady state.
var scratchPool = sync.Pool{New: func() any { return new([8]byte) }}

// CFAValue computes the row's CFA from the callee's registers (and memory,
// for a CFA expression).
func (r *Row) CFAValue(callee *ptregs.Regs, mem Memory) (uint64, error) {
	switch r.CFA.Kind {
	case RuleCFA:
		v, ok := callee.Get(ptregs.Reg(r.CFA.Reg))
		if !ok {
			return 0, &EvalError{Msg: fmt.Sprintf("CFA needs unknown register %d", r.CFA.Reg)}
		}
		return v + uint64(r.CFA.Offset), nil
	case RuleCFAExpression:
		return EvalExpr(r.CFA.Expr, callee, mem, 0, false)
	}
	return 0, &EvalError{Msg: "row has no CFA rule"}
}

// Step applies the row to the callee's registers and returns the caller's:
// it computes the CFA, then every column from the callee's values. The
// caller's RIP comes from the return-address column, its RSP is the CFA
// unless the row has an explicit rule for RSP, SameValue copies a register,
// Undefined leaves it unknown (an undefined return address marks the
// outermost frame: caller RIP is then unknown and err is nil). Expression
// rules are evaluated with the CFA pushed. An error says which rule failed;
// a failed memory read wraps the Memory's error.
func (r *Row) Step(callee *ptregs.Regs, mem Memory) (caller ptregs.Regs, cfa uint64, err error) {
	cfa, err = r.CFAValue(callee, mem)
	if err != nil {
		return caller, 0, err
	}
	var ra ptregs.Regs // the columns' values; RIP is taken from the RA column
	for col := 0; col < NumCols; col++ {
		rule := &r.Regs[col]
		var v uint64
		switch rule.Kind {
		case RuleUndefined:
			continue
		case RuleSameValue:
			x, ok := callee.Get(ptregs.Reg(col))
			if !ok {
				continue
			}
			v = x
		case RuleOffset:
			v, err = readUint(mem, cfa+uint64(rule.Offset), 8)
		case RuleValOffset:
			v = cfa + uint64(rule.Offset)
		case RuleRegister:
			x, ok := callee.Get(ptregs.Reg(rule.Reg))
			if !ok {
				continue
			}
			v = x
		case RuleExpression:
			var a uint64
			a, err = EvalExpr(rule.Expr, callee, mem, cfa, true)
			if err == nil {
				v, err = readUint(mem, a, 8)
			}
		case RuleValExpression:
			v, err = EvalExpr(rule.Expr, callee, mem, cfa, true)
		default:
			continue
		}
		if err != nil {
			return caller, cfa, &EvalError{Msg: fmt.Sprintf("column %s", ptregs.Reg(col)), Err: err}
		}
		ra.Set(ptregs.Reg(col), v)
	}
	caller = ra
	caller.Clear(ptregs.RIP)
	if v, ok := ra.Get(ptregs.Reg(r.RetAddrReg)); ok && r.RetAddrReg < NumCols {
		caller.Set(ptregs.RIP, v)
	}
	if r.Regs[ptregs.RSP].Kind == RuleUndefined || r.Regs[ptregs.RSP].Kind == RuleSameValue {
		caller.Set(ptregs.RSP, cfa)
	}
	return caller, cfa, nil
}
