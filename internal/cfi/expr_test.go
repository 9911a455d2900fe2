package cfi

import (
	"errors"
	"testing"

	"github.com/unwind-dev/unwind/ptregs"
)

func TestEvalExpr(t *testing.T) {
	var regs ptregs.Regs
	regs.Set(ptregs.RSP, 0x7000)
	regs.Set(ptregs.RBP, 0x7100)
	mem := mapMemory{0x7000: 0x1122334455667788, 0x7100: 0x7200}
	tests := []struct {
		name string
		expr []byte
		push bool
		want uint64
	}{
		{"breg7+8", cat([]byte{opBreg0 + 7}, sleb(8)), false, 0x7008},
		{"bregx rbp -16", cat([]byte{opBregx}, uleb(6), sleb(-16)), false, 0x70f0},
		{"cfa pushed, plus_uconst", cat([]byte{opPlusUconst}, uleb(0x10)), true, 0x8010},
		{"deref", []byte{opBreg0 + 6, 0, opDeref}, false, 0x7200},
		{"deref_size 2", []byte{opBreg0 + 7, 0, opDerefSize, 2}, false, 0x7788},
		{"lit dup plus", []byte{opLit0 + 5, opDup, opPlus}, false, 10},
		{"swap minus", []byte{opLit0 + 3, opLit0 + 10, opSwap, opMinus}, false, 7},
		{"const1s", []byte{opConst1s, 0xff}, false, ^uint64(0)},
		{"const2u and", []byte{opConst2u, 0xff, 0x0f, opLit0 + 0xf, opAnd}, false, 0xf},
		{"lt", []byte{opLit0 + 1, opLit0 + 2, opLt}, false, 1},
		{"ge", []byte{opLit0 + 1, opLit0 + 2, opGe}, false, 0},
		{"bra taken", []byte{opLit0 + 1, opBra, 1, 0, opLit0 + 7, opLit0 + 9}, false, 9},
		{"drop", []byte{opLit0 + 1, opLit0 + 2, opDrop}, false, 1},
		// The kernel's and glibc's signal-frame style: rsp-relative slot.
		{"call_frame_cfa", []byte{opCallFrCFA, opLit0 + 8, opMinus}, false, 0x8000 - 8},
	}
	for _, tc := range tests {
		got, err := EvalExpr(tc.expr, &regs, mem, 0x8000, tc.push)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %#x, %v; want %#x", tc.name, got, err, tc.want)
		}
	}
}

func TestEvalExprErrors(t *testing.T) {
	var regs ptregs.Regs
	regs.Set(ptregs.RSP, 0x7000)
	loop := []byte{opSkip, 0xfd, 0xff} // skip -3: jumps to itself
	for name, expr := range map[string][]byte{
		"empty":          nil,
		"underflow":      {opPlus},
		"unknown reg":    {opBreg0 + 3, 0},
		"truncated":      {opConst4u, 1, 2},
		"unmapped deref": {opBreg0 + 7, 0, opDeref},
		"bad opcode":     {0xff},
		"loop":           loop,
		"div by zero":    {opLit0 + 1, opLit0, opDiv},
	} {
		if _, err := EvalExpr(expr, &regs, mapMemory{}, 0, false); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := EvalExpr([]byte{opBreg0 + 7, 0, opDeref}, &regs, mapMemory{}, 0, false)
	if !errors.Is(err, errUnmapped) {
		t.Errorf("deref error %v does not wrap the memory error", err)
	}
}

func TestStepStandardFrame(t *testing.T) {
	// After push %rbp; mov %rsp,%rbp: CFA = rbp+16, rbp at CFA-16, RA at CFA-8.
	instr := cat(
		[]byte{cfaAdvanceLoc | 1, cfaDefCFAOffset}, uleb(16), []byte{cfaOffset | 6}, uleb(2),
		[]byte{cfaAdvanceLoc | 3, cfaDefCFARegister}, uleb(6),
	)
	sec := debugFrame("", standardCIE, fdeSpec{fdeStart, 32, instr})
	tab, err := Parse(sec, DebugFrame, 0, 0x10000)
	if err != nil {
		t.Fatal(err)
	}
	var row Row
	if err := tab.Find(fdeStart+0x10000+10, &row); err != nil {
		t.Fatal(err)
	}
	var regs ptregs.Regs
	regs.Set(ptregs.RSP, 0x6fe0)
	regs.Set(ptregs.RBP, 0x6ff0)
	regs.Set(ptregs.RBX, 0xbb)
	regs.Set(ptregs.RAX, 0xaa)
	regs.Set(ptregs.RIP, fdeStart+0x10000+10)
	mem := mapMemory{0x6ff0: 0x7050, 0x6ff8: 0x401777}
	caller, cfa, err := row.Step(&regs, mem)
	if err != nil {
		t.Fatal(err)
	}
	check := func(r ptregs.Reg, want uint64, known bool) {
		t.Helper()
		v, ok := caller.Get(r)
		if ok != known || v != want {
			t.Errorf("%s = %#x (%v), want %#x (%v)", r, v, ok, want, known)
		}
	}
	if cfa != 0x7000 {
		t.Errorf("cfa = %#x", cfa)
	}
	check(ptregs.RIP, 0x401777, true)
	check(ptregs.RSP, 0x7000, true)
	check(ptregs.RBP, 0x7050, true)
	check(ptregs.RBX, 0xbb, true) // callee-saved, no rule: same value
	check(ptregs.RAX, 0, false)   // caller-saved: unknown
	// A missing stack word is an error wrapping the memory's error.
	if _, _, err := row.Step(&regs, mapMemory{0x6ff0: 1}); !errors.Is(err, errUnmapped) {
		t.Errorf("Step with unmapped RA slot: %v", err)
	}
	// Unknown CFA register.
	var empty ptregs.Regs
	if _, _, err := row.Step(&empty, mem); err == nil {
		t.Error("Step without rbp: no error")
	}
}

func TestFindMisses(t *testing.T) {
	sec := debugFrame("", standardCIE, fdeSpec{0x2000, 16, nil}, fdeSpec{0x1000, 16, nil})
	tab, err := Parse(sec, DebugFrame, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var row Row
	for _, pc := range []uint64{0, 0xfff, 0x1010, 0x1fff, 0x2010, ^uint64(0)} {
		if err := tab.Find(pc, &row); !errors.Is(err, ErrNoFDE) {
			t.Errorf("Find(%#x) = %v, want ErrNoFDE", pc, err)
		}
	}
	for _, pc := range []uint64{0x1000, 0x100f, 0x2000, 0x200f} { // FDEs out of order in the section
		if err := tab.Find(pc, &row); err != nil {
			t.Errorf("Find(%#x) = %v", pc, err)
		}
	}
	var nilTab *Table
	if err := nilTab.Find(0x1000, &row); !errors.Is(err, ErrNoFDE) {
		t.Errorf("nil table: %v", err)
	}
}

func TestMalformedInstructions(t *testing.T) {
	// An unknown opcode after the first row: the first row stays usable.
	instr := []byte{cfaAdvanceLoc | 4, 0x3f}
	sec := debugFrame("", standardCIE, fdeSpec{0x1000, 16, instr})
	tab, err := Parse(sec, DebugFrame, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var row Row
	if err := tab.Find(0x1002, &row); err != nil {
		t.Errorf("before the bad opcode: %v", err)
	}
	var fe *FormatError
	if err := tab.Find(0x1008, &row); !errors.As(err, &fe) {
		t.Errorf("after the bad opcode: %v, want a *FormatError", err)
	}
	if _, err := Parse([]byte{1, 2, 3}, DebugFrame, 0, 0); err == nil {
		t.Error("Parse of garbage: no error")
	}
}
