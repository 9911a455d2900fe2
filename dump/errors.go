package dump

import (
	"errors"
	"fmt"

	"github.com/unwind-dev/unwind/unwind"
)

// ErrNotCore is wrapped by the error Open returns when the file is neither an
// ELF core file nor a kdump file; test for it with errors.Is.
var ErrNotCore = errors.New("not a core file or vmcore")

// ErrUnsupported is wrapped by errors for dumps that are well formed but use
// a feature this package does not read (such as LZO-compressed kdump pages
// when no decoder is available).
var ErrUnsupported = errors.New("unsupported dump feature")

// ErrKernelDump is returned by Symbols for a kernel vmcore: its symbols,
// stacks and tasks are the kernel model's, so open it with linux.Open
// (package github.com/unwind-dev/unwind/linux), which takes the same
// SymbolOptions.
var ErrKernelDump = errors.New("a kernel vmcore's symbols are loaded by linux.Open")

// FormatError reports malformed dump contents at a file offset. Err, when
// set, is a sentinel such as ErrNotCore that errors.Is can match.
type FormatError struct {
	Off int64  // offset in the dump file
	Msg string // what is wrong
	Err error  // optional wrapped sentinel
}

func (e *FormatError) Error() string {
	s := fmt.Sprintf("dump: %s at offset %#x", e.Msg, e.Off)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the wrapped sentinel, if any.
func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(off int64, err error, format string, args ...any) *FormatError {
	return &FormatError{Off: off, Msg: fmt.Sprintf(format, args...), Err: err}
}

// ErrExcluded is wrapped by the error of a read of a page that the dump's
// writer left out on purpose (makedumpfile's dump level, -d): the page
// existed in the machine's memory but its contents are not in the file.
// Such a read is never answered with zeros.
var ErrExcluded = errors.New("page excluded from the dump")

// ExcludedPageError reports a read of a page that makedumpfile excluded
// from the dump (a free, cache, user or zero page at dump level -d 31).
// It wraps ErrExcluded and unwind.ErrUnmapped, so code that treats any
// unreadable address alike keeps working, and errors.As gives the page
// frame and the dump level to show.
type ExcludedPageError struct {
	Addr  uint64 // the address read, as the reader was asked (virtual or physical)
	PFN   uint64 // page frame number of the excluded page
	Level int    // makedumpfile's dump level, -1 when the file does not record it (ELF output)
}

func (e *ExcludedPageError) Error() string {
	lvl := fmt.Sprintf("dump level %d", e.Level)
	if e.Level < 0 {
		lvl = "its ELF output records no dump level"
	}
	return fmt.Sprintf("read at %#x: page %#x was excluded by makedumpfile (%s)", e.Addr, e.PFN, lvl)
}

// Unwrap returns ErrExcluded and unwind.ErrUnmapped.
func (e *ExcludedPageError) Unwrap() []error { return []error{ErrExcluded, unwind.ErrUnmapped} }

// at returns a copy of e for a read at addr.
func (e *ExcludedPageError) at(addr uint64) *ExcludedPageError {
	c := *e
	c.Addr = addr
	return &c
}

// notable reports whether err says more than "nothing is mapped there":
// an excluded page or a damaged file, which a reader layered on top
// passes on instead of its own *unwind.MemoryError.
func notable(err error) bool {
	if err == nil {
		return false
	}
	_, plain := err.(*unwind.MemoryError)
	return !plain
}
