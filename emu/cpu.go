package emu

import (
	"github.com/unwind-dev/unwind/ptregs"
)

// Segment register indexes into CPU.Seg (x86 encoding order).
const (
	SegES = iota
	SegCS
	SegSS
	SegDS
	SegFS
	SegGS
)

// General-purpose register indexes into CPU.GPR, in hardware encoding order.
const (
	RAX = iota
	RCX
	RDX
	RBX
	RSP
	RBP
	RSI
	RDI
	R8
	R9
	R10
	R11
	R12
	R13
	R14
	R15
)

// MSR numbers the machine models (MACHINE.md).
const (
	MSRStar         = 0xc0000081
	MSRLStar        = 0xc0000082
	MSRFMask        = 0xc0000084
	MSRFSBase       = 0xc0000100
	MSRGSBase       = 0xc0000101
	MSRKernelGSBase = 0xc0000102
)

// DescTable is the value of IDTR or GDTR.
type DescTable struct {
	Base  uint64
	Limit uint16
}

// CPU is one processor's architectural state. Fields may be read between
// steps and changed before Run (a test setting registers, a scenario poking
// state); the machine never retains pointers into them.
type CPU struct {
	ID     int
	GPR    [16]uint64 // RAX … R15 in encoding order (see the RAX… constants)
	RIP    uint64
	RFLAGS uint64
	Seg    [6]uint16 // ES CS SS DS FS GS selectors

	FSBase, GSBase, KernelGSBase uint64
	CR                           [16]uint64 // CR0 … CR15 (CR2 is the #PF address)
	DR                           [8]uint64  // DR0 … DR7
	IDTR, GDTR                   DescTable
	TR                           uint16 // task register selector
	TSSBase                      uint64 // base loaded from the TSS descriptor by ltr
	Star, LStar, FMask           uint64

	NMIBlocked bool // an NMI was delivered and no IRET has executed since
	NMILatched bool // an NMI arrived while blocked; delivered after the next IRET
	Halted     bool // executing hlt: waits for an interrupt
	Done       bool // reported completion on port 0xf4 (or stopped)
	ExitStatus uint32
	Insns      uint64 // instructions retired

	m        *Machine
	irq      [4]uint64 // pending external interrupt vectors (bitmap)
	irqAny   bool
	nmiPend  bool
	shadowIF bool // interrupt shadow of sti / mov ss for the next instruction
	nip      uint64
	partial  bool // a rep string instruction stopped part-way (not retired)
	exc      int  // pending exception vector raised by the instruction, -1 none
	excErr   uint64
	excHas   bool
	excTrap  bool // RIP after the instruction (int3, int n)
	excSoft  bool // software interrupt: gate DPL is checked
	shadow   shadowStack
	trigAt   uint64 // retired count at which the boundary hook runs
}

// CPL returns the current privilege level, CS & 3.
func (c *CPU) CPL() int { return int(c.Seg[SegCS] & 3) }

var dwarfToHW = [16]int{RAX, RDX, RCX, RBX, RSI, RDI, RBP, RSP, R8, R9, R10, R11, R12, R13, R14, R15}

// Reg returns a register by DWARF number (ptregs.RIP gives RIP).
func (c *CPU) Reg(r ptregs.Reg) uint64 {
	if r == ptregs.RIP {
		return c.RIP
	}
	if int(r) < 16 {
		return c.GPR[dwarfToHW[r]]
	}
	return 0
}

// Regs returns the general registers and RIP as a ptregs.Regs.
func (c *CPU) Regs() ptregs.Regs {
	var rs ptregs.Regs
	for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
		rs.Set(r, c.Reg(r))
	}
	return rs
}

// UserRegs returns the state as an ELF user_regs_struct (for NT_PRSTATUS).
func (c *CPU) UserRegs() ptregs.UserRegs {
	g := &c.GPR
	return ptregs.UserRegs{
		PtRegs: ptregs.PtRegs{
			R15: g[R15], R14: g[R14], R13: g[R13], R12: g[R12], BP: g[RBP], BX: g[RBX],
			R11: g[R11], R10: g[R10], R9: g[R9], R8: g[R8], AX: g[RAX], CX: g[RCX],
			DX: g[RDX], SI: g[RSI], DI: g[RDI], OrigAX: ^uint64(0), IP: c.RIP,
			CS: uint64(c.Seg[SegCS]), Flags: c.RFLAGS, SP: g[RSP], SS: uint64(c.Seg[SegSS]),
		},
		FSBase: c.FSBase, GSBase: c.GSBase,
		DS: uint64(c.Seg[SegDS]), ES: uint64(c.Seg[SegES]), FS: uint64(c.Seg[SegFS]), GS: uint64(c.Seg[SegGS]),
	}
}

// RaiseIRQ makes external interrupt vector (0x20–0xff) pending; it is
// delivered when IF = 1 and no interrupt shadow is in force.
func (c *CPU) RaiseIRQ(vector uint8) {
	c.irq[vector>>6] |= 1 << (vector & 63)
	c.irqAny = true
	if c.RFLAGS&FlagIF != 0 {
		c.Halted = false
	}
}

// RaiseNMI makes an NMI pending: delivered at the next boundary unless NMIs
// are blocked, in which case it is latched (at most one).
func (c *CPU) RaiseNMI() {
	if c.NMIBlocked {
		c.NMILatched = true
		return
	}
	c.nmiPend = true
	c.Halted = false
}

// PendingIRQ reports whether an external interrupt is pending.
func (c *CPU) PendingIRQ() bool { return c.irqAny }

func (c *CPU) highestIRQ() int {
	for i := 3; i >= 0; i-- {
		if w := c.irq[i]; w != 0 {
			b := 63
			for w>>uint(b)&1 == 0 {
				b--
			}
			return i*64 + b
		}
	}
	return -1
}

func (c *CPU) clearIRQ(v int) {
	c.irq[v>>6] &^= 1 << uint(v&63)
	c.irqAny = c.irq != [4]uint64{}
}

func (c *CPU) raise(vec int, code uint64, has bool) {
	if c.exc < 0 {
		c.exc, c.excErr, c.excHas, c.excTrap, c.excSoft = vec, code, has, false, false
	}
}

func (c *CPU) gp(code uint64) { c.raise(13, code, true) }
func (c *CPU) ud()            { c.raise(6, 0, false) }

// pageFault raises #PF for an access to the unmapped address a.
func (c *CPU) pageFault(a uint64, write, fetch bool) {
	if c.exc >= 0 {
		return
	}
	var code uint64
	if write {
		code |= 2
	}
	if c.CPL() == 3 {
		code |= 4
	}
	if fetch {
		code |= 16
	}
	c.CR[2] = a
	c.raise(14, code, true)
}

func (c *CPU) load(a uint64, size uint8) (uint64, bool) {
	v, ok := c.m.mem.read(a, size)
	if !ok {
		c.pageFault(c.m.mem.firstUnmapped(a, size), false, false)
	}
	return v, ok
}

func (c *CPU) store(a uint64, size uint8, v uint64) bool {
	if !c.m.mem.write(a, size, v) {
		c.pageFault(c.m.mem.firstUnmapped(a, size), true, false)
		return false
	}
	if a < c.shadow.wHi && a+uint64(size) > c.shadow.wLo {
		c.shadow.onRegsWrite(c)
	}
	return true
}

func (c *CPU) push(v uint64) bool {
	sp := c.GPR[RSP] - 8
	if !c.store(sp, 8, v) {
		return false
	}
	c.GPR[RSP] = sp
	return true
}

// ea computes the effective (linear) address of a memory operand.
func (c *CPU) ea(o *operand) uint64 {
	var a uint64
	switch o.base {
	case noReg:
	case ripReg:
		a = c.nip
	default:
		a = c.GPR[o.base]
	}
	if o.index != noReg {
		a += c.GPR[o.index] * uint64(o.scale)
	}
	a += o.disp
	if o.addr32 {
		a = uint64(uint32(a))
	}
	switch o.seg {
	case 4:
		a += c.FSBase
	case 5:
		a += c.GSBase
	}
	return a
}

// get reads operand o (zero-extended to 64 bits).
func (c *CPU) get(o *operand) (uint64, bool) {
	switch o.kind {
	case okReg:
		return c.GPR[o.reg] & sizeMask(o.size), true
	case okRegHi:
		return (c.GPR[o.reg] >> 8) & 0xff, true
	case okMem:
		return c.load(c.ea(o), o.size)
	case okImm:
		return o.disp & sizeMask(o.size), true
	case okSeg:
		return uint64(c.Seg[o.reg]), true
	}
	c.m.unimplemented(c)
	return 0, false
}

// set writes v to operand o with x86-64 register-write rules.
func (c *CPU) set(o *operand, v uint64) bool {
	switch o.kind {
	case okReg:
		switch o.size {
		case 8:
			c.GPR[o.reg] = v
		case 4:
			c.GPR[o.reg] = uint64(uint32(v))
		default:
			m := sizeMask(o.size)
			c.GPR[o.reg] = c.GPR[o.reg]&^m | v&m
		}
		return true
	case okRegHi:
		c.GPR[o.reg] = c.GPR[o.reg]&^0xff00 | (v&0xff)<<8
		return true
	case okMem:
		return c.store(c.ea(o), o.size, v)
	}
	c.m.unimplemented(c)
	return false
}
