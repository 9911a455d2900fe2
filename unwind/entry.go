package unwind

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
//     initial frame). A user-mode one is reported as the <user> frame; an
//     all-zero one, a kernel thread's as copy_thread leaves it, ends the
//     walk ("end of stack"), checked before signal 1 since copy_thread
//     also points an encoded rbp at it; a kernel selector there is an
//     error.
//  3. A marker return address: entry code that pushes a fake return
//     address to a marker function (Options.EntryMarkers) and the
//     interrupted rbp, then points rbp at that 2-word record, puts the
//     pt_regs right above the record.
//  4. An entry stub without an encoded rbp (entry_SYSCALL_64, or rbp not
//     yet encoded): a plausible pt_regs at SP.
//
// Every candidate must pass ptregs Check (selectors, flags, canonical
// addresses, kernel RIP in text, kernel RSP on a known stack) and the stack
// rules. A pt_regs found by a cross-checked signal (the encoded rbp equal
// to SP in a known entry stub, a marker record) need only have a canonical
// kernel RIP: a call through a NULL pointer faults with RIP 0, and the next
// step takes the caller from [sp]. When nothing else works, the top of an IST stack gives the
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
	stub, entry := u.stubOf(f)
	isStub := entry != ""
	rbp, okBP := f.Regs.Get(ptregs.RBP)
	top := u.opts.Stacks != nil && f.Index > 0 && u.stackAt(f.SP).taskTop
	if top && u.zeroPtRegs(f.SP) {
		// A kernel thread's bottom, whatever points at it:
		// copy_thread also leaves rbp encoding this pt_regs's
		// address (the encoded-rbp signal below would reject it).
		return false, true, nil
	}
	if okBP && rbp&7 == 0 && (rbp == f.SP || (isStub && rbp > f.SP && rbp-f.SP < 4096)) {
		// A marker return address: rbp points at {interrupted rbp,
		// marker}, the pt_regs follows the record. Only in the stub
		// itself (rbp == SP after its handler returned, or an entry
		// symbol): a handler that has not yet set up its own frame
		// still has the stub's rbp, and taking the record there would
		// skip the stub.
		if m, ok := u.read64(rbp + 8); ok && u.isEntryMarker(m) {
			if err := u.ptregsFrame(next, rbp+16, stub, entry, true, false); err == nil {
				return true, false, nil
			} else {
				return false, false, err
			}
		}
	}
	if okBP && rbp&1 == 1 && rbp > 1 {
		addr := rbp - 1
		if addr == f.SP || (isStub && addr > f.SP && addr-f.SP < 4096) {
			// Cross-checked: the encoded rbp points at SP, and the frame
			// is a known entry stub. Such a pt_regs is believed even when
			// its RIP is not text (a call through a NULL pointer).
			strong := isStub && addr == f.SP
			if err := u.ptregsFrame(next, addr, stub, entry, strong, addr != f.SP); err == nil {
				return true, false, nil
			} else if addr == f.SP {
				return false, false, err
			}
		}
	}
	if top {
		if err := u.ptregsFrame(next, f.SP, stub, entry, false, false); err != nil {
			return false, false, err
		}
		if cs := next.PtRegs.CS; !ptregs.UserMode(cs) {
			// Where user entry saved its registers, a kernel
			// selector: inconsistent, not an end.
			return false, true, fmt.Errorf("pt_regs at %#x, the top of the task stack: kernel-mode cs %#x where a kernel thread has zeros and a syscall user mode", f.SP, cs)
		}
		return true, false, nil
	}
	if isStub && f.Index > 0 {
		if err := u.ptregsFrame(next, f.SP, stub, entry, false, true); err == nil {
			return true, false, nil
		}
	}
	return false, false, nil
}

// zeroPtRegs reports whether the pt_regs at addr is all zero, as
// copy_thread leaves a kernel thread's task_pt_regs().
func (u *Unwinder) zeroPtRegs(addr uint64) bool {
	if u.mem == nil {
		return false
	}
	if n, _ := u.readAt(u.block[:], addr); n != len(u.block) {
		return false
	}
	for _, b := range u.block {
		if b != 0 {
			return false
		}
	}
	return true
}

func (u *Unwinder) checkOptions() ptregs.CheckOptions {
	var o ptregs.CheckOptions
	if u.opts.Code != nil {
		o.IsText = u.opts.Code.IsText
	}
	if u.opts.Stacks != nil {
		o.OnStack = u.onKnownStack
	}
	return o
}

// ptregsFrame reads and validates a pt_regs at addr and fills next with the
// interrupted frame it describes. strong says the pt_regs was found by a
// cross-checked signal (an encoded rbp equal to SP in a known entry stub, a
// marker return address, a CFI signal frame of an entry stub): its kernel
// RIP then need only be canonical, not text, since a call through a NULL or
// wild pointer faults with exactly such a RIP; the next step takes the
// caller from [sp]. entry is entryFromSymbol(stub). quiet says the caller
// drops the error of a rejected candidate: it is then errRejected, not a
// description.
func (u *Unwinder) ptregsFrame(next *Frame, addr uint64, stub, entry string, strong, quiet bool) error {
	if u.mem == nil {
		return errNoMemory
	}
	if n, err := u.readAt(u.block[:], addr); n != len(u.block) {
		if quiet {
			return errRejected
		}
		if err == nil {
			err = &MemoryError{Addr: addr, Len: len(u.block)}
		}
		return fmt.Errorf("pt_regs at %#x: %w", addr, err)
	}
	p, err := ptregs.DecodePtRegs(u.block[:])
	if err != nil {
		return err
	}
	if p.CS != 0 && !ptregs.UserMode(p.CS) && u.opts.Stacks != nil && u.stackAt(addr).taskTop {
		// Where user entry saves its registers (a kernel thread's are
		// all zero): inconsistent, whichever signal found it.
		return fmt.Errorf("pt_regs at %#x, the top of the task stack: kernel-mode cs %#x where a kernel thread has zeros and a syscall user mode", addr, p.CS)
	}
	opt := u.checkOptions()
	if strong {
		opt.IsText = nil
	}
	if !p.Plausible(opt) || !ptregs.Canonical(p.SP) || !ptregs.Canonical(p.IP) {
		if quiet {
			return errRejected
		}
		return u.deferPtRegs(addr, &p, strong)
	}
	s, _ := u.stackOf(addr)
	*next = Frame{PC: p.IP, LookupPC: p.IP, SP: p.SP, Slot: addr + ptregs.PtRegsIretOffset,
		Regs: p.Regs(), Kind: KindInterrupted, PtRegs: p, RegsAddr: addr, Method: MethodPtRegs, Reliable: true,
		Entry: entryNameOf(stub, entry, &p, s.Kind), nullCall: strong && p.IP == 0}
	return nil
}

// deferredPtRegs is a rejected pt_regs candidate whose error has not been
// built: the kernel thread's initial frame at the top of every task stack
// is one, and another strategy nearly always finds the caller instead.
type deferredPtRegs struct {
	set    bool
	addr   uint64
	strong bool
	p      ptregs.PtRegs
}

// deferPtRegs returns errDeferred for the rejected pt_regs p at addr and
// keeps what realize needs to describe it. The description lives until
// the next step; a second rejection in the same step is described at once.
func (u *Unwinder) deferPtRegs(addr uint64, p *ptregs.PtRegs, strong bool) error {
	if u.def.set {
		return u.ptregsError(addr, p, strong)
	}
	u.def = deferredPtRegs{set: true, addr: addr, strong: strong, p: *p}
	return errDeferred
}

// ptregsError describes why the pt_regs p at addr was rejected.
func (u *Unwinder) ptregsError(addr uint64, p *ptregs.PtRegs, strong bool) error {
	opt := u.checkOptions()
	if strong {
		opt.IsText = nil
	}
	if err := p.Check(opt); err != nil {
		return fmt.Errorf("pt_regs at %#x: %w", addr, err)
	}
	return fmt.Errorf("pt_regs at %#x: non-canonical ip or sp", addr)
}

// realize returns err, with errDeferred (or errLazy) replaced by the
// description it stands for.
func (u *Unwinder) realize(err error) error {
	switch {
	case err == errDeferred && u.def.set:
		return u.ptregsError(u.def.addr, &u.def.p, u.def.strong)
	case err == errLazy && u.lazy.set:
		return u.lazy.build()
	}
	return err
}

// lazyErr is a step error kept as its format and arguments: a candidate
// caller rejected by one strategy is usually found by the next, and its
// error is then never read.
type lazyErr struct {
	set    bool
	n      uint8
	format string
	args   [3]larg
}

// larg is an argument of a lazyErr: a uint64, or a StackKind.
type larg struct {
	v    uint64
	kind bool
}

func xarg(v uint64) larg    { return larg{v: v} }
func karg(k StackKind) larg { return larg{v: uint64(k), kind: true} }

// errorf returns errLazy for fmt.Errorf(format, args...) and keeps what
// realize needs to build it, until the next step. A second error in the
// same step is built at once.
func (u *Unwinder) errorf(format string, args ...larg) error {
	l := lazyErr{set: true, format: format, n: uint8(len(args))}
	copy(l.args[:], args)
	if u.lazy.set || len(args) > len(l.args) {
		return l.build()
	}
	u.lazy = l
	return errLazy
}

func (l *lazyErr) build() error {
	var a [len(l.args)]any
	for i, x := range l.args[:l.n] {
		if x.kind {
			a[i] = StackKind(x.v)
		} else {
			a[i] = x.v
		}
	}
	return fmt.Errorf(l.format, a[:l.n]...)
}

var (
	// errDeferred stands for the error of the step's deferredPtRegs,
	// errLazy for its lazyErr.
	errDeferred = errors.New("pt_regs rejected")
	errLazy     = errors.New("step failed")
	errNoMemory = errors.New("no memory")
	// errRejected is the error of a candidate frame whose caller does not
	// want to know why it was rejected.
	errRejected = errors.New("candidate rejected")
)

// isEntryMarker reports whether pc is one of Options.EntryMarkers: a fake
// return address entry code pushes before calling a handler, so that a
// frame-pointer walk can tell that a pt_regs follows.
func (u *Unwinder) isEntryMarker(pc uint64) bool {
	if pc == 0 {
		return false
	}
	for _, m := range u.opts.EntryMarkers {
		if m == pc {
			return true
		}
	}
	return false
}

// entryOf is entryFromSymbol with Options.EntryVectors applied first.
func (u *Unwinder) entryOf(stub string) string {
	if v, ok := u.opts.EntryVectors[stub]; ok {
		return irqName(v)
	}
	return entryFromSymbol(stub)
}

// Linux 6.1's nested-NMI layout at the top of the NMI (IST) stack, as
// offsets below its top: the hardware frame of the latest NMI, the saved
// rdx, the "NMI executing" word, the "iret" frame (a nested NMI points it
// at repeat_nmi), the "outermost" frame (the copy of the first NMI's
// hardware frame the kernel keeps and repeats from), then pt_regs.
const (
	nmiOriginal  = ptregs.IretFrameSize       // Hi-40
	nmiExecuting = nmiOriginal + 16           // Hi-56
	nmiOutermost = nmiExecuting + 8 + 40 + 40 // Hi-136
)

// nmiFrameAt returns where the iret frame describing the interrupted
// context lies while the NMI entry code (not its C handler) runs at the
// label name on the NMI stack s: the hardware frame at the top until
// first_nmi has copied it; from repeat_nmi on, the "outermost" copy (the
// top may hold a nested NMI's frame by then, and the "iret" frame may
// point at repeat_nmi).
func nmiFrameAt(name string, s Stack) (uint64, bool) {
	switch name {
	case "asm_exc_nmi", "nested_nmi", "nested_nmi_out", "first_nmi":
		return s.Hi - nmiOriginal, true
	case "repeat_nmi", "end_repeat_nmi", "nmi_swapgs", "nmi_restore":
		return s.Hi - nmiOutermost, true
	}
	return 0, false
}

// maxStubScan bounds how far above SP an entry stub's hardware frame can
// be: orig_ax, the 15 saved registers, the int3 gap (6 words) and the
// error-code slot, with room to spare.
const maxStubScan = 32 * 8

// stubStep finds the interrupted context of a frame stopped in an entry
// stub before the stub has built (or after it has dismantled) its pt_regs,
// where neither an encoded rbp nor a marker exists: on the NMI stack from
// the nested-NMI layout, otherwise the first plausible hardware iret frame
// above SP. The result is a Partial frame.
func (u *Unwinder) stubStep(next *Frame, stub, e string) (bool, error) {
	f := u.cur
	if !exactSP(f) {
		return false, nil
	}
	if e == "" || e == "syscall" || e == "fork" {
		return false, nil
	}
	s, okS := u.stackOf(f.SP)
	b := u.scratch[:]
	if e == "nmi" && okS && s.Kind == StackNMI {
		addr, ok := nmiFrameAt(stub, s)
		if !ok || addr < f.SP && stub != "nmi_restore" {
			return false, nil
		}
		if n, _ := u.readAt(b[:ptregs.IretFrameSize], addr); n != ptregs.IretFrameSize {
			return false, fmt.Errorf("nmi frame at %#x unreadable", addr)
		}
		fr, err := ptregs.DecodeIretFrame(b[:ptregs.IretFrameSize])
		if err != nil {
			return false, err
		}
		if err := fr.Check(u.checkOptions()); err != nil {
			return false, fmt.Errorf("nmi frame at %#x: %w", addr, err)
		}
		u.iretFrame(next, &fr, addr, stub, e, s.Kind)
		return true, nil
	}
	// Read what lies between SP and the stub's deepest possible frame.
	n, _ := u.readAt(b, f.SP)
	opt := u.checkOptions()
	for off := 0; off+ptregs.IretFrameSize <= n; off += 8 {
		fr, err := ptregs.DecodeIretFrame(b[off : off+ptregs.IretFrameSize])
		if err != nil || !fr.Plausible(opt) {
			continue
		}
		addr := f.SP + uint64(off)
		top := okS && addr+ptregs.IretFrameSize == s.Hi
		switch {
		case ptregs.UserMode(fr.CS):
			// From user mode the CPU switched to the top of a stack.
			if !top {
				continue
			}
		case pushedBelow(addr, fr.SP):
		case top && istEntryOf(s.Kind, e):
			// An IST entry's frame at the top of its own stack.
		case okS && istEntryOf(s.Kind, e) && addr+int3GapCopy+ptregs.IretFrameSize == s.Hi &&
			off+int3GapCopy+ptregs.IretFrameSize <= n &&
			bytes.Equal(b[off:off+ptregs.IretFrameSize], b[off+int3GapCopy:off+int3GapCopy+ptregs.IretFrameSize]):
			// The int3 entry's copy of the frame at the top of its IST
			// stack (the call-emulation gap): the pt_regs is built
			// below the copy, so the copy anchors the saved rbp.
		default:
			continue
		}
		u.iretFrame(next, &fr, addr, stub, e, s.Kind)
		if off > ptregs.PtRegsSize+int3GapCopy {
			// Deeper than the stub itself pushes (a pt_regs, the
			// int3 gap): the frame of another entry, found because
			// this one's was unreadable or overwritten.
			next.Reliable = false
		}
		return true, nil
	}
	return false, errNoStubFrame
}

// pushedBelow reports whether a kernel-mode iret frame at addr can have
// been pushed on the interrupted code's own stack, whose stack pointer was
// sp: the CPU aligns sp down to 16 and pushes the frame and an error code
// right below it, and the int3 entry may have copied the frame 48 bytes
// lower (the call-emulation gap).
func pushedBelow(addr, sp uint64) bool {
	end := addr + ptregs.IretFrameSize
	return sp >= end && sp-end <= 8+15+int3GapCopy
}

// int3GapCopy is how far below the hardware frame Linux's int3 entry (and
// the fixture kernel's) copies it, orig_ax included, to leave a gap for
// int3_emulate_call's pushed return address.
const int3GapCopy = 48

// istEntryOf reports whether entry e is delivered on IST stacks of kind k.
func istEntryOf(k StackKind, e string) bool {
	switch k {
	case StackNMI:
		return e == "nmi"
	case StackDB:
		return e == "debug" || e == "int3"
	case StackDF:
		return e == "double_fault"
	case StackMC:
		return e == "machine_check"
	}
	return false
}

// iretFrame fills next with the Partial interrupted frame a hardware iret
// frame at addr describes.
func (u *Unwinder) iretFrame(next *Frame, fr *ptregs.IretFrame, addr uint64, stub, e string, sk StackKind) {
	p := ptregs.PtRegs{IP: fr.IP, CS: fr.CS, Flags: fr.Flags, SP: fr.SP, SS: fr.SS, OrigAX: ^uint64(0)}
	regs := fr.Regs()
	if v, ok := u.stubRBP(addr, stub); ok {
		regs.Set(ptregs.RBP, v)
		p.BP = v
	}
	*next = Frame{PC: fr.IP, LookupPC: fr.IP, SP: fr.SP, Slot: addr, Regs: regs,
		Kind: KindInterrupted, Partial: true, PtRegs: p, RegsAddr: addr, Method: MethodPtRegs,
		Reliable: true, Entry: entryNameOf(stub, e, &p, sk)}
}

// stubRBP recovers the interrupted rbp in an entry stub whose hardware
// frame is at addr, for the frame-pointer walk to go on: the stub's
// pt_regs lies right below the frame, and PUSH_AND_CLEAR_REGS changes rbp
// only after pushing it. So when rbp's pt_regs slot is at or above SP it
// holds the value (pushed, or popped on the way out but still in memory);
// below SP it has not been pushed yet (or has been popped again), and rbp
// itself still (again) holds the value. The NMI entry keeps rbp untouched
// until end_repeat_nmi builds its pt_regs below the outermost frame.
func (u *Unwinder) stubRBP(addr uint64, stub string) (uint64, bool) {
	f := u.cur
	cur, okCur := f.Regs.Get(ptregs.RBP)
	if f.Kind == KindCall && f.Index > 0 {
		okCur = false // a caller's rbp is the one saved in its frame record
	}
	switch stub {
	case "asm_exc_nmi", "nested_nmi", "nested_nmi_out", "first_nmi", "repeat_nmi":
		if addr >= f.SP {
			return cur, okCur
		}
	}
	const rbpOff = 4 * 8 // pt_regs->bp
	if addr < ptregs.PtRegsIretOffset {
		return 0, false
	}
	slot := addr - ptregs.PtRegsIretOffset + rbpOff
	if slot >= f.SP {
		return u.read64(slot)
	}
	return cur, okCur
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
		b := u.scratch[:ptregs.IretFrameSize]
		if n, _ := u.readAt(b, addr); n != len(b) {
			return false, fmt.Errorf("iret frame at %#x unreadable", addr)
		}
		fr, err := ptregs.DecodeIretFrame(b)
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
			return false, errNoIRQPrev
		}
		var regs ptregs.Regs
		// A convention, not a validated entry frame: never reliable.
		callFrame(next, ra, prev, 0, s.Hi-16, &regs, MethodPtRegs, false)
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
	a := u.stackAt(next.SP)
	if !a.irqTop {
		return
	}
	s := &a.s
	prev, ok := u.read64(next.SP)
	if !ok || s.holds(prev) {
		return
	}
	if _, ok := u.stackOf(prev); !ok {
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
	"deferred_error": 0xf4,
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

// irqNames gives the entry names of the 256 vectors, "irq:0" to
// "irq:255", built on first use (not at every process's start) and once,
// so that naming an entry does not allocate.
var irqNames = sync.OnceValue(func() *[256]string {
	var n [256]string
	for v := range n {
		n[v] = "irq:" + strconv.Itoa(v)
	}
	return &n
})

// irqName returns "irq:" followed by vector v in decimal.
func irqName(v int) string {
	if v >= 0 && v < 256 {
		return irqNames()[v]
	}
	return "irq:" + strconv.Itoa(v)
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
			return irqName(v)
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
	return entryNameOf(stub, entryFromSymbol(stub), p, sk)
}

// entryNameOf is entryName with e = entryFromSymbol(stub) already known.
func entryNameOf(stub, e string, p *ptregs.PtRegs, sk StackKind) string {
	orig := int64(p.OrigAX)
	if e == "irq" && (stub == "asm_common_interrupt" || stub == "asm_spurious_interrupt") {
		// Linux 6.1 moves the vector pushed by irq_entries_start to
		// %rsi and leaves orig_ax = -1: the vector is gone then.
		if orig == -1 {
			return "irq"
		}
		return irqName(int(p.OrigAX & 0xff))
	}
	if e != "" {
		return e
	}
	if orig <= -2 && orig >= -256 {
		return irqName(int(^p.OrigAX & 0xff))
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
