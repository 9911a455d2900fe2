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
//
// Rows are compiled by this package's own interpreter of the CIE and FDE
// instruction bytes (delve only splits the section into entries). It differs
// from delve's v1.27.2 evaluator where that one is wrong: DW_CFA_restore
// returns to the CIE's rule, DW_CFA_val_offset is scaled by the data
// alignment factor, DW_CFA_restore_state on an empty stack is ignored (as gdb
// does) instead of panicking, and register expression rules start with the
// CFA pushed.
//
// Columns the CIE and FDE say nothing about default to SameValue for the
// System V callee-saved registers (rbx, rbp, r12–r15) and to Undefined for
// the others, as gdb and libgcc assume on x86-64.
//
// # Security
//
// Section bytes and target memory may be hostile: Parse recovers panics from
// the dependency, the compiler bounds the remember-state stack and the row
// count, and the expression evaluator bounds its stack and its steps.
package cfi
