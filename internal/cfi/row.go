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

// Memory is the target address space Step reads saved registers from. It has
// the shape of unwind.Memory, so any unwind.Memory can be passed; a failed
// read should return an error (wrapping unwind.ErrUnmapped when unmapped).
type Memory interface {
	ReadAt(p []byte, addr uint64) (int, error)
}
