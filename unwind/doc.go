// Package unwind turns x86-64 registers plus stack memory into a backtrace,
// crossing the pt_regs frames that interrupt, exception, NMI and syscall entry
// leave on the stack.
//
// A debugger author supplies a Memory (the target's address space), the
// initial registers (ptregs.Regs), symbols and CFI (package symbols), and a
// StackBounds oracle that names each stack; the unwinder returns frames, each
// saying how it was found and whether it can be trusted.
//
// # Security
//
// Memory and registers come from untrusted dumps: every walk is bounded in
// depth, detects loops, and ends with a truncated trace and an error rather
// than a panic.
package unwind
