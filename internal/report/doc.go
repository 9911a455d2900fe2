// Package report prints backtraces: the kernel-style text a kernel engineer
// reads side by side with the kernel's own "Call Trace:", a gdb-like text for
// user threads, and the versioned JSON document that scripts read (the
// contract in DESIGN.md, "Output").
package report
