package unwind

import (
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// callKind classifies the instruction that ends right before a return
// address.
type callKind uint8

const (
	notCall      callKind = iota
	directCall            // call rel32: the target is known
	indirectCall          // call through a register or memory
)

// callLens are the lengths of call instructions tried, most common first.
var callLens = [...]int{5, 2, 3, 6, 7, 4, 8, 9}

// callBefore decodes the instruction ending at ra. It looks at the bytes
// in the target's memory (a kernel's text is patched at run time:
// alternatives, static calls) and, when those do not decode as a call (or
// a user core does not hold its text pages), at the Code's file image.
func (u *Unwinder) callBefore(ra uint64) (callKind, uint64) {
	var win [9]byte
	n := u.callWindow(ra, &win)
	return u.callBeforeWin(ra, &win, n)
}

// callBeforeWin is callBefore with the memory before ra already read: win
// holds its 9 bytes when n is 9 (callWindow).
func (u *Unwinder) callBeforeWin(ra uint64, mem *[9]byte, n uint8) (callKind, uint64) {
	if ra < 9 {
		return notCall, 0
	}
	if n == 9 {
		if kind, target := decodeCallBefore(mem, len(mem), ra); kind != notCall {
			return kind, target
		}
	}
	if u.opts.Code != nil {
		for l := 9; l >= 2; l-- {
			if b := u.opts.Code.CodeAt(ra - uint64(l)); len(b) >= l {
				var win [9]byte
				copy(win[9-l:], b[:l])
				return decodeCallBefore(&win, l, ra)
			}
		}
	}
	return notCall, 0
}

// decodeCallBefore finds a call instruction that ends at the end of win
// (whose last n bytes are valid) and returns at ra.
func decodeCallBefore(win *[9]byte, n int, ra uint64) (callKind, uint64) {
	for _, l := range callLens {
		if l > n {
			continue
		}
		inst, err := x86asm.Decode(win[9-l:], 64)
		if err != nil || inst.Len != l || inst.Op != x86asm.CALL {
			continue
		}
		if rel, ok := inst.Args[0].(x86asm.Rel); ok {
			return directCall, ra + uint64(int64(rel))
		}
		return indirectCall, 0
	}
	return notCall, 0
}

// checkCallsite decides callsiteOK with the memory before ra already read
// (callWindow). static says the verdict depends on no other memory, so
// that it may be cached with the window.
func (u *Unwinder) checkCallsite(ra, callee uint64, win *[9]byte, wn uint8) (ok, static bool) {
	c := u.opts.Code
	if c == nil || ra == 0 || !c.IsText(ra-1) {
		return false, true
	}
	static = u.restoreRTStatic(ra)
	if u.atRestoreRT(ra) {
		return true, static // the signal trampoline the kernel makes a handler return to
	}
	return u.callTargetOK(ra, callee, win, wn), static
}

// callTargetOK reports whether the instruction before ra is a call that
// can have called callee.
func (u *Unwinder) callTargetOK(ra, callee uint64, win *[9]byte, wn uint8) bool {
	c := u.opts.Code
	kind, target := u.callBeforeWin(ra, win, wn)
	switch kind {
	case indirectCall:
		return true
	case notCall:
		return false
	}
	if callee == 0 || target == callee {
		return true
	}
	ts, ok := c.Symbol(target)
	if !ok {
		return true // a stub without a symbol (PLT section)
	}
	if ts.Addr == callee {
		return true
	}
	n := ts.Name
	if strings.HasSuffix(n, "@plt") || strings.HasPrefix(n, "__x86_indirect_thunk") ||
		strings.HasPrefix(n, "__SCT__") || strings.HasPrefix(n, "__x86_return_thunk") {
		return true
	}
	if cs, ok := c.Symbol(callee); ok && strings.HasPrefix(cs.Name, n+".") {
		return true
	}
	if code := c.CodeAt(target); len(code) > 0 {
		i := 0
		if len(code) >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa {
			i = 4
		}
		if i < len(code) && code[i] == 0xf2 { // bnd prefix
			i++
		}
		if i+1 < len(code) && (code[i] == 0xe9 || code[i] == 0xeb || (code[i] == 0xff && code[i+1] == 0x25)) {
			return true // the target is a jump stub
		}
	}
	return false
}
