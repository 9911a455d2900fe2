package dump

import (
	"errors"
	"fmt"
)

// ErrNotCore is wrapped by the error Open returns when the file is neither an
// ELF core file nor a kdump file; test for it with errors.Is.
var ErrNotCore = errors.New("not a core file or vmcore")

// ErrUnsupported is wrapped by errors for dumps that are well formed but use
// a feature this package does not read (such as LZO-compressed kdump pages
// when no decoder is available).
var ErrUnsupported = errors.New("unsupported dump feature")

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
