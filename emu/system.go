package emu

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// I/O ports of the machine's devices (MACHINE.md).
const (
	PortConsole  = 0xe9  // out %al: one console byte
	PortExit     = 0xf4  // out %eax: this CPU is done, eax = exit status
	PortIPI      = 0x4e0 // out %eax, %dx: eax = cpu<<8 | vector
	PortInsCount = 0xf0  // in %eax: low 32 bits of this CPU's retired count
)

func (c *CPU) privileged() bool {
	if c.CPL() != 0 {
		c.gp(0)
		return false
	}
	return true
}

// execSystem executes system and I/O instructions.
func (c *CPU) execSystem(d *insn) {
	a0, a1 := &d.args[0], &d.args[1]
	switch d.op {
	case x86asm.CLI:
		if c.privileged() {
			c.RFLAGS &^= FlagIF
		}
	case x86asm.STI:
		if c.privileged() {
			if c.RFLAGS&FlagIF == 0 {
				c.shadowIF = true
			}
			c.RFLAGS |= FlagIF
		}
	case x86asm.HLT:
		if c.privileged() {
			c.Halted = true
		}
	case x86asm.SWAPGS:
		if c.privileged() {
			c.GSBase, c.KernelGSBase = c.KernelGSBase, c.GSBase
		}
	case x86asm.INVLPG, x86asm.CLTS:
		c.privileged()
	case x86asm.WRMSR:
		if !c.privileged() {
			return
		}
		v := c.GPR[RDX]<<32 | c.GPR[RAX]&0xffffffff
		if p := c.msr(uint32(c.GPR[RCX])); p != nil {
			*p = v
		} else {
			c.gp(0)
		}
	case x86asm.RDMSR:
		if !c.privileged() {
			return
		}
		if p := c.msr(uint32(c.GPR[RCX])); p != nil {
			c.GPR[RAX], c.GPR[RDX] = *p&0xffffffff, *p>>32
		} else {
			c.gp(0)
		}
	case x86asm.LIDT, x86asm.LGDT:
		if !c.privileged() {
			return
		}
		a := c.ea(a0)
		lim, ok := c.load(a, 2)
		if !ok {
			return
		}
		base, ok := c.load(a+2, 8)
		if !ok {
			return
		}
		t := DescTable{Base: base, Limit: uint16(lim)}
		if d.op == x86asm.LIDT {
			c.IDTR = t
		} else {
			c.GDTR = t
		}
	case x86asm.SIDT, x86asm.SGDT:
		t := c.IDTR
		if d.op == x86asm.SGDT {
			t = c.GDTR
		}
		a := c.ea(a0)
		if c.store(a, 2, uint64(t.Limit)) {
			c.store(a+2, 8, t.Base)
		}
	case x86asm.LTR:
		if !c.privileged() {
			return
		}
		v, ok := c.get(a0)
		if !ok {
			return
		}
		sel := uint16(v)
		off := uint64(sel &^ 7)
		if sel&^7 == 0 || off+15 > uint64(c.GDTR.Limit) {
			c.gp(uint64(sel &^ 3))
			return
		}
		var desc [16]byte
		if _, err := c.m.mem.ReadAt(desc[:], c.GDTR.Base+off); err != nil {
			c.pageFault(c.GDTR.Base+off, false, false)
			return
		}
		le := binary.LittleEndian
		c.TSSBase = uint64(le.Uint16(desc[2:])) | uint64(desc[4])<<16 | uint64(desc[7])<<24 | uint64(le.Uint32(desc[8:]))<<32
		c.TR = sel
	case x86asm.IN:
		if !c.privileged() {
			return
		}
		port := c.port(a1)
		var v uint64 = ^uint64(0)
		if port == PortInsCount {
			v = c.Insns
		}
		c.set(a0, v&sizeMask(a0.size))
	case x86asm.OUT:
		if !c.privileged() {
			return
		}
		v, _ := c.get(a1)
		c.out(c.port(a0), v)
	case x86asm.INT:
		vec := int(a0.disp & 0xff)
		c.raise(vec, 0, false)
		c.excTrap = true
		c.excSoft = true // int3 and int n check the gate's DPL
	case x86asm.SYSCALL:
		c.syscall()
	case x86asm.SYSRET:
		c.sysret(d)
	case x86asm.IRETQ:
		c.iret()
	default:
		c.m.unimplemented(c)
	}
}

func (c *CPU) port(o *operand) uint16 {
	if o.kind == okImm {
		return uint16(o.disp & 0xff)
	}
	return uint16(c.GPR[RDX])
}

func (c *CPU) out(port uint16, v uint64) {
	switch port {
	case PortConsole:
		c.m.console = append(c.m.console, byte(v))
	case PortExit:
		c.Done = true
		c.ExitStatus = uint32(v)
	case PortIPI:
		cpu := int(v>>8) & 0xff
		if cpu >= len(c.m.CPUs) {
			return
		}
		t := c.m.CPUs[cpu]
		if v&0xff == 2 {
			t.RaiseNMI()
		} else {
			t.RaiseIRQ(uint8(v))
		}
	}
}

func (c *CPU) msr(n uint32) *uint64 {
	switch n {
	case MSRStar:
		return &c.Star
	case MSRLStar:
		return &c.LStar
	case MSRFMask:
		return &c.FMask
	case MSRFSBase:
		return &c.FSBase
	case MSRGSBase:
		return &c.GSBase
	case MSRKernelGSBase:
		return &c.KernelGSBase
	}
	return nil
}

// movSys executes mov to or from a control or debug register.
func (c *CPU) movSys(a0, a1 *operand) {
	if !c.privileged() {
		return
	}
	switch {
	case a0.kind == okCR:
		c.CR[a0.reg] = c.GPR[a1.reg]
	case a0.kind == okDR:
		if a0.reg < 8 {
			c.DR[a0.reg] = c.GPR[a1.reg]
		}
	case a1.kind == okCR:
		c.GPR[a0.reg] = c.CR[a1.reg]
	case a1.kind == okDR:
		if a1.reg < 8 {
			c.GPR[a0.reg] = c.DR[a1.reg]
		}
	}
}

func canonical(a uint64) bool { return uint64(int64(a<<16)>>16) == a }

func (c *CPU) syscall() {
	from := c.CPL()
	rsp := c.GPR[RSP]
	c.GPR[RCX] = c.nip
	c.GPR[R11] = c.RFLAGS &^ FlagRF
	cs := uint16(c.Star>>32) &^ 3
	c.Seg[SegCS], c.Seg[SegSS] = cs, cs+8
	c.RFLAGS = (c.RFLAGS &^ (c.FMask | FlagRF)) | 2
	c.nip = c.LStar
	c.shadow.pushEntry(c, -1, "syscall", c.GPR[RCX], rsp, uint16(from|0x30), 0, c.LStar)
}

func (c *CPU) sysret(d *insn) {
	if !c.privileged() {
		return
	}
	if d.size != 8 {
		c.m.unimplemented(c)
		return
	}
	if !canonical(c.GPR[RCX]) {
		c.gp(0)
		return
	}
	sel := uint16(c.Star >> 48)
	c.nip = c.GPR[RCX]
	c.RFLAGS = c.GPR[R11]&0x3c7fd7 | 2
	c.Seg[SegCS] = (sel + 16) | 3
	c.Seg[SegSS] = (sel + 8) | 3
	r, ok := c.shadow.popEntry()
	if ok && c.m.checks && r.name == "syscall" && (c.nip != r.intRIP || c.GPR[RSP] != r.intRSP) {
		c.m.violate(c, "iret-resumes", fmt.Sprintf("sysretq resumed at %s rsp %#x, not where the syscall came from (%s rsp %#x) nor where its handler pointed its pt_regs",
			c.m.Where(c.nip), c.GPR[RSP], c.m.Where(r.intRIP), r.intRSP))
	}
}

// iret executes iretq: pops RIP, CS, RFLAGS, RSP, SS and unblocks NMIs.
func (c *CPU) iret() {
	sp := c.GPR[RSP]
	var f [5]uint64
	for i := range f {
		v, ok := c.load(sp+uint64(8*i), 8)
		if !ok {
			return
		}
		f[i] = v
	}
	cs := uint16(f[1])
	if int(cs&3) < c.CPL() || cs&^3 == 0 {
		c.gp(uint64(cs &^ 3))
		return
	}
	c.RFLAGS = c.newFlags(f[2], c.CPL())
	c.nip = f[0]
	c.Seg[SegCS] = cs
	c.GPR[RSP] = f[3]
	c.Seg[SegSS] = uint16(f[4])
	c.NMIBlocked = false
	if c.NMILatched {
		c.NMILatched = false
		c.nmiPend = true
	}
	c.shadow.onIret(c, sp)
}
