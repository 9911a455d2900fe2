// Package cfi compiles DWARF call-frame information (.eh_frame and
// .debug_frame) into compact rows and evaluates them. It is the only package
// that imports delve's pkg/dwarf/frame and pkg/dwarf/op, which it uses to parse
// CIEs/FDEs and as a differential oracle in tests.
//
// CONTRACT (shared by the symbols and unwind packages; keep these names):
//
//	t, err := cfi.Parse(data []byte, kind cfi.SectionKind, sectionAddr uint64, bias uint64)
//	err = t.Find(pc, &row)        // fills row for pc; errors.Is(err, cfi.ErrNoFDE) on a miss
//	caller, cfa, err := row.Step(&regs, mem)  // applies the row to callee regs
//
// Find and Step do not allocate in steady state.
package cfi

import "errors"

// ErrNoFDE is returned by Find when no FDE covers the PC.
var ErrNoFDE = errors.New("no FDE covers pc")

// SectionKind says which section a CFI table came from; they differ in CIE
// id encoding and pointer encodings.
type SectionKind uint8

const (
	EHFrame    SectionKind = iota // .eh_frame
	DebugFrame                    // .debug_frame
)

// RuleKind is how a register's (or the CFA's) value in the caller is found.
type RuleKind uint8

const (
	RuleUndefined     RuleKind = iota // value not recoverable
	RuleSameValue                     // unchanged from the callee
	RuleOffset                        // saved at CFA+Offset
	RuleValOffset                     // value is CFA+Offset
	RuleRegister                      // value is in register Reg
	RuleExpression                    // saved at the address Expr computes (CFA pushed first)
	RuleValExpression                 // value is what Expr computes (CFA pushed first)
	RuleCFA                           // CFA only: Reg + Offset
	RuleCFAExpression                 // CFA only: value of Expr (nothing pushed)
)

// Rule is one column of a row.
type Rule struct {
	Kind   RuleKind
	Reg    uint8
	Offset int64
	Expr   []byte // DWARF expression bytes for expression rules (aliases the section)
}

// NumCols is the number of register columns a Row tracks: DWARF 0–16
// (16 is the return-address column on x86-64).
const NumCols = 17

// Row is the unwind rule set for a PC range [Start, End).
type Row struct {
	Start, End  uint64
	CFA         Rule
	Regs        [NumCols]Rule
	RetAddrReg  uint8
	SignalFrame bool // the FDE's CIE has the 'S' augmentation
}
