package symbols

import "github.com/unwind-dev/unwind/internal/cfi"

// Sym is one symbol: a function or data object at a run-time address. A
// debugger prints it as Name+0x(pc-Addr)/0x(Size).
//
// Size is the ELF st_size, except where the symbol has none (0) and for the
// text symbols of a Linux kernel image: there it is what the kernel prints
// after the slash in "func+0x15/0x20", the distance from Addr to the next
// higher symbol address that kallsyms lists (so lapic_next_event, st_size
// 0x19, has Size 0x20: it includes the padding to the next function).
// Tables from ParseSystemMap and ParseKallsyms, which have no sizes, give
// every symbol the distance to the next symbol, which is the same number.
// ELFSize keeps the ELF st_size for callers that want it (0 for symbols
// that do not come from an ELF file, or whose st_size is 0).
//
// A File counts as a kernel image when it is an ET_EXEC whose text lies at
// or above 0xffffffff80000000 and which defines linux_banner or _stext.
//
// Module is "" for the symbols of a kernel image (vmlinux, whose built-in
// code the kernel prints with no "[module]"), the module name for a
// loadable kernel module (the .modinfo name, or the .ko file name with '-'
// as '_', as in "[e1000e]"; kallsyms's "[module]" column gives the same),
// and File.Path for any other ELF file (also when a separate debug file is
// attached with AttachDebug).
type Sym struct {
	Name    string
	Addr    uint64 // run-time address: the table's bias is already added
	Size    uint64 // bytes; 0 = unknown (see above for kernels)
	ELFSize uint64 // the ELF symbol's st_size; 0 when not from ELF or unknown
	Module  string // the file or kernel module the symbol belongs to ("" for vmlinux or when unknown)
}

// CFIRow is the unwind rule set that holds at one pc; FindCFI fills it and
// its Step method turns a callee's registers into the caller's. It is an
// alias of internal/cfi.Row so that callers need not import that package.
type CFIRow = cfi.Row

// ErrNoFDE is returned (possibly wrapped) by FindCFI when no CFI covers a
// pc; test with errors.Is.
var ErrNoFDE = cfi.ErrNoFDE

// Line is one source-level frame for a pc: the function, and the file and
// line executing in it. For an inlined function (Inlined true) the next Line
// is its caller, at the call site.
type Line struct {
	Function, File string
	Line           int
	Inlined        bool
}
