package unwind

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/unwind-dev/unwind/ptregs"
)

// restoreRT is the x86-64 glibc/musl signal trampoline __restore_rt:
// mov $15,%rax (rt_sigreturn); syscall.
var restoreRT = []byte{0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05}

// Layout of the x86-64 rt_sigframe as the kernel builds it: the handler
// returns to __restore_rt with rsp pointing at the ucontext (pretcode
// popped). struct ucontext: uc_flags, uc_link, uc_stack (24 bytes), then
// uc_mcontext (struct sigcontext, 256 bytes) and uc_sigmask; the siginfo
// follows the 304-byte kernel ucontext.
const (
	ucMcontextOff = 40
	sigcontextLen = 23 * 8 // r8 … cr2
	ucSiginfoOff  = 304
)

// atRestoreRT reports whether pc is the first instruction of __restore_rt.
func (u *Unwinder) atRestoreRT(pc uint64) bool {
	if c := u.opts.Code; c != nil {
		if b := c.CodeAt(pc); len(b) >= len(restoreRT) {
			return bytes.Equal(b[:len(restoreRT)], restoreRT)
		}
	}
	if u.mem == nil {
		return false
	}
	var b [9]byte
	n, _ := u.readAt(b[:], pc)
	return n == len(b) && bytes.Equal(b[:], restoreRT)
}

// restoreRTStatic reports whether atRestoreRT(pc) is decided by the Code's
// bytes alone, not by the target's memory.
func (u *Unwinder) restoreRTStatic(pc uint64) bool {
	c := u.opts.Code
	return c != nil && len(c.CodeAt(pc)) >= len(restoreRT)
}

// sigframeStep reads the interrupted registers from the sigcontext of the
// rt_sigframe the current (__restore_rt) frame returns through.
func (u *Unwinder) sigframeStep(next *Frame) (bool, error) {
	f := u.cur
	uc := f.SP
	var b [sigcontextLen]byte
	if n, _ := u.readAt(b[:], uc+ucMcontextOff); n != len(b) {
		return false, fmt.Errorf("sigcontext at %#x unreadable", uc+ucMcontextOff)
	}
	w := func(i int) uint64 { return binary.LittleEndian.Uint64(b[i*8:]) }
	p := ptregs.PtRegs{R8: w(0), R9: w(1), R10: w(2), R11: w(3), R12: w(4), R13: w(5), R14: w(6), R15: w(7),
		DI: w(8), SI: w(9), BP: w(10), BX: w(11), DX: w(12), AX: w(13), CX: w(14), SP: w(15), IP: w(16),
		Flags: w(17), CS: w(18) & 0xffff, SS: w(18) >> 48 & 0xffff, OrigAX: w(20)}
	if !ptregs.Canonical(p.SP) || !ptregs.Canonical(p.IP) || p.SP == 0 {
		return false, fmt.Errorf("sigcontext at %#x: implausible rip %#x rsp %#x", uc+ucMcontextOff, p.IP, p.SP)
	}
	entry := "signal"
	if signo, ok := u.read64(uc + ucSiginfoOff); ok && int32(signo) > 0 && int32(signo) <= 64 {
		entry = "signal:" + strconv.Itoa(int(int32(signo)))
	}
	*next = Frame{PC: p.IP, LookupPC: p.IP, SP: p.SP, Slot: uc + ucMcontextOff + 16*8, Regs: p.Regs(),
		Kind: KindSignal, PtRegs: p, RegsAddr: uc, Method: MethodSignal, Reliable: true, Entry: entry}
	return true, nil
}
