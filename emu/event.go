package emu

import (
	"fmt"
	"strconv"
	"sync"
)

// Exception vectors.
const (
	VecDE  = 0  // divide error
	VecDB  = 1  // debug
	VecNMI = 2  // non-maskable interrupt
	VecBP  = 3  // breakpoint (int3)
	VecUD  = 6  // invalid opcode
	VecDF  = 8  // double fault
	VecNP  = 11 // segment not present
	VecGP  = 13 // general protection
	VecPF  = 14 // page fault
	VecMC  = 18 // machine check
)

const (
	classBenign = iota
	classContributory
	classPF
	classDF
)

func excClass(vec int) int {
	switch vec {
	case 0, 10, 11, 12, 13:
		return classContributory
	case 14:
		return classPF
	case 8:
		return classDF
	}
	return classBenign
}

// EntryName returns the shadow stack's name for an event: "nmi", "debug",
// "int3", "page_fault", "double_fault", "general_protection", … for
// exceptions, "irq:N" (decimal) for external interrupts.
func EntryName(vec int, external bool) string {
	if external && vec != VecNMI {
		return irqNames()[vec&0xff]
	}
	switch vec {
	case VecDE:
		return "divide_error"
	case VecDB:
		return "debug"
	case VecNMI:
		return "nmi"
	case VecBP:
		return "int3"
	case VecUD:
		return "invalid_op"
	case VecDF:
		return "double_fault"
	case VecNP:
		return "segment_not_present"
	case VecGP:
		return "general_protection"
	case VecPF:
		return "page_fault"
	case VecMC:
		return "machine_check"
	}
	return "exception:" + strconv.Itoa(vec)
}

// irqNames gives "irq:0" to "irq:255", built on first use (not at every
// process's start) and once, so that naming an event does not allocate.
var irqNames = sync.OnceValue(func() *[256]string {
	var n [256]string
	for i := range n {
		n[i] = "irq:" + strconv.Itoa(i)
	}
	return &n
})

// event is one delivery request.
type event struct {
	vec      int
	code     uint64
	hasCode  bool
	external bool // NMI or external interrupt (sets EXT in nested error codes)
	soft     bool // int3 / int n: gate DPL checked against CPL
	fault    bool // a fault (RF set in the pushed image, except #DB)
}

// deliver delivers ev through the IDT, escalating faults raised during
// delivery as SDM vol. 3 table 6-5 says: contributory+contributory or
// #PF+(contributory|#PF) → #DF; anything during #DF → triple fault, which
// stops the machine with an error. A benign first event is followed by
// the second one serially.
func (c *CPU) deliver(ev event) {
	for range 8 {
		nested, ok := c.tryDeliver(ev)
		if ok {
			return
		}
		first, second := excClass(ev.vec), excClass(nested.vec)
		switch {
		case first == classDF:
			c.m.fail(c, fmt.Sprintf("triple fault: %s during double-fault delivery", EntryName(nested.vec, false)))
			return
		case first == classContributory && second == classContributory,
			first == classPF && (second == classContributory || second == classPF):
			ev = event{vec: VecDF, hasCode: true, external: ev.external, fault: true}
		default:
			nested.external = ev.external
			ev = nested
		}
	}
	c.m.fail(c, "event delivery does not terminate")
}

// tryDeliver performs one delivery attempt; on a fault it returns the
// nested exception and leaves CPU state (except CR2) unchanged.
func (c *CPU) tryDeliver(ev event) (event, bool) {
	var ext uint64
	if ev.external {
		ext = 1
	}
	idtCode := uint64(ev.vec)*8 + 2 + ext
	gpf := func(code uint64) (event, bool) {
		return event{vec: VecGP, code: code, hasCode: true, fault: true}, false
	}
	if uint64(ev.vec)*16+15 > uint64(c.IDTR.Limit) {
		return gpf(idtCode)
	}
	ga := c.IDTR.Base + uint64(ev.vec)*16
	lo, ok1 := c.m.mem.read(ga, 8)
	hi, ok2 := c.m.mem.read(ga+8, 8)
	if !ok1 || !ok2 {
		return c.deliveryPF(ga, false)
	}
	off := lo&0xffff | (lo>>48)<<16 | (hi&0xffffffff)<<32
	sel := uint16(lo >> 16)
	ist := int(lo>>32) & 7
	typ := int(lo>>40) & 0xf
	dpl := int(lo>>45) & 3
	present := lo>>47&1 != 0
	if typ != 0xe && typ != 0xf {
		return gpf(idtCode)
	}
	if ev.soft && dpl < c.CPL() {
		return gpf(idtCode)
	}
	if !present {
		return event{vec: VecNP, code: idtCode, hasCode: true, fault: true}, false
	}
	newCPL := int(sel & 3)
	if sel&^3 == 0 || newCPL > c.CPL() {
		return gpf(uint64(sel&^3) + ext)
	}
	rsp := c.GPR[RSP]
	switch {
	case ist != 0:
		v, ok := c.m.mem.read(c.TSSBase+0x24+uint64(ist-1)*8, 8)
		if !ok {
			return c.deliveryPF(c.TSSBase+0x24+uint64(ist-1)*8, false)
		}
		rsp = v
	case newCPL != c.CPL():
		v, ok := c.m.mem.read(c.TSSBase+4, 8)
		if !ok {
			return c.deliveryPF(c.TSSBase+4, false)
		}
		rsp = v
	}
	rsp &^= 15
	cfa := rsp
	flags := c.RFLAGS
	if ev.fault && ev.vec != VecDB {
		flags |= FlagRF
	}
	ret := c.RIP
	frame := [6]uint64{uint64(c.Seg[SegSS]), c.GPR[RSP], flags, uint64(c.Seg[SegCS]), ret, ev.code}
	n := 5
	if ev.hasCode {
		n = 6
	}
	for i := 0; i < n; i++ {
		rsp -= 8
		if !c.m.mem.write(rsp, 8, frame[i]) {
			return c.deliveryPF(c.m.mem.firstUnmapped(rsp, 8), true)
		}
	}
	name := EntryName(ev.vec, ev.external)
	c.shadow.clobber(c, rsp, cfa, name)
	c.shadow.pushEntry(c, ev.vec, name, ret, c.GPR[RSP], c.Seg[SegCS], cfa, off)
	c.GPR[RSP] = rsp
	if newCPL != c.CPL() {
		c.Seg[SegSS] = uint16(newCPL)
	}
	c.Seg[SegCS] = sel
	c.RFLAGS &^= FlagTF | FlagNT | FlagRF | FlagVM
	if typ == 0xe {
		c.RFLAGS &^= FlagIF
	}
	if ev.vec == VecNMI && ev.external {
		c.NMIBlocked = true
	}
	c.RIP = off
	c.Halted = false
	c.m.deliveries++
	return event{}, true
}

func (c *CPU) deliveryPF(a uint64, write bool) (event, bool) {
	code := uint64(0)
	if write {
		code |= 2
	}
	if c.CPL() == 3 {
		code |= 4
	}
	c.CR[2] = a
	return event{vec: VecPF, code: code, hasCode: true, fault: true}, false
}
