package cfi

import "fmt"

// FormatError reports malformed CFI: the section, the byte offset of the
// entry or instruction (relative to the section or to the instruction
// stream, as Msg says) and what was wrong. Callers can use errors.As to get
// the offset for a diagnostic.
type FormatError struct {
	Section string
	Off     int64
	Msg     string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("cfi: %s at offset %#x: %s", e.Section, e.Off, e.Msg)
}

// EvalError reports a row that cannot be applied to a register set: a rule
// needs a register the callee does not have, memory could not be read, or an
// expression is malformed. Err, when set, is the underlying memory error.
type EvalError struct {
	Msg string
	Err error
}

func (e *EvalError) Error() string {
	if e.Err != nil {
		return "cfi: " + e.Msg + ": " + e.Err.Error()
	}
	return "cfi: " + e.Msg
}

// Unwrap returns the underlying memory error, if any.
func (e *EvalError) Unwrap() error { return e.Err }
