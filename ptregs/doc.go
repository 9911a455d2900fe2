// Package ptregs describes the register frames that x86-64 entry code and the
// hardware leave in memory — Linux's struct pt_regs, the hardware iret frame,
// the ELF NT_PRSTATUS user_regs_struct — and the register set (Regs) the rest
// of the project passes around, indexed by DWARF register number.
//
// It decodes those frames from bytes, judges whether a block of stack memory is
// plausibly one (selectors, flags, canonical addresses, stack bounds), and
// prints them the way the Linux kernel prints a register dump. It does no I/O.
//
// # Security
//
// Every decoder takes untrusted bytes from a dump: short input is an error,
// never a panic.
package ptregs
