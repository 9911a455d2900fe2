package cfi

import (
	"encoding/binary"
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
)

// Expression limits: a hostile expression cannot loop or grow without bound.
const (
	maxExprStack = 64
	maxExprSteps = 1000
)

// DWARF expression opcodes used by gcc and the Linux kernel in CFI.
const (
	opAddr       = 0x03
	opDeref      = 0x06
	opConst1u    = 0x08
	opConst1s    = 0x09
	opConst2u    = 0x0a
	opConst2s    = 0x0b
	opConst4u    = 0x0c
	opConst4s    = 0x0d
	opConst8u    = 0x0e
	opConst8s    = 0x0f
	opConstu     = 0x10
	opConsts     = 0x11
	opDup        = 0x12
	opDrop       = 0x13
	opOver       = 0x14
	opPick       = 0x15
	opSwap       = 0x16
	opRot        = 0x17
	opAbs        = 0x19
	opAnd        = 0x1a
	opDiv        = 0x1b
	opMinus      = 0x1c
	opMod        = 0x1d
	opMul        = 0x1e
	opNeg        = 0x1f
	opNot        = 0x20
	opOr         = 0x21
	opPlus       = 0x22
	opPlusUconst = 0x23
	opShl        = 0x24
	opShr        = 0x25
	opShra       = 0x26
	opXor        = 0x27
	opBra        = 0x28
	opEq         = 0x29
	opGe         = 0x2a
	opGt         = 0x2b
	opLe         = 0x2c
	opLt         = 0x2d
	opNe         = 0x2e
	opSkip       = 0x2f
	opLit0       = 0x30
	opLit31      = 0x4f
	opReg0       = 0x50
	opReg31      = 0x6f
	opBreg0      = 0x70
	opBreg31     = 0x8f
	opRegx       = 0x90
	opBregx      = 0x92
	opDerefSize  = 0x94
	opNop        = 0x96
	opCallFrCFA  = 0x9c
)

// exprStack is the evaluator's fixed-size stack.
type exprStack struct {
	v   [maxExprStack]uint64
	n   int
	err error // a failed memory read
}

func (s *exprStack) push(v uint64) bool {
	if s.n == maxExprStack {
		return false
	}
	s.v[s.n] = v
	s.n++
	return true
}

func (s *exprStack) pop() (uint64, bool) {
	if s.n == 0 {
		return 0, false
	}
	s.n--
	return s.v[s.n], true
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// EvalExpr evaluates a DWARF expression as CFI uses it: regs supplies
// DW_OP_breg*/reg* values, mem DW_OP_deref*, and when push is true cfa is
// pushed before the first operation (register rules) — it is also what
// DW_OP_call_frame_cfa pushes. The result is the top of the stack. Steps and
// stack depth are bounded, so a hostile expression only yields an error.
// DW_OP_addr operands are used as written (no load bias is applied); gcc and
// the kernel do not emit DW_OP_addr in CFI.
func EvalExpr(expr []byte, regs *ptregs.Regs, mem Memory, cfa uint64, push bool) (uint64, error) {
	var s exprStack
	if push {
		s.push(cfa)
	}
	r := insnReader{b: expr}
	for steps := 0; r.off < len(r.b); steps++ {
		if steps == maxExprSteps {
			return 0, &EvalError{Msg: "expression step limit"}
		}
		op := r.u8()
		var ok = true
		switch {
		case op >= opLit0 && op <= opLit31:
			ok = s.push(uint64(op - opLit0))
		case op >= opBreg0 && op <= opBreg31:
			v, got := regs.Get(ptregs.Reg(op - opBreg0))
			if !got {
				return 0, &EvalError{Msg: fmt.Sprintf("expression needs unknown register %d", op-opBreg0)}
			}
			ok = s.push(v + uint64(r.sleb()))
		case op >= opReg0 && op <= opReg31:
			v, got := regs.Get(ptregs.Reg(op - opReg0))
			if !got {
				return 0, &EvalError{Msg: fmt.Sprintf("expression needs unknown register %d", op-opReg0)}
			}
			ok = s.push(v)
		default:
			ok = evalOp(op, &r, &s, regs, mem, cfa)
		}
		if s.err != nil {
			return 0, s.err
		}
		if r.err != "" {
			return 0, &EvalError{Msg: "expression: " + r.err}
		}
		if !ok {
			return 0, &EvalError{Msg: fmt.Sprintf("expression: bad stack or operand at op %#x (offset %d)", op, r.off-1)}
		}
	}
	v, ok := s.pop()
	if !ok {
		return 0, &EvalError{Msg: "expression leaves an empty stack"}
	}
	return v, nil
}

// evalOp runs one non-register operation; it returns false on a stack
// underflow/overflow or an unsupported op. Memory errors are reported as a
// failed op too, after being recorded in s.err.
func evalOp(op byte, r *insnReader, s *exprStack, regs *ptregs.Regs, mem Memory, cfa uint64) bool {
	switch op {
	case opAddr:
		return s.push(r.fixed(8))
	case opConst1u:
		return s.push(r.fixed(1))
	case opConst1s:
		return s.push(uint64(int64(int8(r.fixed(1)))))
	case opConst2u:
		return s.push(r.fixed(2))
	case opConst2s:
		return s.push(uint64(int64(int16(r.fixed(2)))))
	case opConst4u:
		return s.push(r.fixed(4))
	case opConst4s:
		return s.push(uint64(int64(int32(r.fixed(4)))))
	case opConst8u, opConst8s:
		return s.push(r.fixed(8))
	case opConstu:
		return s.push(r.uleb())
	case opConsts:
		return s.push(uint64(r.sleb()))
	case opRegx:
		v, ok := regs.Get(ptregs.Reg(reg8(r.uleb())))
		return ok && s.push(v)
	case opBregx:
		reg := r.uleb()
		off := r.sleb()
		v, ok := regs.Get(ptregs.Reg(reg8(reg)))
		return ok && s.push(v+uint64(off))
	case opCallFrCFA:
		return s.push(cfa)
	case opNop:
		return true
	case opDup:
		if s.n == 0 {
			return false
		}
		return s.push(s.v[s.n-1])
	case opDrop:
		_, ok := s.pop()
		return ok
	case opOver:
		if s.n < 2 {
			return false
		}
		return s.push(s.v[s.n-2])
	case opPick:
		i := int(r.fixed(1))
		if i >= s.n {
			return false
		}
		return s.push(s.v[s.n-1-i])
	case opSwap:
		if s.n < 2 {
			return false
		}
		s.v[s.n-1], s.v[s.n-2] = s.v[s.n-2], s.v[s.n-1]
		return true
	case opRot:
		if s.n < 3 {
			return false
		}
		s.v[s.n-1], s.v[s.n-2], s.v[s.n-3] = s.v[s.n-2], s.v[s.n-3], s.v[s.n-1]
		return true
	case opDeref, opDerefSize:
		size := 8
		if op == opDerefSize {
			size = int(r.fixed(1))
			if size < 1 || size > 8 {
				return false
			}
		}
		a, ok := s.pop()
		if !ok {
			return false
		}
		v, err := readUint(mem, a, size)
		if err != nil {
			s.err = err
			return false
		}
		return s.push(v)
	case opAbs, opNeg, opNot:
		a, ok := s.pop()
		if !ok {
			return false
		}
		switch op {
		case opAbs:
			if int64(a) < 0 {
				a = -a
			}
		case opNeg:
			a = -a
		default:
			a = ^a
		}
		return s.push(a)
	case opPlusUconst:
		a, ok := s.pop()
		return ok && s.push(a+r.uleb())
	case opSkip, opBra:
		off := int64(int16(r.fixed(2)))
		if op == opBra {
			a, ok := s.pop()
			if !ok {
				return false
			}
			if a == 0 {
				return true
			}
		}
		to := int64(r.off) + off
		if to < 0 || to > int64(len(r.b)) {
			return false
		}
		r.off = int(to)
		return true
	}
	if !isBinaryOp(op) {
		return false
	}
	b, ok1 := s.pop()
	a, ok2 := s.pop()
	if !ok1 || !ok2 {
		return false
	}
	var v uint64
	switch op {
	case opAnd:
		v = a & b
	case opOr:
		v = a | b
	case opXor:
		v = a ^ b
	case opPlus:
		v = a + b
	case opMinus:
		v = a - b
	case opMul:
		v = a * b
	case opDiv:
		if b == 0 || (int64(a) == -1<<63 && int64(b) == -1) {
			return false
		}
		v = uint64(int64(a) / int64(b))
	case opMod:
		if b == 0 {
			return false
		}
		v = a % b
	case opShl:
		if b < 64 {
			v = a << b
		}
	case opShr:
		if b < 64 {
			v = a >> b
		}
	case opShra:
		if b > 63 {
			b = 63
		}
		v = uint64(int64(a) >> b)
	case opEq:
		v = b2u(a == b)
	case opNe:
		v = b2u(a != b)
	case opGe:
		v = b2u(int64(a) >= int64(b))
	case opGt:
		v = b2u(int64(a) > int64(b))
	case opLe:
		v = b2u(int64(a) <= int64(b))
	case opLt:
		v = b2u(int64(a) < int64(b))
	}
	return s.push(v)
}

func isBinaryOp(op byte) bool {
	switch op {
	case opAnd, opOr, opXor, opPlus, opMinus, opMul, opDiv, opMod,
		opShl, opShr, opShra, opEq, opNe, opGe, opGt, opLe, opLt:
		return true
	}
	return false
}

// readUint reads a little-endian value of size 1–8 bytes at addr.
func readUint(mem Memory, addr uint64, size int) (uint64, error) {
	if mem == nil {
		return 0, &EvalError{Msg: fmt.Sprintf("no memory to read %#x", addr)}
	}
	bp := scratchPool.Get().(*[8]byte)
	defer scratchPool.Put(bp)
	*bp = [8]byte{}
	n, err := mem.ReadAt(bp[:size], addr)
	if n < size {
		if err == nil {
			err = fmt.Errorf("short read at %#x", addr)
		}
		return 0, &EvalError{Msg: fmt.Sprintf("reading %d bytes at %#x", size, addr), Err: err}
	}
	return binary.LittleEndian.Uint64(bp[:]), nil
}
