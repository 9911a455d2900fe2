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
//	s.AddTable(sysmap, "")             // built-in code has no module name
//	sym, ok := s.Symbol(pc)            // O(log n), no allocation
//	err = s.FindCFI(pc, &row)          // errors.Is(err, symbols.ErrNoFDE) on a miss
//	lines = s.Lines(pc, lines)         // innermost first
//
// # Kernel symbols
//
// For a Linux kernel image (vmlinux), and for System.map and kallsyms
// tables, Sym.Size is what the kernel itself prints in "func+0x15/0x20":
// the distance to the next symbol kallsyms lists, not the ELF st_size (kept
// in Sym.ELFSize), so an oops line can be compared with a lookup as text.
// System.map and kallsyms tables keep each symbol's type letter
// (Table.Type); Set.Symbol and Set.IsText consult only their text symbols
// (t, T, w, W), so a data or per-cpu symbol — fixed_percpu_data at address
// 0 — never names a PC, while Table.Lookup still finds any symbol.
// Aliases at one address are ordered as kallsyms orders them. Sym.Module is
// "" for built-in kernel code and the module name for a .ko or a kallsyms
// "[module]" column. See Sym.
//
// # Loadable kernel modules
//
// A .ko is a relocatable object (ET_REL): every section starts at 0 and
// the module loader places each one at its own address and applies the
// relocations. OpenModule does the same with the addresses a running
// kernel or a dump records (/sys/module/NAME/sections/, struct module's
// sect_attrs), so that the module's symbols, DWARF lines and inlined
// frames, .debug_frame CFI, code and ORC tables (ModuleORC) are all at
// run-time addresses, and the File joins a Set beside vmlinux:
//
//	mod, err := symbols.OpenModule("prodcrash.ko", symbols.Placement{
//		Sections: sections,                  // name → address, init sections left out once freed
//		TextEnds: []uint64{base + textSize}, // optional: exact kallsyms sizes
//	})
//	err = mod.MatchModuleSymbols("prodcrash", inMemorySymbols) // the right file? (no build id in Debian 6.1)
//	s.Add(mod)
//	sym, _ := s.Symbol(pc)                   // prod_write+0xb1/0xd3 [prodcrash]
//
// Its symbols are named and sized as the kernel's module kallsyms prints
// them (Sym.Module the module name; aliases resolved in symbol-table
// order). debug/elf's own DWARF method for ET_REL files applies only
// absolute relocations with every section at 0, and never to .debug_frame
// or the ORC tables; this package relocates them all itself.
//
// # Separate debug files
//
// A stripped library and its debug file (objcopy --only-keep-debug) make
// one File:
//
//	f, err := symbols.Open("/lib/x86_64-linux-gnu/libc.so.6", loadBias)
//	if dbg, ok := symbols.FindDebugFile(f, []string{"/usr/lib/debug"}); ok {
//		err = f.AttachDebug(dbg) // checks build id or .gnu_debuglink CRC
//	}
//
// It then uses the main file's text, .eh_frame and dynamic symbols and the
// debug file's .symtab, DWARF lines and .debug_frame, and its symbols are
// still named after the main file in Sym.Module. OpenWithDebug does both
// and builds the symbol table once. A debugger that must read the file
// before it knows the bias (a core maps it at some address: its build id
// says whether it is the right file, its first PT_LOAD gives the bias)
// parses it once and hands the headers over:
//
//	fh, err := os.Open(path)
//	ef, err := elf.NewFile(fh)
//	if id := symbols.BuildIDOf(ef); id != nil && !bytes.Equal(id, coreID) { /* another file */ }
//	bias := mapStart - firstLoad.Vaddr&^0xfff // the mapping at file offset 0
//	f, dbgPath, dbgErr, err := symbols.NewFileWithDebug(fh, ef, path, bias, []string{"/usr/lib/debug"})
//
// The File reads fh, which the caller closes after it; dump's Symbols
// does this for every file a user core maps.
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
//
// Files of 64 KiB and more (ELF files, the debug cache's sections) are read
// through read-only shared mappings, never unmapped. A file that another
// process truncates while it is mapped faults (SIGBUS) on the pages it
// lost, which crashes a Go program unless the goroutine reading it turned
// faults into panics (runtime/debug.SetPanicOnFault) and recovers them, as
// the unwind command does. The debug cache itself is written by rename, so
// a cached file is never truncated under a reader.
package symbols
