// Package verify is the project's correctness proof: it runs emulator
// scenarios (emu) and, at every instruction boundary of every CPU, unwinds
// the live machine state and compares the trace with the emulator's shadow
// stack, the ground truth.
//
// # What is compared
//
// At a boundary the CPU's registers (emu.CPU.Regs), the machine memory
// (emu.Mem, an unwind.Memory) and the CPU's stacks (emu.Machine.Stacks,
// from the kernel's stack symbols, the way the snapshots record them) go
// to three reused Unwinders (Options.Kernel set, Reset per boundary):
//
//   - cfi: unwind.MethodCFI alone. The fixture kernel describes every entry
//     stub with CFI signal frames, so CFI alone must cross entries;
//   - fp: unwind.MethodFP|unwind.MethodPtRegs, frame pointers plus the
//     entry-frame signals (encoded rbp, marker return address, pt_regs at
//     the top of a stack);
//   - combined: every strategy.
//
// Each frame is compared with the truth frame at the same index: the PC
// (which fixes the function: names are not compared, because the two
// symbol tables label entry-code local labels differently); the frame's
// own CFA (unwind.FillCFA, known once the walk has stepped past the frame),
// exactly, and 0 only where the caller was found through a pt_regs or
// signal frame (an entry stub's CFA is the entry code's convention; the
// interrupted frame's registers are checked instead); whether
// the frame was interrupted; and for interrupted frames the entry name
// ("irq" without a vector matches any "irq:N"), the pt_regs address, and
// every register the unwinder recovered (RIP and RSP must be among them;
// a syscall's rax is checked as orig_ax, and an __ex_table fixup of the
// interrupted RIP is accepted). A kernel unwind must reproduce the truth
// down to the first user-mode frame; frames it reports beyond are compared
// too.
//
// # Verdicts
//
// Each unwind is one of: Exact (every frame right, the trace ends where the
// truth does), Flagged (not exact, the trace is unreliable or stopped on an
// error, and no frame it marks reliable is wrong), WrongReliable (not
// exact, yet the trace claims to be reliable: the bar is zero) and
// WrongFlagged (flagged overall, but a frame marked reliable is wrong).
// Flagged boundaries where the trace stopped at a PC whose CFI
// deliberately leaves RSP or the return address undefined are counted in
// Result.Undefined as well: no unwinder can be exact there.
//
// WrongReliable and WrongFlagged must be zero in every scenario
// (Result.Problems). A frame that the walk's finding of a corrupt stack
// invalidates (unwind.Unwinder.Invalidated) counts as unreliable: the
// cursor yielded it before the walk found out. Scenarios that declare
// (`corrupts stack|code WHY`) that their bug destroys what an unwinder
// reads (Result.Corrupts) must have CFI miss somewhere; everywhere else
// CFI must also be exact at every boundary, whatever invariant fails.
//
// # Driving the emulator
//
// emu.RunScenario has no per-boundary callback, so Run steps the machine
// itself (StepCPU in CPU order, the same interleaving) and fires the
// scenario's nmi/irq/stop triggers the way emu's runner does; snapshots
// and invariants are left to emu.RunScenario, which SnapshotTraces (the
// golden files, `unwind demo`) uses.
//
// # Cost
//
// One Unwinder per CPU and strategy is reused with Reset, the shadow stack
// view does not allocate, and a mismatch is described (with allocation)
// only when it is kept or reported: an exact boundary allocates nothing in
// this package. BenchmarkVerify and BenchmarkUnwindAtBoundary report
// unwinds per second.
package verify
