package cfi

import (
	"encoding/binary"
	"fmt"

	"github.com/unwind-dev/unwind/internal/leb128"
)

// DWARF call-frame instruction opcodes (DWARF 5 §6.4.2, plus GNU extensions).
const (
	cfaAdvanceLoc        = 0x40 // high 2 bits; delta in the low 6
	cfaOffset            = 0x80 // high 2 bits; register in the low 6
	cfaRestore           = 0xc0 // high 2 bits; register in the low 6
	cfaNop               = 0x00
	cfaSetLoc            = 0x01
	cfaAdvanceLoc1       = 0x02
	cfaAdvanceLoc2       = 0x03
	cfaAdvanceLoc4       = 0x04
	cfaOffsetExtended    = 0x05
	cfaRestoreExtended   = 0x06
	cfaUndefined         = 0x07
	cfaSameValue         = 0x08
	cfaRegister          = 0x09
	cfaRememberState     = 0x0a
	cfaRestoreState      = 0x0b
	cfaDefCFA            = 0x0c
	cfaDefCFARegister    = 0x0d
	cfaDefCFAOffset      = 0x0e
	cfaDefCFAExpression  = 0x0f
	cfaExpression        = 0x10
	cfaOffsetExtendedSF  = 0x11
	cfaDefCFASF          = 0x12
	cfaDefCFAOffsetSF    = 0x13
	cfaValOffset         = 0x14
	cfaValOffsetSF       = 0x15
	cfaValExpression     = 0x16
	cfaGNUWindowSave     = 0x2d
	cfaGNUArgsSize       = 0x2e
	cfaGNUNegOffsetExtSF = 0x2f
)

// maxRemember bounds the DW_CFA_remember_state stack (otel uses a fixed
// stack too); maxRows bounds the rows one FDE may produce.
const (
	maxRemember = 16
	maxRows     = 1 << 16
)

// state is the rule set being built: the CFA rule and the register columns.
type state struct {
	cfa  Rule
	regs [NumCols]Rule
}

// defaultState is the row before any CIE instruction: callee-saved registers
// keep their value, everything else is unknown.
func defaultState() state {
	var s state
	for _, r := range [...]int{3, 6, 12, 13, 14, 15} {
		s.regs[r].Kind = RuleSameValue
	}
	return s
}

// insnReader is a zero-on-error reader over instruction bytes with a sticky
// error, in the style of debug/dwarf's buf.
type insnReader struct {
	b      []byte
	off    int
	err    string
	errOff int
}

func (r *insnReader) fail(msg string) {
	if r.err == "" {
		r.err = msg
		r.errOff = r.off
	}
	r.off = len(r.b)
}

func (r *insnReader) u8() byte {
	if r.off >= len(r.b) {
		r.fail("truncated instruction")
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *insnReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)-r.off) {
		r.fail("truncated block")
		return nil
	}
	v := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return v
}

func (r *insnReader) fixed(n int) uint64 {
	b := r.bytes(uint64(n))
	switch n {
	case 1:
		if len(b) == 1 {
			return uint64(b[0])
		}
	case 2:
		if len(b) == 2 {
			return uint64(binary.LittleEndian.Uint16(b))
		}
	case 4:
		if len(b) == 4 {
			return uint64(binary.LittleEndian.Uint32(b))
		}
	case 8:
		if len(b) == 8 {
			return binary.LittleEndian.Uint64(b)
		}
	}
	return 0
}

func (r *insnReader) uleb() uint64 {
	v, n := leb128.Unsigned(r.b[r.off:])
	if n == 0 {
		r.fail("bad ULEB128")
		return 0
	}
	r.off += n
	return v
}

func (r *insnReader) sleb() int64 {
	v, n := leb128.Signed(r.b[r.off:])
	if n == 0 {
		r.fail("bad SLEB128")
		return 0
	}
	r.off += n
	return v
}

// compiler interprets CIE and FDE instructions into rows.
type compiler struct {
	c        *cie
	bias     uint64
	cur      state
	initial  state // the state after the CIE's initial instructions
	stack    [maxRemember]state
	depth    int
	loc      uint64 // run-time address the current state starts at
	end      uint64
	rows     []Row
	emitting bool // false while running the CIE's instructions
}

func reg8(r uint64) uint8 {
	if r > 255 {
		return 255
	}
	return uint8(r)
}

func (k *compiler) setReg(reg uint64, rule Rule) {
	if reg < NumCols {
		k.cur.regs[reg] = rule
	}
}

// restoreReg implements DW_CFA_restore: back to the CIE's rule for reg, not
// to "undefined" as delve v1.27.2 does.
func (k *compiler) restoreReg(reg uint64) {
	if reg < NumCols {
		k.cur.regs[reg] = k.initial.regs[reg]
	}
}

// advance moves the location to newLoc, emitting the row that ends there.
func (k *compiler) advance(newLoc uint64, r *insnReader) {
	if !k.emitting {
		return // advances inside the CIE's initial instructions are meaningless
	}
	if newLoc < k.loc {
		r.fail("location moves backwards")
		return
	}
	if newLoc > k.end {
		newLoc = k.end
	}
	if newLoc == k.loc {
		return
	}
	k.emit(newLoc, r)
}

func (k *compiler) emit(end uint64, r *insnReader) {
	if len(k.rows) >= maxRows {
		r.fail("too many rows")
		return
	}
	k.rows = append(k.rows, Row{
		Start:       k.loc,
		End:         end,
		CFA:         k.cur.cfa,
		Regs:        k.cur.regs,
		RetAddrReg:  reg8(k.c.raReg),
		SignalFrame: k.c.signal,
	})
	k.loc = end
}

// run interprets one instruction stream.
func (k *compiler) run(b []byte) (failOff int, msg string) {
	r := &insnReader{b: b}
	ca, da := k.c.codeAlign, k.c.dataAlign
	for r.off < len(r.b) && r.err == "" && k.loc < k.end {
		op := r.u8()
		switch op & 0xc0 {
		case cfaAdvanceLoc:
			k.advance(k.loc+uint64(op&0x3f)*ca, r)
			continue
		case cfaOffset:
			k.setReg(uint64(op&0x3f), Rule{Kind: RuleOffset, Offset: int64(r.uleb()) * da})
			continue
		case cfaRestore:
			k.restoreReg(uint64(op & 0x3f))
			continue
		}
		switch op {
		case cfaNop:
		case cfaSetLoc:
			k.advance(r.fixed(8)+k.bias, r)
		case cfaAdvanceLoc1:
			k.advance(k.loc+r.fixed(1)*ca, r)
		case cfaAdvanceLoc2:
			k.advance(k.loc+r.fixed(2)*ca, r)
		case cfaAdvanceLoc4:
			k.advance(k.loc+r.fixed(4)*ca, r)
		case cfaOffsetExtended:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleOffset, Offset: int64(r.uleb()) * da})
		case cfaRestoreExtended:
			k.restoreReg(r.uleb())
		case cfaUndefined:
			k.setReg(r.uleb(), Rule{Kind: RuleUndefined})
		case cfaSameValue:
			k.setReg(r.uleb(), Rule{Kind: RuleSameValue})
		case cfaRegister:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleRegister, Reg: reg8(r.uleb())})
		case cfaRememberState:
			if k.depth == maxRemember {
				r.fail("remember_state stack overflow")
				break
			}
			k.stack[k.depth] = k.cur
			k.depth++
		case cfaRestoreState:
			// On an empty stack delve v1.27.2 panics; gdb warns and keeps
			// the current rules, and so do we.
			if k.depth > 0 {
				k.depth--
				k.cur = k.stack[k.depth]
			}
		case cfaDefCFA:
			reg := r.uleb()
			k.cur.cfa = Rule{Kind: RuleCFA, Reg: reg8(reg), Offset: int64(r.uleb())}
		case cfaDefCFASF:
			reg := r.uleb()
			k.cur.cfa = Rule{Kind: RuleCFA, Reg: reg8(reg), Offset: r.sleb() * da}
		case cfaDefCFARegister:
			k.cur.cfa.Reg = reg8(r.uleb())
			if k.cur.cfa.Kind != RuleCFA {
				k.cur.cfa = Rule{Kind: RuleCFA, Reg: k.cur.cfa.Reg}
			}
		case cfaDefCFAOffset:
			k.cur.cfa.Offset = int64(r.uleb())
		case cfaDefCFAOffsetSF:
			k.cur.cfa.Offset = r.sleb() * da
		case cfaDefCFAExpression:
			k.cur.cfa = Rule{Kind: RuleCFAExpression, Expr: r.bytes(r.uleb())}
		case cfaExpression:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleExpression, Expr: r.bytes(r.uleb())})
		case cfaValExpression:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleValExpression, Expr: r.bytes(r.uleb())})
		case cfaOffsetExtendedSF:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleOffset, Offset: r.sleb() * da})
		case cfaValOffset:
			// Scaled by the data alignment factor (DWARF 5 §6.4.2.3);
			// delve v1.27.2 forgets the factor.
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleValOffset, Offset: int64(r.uleb()) * da})
		case cfaValOffsetSF:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleValOffset, Offset: r.sleb() * da})
		case cfaGNUWindowSave:
		case cfaGNUArgsSize:
			r.uleb()
		case cfaGNUNegOffsetExtSF:
			reg := r.uleb()
			k.setReg(reg, Rule{Kind: RuleOffset, Offset: -int64(r.uleb()) * da})
		default:
			r.fail(fmt.Sprintf("unknown opcode %#x", op))
		}
	}
	if r.err != "" {
		return r.errOff, r.err
	}
	return -1, ""
}

// compile turns FDE i into rows. It never fails outright: on malformed
// instructions the rows before the failure are kept and the error is
// returned by Find for pcs after it.
func (t *Table) compile(i int) *compiled {
	return t.compileFDE(&t.fdes[i])
}

// compileFDE is compile for FDE f (with run-time bounds).
func (t *Table) compileFDE(f *fde) *compiled {
	k := &compiler{c: f.cie, bias: t.bias, cur: defaultState(), loc: f.start, end: f.end}
	sec := t.kind.String()
	if off, msg := k.run(f.cie.initial); msg != "" {
		return &compiled{err: &FormatError{Section: sec, Off: int64(off), Msg: fmt.Sprintf("CIE of FDE at %#x: %s", f.start, msg)}}
	}
	k.initial = k.cur
	k.emitting = true
	off, msg := k.run(f.instr)
	c := &compiled{}
	if msg != "" {
		c.err = &FormatError{Section: sec, Off: int64(off), Msg: fmt.Sprintf("FDE at %#x: %s", f.start, msg)}
	} else if k.loc < k.end {
		k.emit(k.end, &insnReader{})
	}
	c.rows = k.rows
	return c
}
