package unwind

import (
	"errors"
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// The ORC strategy follows Linux's arch/x86/kernel/unwind_orc.c
// (unwind_next_frame): the entry at the frame's pc (the pc itself for
// frame 0 and interrupted frames, pc-1 for a return address) gives the
// caller's stack pointer (CFA) from sp, bp, an indirect word, or one of
// the registers a pt_regs saved; then a CALL entry's return address is at
// CFA-8, a REGS entry's pt_regs at the CFA, a REGS_PARTIAL entry's
// hardware iret frame at the CFA; the caller's rbp is at CFA+bp_offset,
// at rbp+bp_offset, or unchanged. The pt_regs and iret frames are built by
// the same code as the other strategies' entry frames (ptregsFrame,
// iretFrame), so they carry the same entry names, registers and stacks.
// As in the kernel, pc 0 (a call through a NULL function pointer, as
// interrupted by the #PF) has an entry of its own: the return address at
// sp. Unlike the kernel, the return address of a CALL frame must pass the
// call-site check (callSiteCheck) for the frame to be reliable, and an ORC
// end of stack is a proper end only in a function where a stack ends
// (orcEnds): Linux 6.1's UNWIND_HINT_EMPTY also marks the retpoline
// thunks and return_to_handler with the end bit.

// nullORC is the kernel's null_orc_entry: the entry of pc 0.
var nullORC = symbols.ORCEntry{SPOffset: 8, SPReg: symbols.ORCRegSP, BPReg: symbols.ORCRegUndefined, Type: symbols.ORCCall}

// orcEnds are the functions, besides outermostFuncs, whose ORC end marks
// a real end of the kernel stack: the syscall entries before they build
// their pt_regs and the exits after they left it (the user context is in
// registers), and the boot and CPU bring-up code.
var orcEnds = map[string]bool{
	"entry_SYSCALL_64": true, "entry_SYSCALL_compat": true, "entry_SYSENTER_compat": true,
	"syscall_return_via_sysret": true, "common_interrupt_return": true,
	"startup_64": true, "startup_xen": true, "asm_cpu_bringup_and_idle": true,
	"secondary_startup_64_no_verify": true,
}

var (
	errORCUndefined = errors.New("orc: no unwind information here (undefined entry)")
	errORCEnd       = errors.New("orc: end of stack marked in a function where no stack ends")
	errORCNoReg     = errors.New("orc: the stack pointer is in a register no pt_regs gave")
)

// orcStep unwinds the current frame with its ORC entry. found says ORC
// had an entry for the pc; end reports a proper end of the stack.
func (u *Unwinder) orcStep(next *Frame) (ok, end bool, err error) {
	f := u.cur
	var e symbols.ORCEntry
	if f.PC == 0 && (f.Index == 0 || f.Interrupted()) {
		e = nullORC
	} else {
		var found bool
		if e, found = u.findORC(f); !found {
			return false, false, nil
		}
	}
	switch e.Type {
	case symbols.ORCUndefined:
		return false, false, errORCUndefined
	case symbols.ORCEndOfStack:
		if u.outermost(f) {
			return false, true, nil
		}
		if name, _ := u.stubOf(f); orcEnds[name] {
			return false, true, nil
		}
		return false, false, errORCEnd
	}
	bp, okBP := f.Regs.Get(ptregs.RBP)
	var cfa uint64
	switch e.SPReg {
	case symbols.ORCRegSP:
		cfa = f.SP + uint64(int64(e.SPOffset))
	case symbols.ORCRegBP:
		if !okBP {
			return false, false, errFPNoRBP
		}
		cfa = bp + uint64(int64(e.SPOffset))
	case symbols.ORCRegSPIndirect:
		v, ok := u.read64(f.SP)
		if !ok {
			return false, false, u.errorf("orc: cannot read the stack pointer saved at %#x", xarg(f.SP))
		}
		cfa = v + uint64(int64(e.SPOffset))
	case symbols.ORCRegBPIndirect:
		if !okBP {
			return false, false, errFPNoRBP
		}
		a := bp + uint64(int64(e.SPOffset))
		v, ok := u.read64(a)
		if !ok {
			return false, false, u.errorf("orc: cannot read the stack pointer saved at %#x", xarg(a))
		}
		cfa = v
	case symbols.ORCRegR10, symbols.ORCRegR13, symbols.ORCRegDI, symbols.ORCRegDX:
		// Only known from a pt_regs (or the initial registers), as
		// the kernel's get_reg.
		v, ok := f.Regs.Get(orcGPR[e.SPReg])
		if !ok {
			return false, false, errORCNoReg
		}
		cfa = v
	default:
		return false, false, fmt.Errorf("orc: unknown sp base register %d", e.SPReg)
	}
	switch e.Type {
	case symbols.ORCCall:
		return u.orcCall(next, &e, cfa, bp, okBP)
	case symbols.ORCRegs:
		stub, entry := u.stubOf(f)
		if err := u.ptregsFrame(next, cfa, stub, entry, true, false); err != nil {
			return false, false, err
		}
		next.Method = MethodORC
		return true, false, nil
	case symbols.ORCRegsPartial:
		b := u.scratch[:ptregs.IretFrameSize]
		if n, _ := u.readAt(b, cfa); n != len(b) {
			return false, false, u.errorf("orc: iret frame at %#x unreadable", xarg(cfa))
		}
		fr, err := ptregs.DecodeIretFrame(b)
		if err != nil {
			return false, false, err
		}
		opt := u.checkOptions()
		opt.IsText = nil // a NULL call's RIP 0 is the caller's problem, as for a pt_regs
		if err := fr.Check(opt); err != nil || !ptregs.Canonical(fr.IP) {
			return false, false, fmt.Errorf("orc: iret frame at %#x: %v", cfa, err)
		}
		stub, entry := u.stubOf(f)
		s, _ := u.stackOf(cfa)
		u.iretFrame(next, &fr, cfa, stub, entry, s.Kind)
		next.Method = MethodORC
		if e.BPReg != symbols.ORCRegUndefined {
			if v, ok := u.orcBP(&e, cfa, bp, okBP); ok {
				next.Regs.Set(ptregs.RBP, v)
				next.PtRegs.BP = v
			}
		}
		return true, false, nil
	}
	return false, false, fmt.Errorf("orc: unknown entry type %v", e.Type)
}

// orcGPR maps the ORC registers a pt_regs holds to DWARF numbering.
var orcGPR = [...]ptregs.Reg{symbols.ORCRegR10: ptregs.R10, symbols.ORCRegR13: ptregs.R13, symbols.ORCRegDI: ptregs.RDI, symbols.ORCRegDX: ptregs.RDX}

// orcBP recovers the caller's rbp by the entry's bp rule; false when it is
// unknown.
func (u *Unwinder) orcBP(e *symbols.ORCEntry, cfa, bp uint64, okBP bool) (uint64, bool) {
	switch e.BPReg {
	case symbols.ORCRegUndefined:
		return bp, okBP
	case symbols.ORCRegPrevSP:
		return u.read64(cfa + uint64(int64(e.BPOffset)))
	case symbols.ORCRegBP:
		if !okBP {
			return 0, false
		}
		return u.read64(bp + uint64(int64(e.BPOffset)))
	}
	return 0, false
}

// orcCall builds the caller of a CALL entry whose CFA is cfa.
func (u *Unwinder) orcCall(next *Frame, e *symbols.ORCEntry, cfa, bp uint64, okBP bool) (ok, end bool, err error) {
	ra, okRA := u.read64(cfa - 8)
	if !okRA {
		return false, false, u.errorf("orc: cannot read the return address at %#x", xarg(cfa-8))
	}
	if !u.isRetText(ra) {
		return false, false, u.errorf("orc: return address %#x is not text", xarg(ra))
	}
	var regs ptregs.Regs
	switch e.BPReg {
	case symbols.ORCRegUndefined, symbols.ORCRegPrevSP, symbols.ORCRegBP:
		if v, ok := u.orcBP(e, cfa, bp, okBP); ok {
			regs.Set(ptregs.RBP, v)
		} else if e.BPReg != symbols.ORCRegUndefined {
			return false, false, u.errorf("orc: cannot read the saved rbp of the frame at %#x", xarg(cfa))
		}
	default:
		return false, false, fmt.Errorf("orc: unknown bp base register %d", e.BPReg)
	}
	// ORC says where the return address is; emit's call-site check
	// (pcTrusted) decides whether it is one.
	callFrame(next, ra, cfa, cfa, cfa-8, &regs, MethodORC, true)
	if e.Signal {
		// Linux 6.3+: the caller's pc is looked up as is.
		next.LookupPC = ra
	}
	return true, false, nil
}

// findORC returns the ORC entry at f's lookup PC, kept in the PC's cache
// entry when the caches are on.
func (u *Unwinder) findORC(f *Frame) (symbols.ORCEntry, bool) {
	if u.c == nil {
		return u.orc.FindORC(f.LookupPC)
	}
	c := u.entry(f.PC, f.LookupPC)
	if !c.has(efORC) {
		e, ok := u.orc.FindORC(f.LookupPC)
		c.orc = e
		c.set(efORC, efORCOK, ok)
	}
	return c.orc, c.has(efORCOK)
}
