package ptregs

import "fmt"

// Segment selectors of the x86-64 Linux GDT (arch/x86/include/asm/segment.h).
// A selector is index<<3 | TI<<2 | RPL; cs&3 is the privilege level the CPU
// was running at.
const (
	KernelCS   = 0x10 // __KERNEL_CS, GDT entry 2, RPL 0
	KernelDS   = 0x18 // __KERNEL_DS, GDT entry 3: the kernel's SS after SYSCALL
	UserCS32   = 0x23 // __USER32_CS, GDT entry 4, RPL 3: compat (32-bit) tasks
	UserDS     = 0x2b // __USER_DS, GDT entry 5, RPL 3: user SS, 64-bit and compat
	UserCS     = 0x33 // __USER_CS, GDT entry 6, RPL 3: 64-bit tasks
	Kernel32CS = 0x08 // __KERNEL32_CS: boot and EFI mixed-mode only, never in a pt_regs Check accepts

	// VsyscallPage is the address of the legacy vsyscall page. It lies above
	// the canonical hole, yet a user-mode frame can point into it: calling it
	// faults and the kernel emulates the call.
	VsyscallPage = 0xffffffffff600000
)

// selector returns the selector part of a saved CS or SS slot. FRED (and
// Linux's pt_regs csx/ssx unions since 6.9) keeps other event data in bits
// 16–63, so only the low 16 bits are the selector.
func selector(v uint64) uint64 { return v & 0xffff }

// UserMode reports whether a saved CS selector is a user-mode one: its
// requested privilege level (cs & 3) is 3. Bits above 15 are ignored, since
// FRED stores other event data in the upper part of the CS slot.
func UserMode(cs uint64) bool { return selector(cs)&3 == 3 }

// Canonical reports whether addr is a canonical 48-bit (4-level paging)
// virtual address: bits 63–47 all equal. Under 5-level paging (LA57) more
// addresses are canonical; Canonical rejects those beyond 48 bits, so use
// Canonical57 (or CheckOptions.LA57) when the dump says LA57 is on.
func Canonical(addr uint64) bool { return uint64(int64(addr<<16)>>16) == addr }

// Canonical57 reports whether addr is canonical under 5-level paging: bits
// 63–56 all equal.
func Canonical57(addr uint64) bool { return uint64(int64(addr<<7)>>7) == addr }

// RFLAGS bits Check looks at.
const (
	flagFixed           = 1 << 1  // always 1
	flagVM              = 1 << 17 // virtual-8086 mode: impossible in long mode
	flagReserved uint64 = 1<<3 | 1<<5 | 1<<15 | (1<<64-1)&^(1<<22-1)
)

// CheckOptions supplies what Check cannot know by itself. The zero value
// checks only what the frame says about itself; a nil function skips that
// test.
type CheckOptions struct {
	// IsText reports whether pc is in kernel text; it is asked only about
	// the RIP of a kernel-mode frame. Leave it nil when the frame is already
	// known to be an exception frame: a call through a bad pointer faults
	// with a saved RIP outside the text (0 for a NULL function pointer).
	IsText func(pc uint64) bool
	// OnStack reports whether sp is on a known kernel stack; it is asked only
	// about the RSP of a kernel-mode frame. Note that an NMI or #DB taken in
	// the first instructions of entry_SYSCALL_64 sees kernel CS with the
	// user's RSP; an OnStack that knows it is looking at such a frame should
	// accept it.
	OnStack func(sp uint64) bool
	// LA57 says the dump was taken with 5-level paging: addresses are
	// checked with Canonical57 and user space extends to 1<<56.
	LA57 bool
	// LDT accepts user-mode code and stack selectors from the local
	// descriptor table (TI bit set, RPL 3), as programs using modify_ldt
	// (Wine, dosemu) can run with.
	LDT bool
}

// CheckError says why a block of memory is not a plausible pt_regs or iret
// frame: which field failed and why. Unwinders log it and try the next
// candidate.
type CheckError struct {
	Field  string // "cs", "ss", "flags", "ip" or "sp"
	Value  uint64 // the offending value, as stored
	Reason string // why it is implausible
}

// Error returns "ptregs: implausible <field> <value>: <reason>".
func (e *CheckError) Error() string {
	return fmt.Sprintf("ptregs: implausible %s %#x: %s", e.Field, e.Value, e.Reason)
}

// Check reports whether p is plausibly a pt_regs saved by x86-64 Linux entry
// code: nil if it is, a *CheckError naming the first failed field otherwise.
// Only the iret part (ip, cs, flags, sp, ss) is judged, with the rules of
// IretFrame.Check; general-purpose registers and orig_ax can hold anything.
func (p *PtRegs) Check(opt CheckOptions) error {
	f := p.Iret()
	return f.Check(opt)
}

// Check reports whether f is plausibly an iret frame pushed on x86-64 Linux:
// nil if it is, a *CheckError naming the first failed field otherwise. The
// rules, in the order tested:
//
//   - cs (low 16 bits; FRED's upper bits are ignored) is 0x10 (__KERNEL_CS)
//     for kernel mode, or 0x33 (__USER_CS) or 0x23 (__USER32_CS, compat) for
//     user mode; with opt.LDT also any LDT selector with RPL 3. 0x08
//     (__KERNEL32_CS) is rejected: Linux uses it only in boot and EFI
//     mixed-mode thunks, never while taking interrupts.
//   - ss (low 16 bits) for kernel mode is 0 (the null selector the CPU loads
//     when an interrupt or exception enters the kernel from user mode, and
//     which the kernel then keeps running with) or 0x18 (__KERNEL_DS, which
//     SYSCALL loads); for user mode 0x2b (__USER_DS, for 64-bit and compat
//     tasks alike), or with opt.LDT an LDT selector with RPL 3.
//   - flags has bit 1 set, the reserved bits 3, 5, 15 and 22–63 clear, and
//     VM (bit 17) clear, as long mode has no virtual-8086 mode.
//   - ip is canonical. In kernel mode, when opt.IsText is set, it is in
//     kernel text; without IsText any canonical ip is accepted, because a
//     call through a bad pointer leaves one that is not (the corpus's oops
//     frame has kernel cs and ip 0). In user mode ip lies below the canonical
//     hole (under 4 GiB for compat cs 0x23), or in the vsyscall page.
//   - sp is canonical and, in kernel mode with opt.OnStack set, on a known
//     stack.
func (f *IretFrame) Check(opt CheckOptions) error {
	if e, ok := f.check(opt); !ok {
		ce := new(CheckError)
		*ce = e
		return ce
	}
	return nil
}

// Plausible reports whether Check would accept f, without building the
// error: an unwinder trying candidate frames rejects most of them.
func (f *IretFrame) Plausible(opt CheckOptions) bool {
	_, ok := f.check(opt)
	return ok
}

// Plausible reports whether Check would accept p, without building the
// error.
func (p *PtRegs) Plausible(opt CheckOptions) bool {
	f := p.Iret()
	return f.Plausible(opt)
}

// check applies the rules of Check; ok is false with the failure in e.
func (f *IretFrame) check(opt CheckOptions) (e CheckError, ok bool) {
	if e, ok := checkSelectors(f.CS, f.SS, opt); !ok {
		return e, false
	}
	if f.Flags&flagFixed == 0 {
		return CheckError{"flags", f.Flags, "bit 1 (always set) is clear"}, false
	}
	if f.Flags&flagReserved != 0 {
		return CheckError{"flags", f.Flags, "reserved bits (3, 5, 15, 22-63) set"}, false
	}
	if f.Flags&flagVM != 0 {
		return CheckError{"flags", f.Flags, "VM (virtual-8086) set, impossible in long mode"}, false
	}
	canonical, userTop := Canonical, uint64(1)<<47
	if opt.LA57 {
		canonical, userTop = Canonical57, 1<<56
	}
	user := UserMode(f.CS)
	if !canonical(f.IP) {
		return CheckError{"ip", f.IP, "not canonical"}, false
	}
	switch {
	case user && selector(f.CS) == UserCS32 && f.IP > 0xffffffff:
		return CheckError{"ip", f.IP, "compat-mode ip above 4 GiB"}, false
	case user && f.IP >= userTop && f.IP&^0xfff != VsyscallPage:
		return CheckError{"ip", f.IP, "user-mode ip above the user address range"}, false
	case !user && opt.IsText != nil && !opt.IsText(f.IP):
		return CheckError{"ip", f.IP, "kernel-mode ip not in kernel text"}, false
	}
	if !canonical(f.SP) {
		return CheckError{"sp", f.SP, "not canonical"}, false
	}
	if !user && opt.OnStack != nil && !opt.OnStack(f.SP) {
		return CheckError{"sp", f.SP, "kernel-mode sp not on a known stack"}, false
	}
	return CheckError{}, true
}

// checkSelectors applies the cs and ss rules of IretFrame.Check.
func checkSelectors(cs, ss uint64, opt CheckOptions) (CheckError, bool) {
	ldt := func(sel uint64) bool { return opt.LDT && sel&7 == 7 }
	c, s := selector(cs), selector(ss)
	switch {
	case c == KernelCS:
		if s != 0 && s != KernelDS {
			return CheckError{"ss", ss, "kernel-mode ss is neither 0 nor 0x18"}, false
		}
	case c == UserCS || c == UserCS32 || ldt(c):
		if s != UserDS && !ldt(s) {
			return CheckError{"ss", ss, "user-mode ss is not 0x2b"}, false
		}
	case c == Kernel32CS:
		return CheckError{"cs", cs, "__KERNEL32_CS (0x08) is never saved by 64-bit entry code"}, false
	default:
		return CheckError{"cs", cs, "not a Linux x86-64 code selector (0x10, 0x33, 0x23)"}, false
	}
	return CheckError{}, true
}
