package emu

import (
	"math/bits"

	"golang.org/x/arch/x86/x86asm"
)

// exec executes d at c.RIP. On success c.RIP becomes c.nip; on an exception
// c.exc is set and architectural state is left as before the instruction
// (except for memory already written by string instructions' earlier
// iterations, as on hardware).
func (c *CPU) exec(d *insn) {
	c.nip = c.RIP + uint64(d.n)
	a0, a1 := &d.args[0], &d.args[1]
	sz := d.size
	switch d.op {
	case x86asm.NOP, x86asm.PAUSE, x86asm.LFENCE, x86asm.MFENCE, x86asm.SFENCE, x86asm.PREFETCHT0, x86asm.PREFETCHW:
	case x86asm.MOV:
		switch {
		case a0.kind == okSeg:
			v, ok := c.get(a1)
			if !ok {
				return
			}
			if a0.reg == SegCS {
				c.ud()
				return
			}
			c.Seg[a0.reg] = uint16(v)
			if a0.reg == SegSS {
				c.shadowIF = true
			}
		case a0.kind == okCR || a1.kind == okCR || a0.kind == okDR || a1.kind == okDR:
			c.movSys(a0, a1)
		default:
			v, ok := c.get(a1)
			if ok {
				if a1.kind == okSeg && a0.kind == okReg && a0.size >= 4 {
					v &= 0xffff
				}
				c.set(a0, v)
			}
		}
	case x86asm.MOVZX:
		if v, ok := c.get(a1); ok {
			c.set(a0, v)
		}
	case x86asm.MOVSX, x86asm.MOVSXD:
		if v, ok := c.get(a1); ok {
			c.set(a0, signExtend(v, a1.size))
		}
	case x86asm.LEA:
		o := *a1
		o.seg = 0 // lea ignores segment bases
		c.set(a0, c.ea(&o))
	case x86asm.PUSH:
		v, ok := c.get(a0)
		if !ok {
			return
		}
		if a0.kind == okImm {
			v = a0.disp // sign-extended immediate
		}
		c.push(v)
	case x86asm.POP:
		v, ok := c.load(c.GPR[RSP], 8)
		if !ok {
			return
		}
		sp := c.GPR[RSP]
		c.GPR[RSP] = sp + 8
		if !c.set(a0, v) {
			c.GPR[RSP] = sp
		}
		if a0.kind == okSeg && a0.reg == SegSS {
			c.shadowIF = true
		}
	case x86asm.ADD, x86asm.ADC, x86asm.SUB, x86asm.SBB, x86asm.CMP, x86asm.AND, x86asm.OR, x86asm.XOR, x86asm.TEST:
		c.alu2(d, a0, a1, sz)
	case x86asm.INC, x86asm.DEC, x86asm.NEG, x86asm.NOT:
		c.alu1(d, a0, sz)
	case x86asm.SHL, x86asm.SHR, x86asm.SAR, x86asm.ROL, x86asm.ROR:
		c.shift(d, a0, a1, sz)
	case x86asm.IMUL, x86asm.MUL, x86asm.DIV, x86asm.IDIV:
		c.muldiv(d, a0, a1, sz)
	case x86asm.CQO:
		c.GPR[RDX] = uint64(int64(c.GPR[RAX]) >> 63)
	case x86asm.CDQ:
		c.GPR[RDX] = uint64(uint32(int32(c.GPR[RAX]) >> 31))
	case x86asm.CDQE:
		c.GPR[RAX] = uint64(int64(int32(c.GPR[RAX])))
	case x86asm.CWDE:
		c.GPR[RAX] = uint64(uint32(int32(int16(c.GPR[RAX]))))
	case x86asm.JMP:
		c.jump(a0)
	case x86asm.CALL:
		c.call(a0)
	case x86asm.RET:
		v, ok := c.load(c.GPR[RSP], 8)
		if !ok {
			return
		}
		sp := c.GPR[RSP]
		c.GPR[RSP] = sp + 8
		if d.nargs > 0 {
			c.GPR[RSP] += a0.disp & 0xffff
		}
		c.nip = v
		c.shadow.onRet(c, sp)
	case x86asm.LEAVE:
		v, ok := c.load(c.GPR[RBP], 8)
		if !ok {
			return
		}
		c.GPR[RSP] = c.GPR[RBP] + 8
		c.GPR[RBP] = v
	case x86asm.JO, x86asm.JNO, x86asm.JB, x86asm.JAE, x86asm.JE, x86asm.JNE, x86asm.JBE, x86asm.JA,
		x86asm.JS, x86asm.JNS, x86asm.JP, x86asm.JNP, x86asm.JL, x86asm.JGE, x86asm.JLE, x86asm.JG:
		if cond(d.cond, c.RFLAGS) {
			c.nip += a0.disp
		}
	case x86asm.JRCXZ:
		if c.GPR[RCX] == 0 {
			c.nip += a0.disp
		}
	case x86asm.SETO, x86asm.SETNO, x86asm.SETB, x86asm.SETAE, x86asm.SETE, x86asm.SETNE, x86asm.SETBE, x86asm.SETA,
		x86asm.SETS, x86asm.SETNS, x86asm.SETP, x86asm.SETNP, x86asm.SETL, x86asm.SETGE, x86asm.SETLE, x86asm.SETG:
		var v uint64
		if cond(d.cond, c.RFLAGS) {
			v = 1
		}
		c.set(a0, v)
	case x86asm.CMOVO, x86asm.CMOVNO, x86asm.CMOVB, x86asm.CMOVAE, x86asm.CMOVE, x86asm.CMOVNE, x86asm.CMOVBE, x86asm.CMOVA,
		x86asm.CMOVS, x86asm.CMOVNS, x86asm.CMOVP, x86asm.CMOVNP, x86asm.CMOVL, x86asm.CMOVGE, x86asm.CMOVLE, x86asm.CMOVG:
		v, ok := c.get(a1)
		if !ok {
			return
		}
		if !cond(d.cond, c.RFLAGS) {
			v, _ = c.get(a0) // a 32-bit cmov zero-extends even when false
		}
		c.set(a0, v)
	case x86asm.XCHG:
		v0, ok := c.get(a0)
		if !ok {
			return
		}
		v1, ok := c.get(a1)
		if !ok {
			return
		}
		if a0.kind == okMem {
			if c.set(a0, v1) {
				c.set(a1, v0)
			}
		} else if c.set(a1, v0) {
			c.set(a0, v1)
		}
	case x86asm.CMPXCHG:
		dst, ok := c.get(a0)
		if !ok {
			return
		}
		src, _ := c.get(a1)
		acc := c.GPR[RAX] & sizeMask(sz)
		_, f := subFlags(acc, dst, 0, sz)
		if acc == dst {
			if !c.set(a0, src) {
				return
			}
		} else {
			if a0.kind == okMem && !c.set(a0, dst) {
				return
			}
			c.set(&operand{kind: okReg, reg: RAX, size: sz}, dst)
		}
		c.RFLAGS = c.RFLAGS&^arithFlags | f
	case x86asm.XADD:
		dst, ok := c.get(a0)
		if !ok {
			return
		}
		src, _ := c.get(a1)
		r, f := addFlags(dst, src, 0, sz)
		if !c.set(a0, r) {
			return
		}
		if a0.kind == okMem || a0.reg != a1.reg {
			c.set(a1, dst)
		}
		c.RFLAGS = c.RFLAGS&^arithFlags | f
	case x86asm.BT, x86asm.BTS, x86asm.BTR, x86asm.BTC:
		c.bitTest(d, a0, a1, sz)
	case x86asm.BSF, x86asm.BSR:
		v, ok := c.get(a1)
		if !ok {
			return
		}
		if v == 0 {
			c.RFLAGS |= FlagZF
			break
		}
		c.RFLAGS &^= FlagZF
		if d.op == x86asm.BSF {
			c.set(a0, uint64(bits.TrailingZeros64(v)))
		} else {
			c.set(a0, uint64(63-bits.LeadingZeros64(v)))
		}
	case x86asm.CLC:
		c.RFLAGS &^= FlagCF
	case x86asm.STC:
		c.RFLAGS |= FlagCF
	case x86asm.CMC:
		c.RFLAGS ^= FlagCF
	case x86asm.CLD:
		c.RFLAGS &^= FlagDF
	case x86asm.STD:
		c.RFLAGS |= FlagDF
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ, x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		c.stringOp(d)
	case x86asm.PUSHFQ:
		c.push(c.RFLAGS &^ (FlagRF | FlagVM))
	case x86asm.POPFQ:
		v, ok := c.load(c.GPR[RSP], 8)
		if !ok {
			return
		}
		c.GPR[RSP] += 8
		c.RFLAGS = c.newFlags(v, c.CPL()) &^ FlagRF
	case x86asm.UD2, x86asm.UD1, x86asm.UD0:
		c.ud()
	default:
		c.execSystem(d)
	}
}

// newFlags merges a flags image popped at privilege cpl into RFLAGS: bit 1
// is forced, and CPL 3 cannot change IF or IOPL.
func (c *CPU) newFlags(v uint64, cpl int) uint64 {
	const writable = 0x3d7fd5 // CF PF AF ZF SF TF IF DF OF IOPL NT RF AC VIF VIP ID (not VM)
	v = v&writable | 2
	if cpl != 0 {
		v = v&^(FlagIF|0x3000) | c.RFLAGS&(FlagIF|0x3000)
	}
	return v
}

func (c *CPU) target(o *operand) (uint64, bool) {
	if o.kind == okImm {
		return c.nip + o.disp, true
	}
	return c.get(o)
}

func (c *CPU) jump(o *operand) {
	t, ok := c.target(o)
	if !ok {
		return
	}
	c.nip = t
	c.shadow.onJump(c, t)
}

func (c *CPU) call(o *operand) {
	t, ok := c.target(o)
	if !ok {
		return
	}
	if !c.push(c.nip) {
		return
	}
	c.shadow.onCall(c, t, c.nip, c.GPR[RSP]+8)
	c.nip = t
}

func (c *CPU) alu2(d *insn, a0, a1 *operand, sz uint8) {
	x, ok := c.get(a0)
	if !ok {
		return
	}
	y, ok := c.get(a1)
	if !ok {
		return
	}
	var r, f uint64
	switch d.op {
	case x86asm.ADD:
		r, f = addFlags(x, y, 0, sz)
	case x86asm.ADC:
		r, f = addFlags(x, y, c.RFLAGS&FlagCF, sz)
	case x86asm.SUB, x86asm.CMP:
		r, f = subFlags(x, y, 0, sz)
	case x86asm.SBB:
		r, f = subFlags(x, y, c.RFLAGS&FlagCF, sz)
	case x86asm.AND, x86asm.TEST:
		r = x & y
		f = szp(r, sz)
	case x86asm.OR:
		r = x | y
		f = szp(r, sz)
	case x86asm.XOR:
		r = x ^ y
		f = szp(r, sz)
	}
	if d.op != x86asm.CMP && d.op != x86asm.TEST {
		if !c.set(a0, r) {
			return
		}
	}
	c.RFLAGS = c.RFLAGS&^arithFlags | f
}

func (c *CPU) alu1(d *insn, a0 *operand, sz uint8) {
	x, ok := c.get(a0)
	if !ok {
		return
	}
	var r, f uint64
	mask := uint64(arithFlags)
	switch d.op {
	case x86asm.INC:
		r, f = addFlags(x, 1, 0, sz)
		mask &^= FlagCF
	case x86asm.DEC:
		r, f = subFlags(x, 1, 0, sz)
		mask &^= FlagCF
	case x86asm.NEG:
		r, f = subFlags(0, x, 0, sz)
	case x86asm.NOT:
		r, mask = ^x, 0
	}
	if !c.set(a0, r) {
		return
	}
	c.RFLAGS = c.RFLAGS&^mask | f&mask
}

func (c *CPU) shift(d *insn, a0, a1 *operand, sz uint8) {
	x, ok := c.get(a0)
	if !ok {
		return
	}
	var n uint64 = 1
	if d.nargs > 1 {
		n, _ = c.get(a1)
	}
	if sz == 8 {
		n &= 63
	} else {
		n &= 31
	}
	if n == 0 {
		return
	}
	bitsN := uint64(sz) * 8
	m := sizeMask(sz)
	sb := signBit(sz)
	var r, f uint64
	fl := c.RFLAGS
	switch d.op {
	case x86asm.SHL:
		r = (x << n) & m
		if n <= bitsN && (x>>(bitsN-n))&1 != 0 {
			f |= FlagCF
		}
		f |= szp(r, sz)
		if (r&sb != 0) != (f&FlagCF != 0) {
			f |= FlagOF
		}
		fl = fl&^arithFlags | f
	case x86asm.SHR:
		r = x >> n
		if (x>>(n-1))&1 != 0 {
			f |= FlagCF
		}
		f |= szp(r, sz)
		if x&sb != 0 {
			f |= FlagOF
		}
		fl = fl&^arithFlags | f
	case x86asm.SAR:
		sx := int64(signExtend(x, sz))
		r = uint64(sx>>n) & m
		if (sx>>(n-1))&1 != 0 {
			f |= FlagCF
		}
		f |= szp(r, sz)
		fl = fl&^arithFlags | f
	case x86asm.ROL:
		k := n % bitsN
		r = (x<<k | x>>(bitsN-k)) & m
		if r&1 != 0 {
			f |= FlagCF
		}
		if (r&sb != 0) != (r&1 != 0) {
			f |= FlagOF
		}
		fl = fl&^(FlagCF|FlagOF) | f
	case x86asm.ROR:
		k := n % bitsN
		r = (x>>k | x<<(bitsN-k)) & m
		if r&sb != 0 {
			f |= FlagCF
		}
		if (r&sb != 0) != (r&(sb>>1) != 0) {
			f |= FlagOF
		}
		fl = fl&^(FlagCF|FlagOF) | f
	}
	if c.set(a0, r) {
		c.RFLAGS = fl
	}
}

func (c *CPU) muldiv(d *insn, a0, a1 *operand, sz uint8) {
	m := sizeMask(sz)
	if d.op == x86asm.IMUL && d.nargs >= 2 {
		x, ok := c.get(a0)
		src := a1
		if d.nargs == 3 {
			x, ok = c.get(a1)
			src = &d.args[2]
		}
		if !ok {
			return
		}
		y, ok := c.get(src)
		if !ok {
			return
		}
		sx, sy := int64(signExtend(x, sz)), int64(signExtend(y, sz))
		hi, lo := bits.Mul64(uint64(sx), uint64(sy))
		if sx < 0 {
			hi -= uint64(sy)
		}
		if sy < 0 {
			hi -= uint64(sx)
		}
		r := lo & m
		var f uint64
		if sz == 8 {
			if hi != uint64(int64(lo)>>63) {
				f = FlagCF | FlagOF
			}
		} else if signExtend(r, sz) != lo {
			f = FlagCF | FlagOF
		}
		if c.set(a0, r) {
			c.RFLAGS = c.RFLAGS&^(FlagCF|FlagOF) | f
		}
		return
	}
	y, ok := c.get(a0)
	if !ok {
		return
	}
	acc := c.GPR[RAX] & m
	var hiIn uint64
	if sz == 1 {
		hiIn = (c.GPR[RAX] >> 8) & 0xff
	} else {
		hiIn = c.GPR[RDX] & m
	}
	var lo, hi uint64
	switch d.op {
	case x86asm.MUL, x86asm.IMUL:
		signed := d.op == x86asm.IMUL
		if sz == 8 {
			hi, lo = bits.Mul64(acc, y)
			if signed {
				if int64(acc) < 0 {
					hi -= y
				}
				if int64(y) < 0 {
					hi -= acc
				}
			}
		} else {
			var p uint64
			if signed {
				p = uint64(int64(signExtend(acc, sz)) * int64(signExtend(y, sz)))
			} else {
				p = acc * y
			}
			lo, hi = p&m, (p>>(8*uint(sz)))&m
		}
		var f uint64
		if signed {
			if hi != (uint64(int64(signExtend(lo, sz))>>63))&m {
				f = FlagCF | FlagOF
			}
		} else if hi != 0 {
			f = FlagCF | FlagOF
		}
		c.RFLAGS = c.RFLAGS&^(FlagCF|FlagOF) | f
	case x86asm.DIV:
		if y == 0 || hiIn >= y {
			c.raise(0, 0, false)
			return
		}
		if sz == 8 {
			lo, hi = bits.Div64(hiIn, acc, y)
		} else {
			n := hiIn<<(8*uint(sz)) | acc
			lo, hi = n/y, n%y
		}
	case x86asm.IDIV:
		q, r, ok := idiv(hiIn, acc, y, sz)
		if !ok {
			c.raise(0, 0, false)
			return
		}
		lo, hi = q&m, r&m
	}
	switch sz {
	case 1:
		c.GPR[RAX] = c.GPR[RAX]&^0xffff | lo&0xff | (hi&0xff)<<8
	default:
		c.set(&operand{kind: okReg, reg: RAX, size: sz}, lo)
		c.set(&operand{kind: okReg, reg: RDX, size: sz}, hi)
	}
}

// idiv divides the signed double-width hi:lo by y (all of the given size).
func idiv(hi, lo, y uint64, sz uint8) (q, r uint64, ok bool) {
	if y == 0 {
		return 0, 0, false
	}
	sy := int64(signExtend(y, sz))
	if sz < 8 {
		n := int64(signExtend(hi<<(8*uint(sz))|lo, sz*2))
		qq, rr := n/sy, n%sy
		if qq != int64(signExtend(uint64(qq), sz)) {
			return 0, 0, false
		}
		return uint64(qq), uint64(rr), true
	}
	neg := int64(hi) < 0
	if neg { // negate the 128-bit dividend
		lo, hi = -lo, ^hi
		if lo == 0 {
			hi++
		}
	}
	ay := uint64(sy)
	if sy < 0 {
		ay = -ay
	}
	if hi >= ay {
		return 0, 0, false
	}
	uq, ur := bits.Div64(hi, lo, ay)
	qneg := neg != (sy < 0)
	if qneg {
		if uq > 1<<63 {
			return 0, 0, false
		}
		q = -uq
	} else {
		if uq >= 1<<63 {
			return 0, 0, false
		}
		q = uq
	}
	r = ur
	if neg {
		r = -ur
	}
	return q, r, true
}

func (c *CPU) bitTest(d *insn, a0, a1 *operand, sz uint8) {
	off, ok := c.get(a1)
	if !ok {
		return
	}
	o := *a0
	bitsN := uint64(sz) * 8
	if o.kind == okMem && a1.kind != okImm {
		// A register bit offset may address outside the operand.
		so := int64(signExtend(off, sz))
		o.disp += uint64((so >> 3) &^ int64(sz-1))
		off = uint64(so) & (bitsN - 1)
	} else {
		off &= bitsN - 1
	}
	v, ok := c.get(&o)
	if !ok {
		return
	}
	bit := (v >> off) & 1
	switch d.op {
	case x86asm.BTS:
		ok = c.set(&o, v|1<<off)
	case x86asm.BTR:
		ok = c.set(&o, v&^(1<<off))
	case x86asm.BTC:
		ok = c.set(&o, v^1<<off)
	}
	if ok {
		c.RFLAGS = c.RFLAGS&^FlagCF | bit
	}
}

// maxRepChunk bounds the iterations of a rep string instruction per step.
const maxRepChunk = 4096

func (c *CPU) stringOp(d *insn) {
	var sz uint8
	store := true
	switch d.op {
	case x86asm.STOSB, x86asm.MOVSB:
		sz = 1
	case x86asm.STOSW, x86asm.MOVSW:
		sz = 2
	case x86asm.STOSD, x86asm.MOVSD:
		sz = 4
	default:
		sz = 8
	}
	movs := d.op == x86asm.MOVSB || d.op == x86asm.MOVSW || d.op == x86asm.MOVSD || d.op == x86asm.MOVSQ
	step := uint64(sz)
	if c.RFLAGS&FlagDF != 0 {
		step = -step
	}
	for n := 0; ; n++ {
		if d.rep != 0 && c.GPR[RCX] == 0 {
			break
		}
		if n == maxRepChunk {
			// Like an interrupted rep: RIP stays, the rest runs next step.
			c.nip = c.RIP
			c.partial = true
			return
		}
		v := c.GPR[RAX] & sizeMask(sz)
		if movs {
			var ok bool
			if v, ok = c.load(c.GPR[RSI], sz); !ok {
				return
			}
		}
		if store && !c.store(c.GPR[RDI], sz, v) {
			return
		}
		c.GPR[RDI] += step
		if movs {
			c.GPR[RSI] += step
		}
		if d.rep == 0 {
			break
		}
		c.GPR[RCX]--
	}
}
