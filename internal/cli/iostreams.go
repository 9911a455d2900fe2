// Package cli holds the unwind command's subcommands. cmd/unwind/main.go only
// calls Main; every command is built by a NewCmdX constructor that takes the
// IOStreams, so tests run commands against buffers.
package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/unwind-dev/unwind/internal/report"
)

// IOStreams are the streams a command reads and writes.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTerminal reports whether Out is a terminal (for progress bars).
	IsTerminal bool
}

// System returns the process's own streams.
func System() *IOStreams {
	fi, err := os.Stdout.Stat()
	term := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, IsTerminal: term}
}

// Exit codes of the unwind command.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command failed (unreadable file, failed invariant, …)
	ExitUsage   = 2 // bad flags or arguments
	ExitPartial = 3 // traces printed, but one is unreliable, stopped on an error, or could not be read
)

// ExitError carries an exit code out of a command's RunE.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ExitError) Unwrap() error { return e.Err }

// warn prints a warning to stderr, a line of its own for each line of it
// (a warning can join several errors), each escaped: its text may come
// from the dump.
func warn(ios *IOStreams, w string) {
	for _, l := range strings.Split(strings.TrimRight(w, "\n"), "\n") {
		fmt.Fprintln(ios.ErrOut, "warning:", report.Escape(l))
	}
}
