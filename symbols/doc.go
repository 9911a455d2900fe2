// Package symbols maps run-time addresses to what a debugger prints for
// them: symbols (name, offset, size) from ELF .symtab/.dynsym, System.map
// and /proc/kallsyms text; call-frame information from .debug_frame and
// .eh_frame; and source file:line with inlined callers from DWARF.
//
// Every address a caller passes in or gets back is a run-time address: the
// load bias given to Open, NewFile, ParseSystemMap or ParseKallsyms (the
// KASLR offset for a kernel, the load address of a PIE or shared library) is
// applied to symbols, CFI pc ranges, text sections and line lookups alike.
//
// A typical kernel setup:
//
//	var s symbols.Set
//	vmlinux, err := symbols.Open("vmlinux", kaslrOffset)
//	...
//	s.Add(vmlinux)
//	sysmap, err := symbols.ParseSystemMap(r, kaslrOffset)
//	s.AddTable(sysmap, "vmlinux")
//	sym, ok := s.Symbol(pc)            // O(log n), no allocation
//	err = s.FindCFI(pc, &row)          // errors.Is(err, symbols.ErrNoFDE) on a miss
//	lines = s.Lines(pc, lines)         // innermost first
//
// Lookups report misses with false, a nil slice or ErrNoFDE, never a panic.
// Table lookups are binary searches that do not allocate; CFI rows are
// compiled once per FDE and cached; DWARF is indexed per compile unit on
// first use, so opening a large vmlinux is cheap until lines are asked for.
//
// # Security
//
// ELF files, System.map text and kallsyms taken from a crash dump may be
// corrupt or hostile. Parsers return errors rather than panicking (panics
// inside debug/elf, debug/dwarf and delve's frame parser are recovered),
// line lengths, remember-state depth, expression steps and rows per FDE are
// bounded, and sections larger than 2 GiB are not read. Sizes and offsets
// from the file are never trusted to index memory without a bounds check.
package symbols
