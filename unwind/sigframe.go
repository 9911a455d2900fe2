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
// popped). struct ucontext: uc_flags, uc_link, uc_stack (stack_t: ss_sp,
// ss_flags as an int and padding, ss_size), then uc_mcontext (struct
// sigcontext, 256 bytes) and uc_sigmask; the siginfo follows the 304-byte
// kernel ucontext.
const (
	ucStackOff    = 16
	ucMcontextOff = 40
	sigcontextLen = 23 * 8 // r8 … cr2
	ucSiginfoOff  = 304
	siginfoLen    = 128
)

// ss_flags bits (<signal.h>).
const (
	ssOnStack    = 1
	ssDisable    = 2
	ssAutoDisarm = 1 << 31
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
// rt_sigframe the current (__restore_rt) frame returns through. alt is the
// sigaltstack the frame lies on, when its uc_stack says there is one.
func (u *Unwinder) sigframeStep(next *Frame) (alt Stack, onAlt bool, err error) {
	f := u.cur
	uc := f.SP
	// uc_stack and uc_mcontext in one read, into a buffer that does not
	// escape.
	const n = ucMcontextOff - ucStackOff + sigcontextLen
	b := u.scratch[:n]
	if k, _ := u.readAt(b, uc+ucStackOff); k != n {
		return Stack{}, false, fmt.Errorf("sigcontext at %#x unreadable", uc+ucMcontextOff)
	}
	le := binary.LittleEndian
	alt, onAlt = altStackOf(uc, le.Uint64(b), uint32(le.Uint64(b[8:])), le.Uint64(b[16:]))
	b = b[ucMcontextOff-ucStackOff:]
	w := func(i int) uint64 { return le.Uint64(b[i*8:]) }
	p := ptregs.PtRegs{R8: w(0), R9: w(1), R10: w(2), R11: w(3), R12: w(4), R13: w(5), R14: w(6), R15: w(7),
		DI: w(8), SI: w(9), BP: w(10), BX: w(11), DX: w(12), AX: w(13), CX: w(14), SP: w(15), IP: w(16),
		Flags: w(17), CS: w(18) & 0xffff, SS: w(18) >> 48 & 0xffff, OrigAX: w(20)}
	if !ptregs.Canonical(p.SP) || !ptregs.Canonical(p.IP) || p.SP == 0 {
		return Stack{}, false, fmt.Errorf("sigcontext at %#x: implausible rip %#x rsp %#x", uc+ucMcontextOff, p.IP, p.SP)
	}
	// The frame holds the signal's number only when the kernel filled its
	// siginfo: for an SA_SIGINFO handler, the frame before this one (it
	// returned to __restore_rt).
	entry := "signal"
	if si, ok := u.opts.Code.(SigInfoSource); ok && u.prevPC != 0 {
		if yes, known := si.TakesSigInfo(u.prevPC); yes && known {
			if signo, ok := u.read64(uc + ucSiginfoOff); ok && int32(signo) > 0 && int32(signo) <= 64 {
				entry = "signal:" + strconv.Itoa(int(int32(signo)))
			}
		}
	}
	*next = Frame{PC: p.IP, LookupPC: p.IP, SP: p.SP, Slot: uc + ucMcontextOff + 16*8, Regs: p.Regs(),
		Kind: KindSignal, PtRegs: p, RegsAddr: uc, Method: MethodSignal, Reliable: true, Entry: entry}
	return alt, onAlt, nil
}

// altStackOf reads a signal frame's uc_stack: the sigaltstack [ss_sp,
// ss_sp+ss_size) when one was set up and the ucontext at uc lies on it
// (the handler ran there). The kernel saves the thread's sigaltstack
// settings (ss_flags SS_DISABLE when there are none; older kernels stored
// SS_ONSTACK when the interrupted code was on it), which rt_sigreturn
// restores.
func altStackOf(uc, ssSP uint64, ssFlags uint32, ssSize uint64) (Stack, bool) {
	if ssFlags&^(ssOnStack|ssAutoDisarm) != 0 || ssSize == 0 || ssSP+ssSize < ssSP ||
		uc < ssSP || uc-ssSP >= ssSize {
		return Stack{}, false
	}
	return Stack{Kind: StackAltSignal, Lo: ssSP, Hi: ssSP + ssSize, CPU: -1, Name: "sigaltstack"}, true
}

// crossSigframe is the signal-frame step: sigframeStep, then accept. The
// frame's uc_stack teaches the walk the sigaltstack (learnAltStack) before
// accept judges the move off it; a rejected frame teaches nothing.
func (u *Unwinder) crossSigframe(next *Frame) (bool, error) {
	alt, onAlt, err := u.sigframeStep(next)
	if err != nil {
		return false, err
	}
	was, wasOK, cs, csOK := u.alt, u.altOK, u.curStack, u.curStackOK
	if onAlt {
		u.learnAltStack(alt)
	}
	if err := u.accept(next); err != nil {
		u.alt, u.altOK, u.curStack, u.curStackOK = was, wasOK, cs, csOK
		return false, err
	}
	return true, nil
}

// learnAltStack records the sigaltstack s of a user walk: from now on the
// stack oracle's answer for its addresses, and the current stack when the
// current frame lies on it. Frames already emitted keep their stack.
func (u *Unwinder) learnAltStack(s Stack) {
	if u.opts.Stacks == nil {
		return
	}
	u.alt, u.altOK = s, true
	if s.holds(u.cur.SP) {
		u.curStack, u.curStackOK = s, true
	}
}

// maxAltProbe bounds probeAltStack: 64 KiB of stack, as a scan.
const maxAltProbe = maxScanWords * 8

// altProbeLen is what probeAltStack reads of a candidate rt_sigframe:
// pretcode and the ucontext up to uc_stack's end.
const altProbeLen = 8 + ucMcontextOff

// probeAltStack looks for the sigaltstack frame 0 may run on, at the start
// of a user walk whose SP is not on the thread's own stack: its frames are
// emitted before the signal frame whose uc_stack would say so. A handler's
// frames lie below its rt_sigframe on the same stack, so the first
// rt_sigframe above sp (up to hi, 0 for unknown, and maxAltProbe) whose
// uc_stack holds both sp and the frame itself names the stack. A candidate
// is only taken at a pretcode slot the kernel can have used (rsp 8 below a
// multiple of 16, the whole frame with its siginfo on the stack), with
// uc_flags and uc_link as the kernel writes them and a pretcode to
// __restore_rt; the signal frame, when the walk reaches it, has the last
// word.
func (u *Unwinder) probeAltStack(sp, hi uint64) {
	if u.mem == nil {
		return
	}
	end := sp + maxAltProbe
	if end < sp {
		end = ^uint64(0)
	}
	if hi != 0 && hi < end {
		end = hi
	}
	a := sp&^15 | 8
	if a < sp {
		a += 16
	}
	if a < sp {
		return
	}
	buf := u.scratch[:len(u.scratch)&^15]
	le := binary.LittleEndian
	for a < end && end-a >= altProbeLen {
		n := min(uint64(len(buf)), end-a)
		k, _ := u.readAt(buf[:n], a)
		off := 0
		for ; off+altProbeLen <= k; off += 16 {
			w := buf[off : off+altProbeLen]
			ssSP, ssSize := le.Uint64(w[8+ucStackOff:]), le.Uint64(w[8+ucStackOff+16:])
			if sp < ssSP || sp-ssSP >= ssSize {
				continue // the common case: not a frame, or not about sp
			}
			uc := a + uint64(off) + 8
			s, ok := altStackOf(uc, ssSP, uint32(le.Uint64(w[8+ucStackOff+8:])), ssSize)
			if !ok || uc+ucSiginfoOff+siginfoLen-ssSP > ssSize ||
				le.Uint64(w[8:])&^7 != 0 || le.Uint64(w[16:]) != 0 || !u.atRestoreRT(le.Uint64(w)) {
				continue
			}
			u.alt, u.altOK = s, true
			return
		}
		if k < int(n) || off == 0 {
			return // the end of readable memory
		}
		a += uint64(off)
	}
}
