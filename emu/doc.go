// Package emu is unwind's x86-64 entry-path emulator: an interpreter that
// runs the fixture kernel (fixtures/kernel, contract in
// fixtures/kernel/MACHINE.md) and keeps a ground-truth shadow stack of
// every call, return and event delivery, so every unwind can be checked.
//
// # Machine
//
// New loads a kernel ELF's PT_LOAD segments into sparse 4 KiB pages (Mem,
// an unwind.Memory) and resets N CPUs. Instructions are decoded once per
// address with golang.org/x/arch/x86/x86asm into a compact form cached per
// code page; a write to a page drops its decoded instructions (and those of
// the page before it), so code patching works. Arithmetic flags (CF, PF,
// AF, ZF, SF, OF) follow the SDM and are checked against native runs; flags
// the SDM leaves undefined are computed by a fixed rule or left unchanged.
// An instruction the interpreter does not model stops the machine with an
// *Error naming the CPU, address and bytes.
//
// Events are delivered as in 64-bit mode (SDM vol. 3 §6.14): 16-byte IDT
// gates; IST≠0 always reloads RSP from the TSS, even when already on that
// stack; otherwise RSP0 on a privilege change; RSP aligned to 16; SS, RSP,
// RFLAGS, CS, RIP and an error code (vectors 8, 10–14, 17, 21) pushed;
// interrupt gates clear IF; TF, NT, RF cleared. Faults during delivery are
// escalated per SDM table 6-5 (#DF, then triple fault, which stops the
// machine). NMIs are blocked from delivery until the next iretq (any
// iretq); one NMI is latched meanwhile. #DB comes from TF (trap) and
// DR0–DR3 execute breakpoints (fault, RF honoured).
//
// CPUs run round-robin, one instruction or one event delivery per CPU per
// Step, so multi-CPU runs replay exactly.
//
// # Ground truth
//
// ShadowStack(cpu) returns the frames (innermost first) as the machine
// knows them; see shadowStack for the exact bookkeeping rules. It does not
// allocate, so it can be compared with an unwinder at every boundary.
// It follows a handler's writes to its own pt_regs ip/sp, so exception
// fixups, int3 call emulation (a call frame appears as if the call had
// executed) and int3 trampolines are truth as soon as the handler has
// written them; an iretq back into the same entry stub (repeat_nmi) keeps
// the entry frame. TestShadowAgreesWithCFI checks it against an
// independent CFI unwind at every boundary of the non-corrupting modes.
//
// # Scenarios and snapshots
//
// ParseScenario reads the text format of fixtures/scenarios/README.md;
// RunScenario runs one, taking snapshots (ELF core files with NT_PRSTATUS
// per CPU and an "UNWIND" note holding a dump.EmulatorInfo) and checking
// invariants. SweepScenario runs a scenario's sweep directives: the run
// repeated from a Clone of a checkpoint once per instruction of a window,
// an NMI or IRQ arriving at each in turn, with the invariants per point.
//
// # Security
//
// Kernel images and scenarios may be hostile: memory is only what the ELF's
// PT_LOAD segments map (at most 1 GiB), the shadow stack is capped, rep
// string instructions run in bounded chunks, and no input makes the
// interpreter panic (FuzzExecute, FuzzParseScenario).
package emu
