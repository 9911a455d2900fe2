package symbols

import "github.com/unwind-dev/unwind/internal/cfi"

// Sym is one symbol: a function or data object at a run-time address. A
// debugger prints it as Name+0x(pc-Addr)/0x(Size).
type Sym struct {
	Name   string
	Addr   uint64 // run-time address: the table's bias is already added
	Size   uint64 // bytes; 0 = unknown
	Module string // the file or kernel module the symbol belongs to ("" when unknown)
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
