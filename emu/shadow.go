package emu

import (
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// FrameKind says how a shadow-stack frame was entered.
type FrameKind uint8

// Frame kinds.
const (
	FrameCall        FrameKind = iota // a normal call frame (or the innermost frame)
	FrameInterrupted                  // a frame interrupted by an event; Entry/RegsAddr/Regs say by what
	FrameUser                         // a frame executing at CPL 3
)

func (k FrameKind) String() string {
	switch k {
	case FrameInterrupted:
		return "interrupted"
	case FrameUser:
		return "user"
	}
	return "call"
}

// Frame is one frame of the ground-truth shadow stack, innermost first.
//
// PC is RIP for the innermost frame, the return address for a caller, and
// the interrupted RIP for an interrupted frame. CFA is the frame's
// canonical frame address: for a called function the caller's RSP before
// the call (return-address slot + 8); for an entry stub entered by a gate
// the top of the hardware frame (the 16-byte aligned RSP before the
// pushes); 0 when unknown (the outermost frame, a syscall entry before its
// pt_regs is built). Kind is FrameUser for every frame at CPL 3, including
// one an event interrupted (its Entry, RegsAddr and Regs are set then).
type Frame struct {
	Function string // symbol containing PC (PC-1 for return addresses); "" if none
	PC       uint64
	CFA      uint64
	SP       uint64
	Kind     FrameKind
	Stack    unwind.StackKind
	// Interrupted frames (Entry != ""): the event and the registers at the
	// moment of delivery; RegsAddr is the pt_regs the entry code built
	// (0 until it called its C handler).
	Entry    string
	Vector   int // -1 for syscall
	RegsAddr uint64
	Regs     ptregs.Regs
}

// shadowRec is one record of the per-CPU ground-truth stack, outermost first.
type shadowRec struct {
	entry    bool
	fn       uint64 // call target / handler
	ret      uint64 // call: return address
	cfa      uint64
	vector   int
	name     string
	intRIP   uint64
	intRSP   uint64
	intCS    uint16
	gprs     [16]uint64
	regsAddr uint64
	idtr     DescTable // IDTR at delivery of an outermost NMI/#DB (idtSaved)
	idtSaved bool
	// clobbered: a later delivery pushed a hardware frame over this
	// entry's (an IST stack reset while the entry was live).
	clobbered bool
	clobberBy string
	// origRIP/origRSP: the interrupted RIP/RSP at delivery; intRIP/intRSP
	// follow the handler's writes to its pt_regs ip/sp (see onRegsWrite).
	origRIP, origRSP uint64
	// synth: the record just below this one is a call frame synthesized
	// from a pt_regs rewrite (int3 call emulation or an int3 trampoline).
	synth bool
	// owned: the entry's C handler is running (called with this pt_regs
	// and not yet returned); only then do stores to its ip/sp redirect
	// the interrupted frame. Afterwards the stub's exit path reuses the
	// stack (Linux's sysret path pushes the user RSP and RDI over
	// pt_regs->ss and ->sp), which changes nothing the iret resumes.
	owned bool
}

// shadowStack is the per-CPU ground truth, maintained by call, ret, jmp,
// event delivery, iretq, syscall and sysretq:
//
//   - call pushes {target, return address, CFA = RSP after the push + 8}.
//   - ret at RSP pops call records above the innermost entry record whose
//     CFA is below RSP+8 and within 64 KiB (frames abandoned without a ret),
//     then pops the top record if its CFA is RSP+8; a ret that matches no
//     record (a pushed address, an emulated call) pops nothing.
//   - jmp to the first byte of a function (outside entry code) with RSP
//     at the top call record's return-address slot is a tail call: the
//     record's function becomes the target; with RSP anywhere else it
//     completes an emulated call (a trampoline pushed the return address):
//     a call record {target, [RSP], RSP+8} is pushed.
//   - event delivery and syscall push an entry record; iretq and sysretq
//     pop records up to and including the innermost entry record.
//   - iretq that resumes inside the entry stub of the record it pops
//     (Linux's repeat_nmi after a nested NMI) keeps the record: the event
//     is still being handled.
//   - iretq that resumes at the start of a function with RSP = interrupted
//     RSP - 8 (an int3 handler emulating a call) pushes a call record for it.
//   - calling one of the machine's pt_regs handlers records %rdi as the
//     innermost entry record's pt_regs address if it has none yet.
//   - while the innermost entry record's handler runs (its pt_regs is
//     known), a store to that pt_regs' ip or sp re-reads both: the
//     interrupted frame becomes what iretq will resume (exception-table
//     fixups: same function, new RIP). When the new ip is the first byte
//     of a function and sp = the original RSP - 8 (int3_emulate_call: the
//     handler pushed the return address into the gap), a call record
//     {ip, [sp], sp+8} is inserted below the entry record, exactly what a
//     real call from the site would have left; when the new ip is one of
//     the fixture kernel's int3 trampolines (int3_tramp_normal, _irq,
//     _softirq, _nmi = per-CPU slot 0-3), the record is {ip, slot.ret,
//     sp}, the return address read from the per-CPU slot
//     (percpu.int3_slots[ctx].ret at GS base + 0x40 + 24*ctx,
//     fixtures/kernel/src/kernel.h) that the trampoline will push; its
//     push-and-jmp then turns it into {target, ret, sp} (tail-call rule).
type shadowStack struct {
	recs []shadowRec
	view []Frame
	// [wLo, wHi): the ip..ss words of the innermost entry's pt_regs while
	// its handler owns them (0, 0 otherwise); stores there call onRegsWrite.
	wLo, wHi uint64
}

// pt_regs offsets of ip and sp.
const (
	ptRegsIP = 16 * 8
	ptRegsSP = 19 * 8
)

// int3Trampolines maps the fixture kernel's int3 trampoline symbols to
// their per-CPU slot index (fixtures/kernel/src/entry.S, INT3_TRAMP).
var int3Trampolines = map[string]int{
	"int3_tramp_normal": 0, "int3_tramp_irq": 1, "int3_tramp_softirq": 2, "int3_tramp_nmi": 3,
}

// percpu.int3_slots offset and slot size (fixtures/kernel/src/kernel.h).
const (
	pcpuInt3Slots = 64
	int3SlotSize  = 24
)

// rewatch points the pt_regs write watch at the innermost entry record,
// if its handler has been called (its pt_regs is known).
func (s *shadowStack) rewatch() {
	s.wLo, s.wHi = 0, 0
	for i := len(s.recs) - 1; i >= 0; i-- {
		if r := &s.recs[i]; r.entry {
			if r.regsAddr != 0 && r.owned {
				s.wLo, s.wHi = r.regsAddr+ptRegsIP, r.regsAddr+ptRegsSP+8
			}
			return
		}
	}
}

// onRegsWrite runs after a store into the innermost entry's pt_regs ip..ss
// words: the interrupted frame follows the pt_regs (see shadowStack).
func (s *shadowStack) onRegsWrite(c *CPU) {
	i := len(s.recs) - 1
	for ; i >= 0 && !s.recs[i].entry; i-- {
	}
	if i < 0 || s.recs[i].regsAddr == 0 {
		return
	}
	m := c.m
	ip, ok1 := m.mem.read(s.recs[i].regsAddr+ptRegsIP, 8)
	sp, ok2 := m.mem.read(s.recs[i].regsAddr+ptRegsSP, 8)
	if !ok1 || !ok2 {
		return
	}
	if s.recs[i].synth && i > 0 {
		s.recs = append(s.recs[:i-1], s.recs[i:]...)
		i--
	}
	r := &s.recs[i]
	r.synth = false
	r.intRIP, r.intRSP = ip, sp
	if ip == r.origRIP {
		return
	}
	sym, ok := m.syms.lookup(ip)
	if !ok || sym.Addr != ip {
		return
	}
	var call shadowRec
	if k, ok := int3Trampolines[sym.Name]; ok {
		ret, ok := m.mem.read(c.GSBase+pcpuInt3Slots+uint64(k)*int3SlotSize, 8)
		if !ok {
			return
		}
		call = shadowRec{fn: ip, ret: ret, cfa: sp}
	} else if sp == r.origRSP-8 {
		ret, ok := m.mem.read(sp, 8)
		if !ok {
			return
		}
		call = shadowRec{fn: ip, ret: ret, cfa: sp + 8}
	} else {
		return
	}
	r.synth = true
	s.recs = append(s.recs, shadowRec{})
	copy(s.recs[i+1:], s.recs[i:])
	s.recs[i] = call
}

const maxShadow = 4096

func (s *shadowStack) onCall(c *CPU, target, ret, cfa uint64) {
	if c.m.regsFuncs[target] {
		if c.m.checks {
			c.m.checkPtRegsFindable(c, target)
		}
		for i := len(s.recs) - 1; i >= 0; i-- {
			if r := &s.recs[i]; r.entry {
				if r.regsAddr == 0 {
					r.regsAddr = c.GPR[RDI]
					if r.cfa == 0 {
						r.cfa = r.regsAddr + ptregs.PtRegsSize
					}
				}
				if r.regsAddr == c.GPR[RDI] {
					// The stub calls its handler with its pt_regs:
					// the handler owns it until it returns.
					r.owned = true
					s.rewatch()
				}
				break
			}
		}
	}
	if len(s.recs) >= maxShadow {
		copy(s.recs, s.recs[1:])
		s.recs = s.recs[:len(s.recs)-1]
	}
	s.recs = append(s.recs, shadowRec{fn: target, ret: ret, cfa: cfa})
}

func (s *shadowStack) onRet(c *CPU, sp uint64) {
	want := sp + 8
	for n := len(s.recs); n > 0; n = len(s.recs) {
		r := &s.recs[n-1]
		if r.entry {
			return
		}
		if r.cfa == want {
			s.recs = s.recs[:n-1]
			if n >= 2 && s.recs[n-2].entry && s.recs[n-2].owned {
				// The entry's handler returned to its stub.
				s.recs[n-2].owned = false
				s.wLo, s.wHi = 0, 0
			}
			return
		}
		if r.cfa < want && want-r.cfa < 1<<16 {
			s.recs = s.recs[:n-1]
			continue
		}
		return
	}
}

func (s *shadowStack) onJump(c *CPU, target uint64) {
	n := len(s.recs)
	if n == 0 || s.recs[n-1].entry {
		return // entry code jumping to common code: no call
	}
	sym, ok := c.m.syms.lookup(target)
	if !ok || sym.Addr != target {
		return
	}
	top := &s.recs[n-1]
	rsp := c.GPR[RSP]
	if rsp == top.cfa-8 {
		top.fn = target // tail call: the frame is gone, its return address at RSP
		return
	}
	// A jump to a function start with a fresh return address on the
	// stack (a trampoline completing an emulated call).
	if ret, ok := c.m.mem.read(rsp, 8); ok {
		s.recs = append(s.recs, shadowRec{fn: target, ret: ret, cfa: rsp + 8})
	}
}

// clobber marks live entry records whose hardware frame [cfa-48, cfa)
// overlaps the frame just pushed at [lo, hi).
func (s *shadowStack) clobber(c *CPU, lo, hi uint64, by string) {
	for i := range s.recs {
		r := &s.recs[i]
		if r.entry && r.cfa != 0 && r.cfa-48 < hi && lo < r.cfa && !r.clobbered {
			r.clobbered, r.clobberBy = true, by
			if c.m.checks {
				c.m.violate(c, "no-frame-clobber", fmt.Sprintf("the %s delivery pushed its frame at %#x over the live %s frame ending at %#x",
					by, lo, r.name, r.cfa))
				if n := len(c.m.violations); n > 0 && c.m.violations[n-1].Check == "no-frame-clobber" {
					c.m.violations[n-1].Victim = r.name
				}
			}
		}
	}
}

func (s *shadowStack) pushEntry(c *CPU, vec int, name string, rip, rsp uint64, cs uint16, cfa, handler uint64) {
	if len(s.recs) >= maxShadow {
		copy(s.recs, s.recs[1:])
		s.recs = s.recs[:len(s.recs)-1]
	}
	r := shadowRec{entry: true, fn: handler, cfa: cfa, vector: vec, name: name,
		intRIP: rip, intRSP: rsp, origRIP: rip, origRSP: rsp, intCS: cs, gprs: c.GPR}
	if vec == VecNMI || vec == VecDB || vec == VecBP {
		r.idtSaved = true
		for i := range s.recs {
			if v := s.recs[i].vector; s.recs[i].entry && (v == VecNMI || v == VecDB || v == VecBP) {
				r.idtSaved = false
				break
			}
		}
		r.idtr = c.IDTR
	}
	s.recs = append(s.recs, r)
	s.wLo, s.wHi = 0, 0
}

func (s *shadowStack) popEntry() (shadowRec, bool) {
	defer s.rewatch()
	for n := len(s.recs); n > 0; n = len(s.recs) {
		r := s.recs[n-1]
		s.recs = s.recs[:n-1]
		if r.entry {
			return r, true
		}
	}
	return shadowRec{}, false
}

func (s *shadowStack) onIret(c *CPU, iretSP uint64) {
	r, ok := s.popEntry()
	if !ok {
		return
	}
	rsp, rip := c.GPR[RSP], c.nip
	if c.m.checks {
		if r.idtSaved && c.IDTR != r.idtr {
			c.m.violate(c, "idt-restored", fmt.Sprintf("IDTR %#x/%#x after the outermost %s returns, %#x/%#x before",
				c.IDTR.Base, c.IDTR.Limit, r.name, r.idtr.Base, r.idtr.Limit))
		}
		if r.clobbered && iretSP == r.cfa-40 {
			c.m.violate(c, "stack-intact", fmt.Sprintf("iretq from %s through its hardware frame at %#x, which the %s delivery overwrote",
				r.name, iretSP, r.clobberBy))
		}
	}
	if rip != r.intRIP && r.fn != 0 {
		// iretq back into the entry code that was running (Linux's
		// repeat_nmi): the event continues, so does its entry frame.
		if a, ok1 := c.m.syms.lookup(rip); ok1 {
			if b, ok2 := c.m.syms.lookup(r.fn); ok2 && a.Addr == b.Addr {
				r.clobbered = false
				s.recs = append(s.recs, r)
				s.rewatch()
				return
			}
		}
	}
	if c.m.checks && (rip != r.intRIP || rsp != r.intRSP) {
		c.m.violate(c, "iret-resumes", fmt.Sprintf("iretq from %s resumed at %s rsp %#x, not where it interrupted (%s rsp %#x) nor where its handler pointed its pt_regs",
			r.name, c.m.Where(rip), rsp, c.m.Where(r.intRIP), r.intRSP))
	}
	if rsp == r.intRSP-8 && rip != r.intRIP {
		if sym, ok := c.m.syms.lookup(rip); ok && sym.Addr == rip {
			if ret, ok := c.m.mem.read(rsp, 8); ok {
				s.recs = append(s.recs, shadowRec{fn: rip, ret: ret, cfa: rsp + 8})
			}
		}
	}
}

// ShadowStack returns the ground-truth stack of CPU cpu, innermost first.
// The slice is reused by the next call for the same CPU; it does not
// allocate once its buffer has grown.
func (m *Machine) ShadowStack(cpu int) []Frame {
	if cpu < 0 || cpu >= len(m.CPUs) {
		return nil
	}
	c := m.CPUs[cpu]
	s := &c.shadow
	// Every field of every frame is written in place: the frames are
	// large, and a verify loop asks for them at every boundary.
	n := len(s.recs) + 1
	if cap(s.view) < n {
		s.view = make([]Frame, n, n+n/2+4)
	}
	v := s.view[:n]
	s.view = v
	pc, sp := c.RIP, c.GPR[RSP]
	user := c.CPL() == 3
	kind := FrameCall
	lookupPC := pc
	var entry *shadowRec // the entry whose interrupted frame the next frame is
	for i, k := len(s.recs)-1, 0; ; i, k = i-1, k+1 {
		f := &v[k]
		f.PC, f.SP, f.CFA = pc, sp, 0
		if i >= 0 {
			f.CFA = s.recs[i].cfa
		}
		f.Kind = kind
		if user {
			f.Kind = FrameUser
		}
		f.Function = m.funcName(lookupPC)
		f.Stack = m.stackKind(cpu, sp)
		if r := entry; r != nil {
			f.Entry, f.Vector, f.RegsAddr = r.name, r.vector, r.regsAddr
			f.Regs = ptregs.Regs{}
			for d := ptregs.Reg(0); d < 16; d++ {
				f.Regs.Set(d, r.gprs[dwarfToHW[d]])
			}
			f.Regs.Set(ptregs.RSP, r.intRSP)
			f.Regs.Set(ptregs.RIP, r.intRIP)
		} else {
			if f.Entry != "" {
				f.Entry = ""
			}
			f.Vector, f.RegsAddr = -1, 0
			if f.Regs.Mask() != 0 {
				f.Regs = ptregs.Regs{}
			}
		}
		if i < 0 {
			return v
		}
		r := &s.recs[i]
		entry = nil
		if r.entry {
			pc, sp = r.intRIP, r.intRSP
			lookupPC = pc
			kind = FrameInterrupted
			user = r.intCS&3 == 3
			entry = r
		} else {
			pc, sp = r.ret, r.cfa
			lookupPC = pc - 1
			kind = FrameCall
		}
	}
}

// checkPtRegsFindable is the ptregs-findable check, run when an entry stub
// calls its C handler with %rdi = pt_regs: a frame-pointer unwinder must be
// able to get from %rbp to the pt_regs, either through an encoded frame
// pointer (%rbp = pt_regs + 1, Linux's ENCODE_FRAME_POINTER) or through a
// marker record (%rbp → {saved rbp, ret_from_entry_marker}, pt_regs just
// above it).
func (m *Machine) checkPtRegsFindable(c *CPU, target uint64) {
	rbp, rdi := c.GPR[RBP], c.GPR[RDI]
	if rbp == rdi+1 {
		return
	}
	if m.markerRet != 0 && rbp+16 == rdi {
		if ra, ok := m.mem.read(rbp+8, 8); ok && ra == m.markerRet {
			return
		}
	}
	m.violate(c, "ptregs-findable", fmt.Sprintf("call of %s with pt_regs %#x: rbp %#x is neither pt_regs+1 nor a ret_from_entry_marker record",
		m.Where(target), rdi, rbp))
}
