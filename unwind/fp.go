package unwind

import (
	"errors"
	"fmt"
	"strings"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"golang.org/x/arch/x86/x86asm"
)

// maxFrameSize bounds the distance from SP to rbp when no stack bounds are
// known.
const maxFrameSize = 1 << 20

// analyze runs prologue analysis on the function containing f.PC.
// int3 says the frame was interrupted right after an int3 the file does
// not have (an instruction being patched).
func (u *Unwinder) analyze(f *Frame, int3 bool) frameState {
	c := u.opts.Code
	var st frameState
	if sym, ok := c.Symbol(f.LookupPC); ok && f.PC >= sym.Addr {
		sym = enclosingFunc(c, sym, f.PC)
		if code := c.CodeAt(sym.Addr); code != nil {
			if parent, ok := coldParent(sym.Name); ok {
				return analyzeCold(c, parent, sym.Addr, code, f.PC-sym.Addr, int3)
			}
			if u.c == nil {
				st = analyzeFrame(code, f.PC-sym.Addr, int3)
			} else {
				st = u.c.analyses.get(sym.Addr).run(code, f.PC-sym.Addr, int3)
			}
		}
	}
	return st
}

// coldParent returns the name of the function whose cold part (the blocks
// GCC's or LLVM's hot/cold splitting moves out, "f.cold", "f.cold.N") name
// is.
func coldParent(name string) (string, bool) {
	i := strings.LastIndex(name, ".cold")
	if i <= 0 {
		return "", false
	}
	if n := name[i+len(".cold"):]; n != "" {
		if len(n) < 2 || n[0] != '.' || strings.Trim(n[1:], "0123456789") != "" {
			return "", false
		}
	}
	return name[:i], true
}

// symbolsByName is the optional part of a Code that finds a function by
// name; *symbols.Set has it.
type symbolsByName interface {
	ByName(name string) (symbols.Sym, bool)
}

// analyzeCold is prologue analysis at offset target of the cold part of
// function parent, at cold (its code). A cold part has no prologue of its
// own: it is jumped to from the parent's body and runs in the parent's
// frame, so its analysis starts from the parent's state at the jump (the
// one whose target lies closest before target), not from a fresh entry
// state, which would take it for a frameless function. Without the
// parent, or a jump from it, the frame is not analysed (not ok).
func analyzeCold(c Code, parent string, cold uint64, code []byte, target uint64, int3 bool) frameState {
	bn, ok := c.(symbolsByName)
	if !ok {
		return frameState{}
	}
	p, ok := bn.ByName(parent)
	if !ok || p.Addr == cold {
		return frameState{}
	}
	pcode := c.CodeAt(p.Addr)
	if p.Size > 0 && uint64(len(pcode)) > p.Size {
		pcode = pcode[:p.Size]
	}
	pcode = pcode[:min(uint64(len(pcode)), maxAnalysis)]
	// The parent's jumps into the cold part, at or before target.
	var jump, entry uint64
	found := false
	for off := uint64(0); off < uint64(len(pcode)); {
		inst, err := x86asm.Decode(pcode[off:], 64)
		if err != nil || inst.Len == 0 {
			break
		}
		next := off + uint64(inst.Len)
		if rel, ok := inst.Args[0].(x86asm.Rel); ok && inst.Op != x86asm.CALL {
			if t := p.Addr + next + uint64(int64(rel)); t >= cold && t-cold <= target && (!found || t-cold > entry) {
				jump, entry, found = off, t-cold, true
			}
		}
		off = next
	}
	if !found {
		return frameState{}
	}
	var a analysis
	if st := a.run(pcode, jump, false); !st.ok {
		return frameState{}
	}
	b := analysis{started: true, off: entry, s: a.s}
	return b.run(code, target, int3)
}

// enclosingFunc returns the function a label (a symbol without an ELF
// size, such as int3_site inside int3_site_func, or
// entry_SYSCALL_64_after_hwframe) lies in, when a sized symbol a few
// symbols back covers pc; otherwise sym itself. Prologue analysis must
// start at the function's first byte, not at a label in its middle.
func enclosingFunc(c Code, sym symbols.Sym, pc uint64) symbols.Sym {
	cur := sym
	for i := 0; i < 8 && cur.ELFSize == 0 && cur.Addr > 0; i++ {
		p, ok := c.Symbol(cur.Addr - 1)
		if !ok || p.Addr >= cur.Addr {
			break
		}
		if p.ELFSize > 0 {
			if pc-p.Addr < p.ELFSize {
				return p
			}
			break
		}
		cur = p
	}
	return sym
}

func (u *Unwinder) funcStart(f *Frame) uint64 {
	c := u.opts.Code
	sym, ok := f.Sym, f.SymOK
	if !ok {
		sym, ok = c.Symbol(f.LookupPC)
	}
	if !ok {
		return 0
	}
	return enclosingFunc(c, sym, f.LookupPC).Addr
}

// exactSP reports whether the frame's SP is its true stack pointer (not a
// guess from a scan).
func exactSP(f *Frame) bool { return f.Kind != KindScan }

// fpStep finds the caller with prologue analysis and the rbp chain.
func (u *Unwinder) fpStep(next *Frame) (ok, end bool, err error) {
	f := u.cur
	st := *u.frameStateAt(f) // a copy: later lookups may reuse the entry
	top := f.Index == 0 || f.Interrupted()
	callee := u.calleeStart(f)
	rbp, okBP := f.Regs.Get(ptregs.RBP)
	if st.ok && !st.rbpFrame && exactSP(f) {
		cfa := f.SP + uint64(st.cfaOff)
		ra, okRA := u.read64(cfa - 8)
		if okRA && u.callsiteOK(ra, callee) {
			regs := ptregs.Regs{}
			if st.rbpSaved {
				if v, ok := u.read64(cfa + uint64(st.rbpSlot)); ok {
					regs.Set(ptregs.RBP, v)
				}
			} else if okBP {
				regs.Set(ptregs.RBP, rbp)
			}
			callFrame(next, ra, cfa, cfa, cfa-8, &regs, MethodFP, top)
			u.fixIRQTop(next)
			return true, false, nil
		}
		if okRA && ra == 0 && top {
			return false, true, u.endOfChain(f)
		}
	}
	if !okBP {
		return false, false, errFPNoRBP
	}
	if rbp == 0 {
		return false, true, u.endOfChain(f)
	}
	if rbp&7 != 0 {
		return false, false, u.errorf("fp: rbp %#x misaligned", xarg(rbp))
	}
	if rbp < f.SP && exactSP(f) {
		return false, false, u.errorf("fp: rbp %#x below sp %#x", xarg(rbp), xarg(f.SP))
	}
	if err := u.onStackNear(f, rbp); err != nil {
		return false, false, err
	}
	nbp, ra, ok := u.read2x64(rbp)
	if !ok {
		return false, false, u.errorf("fp: cannot read frame at %#x", xarg(rbp))
	}
	if ra == 0 {
		return false, true, u.endOfChain(f)
	}
	if u.opts.Code != nil && !u.isRetText(ra) {
		return false, false, u.errorf("fp: return address %#x at %#x is not text", xarg(ra), xarg(rbp+8))
	}
	// The call site is checked (callSiteCheck) when the frame is
	// emitted; a direct call's target that is not this function is no
	// reason to doubt it (a tail call).
	reliable := st.ok && st.rbpFrame
	next.Regs = ptregs.Regs{}
	next.Regs.Set(ptregs.RBP, nbp)
	callFrame(next, ra, rbp+16, rbp+16, rbp+8, &next.Regs, MethodFP, reliable)
	u.fixIRQTop(next)
	return true, false, nil
}

// onStackNear checks that addr lies on the frame's stack (or, without
// bounds, not too far above its SP).
func (u *Unwinder) onStackNear(f *Frame, addr uint64) error {
	if u.opts.Stacks == nil {
		if addr-f.SP > maxFrameSize {
			return u.errorf("fp: rbp %#x too far from sp %#x", xarg(addr), xarg(f.SP))
		}
		return nil
	}
	if u.curStackOK && u.curStack.holds(addr) && u.curStack.holds(addr+15) {
		return nil
	}
	s, ok := u.stackOf(addr)
	if !ok && !u.opts.Kernel && !u.curStackOK && addr-f.SP <= maxFrameSize {
		return nil // walking a user stack the oracle does not describe
	}
	if !ok || !s.Contains(addr+15) {
		return u.errorf("fp: rbp %#x is on no known stack", xarg(addr))
	}
	return nil
}

// badPCStep handles a stop at a PC that is not code (a call through a NULL
// or wild pointer): the caller's return address is at [sp].
func (u *Unwinder) badPCStep(next *Frame) (ok bool, err error) {
	f := u.cur
	ra, okRA := u.read64(f.SP)
	if !okRA {
		return false, fmt.Errorf("cannot read return address at %#x", f.SP)
	}
	if !u.isRetText(ra) {
		return false, fmt.Errorf("pc %#x is not text and [sp] %#x is not a return address", f.PC, ra)
	}
	// No instruction of the callee ran: callee-saved registers are the
	// caller's.
	var regs ptregs.Regs
	for _, r := range [...]ptregs.Reg{ptregs.RBX, ptregs.RBP, ptregs.R12, ptregs.R13, ptregs.R14, ptregs.R15} {
		if v, ok := f.Regs.Get(r); ok {
			regs.Set(r, v)
		}
	}
	valid := u.callsiteOK(ra, 0)
	callFrame(next, ra, f.SP+8, f.SP+8, f.SP, &regs, MethodFP, valid)
	return true, nil
}

// outermostFuncs are the functions a stack legitimately ends in when the
// frame-pointer chain stops (rbp or the return address is 0). start_thread
// is not one: clone3 called it (and zeroed rbp first), so a frame-pointer
// walk that stops there has not shown its stack complete (a return address
// to clone3 broken in start_thread's frame stops it the same way).
var outermostFuncs = map[string]bool{
	"_start": true, "__start": true, "_dl_start_user": true,
	"clone": true, "__clone": true, "clone3": true, "__clone3": true, "thread_start": true,
	"secondary_startup_64": true, "secondary_startup_64_no_verify": true, "start_cpu0": true,
	"ret_from_fork": true, "ret_from_fork_asm": true, "x86_64_start_kernel": true,
}

// endOfChain judges a frame-pointer chain that ends at f: nil when f is a
// known outermost function (a proper end), errImproperEnd otherwise.
func (u *Unwinder) endOfChain(f *Frame) error {
	if u.outermost(f) {
		return nil
	}
	return errImproperEnd
}

// errImproperEnd marks an end of the frame-pointer chain in a function
// not known to be outermost: the trace may be truncated.
var errImproperEnd = errors.New("fp: the frame-pointer chain ends outside an outermost function")
