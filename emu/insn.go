package emu

import (
	"golang.org/x/arch/x86/x86asm"
)

// Operand kinds of a decoded instruction.
const (
	okNone  uint8 = iota
	okReg         // general-purpose register, low bytes
	okRegHi       // AH, CH, DH, BH
	okMem         // memory at an effective address
	okImm         // immediate (already sign-extended as the encoding says)
	okSeg         // segment register
	okCR          // control register
	okDR          // debug register
)

const (
	noReg  = 0xff
	ripReg = 0xfe
)

// operand is one pre-processed argument.
type operand struct {
	kind   uint8
	size   uint8 // bytes
	reg    uint8 // register index (GPR 0-15, segment 0-5, CRn, DRn)
	base   uint8 // memory base GPR, ripReg, or noReg
	index  uint8 // memory index GPR or noReg
	scale  uint8
	seg    uint8 // 0 none, 4 = FS, 5 = GS (others have base 0 in 64-bit mode)
	addr32 bool
	disp   uint64 // memory displacement, or the immediate value
}

// insn is a decoded instruction in the form the interpreter executes.
type insn struct {
	op    x86asm.Op
	n     uint8 // instruction length
	nargs uint8
	cond  uint8 // condition code for jcc/setcc/cmovcc
	rep   uint8 // 0, 0xf3 (rep/repe) or 0xf2 (repne)
	size  uint8 // operand size in bytes (DataSize; 8-bit ops say 1)
	watch bool  // a scenario trigger is set at this address
	args  [3]operand
	raw   [15]byte
}

// Condition codes, in encoding order (jo=0 … jg=15), plus rcxz.
var condOf = map[x86asm.Op]uint8{}

func init() {
	ops := [][3]x86asm.Op{
		{x86asm.JO, x86asm.SETO, x86asm.CMOVO},
		{x86asm.JNO, x86asm.SETNO, x86asm.CMOVNO},
		{x86asm.JB, x86asm.SETB, x86asm.CMOVB},
		{x86asm.JAE, x86asm.SETAE, x86asm.CMOVAE},
		{x86asm.JE, x86asm.SETE, x86asm.CMOVE},
		{x86asm.JNE, x86asm.SETNE, x86asm.CMOVNE},
		{x86asm.JBE, x86asm.SETBE, x86asm.CMOVBE},
		{x86asm.JA, x86asm.SETA, x86asm.CMOVA},
		{x86asm.JS, x86asm.SETS, x86asm.CMOVS},
		{x86asm.JNS, x86asm.SETNS, x86asm.CMOVNS},
		{x86asm.JP, x86asm.SETP, x86asm.CMOVP},
		{x86asm.JNP, x86asm.SETNP, x86asm.CMOVNP},
		{x86asm.JL, x86asm.SETL, x86asm.CMOVL},
		{x86asm.JGE, x86asm.SETGE, x86asm.CMOVGE},
		{x86asm.JLE, x86asm.SETLE, x86asm.CMOVLE},
		{x86asm.JG, x86asm.SETG, x86asm.CMOVG},
	}
	for i, o := range ops {
		for _, op := range o {
			condOf[op] = uint8(i)
		}
	}
}

// gpr maps an x86asm register to (kind, index, size).
func gpr(r x86asm.Reg) (kind, idx, size uint8, ok bool) {
	switch {
	case r >= x86asm.AL && r <= x86asm.BL:
		return okReg, uint8(r - x86asm.AL), 1, true
	case r >= x86asm.AH && r <= x86asm.BH:
		return okRegHi, uint8(r - x86asm.AH), 1, true
	case r >= x86asm.SPB && r <= x86asm.R15B:
		return okReg, uint8(r-x86asm.SPB) + 4, 1, true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return okReg, uint8(r - x86asm.AX), 2, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return okReg, uint8(r - x86asm.EAX), 4, true
	case r >= x86asm.RAX && r <= x86asm.R15:
		return okReg, uint8(r - x86asm.RAX), 8, true
	case r >= x86asm.ES && r <= x86asm.GS:
		return okSeg, uint8(r - x86asm.ES), 2, true
	case r >= x86asm.CR0 && r <= x86asm.CR15:
		return okCR, uint8(r - x86asm.CR0), 8, true
	case r >= x86asm.DR0 && r <= x86asm.DR15:
		return okDR, uint8(r - x86asm.DR0), 8, true
	}
	return 0, 0, 0, false
}

// compile converts an x86asm instruction to an insn; ok is false for
// operands the interpreter does not model (x87, SSE, …).
func compile(in *x86asm.Inst, raw []byte) (*insn, bool) {
	d := &insn{op: in.Op, n: uint8(in.Len), size: uint8(in.DataSize / 8)}
	copy(d.raw[:], raw[:in.Len])
	if c, ok := condOf[in.Op]; ok {
		d.cond = c
	}
	for _, p := range in.Prefix {
		if p == 0 {
			break
		}
		switch p &^ (x86asm.PrefixImplicit | x86asm.PrefixIgnored) {
		case x86asm.PrefixREP:
			d.rep = 0xf3
		case x86asm.PrefixREPN:
			d.rep = 0xf2
		}
	}
	for i, a := range in.Args {
		if a == nil {
			break
		}
		if i >= len(d.args) {
			return nil, false
		}
		o := &d.args[i]
		switch a := a.(type) {
		case x86asm.Reg:
			k, idx, sz, ok := gpr(a)
			if !ok {
				return nil, false
			}
			o.kind, o.reg, o.size = k, idx, sz
		case x86asm.Mem:
			o.kind = okMem
			o.size = uint8(in.MemBytes)
			o.scale = a.Scale
			o.disp = uint64(a.Disp)
			if op := in.Opcode >> 24; op < 0xa0 || op > 0xa3 {
				// x86asm zero-extends disp32; the CPU sign-extends it
				// (only moffs forms carry a full 64-bit address).
				o.disp = uint64(int64(int32(a.Disp)))
			}
			o.addr32 = in.AddrSize == 32
			o.base, o.index = noReg, noReg
			switch {
			case a.Base == x86asm.RIP:
				o.base = ripReg
			case a.Base != 0:
				k, idx, _, ok := gpr(a.Base)
				if !ok || k != okReg {
					return nil, false
				}
				o.base = idx
			}
			if a.Index != 0 {
				k, idx, _, ok := gpr(a.Index)
				if !ok || k != okReg {
					return nil, false
				}
				o.index = idx
			}
			switch a.Segment {
			case x86asm.FS:
				o.seg = 4
			case x86asm.GS:
				o.seg = 5
			}
		case x86asm.Imm:
			o.kind, o.disp = okImm, uint64(a)
		case x86asm.Rel:
			o.kind, o.disp = okImm, uint64(int64(a))
		default:
			return nil, false
		}
		d.nargs++
	}
	// Operand size of the first argument decides most operations.
	if d.nargs > 0 && d.args[0].kind != okImm && d.args[0].size != 0 {
		d.size = d.args[0].size
	}
	if d.size == 0 {
		d.size = 8
	}
	for i := 0; i < int(d.nargs); i++ {
		if d.args[i].kind == okImm {
			d.args[i].size = d.size
		}
	}
	return d, true
}
