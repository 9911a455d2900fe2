package symbols

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/internal/corpus"
)

// DWARF register numbers of the columns the comparison reads.
const (
	dwRBP = 6
	dwRSP = 7
	dwRIP = 16
)

// orcDWARFClass names how ORC and DWARF CFI relate at pc, the start of a
// range where both are constant: "agree", or the kind of disagreement.
// code is the file's machine code from pc on, before (the 8 bytes before
// pc, fewer at a section start).
func orcDWARFClass(e ORCEntry, row *CFIRow, code, before []byte) string {
	switch e.Type {
	case ORCUndefined, ORCEndOfStack:
		if unreachable(code) {
			return "orc-undefined-unreachable"
		}
		return "orc-undefined-skipped"
	case ORCRegs, ORCRegsPartial:
		return "orc-entry-frame"
	}
	switch e.SPReg {
	case ORCRegSP, ORCRegBP:
		if row.CFA.Kind != cfi.RuleCFA {
			return "dwarf-cfa-expression"
		}
		reg := uint8(dwRSP)
		if e.SPReg == ORCRegBP {
			reg = dwRBP
		}
		if row.CFA.Reg != reg || row.CFA.Offset != int64(e.SPOffset) {
			if inPVCall(before, code) {
				return "paravirt-site"
			}
			if e.SPReg == ORCRegSP && (row.CFA.Reg == 10 || row.CFA.Reg == 13) && row.CFA.Offset == 0 && drapLea(before, row.CFA.Reg, e.SPOffset) {
				return "drap-equivalent"
			}
			return "cfa-differs"
		}
	case ORCRegBPIndirect:
		// gcc: DW_CFA_def_cfa_expression DW_OP_breg6 (rbp) off; DW_OP_deref.
		want := append(append([]byte{0x76}, slebBytes(int64(e.SPOffset))...), 0x06)
		if row.CFA.Kind != cfi.RuleCFAExpression || string(row.CFA.Expr) != string(want) {
			return "cfa-differs-indirect"
		}
	case ORCRegR10, ORCRegR13, ORCRegDI, ORCRegDX:
		// A realigned stack (DRAP): the CFA in the DRAP register.
		reg := map[ORCReg]uint8{ORCRegR10: 10, ORCRegR13: 13, ORCRegDI: 5, ORCRegDX: 1}[e.SPReg]
		if row.CFA.Kind != cfi.RuleCFA || row.CFA.Reg != reg || row.CFA.Offset != 0 {
			return "cfa-differs-drap"
		}
	case ORCRegSPIndirect:
		return "orc-indirect-sp"
	default:
		return "orc-unknown-reg"
	}
	ra := row.Regs[dwRIP]
	if row.RetAddrReg != dwRIP || ra.Kind != cfi.RuleOffset || ra.Offset != -8 {
		return "ra-differs"
	}
	bp := row.Regs[dwRBP]
	switch e.BPReg {
	case ORCRegUndefined:
		if bp.Kind != cfi.RuleUndefined && bp.Kind != cfi.RuleSameValue {
			return "rbp-differs"
		}
	case ORCRegPrevSP:
		if bp.Kind != cfi.RuleOffset || bp.Offset != int64(e.BPOffset) {
			return "rbp-differs"
		}
	case ORCRegBP:
		// Saved at rbp+off: gcc says it with DW_OP_breg6 off.
		want := append([]byte{0x76}, slebBytes(int64(e.BPOffset))...)
		if bp.Kind != cfi.RuleExpression || string(bp.Expr) != string(want) {
			return "rbp-differs"
		}
	default:
		return "rbp-differs"
	}
	return "agree"
}

// unreachable reports whether code starts with what objtool leaves
// without ORC: int3 (the speculation trap after an indirect jump or a
// return, and padding), ud2 (BUG()), or a NOP of the padding.
func unreachable(code []byte) bool {
	switch {
	case len(code) == 0:
		return true
	case code[0] == 0xcc, code[0] == 0x90:
		return true
	case len(code) >= 2 && code[0] == 0x0f && (code[1] == 0x0b || code[1] == 0x1f):
		return true
	case code[0] == 0x66:
		return true // data16 nopw padding
	}
	return false
}

// inPVCall reports whether pc (whose preceding bytes are before) lies
// inside a 6-byte "call *pv_ops+X(%rip)" (ff 15 rel32): a paravirt site
// that the kernel patches at boot into "pushf; pop %rax" and the like,
// whose stack effect objtool's ORC describes and gcc's CFI does not.
func inPVCall(before, code []byte) bool {
	at := func(i int) int { // the byte at pc+i, i < 0 before pc
		switch {
		case i < 0 && len(before)+i >= 0:
			return int(before[len(before)+i])
		case i >= 0 && i < len(code):
			return int(code[i])
		}
		return -1
	}
	for j := 1; j < 6; j++ {
		if at(-j) == 0xff && at(-j+1) == 0x15 {
			return true
		}
	}
	return false
}

// drapLea reports whether before ends with "lea off(%rsp),%r10" (or
// %r13, by DWARF number reg): from there until the stack is realigned,
// CFA = rsp+off and CFA = reg+0 are the same address.
func drapLea(before []byte, reg uint8, off int16) bool {
	modrm := map[uint8]byte{10: 0x54, 13: 0x6c}[reg]
	n := len(before)
	return n >= 5 && before[n-5] == 0x4c && before[n-4] == 0x8d && before[n-3] == modrm && before[n-2] == 0x24 && int16(int8(before[n-1])) == off
}

// pushedSince returns how many bytes code's first n bytes push on the
// stack (push, pushf, pop, popf), decoding them in order.
func pushedSince(code []byte, n uint64) int64 {
	var d int64
	for off := uint64(0); off < n && off < uint64(len(code)); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			off++ // an instruction x86asm does not know (serialize): resynchronise
			continue
		}
		switch inst.Op {
		case x86asm.PUSH, x86asm.PUSHFQ:
			d += 8
		case x86asm.POP, x86asm.POPFQ:
			d -= 8
		}
		off += uint64(inst.Len)
	}
	return d
}

// slebBytes encodes v as a signed LEB128.
func slebBytes(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// orcDWARFExplained says why each class of disagreement exists; a class
// missing here fails the test.
var orcDWARFExplained = map[string]string{
	"agree": "",
	// Assembly (.S: entry code, the syscall and interrupt stubs,
	// retpolines, memcpy and friends) carries no CFI directives since
	// Linux 5.x; objtool gives it ORC from the code and the unwind hints.
	"orc-only": "assembly has ORC (objtool) but no DWARF CFI",
	// objtool skips what is marked STACK_FRAME_NON_STANDARD or whole
	// objects marked OBJECT_FILES_NON_STANDARD (kexec_core.c's
	// __crash_kexec and its inline-asm crash_setup_regs, the BPF
	// interpreter...); its section terminators and the int3 padding
	// between functions are UNDEFINED too.
	"orc-undefined-skipped": "objtool skipped the code (STACK_FRAME_NON_STANDARD, OBJECT_FILES_NON_STANDARD): ORC UNDEFINED, DWARF from gcc",
	// int3 after an indirect tail call or a return thunk jump, ud2 of a
	// BUG(), alignment NOPs: never executed, so objtool gives no ORC.
	"orc-undefined-unreachable": "unreachable code (int3 speculation traps, ud2, padding): ORC UNDEFINED, DWARF covers it",
	// pv_ops calls (save_fl, irq_disable...) are patched at boot;
	// objtool describes the patched code (pushf leaves the stack a word
	// lower until the pop), gcc the 6-byte call it emitted.
	"paravirt-site": "inside a paravirt call site (ff 15): ORC describes the code patched in at boot (pushf; pop), gcc's CFI the call",
	// Entry hints (UNWIND_HINT_REGS / IRET_REGS) only occur in
	// assembly, but C inline asm with hints exists too.
	"orc-entry-frame": "an UNWIND_HINT_REGS/IRET_REGS (pt_regs or iret frame) in code gcc also describes",
	// sync_core()'s iret_to_self pushes an iret frame in inline asm.
	"inline-asm-pushes": "inline asm pushes (sync_core's iret_to_self): objtool follows them, gcc's CFI cannot see inside inline asm",
	// gcc moves the CFA to the DRAP register right after the lea that
	// sets it, objtool after the and that realigns rsp: the same address.
	"drap-equivalent": "between the lea setting the DRAP register and the realigning and: rsp+off and r10+0 are the same CFA",
	// call_on_irqstack()/call_on_stack() switch stacks in inline asm:
	// ORC follows the saved stack pointer (SP_INDIRECT), gcc's CFI
	// does not see the switch.
	"orc-indirect-sp": "inline-asm stack switch (call_on_irqstack): ORC's SP_INDIRECT is right, gcc's CFI cannot see it",
}

// TestORCAgreesWithDWARF is the differential check drgn makes of its own
// ORC support: over every address range of the production vmlinux where
// ORC and .debug_frame both say something, they must agree on the CFA and
// on where the return address and rbp are saved, or the disagreement must
// belong to an explained class. The sweep covers every ORC range and,
// within it, every DWARF row boundary.
func TestORCAgreesWithDWARF(t *testing.T) {
	f := prodVmlinux(t)
	tab, err := f.ORC()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	type example struct {
		pc      uint64
		e       ORCEntry
		cfa     cfi.Rule
		rbp, ra cfi.Rule
	}
	counts := map[string]int{}
	examples := map[string][]example{}
	var row CFIRow
	for i := 0; i+1 < tab.Len(); i++ {
		lo, e := tab.At(i)
		hi, _ := tab.At(i + 1)
		for pc := lo; pc < hi; {
			err := f.FindCFI(pc, &row)
			if err != nil {
				if !errors.Is(err, ErrNoFDE) {
					t.Fatalf("FindCFI(%#x): %v", pc, err)
				}
				if e.Type != ORCUndefined {
					counts["orc-only"]++
					if len(examples["orc-only"]) < 3 {
						examples["orc-only"] = append(examples["orc-only"], example{pc: pc, e: e})
					}
				}
				break
			}
			code := f.CodeAt(pc)
			var before []byte
			for k := uint64(8); k > 0; k-- {
				if b := f.CodeAt(pc - k); len(b) >= int(k) {
					before = b[:k]
					break
				}
			}
			c := orcDWARFClass(e, &row, code, before)
			if c == "cfa-differs" && row.CFA.Kind == cfi.RuleCFA && row.CFA.Reg == dwRSP && e.SPReg == ORCRegSP &&
				row.CFA.Offset+pushedSince(f.CodeAt(row.Start), pc-row.Start) == int64(e.SPOffset) {
				c = "inline-asm-pushes"
			}
			counts[c]++
			if c != "agree" && len(examples[c]) < 3 {
				examples[c] = append(examples[c], example{pc, e, row.CFA, row.Regs[dwRBP], row.Regs[dwRIP]})
			}
			if row.End <= pc {
				t.Fatalf("row at %#x ends at %#x", pc, row.End)
			}
			pc = min(row.End, hi)
		}
	}
	var classes []string
	for c := range counts {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	var b strings.Builder
	for _, c := range classes {
		fmt.Fprintf(&b, "%-22s %7d", c, counts[c])
		for _, x := range examples[c] {
			s, _ := f.Syms.Lookup(x.pc)
			fmt.Fprintf(&b, "  %s+%#x", s.Name, x.pc-s.Addr)
		}
		b.WriteString("\n")
	}
	t.Logf("ORC vs DWARF over %d ORC entries in %v:\n%s", tab.Len(), time.Since(start), b.String())
	for _, c := range classes {
		why, ok := orcDWARFExplained[c]
		if !ok {
			for _, x := range examples[c] {
				s, _ := f.Syms.Lookup(x.pc)
				t.Errorf("unexplained %s at %s+%#x: orc %+v; dwarf cfa %+v rbp %+v ra %+v", c, s.Name, x.pc-s.Addr, x.e, x.cfa, x.rbp, x.ra)
			}
			continue
		}
		if c != "agree" {
			t.Logf("%s: %s", c, why)
		}
	}
	corpus.Checked(t, tab.Len())
	if counts["agree"] < 100000 {
		t.Errorf("only %d ranges agree", counts["agree"])
	}
}
