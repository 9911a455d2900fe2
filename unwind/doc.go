// Package unwind turns x86-64 registers plus stack memory into a backtrace,
// crossing the pt_regs frames that interrupt, exception, NMI and syscall entry
// leave on the stack.
//
// A debugger author supplies a Memory (the target's address space), the
// initial registers (ptregs.Regs), a Code (symbols, CFI and machine code;
// *symbols.Set is one) and a StackBounds oracle that names each stack; the
// unwinder returns frames, each saying how it was found and whether it can
// be trusted:
//
//	u := unwind.New(mem, regs, &unwind.Options{Code: set, Stacks: stacks, Kernel: true})
//	for u.Next() {
//		f := u.Frame()
//		fmt.Println(f.Index, f.Function, f.Kind, f.Method, f.Reliable)
//	}
//	fmt.Println(u.StopReason(), u.Reliable(), u.Err())
//
// # Strategies
//
// For each frame the unwinder tries, in order:
//
//   - a user-space signal trampoline (__restore_rt, recognised by its bytes):
//     the interrupted registers come from the rt_sigframe's uc_mcontext;
//   - (Kernel) an entry frame: an encoded rbp (Linux ENCODE_FRAME_POINTER:
//     rbp = &pt_regs + 1 in the entry stub), the task's pt_regs at the top
//     of the task stack, or a pt_regs at SP of an entry stub; every
//     candidate is checked with ptregs Check and the stack rules;
//   - a PC of 0 or outside text (a call through a bad pointer): the caller's
//     return address is at [rsp];
//   - DWARF CFI rows from Code.FindCFI (cached; a row from a CIE with the 'S'
//     augmentation makes the caller a signal frame, looked up at its PC; in
//     a kernel walk that caller is the Interrupted frame of the entry stub,
//     named from the stub, with the iret frame at CFA-40 cross-checked and
//     the whole pt_regs once the row shows it saved, Partial before);
//   - (Kernel) in an entry stub without its pt_regs: the hardware iret
//     frame the CPU pushed, a Partial frame: on the NMI stack from Linux's
//     nested-NMI layout (the frame at the top until first_nmi has copied
//     it, the "outermost" copy from repeat_nmi on, since a nested NMI may
//     have overwritten the top and pointed the "iret" copy at repeat_nmi),
//     elsewhere the first frame above SP whose saved RSP says it was pushed
//     right there (the int3 entry's copy 48 bytes lower, the call-emulation
//     gap, included) or, for an IST entry, at the top of its own stack;
//     the interrupted rbp comes from the pt_regs slot when pushed, else from
//     rbp itself; in unknown code on an IST stack: the frame at the top;
//   - frame pointers, helped by prologue/epilogue analysis of the
//     function's machine code (x86asm): at the first instruction, after
//     push %rbp, after pop %rbp or leave, or in a frameless function, the
//     return address is found relative to rsp; otherwise along the rbp
//     chain, bounds-checked against the current stack (a function's cold
//     part, f.cold, runs in f's frame: it is analysed from f's state at
//     its jump there, with the Code's ByName when it has one);
//   - the last resort, a scan of the stack for return addresses: a word
//     counts only if the bytes before it decode as a call consistent with
//     the frame below. Scanned frames are KindScan and never reliable; the
//     walk leaves the scan as soon as a found frame has CFI, or (with
//     MethodSignal) is a return address to __restore_rt, which is looked
//     up at its own address and crossed through its rt_sigframe.
//
// Caller SPs landing on the top word of an IRQ stack are replaced by the
// previous stack pointer saved there (Linux 6.1 call_on_irqstack).
//
// # Reliability
//
// A frame is Reliable when it came from CFI, a frame-pointer step whose
// function analysis confirms an rbp frame and whose return address follows
// a consistent call (or from the prologue analysis of frame 0 or an
// interrupted frame), or a validated entry frame — and no frame before it
// was unreliable, and no later finding of a corrupt stack invalidates it
// (see Corrupt stacks: the cursor yields a frame before it knows). The
// frame at the top of an IST stack reached from code that is not its
// entry (skipping whatever lies between) never is.
// Unwinder.Reliable adds that the walk reached a proper end:
// CFI marking the return address undefined (or 0) — in a kernel walk only
// in a known outermost function, since entry code also leaves it undefined
// where it lives only in a per-CPU slot (int3 trampolines) —, the frame-pointer chain
// ending in a known outermost function (_start, clone3,
// secondary_startup_64, ret_from_fork…; not start_thread, whose caller
// clone3 frame pointers cannot reach: a frame-pointer walk that stops there
// is not known to be complete), a user pt_regs at the top of the
// task stack ("user mode"), or a kernel-mode pt_regs there (the bottom of a
// kernel thread).
//
// # Stacks
//
// With a StackBounds, the stack pointer must move up within a stack, a
// switch must go outward (NMI/#DB/#DF/#MC → entry → IRQ → softirq → task →
// altstack → user) and no stack may be entered twice; a move the wrong way
// stops the walk with an error. One exception, once per walk: an NMI
// nested in an NMI on the same IST stack (its hardware frame at the very
// top of the NMI stack, its interrupted code an outer NMI lower on that
// stack, below every frame the walk saw there) goes down to the outer
// NMI's frames, which must then stay below the nested NMI's (whose entry
// pushed them from the top of the stack, over whatever lay there) until
// the walk leaves the NMI stack. A user walk learns the sigaltstack from
// the uc_stack of the rt_sigframes it meets (see Options.Stacks); a core
// does not record it.
//
// # Corrupt stacks
//
// A caller that breaks these rules, when no other strategy finds one that
// keeps them, means a stack is inconsistent: overwritten under live
// frames, as an IST stack is when an exception or NMI is delivered through
// the IST entry already running on it. The walk cannot tell which of the
// frames it read from that stack's memory are the overwritten ones, and
// has already yielded them as reliable: it ends with a *CorruptStackError
// naming the stack and the first frame whose derivation read its memory
// (the frame after the first one on it, or that first one when it was
// read from the stack itself, as a frame-pointer step across stacks is),
// and Invalidated returns that index. Every frame from there on may be
// wrong; a caller that keeps frames marks them unreliable (Walk does).
// Frames before it were read from other stacks or, frame 0, come from the
// initial registers. A walk below a nested NMI that ends before leaving
// the NMI stack, or goes on with a guess (a scan, the frame at the top of
// a stack), has not confirmed the outer NMI's frames: the same holds.
// So does any walk that read frames from an exception (IST) stack and
// ends, or turns to a guess, before it leaves the exception stacks with
// reliable frames (or reaches a proper end through reliable frames only):
// an exception stack is the one stack the CPU writes over live frames on
// (delivery through an IST gate resets RSP to its top even while a handler
// runs there), and what shows it did not lies below the frames read there
// (no stack entered twice, no stack pointer moving down), so a walk that
// stopped short of it, on a second overwritten word or an error, has not
// shown it. A walk cut by the frame limit keeps its frames as judged.
// Only callers derived from frames the walk trusts count: after a guess
// every frame is unreliable already.
//
// # Entry kinds
//
// Frame.Entry comes first from the entry stub's symbol (asm_exc_page_fault
// → "page_fault", asm_sysvec_apic_timer_interrupt → "irq:236",
// asm_common_interrupt → "irq:N" from orig_ax, entry_SYSCALL_64 →
// "syscall", asm_exc_nmi and end_repeat_nmi → "nmi", other asm_exc_X → X),
// then from orig_ax (Linux stores ~vector for IDT-stub interrupts, -1 for
// exceptions without an error code, the syscall number for syscalls) and
// the stack the pt_regs lies on (NMI, #DB, #DF, #MC stacks). User signal
// frames are "signal:N" with N from the siginfo.
//
// # Performance
//
// An Unwinder caches, per frame PC and lookup PC, what a step needs that
// depends only on the Code and the stack bounds: the symbol, the entry
// stub it belongs to, the CFI row in a compact form (shared by every PC
// and function with the same rules), the prologue analysis (kept
// resumable, so that stopping at every instruction of a function decodes
// each instruction once) and the start of the function; the stack
// oracle's answers are remembered per address. The call-site verdict for a
// return address is kept with the bytes before it that it was decoded
// from, and used only while memory still holds them: a live target patches
// its code between two walks. Reset keeps the caches, and Sibling shares
// them between Unwinders with other strategy sets. The common CFI and
// frame-pointer steps take a fused path for the frames the caches already
// know, checked to give what the general path gives. A warm walk does not
// allocate: the error of a rejected candidate is built only when the walk
// fails on it and Err or StopReason asks.
//
// A tool that walks a live target again and again (an emulator at every
// instruction) sets Options.Incremental: the rest of the last walk is
// replayed from the first frame where the new walk joins it, once memory
// is shown to still hold every byte that rest read. A Memory that
// implements MemoryView is compared in place; one that implements
// WriteJournal is compared only where it was written since.
//
// # Security
//
// Memory and registers come from untrusted dumps: every walk is bounded in
// depth (Options.MaxFrames), the stack pointer must increase within a stack
// and stacks are visited once (no loops), scans and code analysis are
// bounded, and a walk ends with a truncated trace and an error rather than
// a panic.
package unwind
