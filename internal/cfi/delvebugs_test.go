package cfi

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/go-delve/delve/pkg/dwarf/frame"
	"github.com/go-delve/delve/pkg/dwarf/op"
	"github.com/unwind-dev/unwind/ptregs"
)

// These tests pin the four places where delve v1.27.2's frame evaluator is
// wrong, on hand-made .debug_frame sections: our compiler must be right, and
// each test logs what delve computes so a dependency upgrade that fixes (or
// changes) delve shows up in -v output.

const fdeStart = 0x401000

func delveContext(t *testing.T, sec []byte, pc uint64) (fc *frame.FrameContext, panicked any) {
	t.Helper()
	fdes, err := frame.Parse(sec, binary.LittleEndian, 0, 8, 0)
	if err != nil {
		t.Fatalf("delve Parse: %v", err)
	}
	fde, err := fdes.FDEForPC(pc)
	if err != nil {
		t.Fatalf("delve FDEForPC: %v", err)
	}
	defer func() { panicked = recover() }()
	fc, err = fde.EstablishFrame(pc)
	if err != nil {
		t.Logf("delve EstablishFrame: %v", err)
	}
	return fc, nil
}

func mustFind(t *testing.T, sec []byte, pc uint64) Row {
	t.Helper()
	tab, err := Parse(sec, DebugFrame, 0, 0)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var row Row
	if err := tab.Find(pc, &row); err != nil {
		t.Fatalf("Find(%#x): %v", pc, err)
	}
	return row
}

// DW_CFA_restore must return a register to the rule the CIE gave it.
func TestRestoreUsesCIERule(t *testing.T) {
	cie := cat(standardCIE, []byte{cfaOffset | 3}, uleb(2)) // rbx at CFA-16 in the CIE
	instr := cat(
		[]byte{cfaAdvanceLoc | 1, cfaOffset | 3}, uleb(3), // rbx at CFA-24
		[]byte{cfaAdvanceLoc | 1, cfaRestore | 3}, // back to CFA-16
	)
	sec := debugFrame("", cie, fdeSpec{fdeStart, 16, instr})
	row := mustFind(t, sec, fdeStart+2)
	if got := row.Regs[3]; got.Kind != RuleOffset || got.Offset != -16 {
		t.Errorf("rbx after restore = %+v, want offset -16 (the CIE's rule)", got)
	}
	if got := mustFind(t, sec, fdeStart+1).Regs[3]; got.Offset != -24 {
		t.Errorf("rbx before restore = %+v, want offset -24", got)
	}
	fc, _ := delveContext(t, sec, fdeStart+2)
	if fc != nil {
		r := fc.Regs[3]
		t.Logf("delve: rbx after restore = rule %d offset %d (ours: offset -16)", r.Rule, r.Offset)
		if r.Rule == frame.RuleOffset && r.Offset == -16 {
			t.Logf("delve now agrees: the DW_CFA_restore defect is fixed")
		}
	}
}

// DW_CFA_val_offset's operand is factored by the data alignment factor.
func TestValOffsetIsScaled(t *testing.T) {
	instr := cat([]byte{cfaAdvanceLoc | 1, cfaValOffset}, uleb(3), uleb(2)) // rbx = CFA + 2*(-8)
	sec := debugFrame("", standardCIE, fdeSpec{fdeStart, 16, instr})
	row := mustFind(t, sec, fdeStart+1)
	if got := row.Regs[3]; got.Kind != RuleValOffset || got.Offset != -16 {
		t.Fatalf("rbx = %+v, want val_offset -16", got)
	}
	var regs ptregs.Regs
	regs.Set(ptregs.RSP, 0x7000)
	caller, cfa, err := row.Step(&regs, mapMemory{0x7000: 0x401234})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := caller.Get(ptregs.RBX); cfa != 0x7008 || v != 0x7008-16 {
		t.Errorf("cfa %#x rbx %#x, want 0x7008 and %#x", cfa, v, 0x7008-16)
	}
	if fc, _ := delveContext(t, sec, fdeStart+1); fc != nil {
		t.Logf("delve: rbx val_offset = %d (ours: -16)", fc.Regs[3].Offset)
	}
}

// DW_CFA_restore_state with nothing remembered must not crash; like gdb we
// keep the current rules.
func TestRestoreStateOnEmptyStack(t *testing.T) {
	instr := cat(
		[]byte{cfaAdvanceLoc | 1, cfaDefCFAOffset}, uleb(16),
		[]byte{cfaAdvanceLoc | 1, cfaRestoreState},
		[]byte{cfaAdvanceLoc | 1, cfaDefCFAOffset}, uleb(24),
	)
	sec := debugFrame("", standardCIE, fdeSpec{fdeStart, 16, instr})
	for pc, want := range map[uint64]int64{fdeStart: 8, fdeStart + 1: 16, fdeStart + 2: 16, fdeStart + 3: 24, fdeStart + 15: 24} {
		if got := mustFind(t, sec, pc).CFA.Offset; got != want {
			t.Errorf("pc %#x: CFA offset %d, want %d", pc, got, want)
		}
	}
	_, p := delveContext(t, sec, fdeStart+2)
	t.Logf("delve EstablishFrame panics: %v", p)
}

// Register expression rules start with the CFA on the stack (DWARF 5
// §6.4.2.3); delve's evaluator starts with an empty stack.
func TestExpressionStartsWithCFA(t *testing.T) {
	expr := []byte{opLit0 + 16, opMinus} // address = CFA - 16
	instr := cat([]byte{cfaAdvanceLoc | 1, cfaExpression}, uleb(3), uleb(uint64(len(expr))), expr)
	sec := debugFrame("", standardCIE, fdeSpec{fdeStart, 16, instr})
	row := mustFind(t, sec, fdeStart+1)
	var regs ptregs.Regs
	regs.Set(ptregs.RSP, 0x7000)
	mem := mapMemory{0x7000: 0x401234, 0x6ff8: 0xb0b}
	caller, _, err := row.Step(&regs, mem)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := caller.Get(ptregs.RBX); !ok || v != 0xb0b {
		t.Errorf("rbx = %#x (%v), want 0xb0b read from CFA-16", v, ok)
	}
	if v, _ := caller.PC(); v != 0x401234 {
		t.Errorf("rip = %#x", v)
	}
	// delve's op package, as its proc layer calls it for RuleExpression.
	fc, _ := delveContext(t, sec, fdeStart+1)
	if fc != nil {
		dregs := op.DwarfRegisters{CFA: 0x7008}
		v, _, derr := op.ExecuteStackProgram(dregs, fc.Regs[3].Expression, 8, mem.ReadAt)
		t.Logf("delve: expression value %#x, err %v (ours: address 0x6ff8)", v, derr)
	}
}

func TestSignalFrameAugmentation(t *testing.T) {
	// .eh_frame with augmentation "zRS": the S marks a signal frame.
	body := cat([]byte{0, 0, 0, 0, 1}, []byte("zRS\x00"), uleb(1), sleb(-8), uleb(16), uleb(1), []byte{0x1b}, standardCIE)
	body = pad(body, 4)
	sec := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	sec = append(sec, body...)
	fdeOff := len(sec)
	fb := binary.LittleEndian.AppendUint32(nil, uint32(fdeOff+4)) // CIE pointer: back to offset 0
	const secAddr = 0x2000
	// pcrel sdata4 start: target - (secAddr + fdeOff + 8)
	fb = binary.LittleEndian.AppendUint32(fb, uint32(int32(fdeStart-(secAddr+fdeOff+8))))
	fb = binary.LittleEndian.AppendUint32(fb, 16)
	fb = append(fb, 0) // augmentation data length
	fb = pad(fb, 4)
	sec = binary.LittleEndian.AppendUint32(sec, uint32(len(fb)))
	sec = append(sec, fb...)
	tab, err := Parse(sec, EHFrame, secAddr, 0x1000)
	if err != nil {
		t.Fatal(err)
	}
	var row Row
	if err := tab.Find(fdeStart+0x1000+3, &row); err != nil {
		t.Fatal(err)
	}
	if !row.SignalFrame || row.Start != fdeStart+0x1000 || row.End != fdeStart+0x1010 {
		t.Errorf("row = %+v, want a signal frame covering the biased FDE", row)
	}
	if err := tab.Find(fdeStart+0x1010, &row); !errors.Is(err, ErrNoFDE) {
		t.Errorf("Find past the FDE: %v, want ErrNoFDE", err)
	}
}
