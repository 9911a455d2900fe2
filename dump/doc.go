// Package dump opens crash dumps — ELF core files of Linux user processes,
// Linux kernel vmcores (QEMU dump-guest-memory, kdump /proc/vmcore and
// makedumpfile -E ELF files, makedumpfile's compressed "diskdump" format) and
// the emulator's snapshots — and gives a debugger what it needs to unwind
// them: a Memory of the target's address space, the threads or CPUs with
// their registers, the stack bounds of each, and the symbols.
//
// Use Open (or NewFile over any io.ReaderAt), then Threads for the initial
// registers, Memory for reads, Stacks for the stack-bounds oracle and Symbols
// for a symbols.Set that the unwinder can use:
//
//	d, err := dump.Open("core")
//	if err != nil { ... }
//	defer d.Close()
//	for _, t := range d.Threads() { ... t.Regs ... }
//
// The dump is read lazily: only the headers, program headers and notes are
// read when it is opened; memory is read from the file on demand, so a
// multi-gigabyte vmcore costs a few kilobytes of RAM plus small caches.
//
// Kernel vmcores: virtual addresses are translated by walking the x86-64
// 4- or 5-level page tables (from the CPU's CR3 in QEMU's per-CPU note, or
// from init_top_pgt located through VMCOREINFO), unless the dump already has
// virtual PT_LOAD segments. Per-CPU stacks (task, IRQ, exception IST stacks,
// entry trampoline stack) are found through the kernel's own per-CPU symbols
// (call Symbols with vmlinux and/or System.map first): __per_cpu_offset,
// then the current task and the tops of its stack and of the IRQ stack, and
// the TSS (cpu_tss_rw) for the IST and entry stacks; QEMU's TR base, when
// the dump has it, gives the same TSS (without symbols only the IST and
// entry stacks, from that TSS, are known). Releases understood:
//   - Linux 5.9–6.1 and ≥ 6.15: per-CPU current_task,
//     cpu_current_top_of_stack and hardirq_stack_ptr (tested on the
//     6.1.192 corpus, with and without QEMU's notes);
//   - Linux 6.2–6.14: pcpu_hot, member offsets from vmlinux DWARF, else the
//     6.2 layout without call-depth tracking (untested);
//   - older 5.x: the task stack from current_task and task_struct.stack
//     (DWARF); the IRQ stack is not found before 5.2 (irq_stack_ptr), and
//     before 5.9 hardirq_stack_ptr points at the very top, so the IRQ stack
//     is taken 8 bytes too high (harmless to unwinding).
//
// The IST slot of each exception stack is read from the IDT gates of NMI,
// #DB, #DF, #MC and #VC in the dump (QEMU's IDT base or idt_table; default:
// Linux's IST_INDEX_* order). Stack sizes assume no KASAN: THREAD_SIZE and
// IRQ_STACK_SIZE 16 KiB, exception stacks 4 KiB, the entry stack the page
// below TSS.sp0.
//
// What the dump says about the kernel: its uname (init_uts_ns, through
// VMCOREINFO), its taint state (tainted_mask and the kernel's taint_flags
// table, as print_tainted() prints it) and so the first line of a kernel
// stack dump (StackHeader); its wall clock (tk_core.timekeeper.xtime_sec,
// offset from the DWARF of timekeeping.c, Linux ≥ 3.17); the log buffer
// (printk ring buffer, Linux ≥ 5.10, through the offsets in VMCOREINFO:
// KernelLog and PanicMessage); and the CPU that crashed, from panic_cpu,
// crashing_cpu or die_owner, else from the caller id of the newest crash
// message in the log, else the only CPU stopped in a crash-path function
// (panic, __die, oops_begin…), with the reason in Info.
//
// Compressed kdump files: header versions 1–6 with zlib, LZO1X, snappy or
// zstd pages (a page that does not shrink stored raw), read one page at a
// time. makedumpfile's flattened format (signature "makedumpfile", what
// QEMU's dump-guest-memory writes to a pipe) must first be re-laid out with
// makedumpfile -R.
//
// # Security
//
// Dumps are untrusted input. Every length and count read from a file is
// checked against the file size before anything is allocated, note and
// page-descriptor walks are bounded, page-table walks are bounded in depth and
// never loop, and malformed input yields a *FormatError naming the offset (or
// a *unwind.MemoryError for a read of missing memory), never a panic.
package dump
