// Package ptregs describes the register frames that x86-64 entry code and the
// hardware leave in memory — Linux's struct pt_regs, the hardware iret frame,
// the ELF NT_PRSTATUS user_regs_struct — and the register set (Regs) the rest
// of the project passes around, indexed by DWARF register number.
//
// It decodes those frames from bytes, judges whether a block of stack memory is
// plausibly one (selectors, flags, canonical addresses, stack bounds), and
// prints them the way the Linux kernel prints a register dump. It does no I/O.
//
// A typical use by an unwinder that has found a candidate pt_regs at addr:
//
//	b := make([]byte, ptregs.PtRegsSize)
//	// read b from the dump at addr
//	p, err := ptregs.DecodePtRegs(b)
//	if err == nil {
//		err = p.Check(ptregs.CheckOptions{IsText: isText, OnStack: onStack})
//	}
//	if err == nil {
//		regs := p.Regs() // all 17 DWARF registers, RIP and RSP included
//		ptregs.FormatPtRegs(w, &p, sym)
//	}
//
// A partial frame (only the hardware words saved, as at the top of an IST
// stack) is an IretFrame: decode it from addr+PtRegsIretOffset; its Regs has
// only RIP and RSP.
//
// The layouts are those of Linux x86-64: pt_regs and user_regs_struct from
// arch/x86/include/asm/ptrace.h and asm/user_64.h, elf_prstatus from
// include/linux/elfcore.h. They are checked against real dumps in the
// tests: the NT_PRSTATUS notes of user cores against eu-readelf and of QEMU
// vmcores against QEMU's register dump, and the formatter against every
// register block Linux 6.1 printed in the corpus's serial logs.
//
// # Security
//
// Every decoder takes untrusted bytes from a dump: short input is an error,
// never a panic. Check and the formatters accept any value.
package ptregs
