package unwind

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/unwind-dev/unwind/ptregs"
)

// Kernel entry frames.
//
// A pt_regs is found by three signals, tried in this order:
//
//  1. An encoded frame pointer: Linux's ENCODE_FRAME_POINTER leaves
//     rbp = &pt_regs + 1 in the entry stub before it calls the C handler
//     with rsp = &pt_regs. The signal is taken when the frame is that stub:
//     rbp&1 is set and rbp-1 equals the frame's SP (or the frame is in a
//     known entry symbol and rbp-1 lies above SP on the same stack).
//  2. The top of the task stack: a frame whose SP is Hi-168 of a task stack
//     sits on the task's own pt_regs (syscall entry, or the kernel thread's
//     initial frame). A user-mode one is reported as the <user> frame; a
//     kernel-mode one ends the walk ("end of stack", the bottom of a kernel
//     thread).
//  3. A marker return address: entry code that pushes a fake return
//     address to a marker function (ret_from_entry_marker) and the
//     interrupted rbp, then points rbp at that 2-word record, puts the
//     pt_regs right above the record.
//  4. An entry stub without an encoded rbp (entry_SYSCALL_64, or rbp not
//     yet encoded): a plausible pt_regs at SP.
//
// Every candidate must pass ptregs Check (selectors, flags, canonical
// addresses, kernel RIP in text, kernel RSP on a known stack) and the stack
// rules. When nothing else works, the top of an IST stack gives the
// hardware iret frame (a Partial frame) and the top word of an IRQ stack
// the previous stack pointer (Linux 6.1 call_on_irqstack).
//
// The entry kind (Frame.Entry) comes first from the stub's symbol
// (asm_exc_page_fault → "page_fault", asm_sysvec_apic_timer_interrupt →
// "irq:236", entry_SYSCALL_64 → "syscall", asm_exc_nmi/end_repeat_nmi →
// "nmi"), then from orig_ax: a value in [-256,-2] is an IDT stub's pushed
// ~vector ("irq:N"), -1 on an IST stack names that stack's exception, and
// a non-negative orig_ax in a user-mode pt_regs at the top of the task
// stack is a syscall number ("syscall").

// entryStep tries the entry-frame signals. end reports the bottom of a
// kernel thread.
func (u *Unwinder) entryStep(next *Frame) (ok, end bool, err error) {
	f := u.cur
	stub := ""
	if f.SymOK {
		stub = f.Sym.Name
	} else if c := u.opts.Code; c != nil {
		if s, ok := c.Symbol(f.LookupPC); ok {
			stub = s.Name
		}
	}
	isStub := entryFromSymbol(stub) != ""
	rbp, okBP := f.Regs.Get(ptregs.RBP)
	if okBP && rbp&7 == 0 && rbp >= f.SP && rbp-f.SP < 4096 {
		// A marker return address: rbp points at {interrupted rbp,
		// marker}, the pt_regs follows the record.
		if m, ok := u.read64(rbp + 8); ok && u.isEntryMarker(m) {
			if err := u.ptregsFrame(next, rbp+16, stub); err == nil {
				return true, false, nil
			} else {
				return false, false, err
			}
		}
	}
	if okBP && rbp&1 == 1 && rbp > 1 {
		addr := rbp - 1
		if addr == f.SP || (isStub && addr > f.SP && addr-f.SP < 4096) {
			if err := u.ptregsFrame(next, addr, stub); err == nil {
				return true, false, nil
			} else if addr == f.SP {
				return false, false, err
			}
		}
	}
	if s, ok := u.stackOf(f.SP); ok && s.Kind == StackTask && f.SP+ptregs.PtRegsSize == s.Hi && f.Index > 0 {
		if err := u.ptregsFrame(next, f.SP, stub); err != nil {
			return false, false, err
		}
		if !ptregs.UserMode(next.PtRegs.CS) {
			return false, true, nil
		}
		return true, false, nil
	}
	if isStub && f.Index > 0 {
		if err := u.ptregsFrame(next, f.SP, stub); err == nil {
			return true, false, nil
		}
	}
	return false, false, nil
}

func (u *Unwinder) stackOf(addr uint64) (Stack, bool) {
	if u.opts.Stacks == nil {
		return Stack{}, false
	}
	return u.opts.Stacks.StackOf(addr)
}

func (u *Unwinder) checkOptions() ptregs.CheckOptions {
	var o ptregs.CheckOptions
	if u.opts.Code != nil {
		o.IsText = u.opts.Code.IsText
	}
	if u.opts.Stacks != nil {
		o.OnStack = func(sp uint64) bool { _, ok := u.opts.Stacks.StackOf(sp); return ok }
	}
	return o
}

// ptregsFrame reads and validates a pt_regs at addr and fills next with the
// interrupted frame it describes.
func (u *Unwinder) ptregsFrame(next *Frame, addr uint64, stub string) error {
	if u.mem == nil {
		return errors.New("no memory")
	}
	if n, err := u.mem.ReadAt(u.block[:], addr); n != len(u.block) {
		if err == nil {
			err = &MemoryError{Addr: addr, Len: len(u.block)}
		}
		return fmt.Errorf("pt_regs at %#x: %w", addr, err)
	}
	p, err := ptregs.DecodePtRegs(u.block[:])
	if err != nil {
		return err
	}
	if err := p.Check(u.checkOptions()); err != nil {
		return fmt.Errorf("pt_regs at %#x: %w", addr, err)
	}
	if !ptregs.Canonical(p.SP) || !ptregs.Canonical(p.IP) {
		return fmt.Errorf("pt_regs at %#x: non-canonical ip or sp", addr)
	}
	if !ptregs.UserMode(p.CS) && !u.isText(p.IP) && u.opts.Code != nil {
		// A kernel RIP outside text is only believable for a call through
		// a bad pointer (#PF on instruction fetch); keep it, the next step
		// takes the caller from [sp].
		if p.IP != 0 && p.OrigAX&0x10 == 0 {
			return fmt.Errorf("pt_regs at %#x: kernel ip %#x is not text", addr, p.IP)
		}
	}
	s, _ := u.stackOf(addr)
	*next = Frame{PC: p.IP, LookupPC: p.IP, SP: p.SP, Slot: addr + ptregs.PtRegsIretOffset,
		Regs: p.Regs(), Kind: KindInterrupted, PtRegs: p, RegsAddr: addr, Method: MethodPtRegs, Reliable: true,
		Entry: entryName(stub, &p, s.Kind)}
	return nil
}

// entryMarkers are the fake return addresses entry code pushes before
// calling a handler, so that a frame-pointer walk can tell that a pt_regs
// follows (the fixture kernel's vector 0xed stub).
var entryMarkers = map[string]bool{"ret_from_entry_marker": true}

// isEntryMarker reports whether pc is the first byte of an entry marker
// function.
func (u *Unwinder) isEntryMarker(pc uint64) bool {
	if u.opts.Code == nil || pc == 0 {
		return false
	}
	s, ok := u.symbol(pc)
	return ok && s.Addr == pc && entryMarkers[s.Name]
}

// stackTopStep is the fallback at the end of an exception or IRQ stack.
func (u *Unwinder) stackTopStep(next *Frame) (bool, error) {
	f := u.cur
	s, ok := u.stackOf(f.SP)
	if !ok {
		return false, nil
	}
	switch s.Kind {
	case StackNMI, StackDB, StackDF, StackMC, StackVC:
		addr := s.Hi - ptregs.IretFrameSize
		var b [ptregs.IretFrameSize]byte
		if n, _ := u.mem.ReadAt(b[:], addr); n != len(b) {
			return false, fmt.Errorf("iret frame at %#x unreadable", addr)
		}
		fr, err := ptregs.DecodeIretFrame(b[:])
		if err != nil {
			return false, err
		}
		if err := fr.Check(u.checkOptions()); err != nil {
			return false, err
		}
		p := ptregs.PtRegs{IP: fr.IP, CS: fr.CS, Flags: fr.Flags, SP: fr.SP, SS: fr.SS, OrigAX: ^uint64(0)}
		regs := fr.Regs()
		if f.Index == 0 {
			// Stopped in the entry stub before it saved anything: rbp
			// still holds the interrupted code's value.
			if v, ok := f.Regs.Get(ptregs.RBP); ok {
				regs.Set(ptregs.RBP, v)
			}
		}
		*next = Frame{PC: fr.IP, LookupPC: fr.IP, SP: fr.SP, Slot: addr, Regs: regs,
			Kind: KindInterrupted, Partial: true, PtRegs: p, RegsAddr: addr, Method: MethodPtRegs,
			Reliable: true, Entry: entryName("", &p, s.Kind)}
		return true, nil
	case StackIRQ:
		prev, ok1 := u.read64(s.Hi - 8)
		ra, ok2 := u.read64(s.Hi - 16)
		if !ok1 || !ok2 || !u.isRetText(ra) || s.Contains(prev) {
			return false, errors.New("irq stack top holds no previous stack pointer")
		}
		var regs ptregs.Regs
		// A convention, not a validated entry frame: never reliable.
		callFrame(next, ra, prev, 0, s.Hi-16, regs, MethodPtRegs, false)
		return true, nil
	}
	return false, nil
}

// fixIRQTop corrects a caller SP that landed on the top word of an IRQ
// stack: Linux 6.1's call_on_irqstack saves the previous stack pointer
// there and calls the handler, so the caller's real SP is that word.
func (u *Unwinder) fixIRQTop(next *Frame) {
	if !u.opts.Kernel || u.opts.Stacks == nil {
		return
	}
	s, ok := u.opts.Stacks.StackOf(next.SP)
	if !ok || s.Kind != StackIRQ || next.SP != s.Hi-8 {
		return
	}
	prev, ok := u.read64(next.SP)
	if !ok || s.Contains(prev) {
		return
	}
	if _, ok := u.opts.Stacks.StackOf(prev); !ok {
		return
	}
	next.SP = prev
	next.Regs.Set(ptregs.RSP, prev)
}

// sysvecVectors maps Linux system-vector entry names to their vectors.
var sysvecVectors = map[string]int{
	"apic_timer_interrupt": 0xec, "spurious_apic_interrupt": 0xff, "error_interrupt": 0xfe,
	"reschedule_ipi": 0xfd, "call_function": 0xfc, "call_function_single": 0xfb,
	"thermal": 0xfa, "threshold": 0xf9, "reboot": 0xf8, "x86_platform_ipi": 0xf7,
	"irq_work": 0xf6, "kvm_posted_intr_ipi": 0xf2, "kvm_posted_intr_wakeup_ipi": 0xf1,
	"kvm_posted_intr_nested_ipi": 0xf0, "hyperv_callback": 0xf3, "xen_hvm_callback": 0xf3,
	"deferred_error": 0xf4, "marker_interrupt": 0xed,
}

// exceptionNames maps asm_exc_* suffixes to entry names.
var exceptionNames = map[string]string{
	"nmi": "nmi", "page_fault": "page_fault", "debug": "debug", "int3": "int3",
	"double_fault": "double_fault", "general_protection": "general_protection",
	"machine_check": "machine_check", "divide_error": "divide_error",
	"invalid_op": "invalid_op", "overflow": "overflow", "bounds": "bounds",
	"device_not_available": "device_not_available", "invalid_tss": "invalid_tss",
	"segment_not_present": "segment_not_present", "stack_segment": "stack_segment",
	"alignment_check": "alignment_check", "coprocessor_error": "coprocessor_error",
	"simd_coprocessor_error": "simd_coprocessor_error", "control_protection": "control_protection",
	"vmm_communication": "vmm_communication", "spurious_interrupt_bug": "spurious_interrupt_bug",
}

// entryFromSymbol names the entry a stub symbol belongs to ("" when the
// symbol is no known entry stub).
func entryFromSymbol(name string) string {
	switch {
	case name == "":
		return ""
	case strings.HasPrefix(name, "entry_SYSCALL"), strings.HasPrefix(name, "entry_SYSENTER"),
		name == "entry_INT80_compat":
		return "syscall"
	case name == "end_repeat_nmi", name == "repeat_nmi", name == "first_nmi", name == "nested_nmi",
		name == "nested_nmi_out", name == "nmi_restore", name == "asm_exc_nmi_noist",
		strings.HasPrefix(name, "asm_exc_nmi"):
		return "nmi"
	case strings.HasPrefix(name, "asm_sysvec_"), strings.HasPrefix(name, "asm_trace_"):
		n := strings.TrimPrefix(strings.TrimPrefix(name, "asm_sysvec_"), "asm_trace_")
		if v, ok := sysvecVectors[n]; ok {
			return "irq:" + strconv.Itoa(v)
		}
		return "irq"
	case name == "asm_common_interrupt", name == "asm_spurious_interrupt", strings.HasPrefix(name, "irq_entries_start"),
		strings.HasPrefix(name, "spurious_entries_start"):
		return "irq"
	case strings.HasPrefix(name, "asm_exc_"):
		n := strings.TrimPrefix(name, "asm_exc_")
		if e, ok := exceptionNames[n]; ok {
			return e
		}
		return n
	case name == "ret_from_fork", name == "ret_from_fork_asm":
		return "fork"
	}
	return ""
}

// entryName decides Frame.Entry for a pt_regs found below stub's frame on a
// stack of kind sk.
func entryName(stub string, p *ptregs.PtRegs, sk StackKind) string {
	e := entryFromSymbol(stub)
	orig := int64(p.OrigAX)
	if e == "irq" && (stub == "asm_common_interrupt" || stub == "asm_spurious_interrupt") {
		return "irq:" + strconv.Itoa(int(p.OrigAX&0xff))
	}
	if e != "" {
		return e
	}
	if orig <= -2 && orig >= -256 {
		return "irq:" + strconv.Itoa(int(^p.OrigAX&0xff))
	}
	switch sk {
	case StackNMI:
		return "nmi"
	case StackDB:
		return "debug"
	case StackDF:
		return "double_fault"
	case StackMC:
		return "machine_check"
	case StackVC:
		return "vmm_communication"
	}
	if ptregs.UserMode(p.CS) && orig >= 0 {
		return "syscall"
	}
	if orig == -1 {
		return "exception"
	}
	return "exception"
}
