package verify

import (
	"fmt"
	"strings"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// comparison compares one unwind with the truth. It keeps only the first
// difference's description, built when it is first needed.
type comparison struct {
	reason string
	// explain makes the comparison describe the first difference in
	// reason; without it a mismatch costs no allocation.
	explain bool
	code    unwind.Code
	fixups  map[uint64]uint64 // __ex_table: faulting insn → fixup
	// undefined is set when a flagged trace stopped at a PC where the
	// kernel's CFI deliberately leaves RSP or the return address undefined.
	undefined bool
	// pointersOnly compares an interrupted frame's RIP and RSP, not its
	// other registers: on a corrupted stack a saved register is only data,
	// which no unwinder can check (the corruption property test).
	pointersOnly bool
	// undefAt remembers cfiUndefinedAt per PC (the CFI does not change).
	undefAt map[uint64]bool
}

// cfiUndefinedAt is cfiUndefinedAt(c.code, pc), remembered.
func (c *comparison) cfiUndefinedAt(pc uint64) bool {
	v, ok := c.undefAt[pc]
	if !ok {
		v = cfiUndefinedAt(c.code, pc)
		if c.undefAt == nil {
			c.undefAt = map[uint64]bool{}
		}
		c.undefAt[pc] = v
	}
	return v
}

// userEnd returns how many truth frames a kernel unwind must reproduce:
// down to and including the first user-mode frame (a kernel unwinder may
// stop there, "user mode"), or all of them when the CPU itself is in user
// mode. Frames a trace reports beyond that are still compared with the
// truth at the same index.
func userEnd(truth []emu.Frame) int {
	if len(truth) == 0 || truth[0].Kind == emu.FrameUser {
		return len(truth)
	}
	for i := range truth {
		if truth[i].Kind == emu.FrameUser {
			return i + 1
		}
	}
	return len(truth)
}

// compared returns the truth frames a kernel unwind must reproduce.
func compared(truth []emu.Frame) []emu.Frame { return truth[:userEnd(truth)] }

// classify walks u to its end and returns the verdict against truth.
func (c *comparison) classify(u *unwind.Unwinder, truth []emu.Frame) Class {
	need := userEnd(truth)
	c.reason = ""
	c.undefined = false
	var lastPC, prevPC, failPC uint64
	failAt := -1
	exact := true
	lie := -1 // the first wrong frame marked reliable
	n := 0
	prevInlined := false
	for u.Next() {
		f := u.Current()
		ok := n < len(truth) && c.frameOK(n, f, &truth[n], -1)
		// The step to f gave the frame before it its own CFA (as
		// unwind.FillCFA sets it): compare it exactly with the truth's. A
		// wrong one is that step's error, so f's.
		if ok && n > 0 {
			var cfa uint64
			if !prevInlined && f.Kind == unwind.KindCall {
				cfa = f.CalleeCFA()
			}
			ok = c.cfaOK(n-1, cfa, f.Kind, truth)
		}
		prevInlined = f.Inlined
		if !ok && failAt < 0 {
			failAt, failPC = n, prevPC
		}
		if !ok {
			if c.explain && n >= len(truth) && c.reason == "" {
				c.reason = fmt.Sprintf("frame %d: %s beyond the truth's %d frames", n, frameName(f), len(truth))
			}
			exact = false
			if f.Reliable && lie < 0 {
				lie = n
			}
		}
		lastPC = f.LookupPC
		prevPC = f.LookupPC
		n++
	}
	if n < need && exact {
		exact = false
		if c.explain {
			c.reason = fmt.Sprintf("trace ends after %d frames (%s), the truth has %d (next: %s)",
				n, u.StopReason(), len(truth), truthName(&truth[n]))
		}
	}
	if exact {
		return Exact
	}
	if u.Reliable() {
		return WrongReliable
	}
	// Frames a corrupt stack invalidates are unreliable, though the
	// cursor yielded them as reliable before it found out.
	if from := u.Invalidated(); lie >= 0 && (from < 0 || lie < from) {
		return WrongFlagged
	}
	// The trace went wrong (or stopped) right above a frame whose CFI
	// leaves the caller's RSP or return address undefined on purpose.
	if c.code != nil {
		switch {
		case failAt > 0 && c.cfiUndefinedAt(failPC):
			c.undefined = true
		case failAt < 0 && n > 0 && n < need && c.cfiUndefinedAt(lastPC):
			c.undefined = true
		}
	}
	return Flagged
}

// cfaOK checks the own CFA of frame i (cfa, as unwind.FillCFA would set
// it from its caller, whose kind is nextKind) against the truth's (truth[i]):
// exactly equal, and 0 only where the caller was not reached by a call
// step (then the CFA is the entry code's convention, which the interrupted
// frame's registers check instead). The truth's outermost frame may have
// no CFA (the shadow stack began there).
func (c *comparison) cfaOK(i int, cfa uint64, nextKind unwind.FrameKind, truth []emu.Frame) bool {
	t := &truth[i]
	if cfa == 0 && nextKind != unwind.KindCall || t.CFA == 0 && i == len(truth)-1 {
		return true
	}
	if cfa != t.CFA {
		if c.explain && c.reason == "" {
			c.reason = fmt.Sprintf("frame %d: %s: cfa %#x, truth %#x", i, t.Function, cfa, t.CFA)
		}
		return false
	}
	return true
}

func frameName(f *unwind.Frame) string {
	if f.SymOK {
		return fmt.Sprintf("%s+%#x (pc %#x)", f.Sym.Name, f.PC-f.Sym.Addr, f.PC)
	}
	return fmt.Sprintf("%#x", f.PC)
}

func truthName(t *emu.Frame) string {
	if t.Function != "" {
		return fmt.Sprintf("%s (pc %#x)", t.Function, t.PC)
	}
	return fmt.Sprintf("%#x", t.PC)
}

// frameOK compares frame i with the truth: function, PC, CFA (where both
// know it), whether it was interrupted and by what, and for interrupted
// frames the registers the unwinder recovered (RIP and RSP must be among
// them) and the pt_regs address.
//
// Frame.CFA, this frame's own CFA, is known only after the walk has
// stepped past the frame (unwind.FillCFA): cfa is -1 while streaming
// (classify checks it with cfaOK when the next frame comes), else the
// frame's CFA, which must be the truth's exactly.
func (c *comparison) frameOK(i int, f *unwind.Frame, t *emu.Frame, cfa int64) bool {
	// fail records the first difference; call it as `c.explain &&
	// fail(...)` so that its arguments are not even boxed (no allocation)
	// when no description is wanted.
	fail := func(format string, args ...any) bool {
		if c.reason == "" {
			c.reason = fmt.Sprintf("frame %d: ", i) + fmt.Sprintf(format, args...)
		}
		return false
	}
	fixedUp := false
	if f.PC != t.PC && t.Entry != "" && f.Interrupted() && c.fixups[t.PC] == f.PC {
		// The handler applied an __ex_table fixup: the pt_regs now
		// resumes at the fixup label in the same function (a legitimate
		// change of the interrupted RIP).
		fixedUp = true
	}
	if f.PC != t.PC && !fixedUp {
		return c.explain && fail("pc %s, truth %s", frameName(f), truthName(t))
	}
	// The function follows from the PC and the frame kind (PC-1 for a
	// return address): names are not compared, because the two symbol
	// tables name entry-code labels differently (symbols, like kallsyms,
	// calls asm_exc_nmi+0xf9 "first_nmi"; emu's table keeps the sized
	// function symbol).
	if cfa > 0 && uint64(cfa) != t.CFA {
		return c.explain && fail("%s: cfa %#x, truth %#x", t.Function, cfa, t.CFA)
	}
	if (t.Entry != "") != f.Interrupted() {
		if t.Entry != "" {
			return c.explain && fail("%s: a %s frame, truth interrupted by %s", t.Function, f.Kind, t.Entry)
		}
		return c.explain && fail("%s: interrupted (%s), truth a %s frame", t.Function, f.Entry, t.Kind)
	}
	if t.Entry == "" {
		return true
	}
	// "irq" without a vector is a less specific, not a wrong, name: Linux
	// 6.1's common_interrupt stub leaves orig_ax = -1, the vector is gone.
	if f.Entry != t.Entry && !(f.Entry == "irq" && strings.HasPrefix(t.Entry, "irq:")) &&
		!(c.pointersOnly && strings.HasPrefix(f.Entry, "irq:") && strings.HasPrefix(t.Entry, "irq:")) { // (a vector from orig_ax is data)
		return c.explain && fail("%s: entry %q, truth %q", t.Function, f.Entry, t.Entry)
	}
	if t.RegsAddr != 0 && f.RegsAddr != 0 && !f.Partial && f.RegsAddr != t.RegsAddr {
		return c.explain && fail("%s: pt_regs at %#x, truth %#x", t.Function, f.RegsAddr, t.RegsAddr)
	}
	if !f.Regs.Valid(ptregs.RIP) || !f.Regs.Valid(ptregs.RSP) {
		return c.explain && fail("%s: interrupted rip/rsp not recovered", t.Function)
	}
	for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
		if c.pointersOnly && r != ptregs.RIP && r != ptregs.RSP {
			continue
		}
		if r == ptregs.RAX && t.Entry == "syscall" {
			// pt_regs->ax of a syscall holds -ENOSYS, then the return
			// value; the register at entry (the number) is orig_ax.
			if f.Kind == unwind.KindInterrupted && !f.Partial && f.RegsAddr != 0 {
				if w, ok := t.Regs.Get(r); ok && f.PtRegs.OrigAX != w {
					return c.explain && fail("%s: orig_ax %#x, truth rax %#x", t.Function, f.PtRegs.OrigAX, w)
				}
			}
			continue
		}
		v, ok := f.Regs.Get(r)
		if !ok || (r == ptregs.RIP && fixedUp) {
			continue
		}
		if w, ok := t.Regs.Get(r); ok && w != v {
			return c.explain && fail("%s: %s %#x, truth %#x", t.Function, r, v, w)
		}
	}
	return true
}
