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
	if ra < 9 {
		return notCall, 0
	}
	var win [9]byte
	if u.mem != nil {
		if k, _ := u.mem.ReadAt(win[:], ra-9); k == len(win) {
			if kind, target := decodeCallBefore(&win, len(win), ra); kind != notCall {
				return kind, target
			}
		}
	}
	if u.opts.Code != nil {
		for l := 9; l >= 2; l-- {
			if b := u.opts.Code.CodeAt(ra - uint64(l)); len(b) >= l {
				win = [9]byte{}
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

// callCache remembers call-site verdicts: validation decodes code, which is
// too slow for every frame of a deep stack.
type callCache [1024]struct {
	ra, callee uint64
	set, ok    bool
}

// callsiteOK reports whether ra is a plausible return address for a frame
// whose callee (the frame below) starts at callee (0 when unknown): ra is
// text, the bytes before it are a call, and a direct call's target is the
// callee, a stub in front of it (PLT entry, thunk, static-call trampoline),
// or the parent of its .cold/.part clone.
func (u *Unwinder) callsiteOK(ra, callee uint64) bool {
	if u.c == nil {
		return u.checkCallsite(ra, callee)
	}
	e := u.pcEntry(ra)
	if e.callSet && e.callee == callee {
		return e.callOK
	}
	if c := &u.c.calls[slot(ra^callee<<1, 10)]; c.set && c.ra == ra && c.callee == callee {
		// A second callee for the same return address (a scan, a
		// retried strategy): the pair cache keeps both.
		e.callee, e.callSet, e.callOK = callee, true, c.ok
		return c.ok
	}
	ok := u.checkCallsite(ra, callee)
	e.callee, e.callSet, e.callOK = callee, true, ok
	c := &u.c.calls[slot(ra^callee<<1, 10)]
	c.ra, c.callee, c.set, c.ok = ra, callee, true, ok
	return ok
}

func (u *Unwinder) checkCallsite(ra, callee uint64) bool {
	c := u.opts.Code
	if c == nil || ra == 0 || !c.IsText(ra-1) {
		return false
	}
	if u.atRestoreRT(ra) {
		return true // the signal trampoline the kernel makes a handler return to
	}
	kind, target := u.callBefore(ra)
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
