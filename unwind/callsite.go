package unwind

import (
	"strings"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"

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
	return u.tailJumps(ts, target, callee)
}

// maxTailScan bounds the code tailJumps decodes in one function, and
// maxTailDepth the chain of tail calls it follows (do_syscall_64 calls
// x64_sys_call, which jumps to __x64_sys_write, which jumps to
// ksys_write); maxTailBudget bounds the code decoded for one check.
const (
	maxTailScan   = 64 << 10
	maxTailDepth  = 3
	maxTailBudget = 512 << 10
)

// tailJumps reports whether the function ts (holding target) can have
// tail-called callee: its code has a jump (jmp or jcc) to callee, to a
// thunk, or through a register or memory, or to the start of a function
// that can itself have tail-called callee (a chain of maxTailDepth jumps
// at most).
func (u *Unwinder) tailJumps(ts symbols.Sym, target, callee uint64) bool {
	budget := maxTailBudget
	return u.tailJumpsFrom(ts, target, callee, maxTailDepth, &budget)
}

func (u *Unwinder) tailJumpsFrom(ts symbols.Sym, target, callee uint64, depth int, budget *int) bool {
	c := u.opts.Code
	fn := enclosingFunc(c, ts, target)
	size := fn.Size
	if size == 0 || size > maxTailScan {
		size = maxTailScan
	}
	code := c.CodeAt(fn.Addr)
	if uint64(len(code)) > size {
		code = code[:size]
	}
	if len(code) > *budget {
		code = code[:*budget]
	}
	*budget -= len(code)
	var next []symbols.Sym // functions this one jumps to the start of
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			off++
			continue
		}
		pc := fn.Addr + uint64(off)
		off += inst.Len
		if inst.Op == x86asm.JMP || inst.Op >= x86asm.JA && inst.Op <= x86asm.JS && inst.Op != x86asm.JMP {
			rel, ok := inst.Args[0].(x86asm.Rel)
			if !ok {
				if inst.Op == x86asm.JMP {
					return true // an indirect jump: maybe a tail call
				}
				continue
			}
			dst := pc + uint64(inst.Len) + uint64(int64(rel))
			if dst == callee {
				return true
			}
			if dst-fn.Addr < size {
				continue // within the function
			}
			ds, ok := c.Symbol(dst)
			if ok && (ds.Addr == callee || strings.HasPrefix(ds.Name, "__x86_indirect_thunk")) {
				return true
			}
			if ok && ds.Addr == dst && depth > 1 {
				next = append(next, ds)
			}
		}
	}
	for _, ds := range next {
		if *budget <= 0 {
			break
		}
		if u.tailJumpsFrom(ds, ds.Addr, callee, depth-1, budget) {
			return true
		}
	}
	return false
}

// callSiteCheck is the call-site check: the one test every return address
// passes, however it was found (CFI, frame pointer, scan, ORC), before its
// frame may be reliable. slot is the stack address ra was read from (0 when
// it came from a register); callee is the start of the function of the
// frame below (0 when unknown). ra passes when the bytes before it decode
// as a call instruction that ends exactly at ra: read from the target's
// memory where it holds them (a live kernel's text shows its patching),
// from the Code's file image otherwise. A direct call's target is
// evidence, never alone a reason to doubt the frame: a target other than
// callee (or a stub, thunk or PLT entry in front of it) fails only when the
// target's code has no jump, directly or through a short chain of
// functions that jump on, that could have tail-called callee.
//
// Addresses planted without a call pass by rule, each recognised by what
// plants it: the signal trampoline a user handler returns to
// (__restore_rt), a never-run task's ret_from_fork in its
// inactive_task_frame (Options.ForkReturnSlot), a call site whose first
// byte is an int3 patch (text_poke_bp, the int3 handler emulating the
// call), and a 5-byte call site whose bytes are caught mid-update by a
// byte-by-byte patch (NMI-safe code modification).
//
// The verdicts are cached per return address with the bytes they were
// decoded from, so a warm walk pays a 9-byte read and compare.
func (u *Unwinder) callSiteCheck(ra, slot, callee uint64) bool {
	c := u.opts.Code
	if ra == 0 || c == nil {
		return false
	}
	if slot != 0 && slot == u.opts.ForkReturnSlot && u.forkReturn(ra) {
		return true
	}
	ok, rule := u.siteOK(ra)
	if !ok {
		return false
	}
	// A site that passed by rule (a patched site, __restore_rt) holds no
	// call whose target could disagree: the int3 handler's trampoline,
	// not the patched call's target, is the frame below.
	return rule || callee == 0 || u.callsiteOK(ra, callee)
}

// siteOK is the first half of callSiteCheck: the bytes before ra are a
// call ending there, or a site planted or patched by rule.
// rule says it passed by rule: the memory holds no call there.
func (u *Unwinder) siteOK(ra uint64) (ok, rule bool) {
	var win [9]byte
	n := u.callWindow(ra, &win)
	if u.c == nil {
		ok, rule, _ = u.sharedSiteVerdict(ra, &win, n)
		return ok, rule
	}
	e := u.entry(ra, ra-1)
	if e.has(efSite) && e.has(efCallMem) == (n == 9) && e.callWin == win {
		return e.has(efSiteOK), e.has(efSiteRule)
	}
	ok, rule, static := u.sharedSiteVerdict(ra, &win, n)
	if static {
		e.setSite(ok, rule, n, &win)
	}
	return ok, rule
}

// sharedSiteVerdict is siteVerdict, kept in the Options.CodeCache when
// there is one: the walks of a dump's threads check the same return
// addresses.
func (u *Unwinder) sharedSiteVerdict(ra uint64, win *[9]byte, n uint8) (ok, rule, static bool) {
	cc := u.opts.CodeCache
	if cc == nil {
		return u.siteVerdict(ra, win, n)
	}
	k := siteKey{ra: ra, win: *win, n: n, kernel: u.opts.Kernel}
	if v, found := cc.sites.load(k); found {
		return v.ok, v.rule, true
	}
	ok, rule, static = u.siteVerdict(ra, win, n)
	if static {
		cc.sites.store(k, siteVal{ok, rule})
	}
	return ok, rule, static
}

// FreedCode is implemented by a Code whose image holds code that the
// target has since freed, so that memory there may hold anything: a
// kernel's init text, freed after boot while the boot CPU's idle task
// still returns into start_kernel. Where the memory before a return
// address in freed code shows no call, the call-site check decodes the
// image's copy (Code.CodeAt) instead. Freed reports whether addr is such
// code and CodeAt has the image's bytes for it.
type FreedCode interface {
	Freed(addr uint64) bool
}

// siteVerdict decides siteOK for ra from win, the n bytes before it in
// memory (9, or 0 when memory does not hold them). rule says ra passed by
// a rule, not as a call in memory; static says the verdict depends on
// nothing else in memory.
func (u *Unwinder) siteVerdict(ra uint64, win *[9]byte, n uint8) (ok, rule, static bool) {
	c := u.opts.Code
	if ra < 9 || !c.IsText(ra-1) {
		return false, false, true
	}
	static = true
	if !u.opts.Kernel {
		// The trampoline a handler returns to through the rt_sigframe.
		static = u.restoreRTStatic(ra)
		if u.atRestoreRT(ra) {
			return true, true, static
		}
	}
	if n == 9 {
		if kind := u.callAtBoundary(win, 9, ra); kind != notCall {
			return true, false, static
		}
		ok := u.patchedSite(ra, win) || u.bootReturn(ra, win[7:])
		if fc, isFC := c.(FreedCode); ok || !isFC || !fc.Freed(ra-1) {
			return ok, ok, static
		}
		// Freed code: memory holds whatever reused it; the image holds
		// the code that made the call.
	}
	for l := 9; l >= 2; l-- {
		if b := c.CodeAt(ra - uint64(l)); len(b) >= l {
			var fw [9]byte
			copy(fw[9-l:], b[:l])
			if kind := u.callAtBoundary(&fw, l, ra); kind != notCall {
				return true, false, static
			}
			ok := u.bootReturn(ra, fw[7:])
			return ok, ok, static
		}
	}
	return false, false, static
}

// callAtBoundary finds a call instruction that ends at the end of win
// (whose last n bytes are valid), returns at ra and starts at an
// instruction boundary (insnBoundary): of every length that decodes as
// one (a prefixed "addr32 call" holds a plain one).
func (u *Unwinder) callAtBoundary(win *[9]byte, n int, ra uint64) callKind {
	for _, l := range callLens {
		if l > n {
			continue
		}
		inst, err := x86asm.Decode(win[9-l:], 64)
		if err != nil || inst.Len != l || inst.Op != x86asm.CALL || !u.insnBoundary(ra-uint64(l)) {
			continue
		}
		if _, ok := inst.Args[0].(x86asm.Rel); ok {
			return directCall
		}
		return indirectCall
	}
	return notCall
}

// insnBoundary reports whether addr, where a call decoded before a return
// address starts, is an instruction boundary of its function in the
// Code's image: decoded from the function's start, instruction after
// instruction. A return address moved a few bytes can land after bytes
// that decode as a call by accident (in another instruction's
// displacement or immediate); such a call starts mid-instruction. Where
// the function is unknown, too large, or holds an instruction the decoder
// does not know, there is no evidence either way: true.
func (u *Unwinder) insnBoundary(addr uint64) bool {
	if cc := u.opts.CodeCache; cc != nil {
		if yes, ok := cc.boundary.load(addr); ok {
			return yes
		}
		yes := u.decodeBoundary(addr)
		cc.boundary.store(addr, yes)
		return yes
	}
	return u.decodeBoundary(addr)
}

// decodeBoundary is insnBoundary without the shared cache.
func (u *Unwinder) decodeBoundary(addr uint64) bool {
	c := u.opts.Code
	s, ok := c.Symbol(addr)
	if !ok {
		return true
	}
	fn := enclosingFunc(c, s, addr)
	if fn.Size == 0 || addr-fn.Addr >= fn.Size || addr-fn.Addr > maxTailScan {
		return true
	}
	code := c.CodeAt(fn.Addr)
	target := int(addr - fn.Addr)
	if len(code) < target {
		return true
	}
	off := 0
	for off < target {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			return true
		}
		off += inst.Len
	}
	return off == target
}

// nop5 is the 5-byte NOP patchable call sites hold when disabled.
var nop5 = [5]byte{0x0f, 0x1f, 0x44, 0x00, 0x00}

// patchedSite reports whether mem, the 9 bytes before ra in memory that
// decode as no call ending at ra, are a call site the kernel is patching:
// the first byte of a call in the file image replaced by int3
// (text_poke_bp; the int3 handler emulates the call and pushes ra itself),
// or a 5-byte site (a call or a 5-byte NOP in the file) whose bytes are a
// torn mix, a prefix of one of its two states and the rest of the other,
// with the call's opcode where the call's part begins.
func (u *Unwinder) patchedSite(ra uint64, mem *[9]byte) bool {
	c := u.opts.Code
	var file [9]byte
	fn := 0
	for l := 9; l >= 2; l-- {
		if b := c.CodeAt(ra - uint64(l)); len(b) >= l {
			copy(file[9-l:], b[:l])
			fn = l
			break
		}
	}
	if fn == 0 {
		return false
	}
	// An int3 over the first byte of the file's call.
	for _, l := range callLens {
		if l > fn || mem[9-l] != 0xcc {
			continue
		}
		inst, err := x86asm.Decode(file[9-l:], 64)
		if err == nil && inst.Len == l && inst.Op == x86asm.CALL {
			return true
		}
	}
	if fn < 5 {
		return false
	}
	m, f := mem[4:], file[4:]
	fileCall, fileNop := f[0] == 0xe8, [5]byte(f) == nop5
	if !fileCall && !fileNop {
		return false
	}
	if mem[4] == 0xcc {
		return true // text_poke_bp's int3 over a 5-byte patchable site
	}
	// A torn write, first bytes first: m[:k] is the new state, m[k:] the
	// old one. Another call's rel32 is unknown: any bytes.
	n5 := nop5
	mm := [5]byte(m)
	for k := 1; k < 5; k++ {
		if fileNop {
			// nop → call: "e8", some rel32 bytes, the NOP's tail;
			// call → nop: the NOP's head, the call's tail.
			if m[0] == 0xe8 && string(mm[k:]) == string(n5[k:]) || string(mm[:k]) == string(n5[:k]) && mm != n5 {
				return true
			}
			continue
		}
		// The file's call and a NOP, either way.
		if string(mm[:k]) == string(n5[:k]) && string(m[k:]) == string(f[k:]) ||
			string(m[:k]) == string(f[:k]) && string(mm[k:]) == string(n5[k:]) {
			return true
		}
	}
	return false
}

// bootReturn reports whether ra is the return address the boot code of
// a kernel plants for unwinders at the bottom of the boot and idle stacks:
// secondary_startup_64 pushes the address right after its lretq (Linux's
// .Lafter_lret) before it far-returns into initial_code, so the bytes
// before ra (last2) are lretq, in a known outermost function.
func (u *Unwinder) bootReturn(ra uint64, last2 []byte) bool {
	if !u.opts.Kernel || len(last2) != 2 || last2[0] != 0x48 || last2[1] != 0xcb {
		return false
	}
	s, ok := u.opts.Code.Symbol(ra - 1)
	return ok && outermostFuncs[s.Name]
}

// forkReturn reports whether ra is where a new task's first switch
// returns to: the start of ret_from_fork (ret_from_fork_asm since 6.7).
func (u *Unwinder) forkReturn(ra uint64) bool {
	s, ok := u.opts.Code.Symbol(ra)
	return ok && s.Addr == ra && (s.Name == "ret_from_fork" || s.Name == "ret_from_fork_asm")
}

// setSite records the call-site check's verdict for the return address of
// e, decoded from the n bytes of win (the window the entry's call-target
// verdict, if any, must share).
func (e *pcEntry) setSite(ok, rule bool, n uint8, win *[9]byte) {
	if e.callWin != *win || e.has(efCallMem) != (n == 9) {
		e.flags &^= efCall | efCallOK
		e.callWin = *win
		e.set(0, efCallMem, n == 9)
	}
	e.set(efSite, efSiteOK, ok)
	e.set(0, efSiteRule, rule)
}

// pcTrusted applies to a frame the reliability rules that hold whatever
// strategy found it: frame 0's PC is canonical, a return address passes
// the call-site check (callSiteCheck), an interrupted or signal frame's RIP
// lies in text (interruptedPCOK).
func (u *Unwinder) pcTrusted(f *Frame) bool {
	switch {
	case f.Index == 0:
		return ptregs.Canonical(f.PC)
	case f.Kind == KindCall:
		callee := uint64(0)
		if below := u.spare(); below.Index == f.Index-1 {
			callee = u.calleeStart(below)
		}
		return u.callSiteCheck(f.PC, f.Slot, callee)
	case f.Kind == KindInterrupted || f.Kind == KindSignal:
		return u.interruptedPCOK(f)
	}
	return true
}

// interruptedPCOK reports whether an interrupted frame's RIP (from a
// pt_regs, an iret frame or a sigcontext) can be where code was
// interrupted: no return address, so no call before it, but text. A
// kernel walk's user-mode frame needs a user address (the kernel's Code
// does not describe user text), and a user RSP.
func (u *Unwinder) interruptedPCOK(f *Frame) bool {
	pc := f.PC
	if !ptregs.Canonical(pc) {
		return false
	}
	if u.opts.Kernel && f.Kind == KindInterrupted && ptregs.UserMode(f.PtRegs.CS) {
		// And the user stack pointer a user address (the kernel walk
		// knows no user stack to check it against).
		return pc < 1<<47 && f.SP != 0 && f.SP < 1<<47
	}
	return u.isText(pc)
}

// siteWarm is callSiteCheck(ra, slot, callee) for the fused steps, with
// ra's cache entry re at hand: the cached verdicts when memory still holds
// the bytes they were decoded from. (The fast path inlines.)
func (u *Unwinder) siteWarm(ra, slot, callee uint64, re *pcEntry) bool {
	if re.flags&siteWarmNeed == siteWarmNeed && re.callee == callee && slot != u.opts.ForkReturnSlot && ra >= 9 && u.rec == nil {
		if b := u.win[codeWin].at(ra-9, 9); b != nil && re.callWin == [9]byte(b) {
			return true
		}
	}
	return u.siteSlow(ra, slot, callee, re)
}

// siteWarmNeed are the flags of an entry whose cached verdicts pass
// (memory held 9 bytes when they were decoded).
const siteWarmNeed = efSite | efSiteOK | efCall | efCallOK | efCallMem

// siteSlow is siteWarm when the window is not at hand.
func (u *Unwinder) siteSlow(ra, slot, callee uint64, re *pcEntry) bool {
	if re.flags&siteWarmNeed == siteWarmNeed && re.callee == callee && (slot == 0 || slot != u.opts.ForkReturnSlot) && u.sameCallWindow(ra, re) {
		return true
	}
	return u.callSiteCheck(ra, slot, callee)
}

// indirectCallAtSP reports whether the word at an interrupted frame's SP
// is a return address after an indirect call (or a retpoline kernel's
// call to its thunk): what a call through a NULL function pointer leaves
// there.
func (u *Unwinder) indirectCallAtSP(f *Frame) bool {
	ra, ok := u.read64(f.SP)
	if !ok || !u.isRetText(ra) {
		return false
	}
	switch kind, target := u.callBefore(ra); kind {
	case indirectCall:
		return true
	case directCall:
		s, ok := u.opts.Code.Symbol(target)
		return ok && s.Addr == target && strings.HasPrefix(s.Name, "__x86_indirect_")
	}
	return false
}
