// Package linux is the Linux kernel model of a kernel vmcore: its CPUs and
// their stacks, its log, uname and taint state, the crashing CPU, and a
// one-call unwind of a CPU. It wraps a dump.Dump, which knows the file
// formats, memory and registers, as golang.org/x/debug's gocore builds a
// Go runtime model over a raw core; package dump does not know the
// kernel's data structures, so the dependency runs one way: linux → dump →
// symbols.
//
//	d, err := dump.Open("vmcore")
//	if err != nil { ... }
//	defer d.Close()
//	k, err := linux.Open(d, dump.SymbolOptions{Files: []string{"vmlinux"}})
//	if err != nil { ... }
//	defer k.Close()
//	for i, cpu := range k.CPUs() {
//		tr, _ := k.UnwindCPU(i, unwind.Options{})
//		fmt.Println(cpu.CPU, cpu.Comm, len(tr.Frames), tr.Reliable)
//	}
//
// Per-CPU stacks (task, IRQ, exception IST stacks, entry trampoline stack)
// are found through the kernel's own per-CPU symbols (give Open vmlinux
// and/or System.map): __per_cpu_offset,
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
// What the kernel says of itself: its uname (init_uts_ns, through
// VMCOREINFO), its taint state (tainted_mask and the kernel's taint_flags
// table, as print_tainted() prints it) and so the first line of a kernel
// stack dump (StackHeader); its wall clock (tk_core.timekeeper.xtime_sec,
// offset from the DWARF of timekeeping.c, Linux ≥ 3.17); the log buffer
// (printk ring buffer, Linux ≥ 5.10, through the offsets in VMCOREINFO:
// Log and PanicMessage); and the CPU that crashed, from panic_cpu,
// crashing_cpu or die_owner, else from the caller id of the newest crash
// message in the log, else the only CPU stopped in a crash-path function
// (panic, __die, oops_begin…), with the reason in Info.
//
// # Tasks
//
// Tasks lists every task: the thread-group leaders on init_task.tasks,
// each group's threads (task_struct.thread_group until Linux 6.6, else
// signal->thread_head / task_struct.thread_node) and the idle tasks
// (init_task, and the per-CPU idle_threads of the other CPUs). Each Task
// has pid, tgid, the tgid of real_parent, comm, the ps state letter
// (TaskState: Linux 6.1's task_state_index over __state and exit_state,
// "RSDTtXZPI"), the CPU it runs or last ran on, PF_KTHREAD, and its
// task_struct, stack and saved stack pointer. UnwindTask unwinds a task
// that is not running from its inactive_task_frame (x86-64: r15, r14,
// r13, r12, rbx, rbp, ret_addr at thread.sp, a fixed layout since Linux
// 4.9) on its THREAD_SIZE (16 KiB) stack, and gives a running task its
// CPU's trace.
//
// Structure layouts come from a Layout: struct sizes and member offsets
// by name. Open makes one from the DWARF of vmlinux (the first
// compilation units, which define task_struct and signal_struct); the
// kernel's BTF can implement the same interface for a dump opened with
// System.map alone. The members read are task_struct's tasks, pid, tgid,
// comm, __state (state before 5.14), exit_state, flags, stack, thread.sp,
// real_parent, thread_info.cpu (cpu before 5.16), thread_group or
// thread_node and signal, and signal_struct.thread_head: understood for
// Linux 4.9 and later on x86-64 with CONFIG_THREAD_INFO_IN_TASK, and
// tested on 6.1 (the lab corpus's 6.1.192 and Debian's 6.1.0-47).
//
// The layouts' answers (a few hundred bytes) are kept in the debug cache
// (symbols.DebugCacheDir) for the vmlinux they were read from, so that a
// later Open of it reads neither its DWARF nor its BTF; an entry whose
// version, key (build id, section headers and sampled bytes) or checksum
// does not match is ignored and made again.
//
// # Security
//
// Dumps are untrusted input. Every list, ring and table read from kernel
// memory is bounded (log descriptors and text, taint flags, DWARF
// prefixes), and a structure the dump does not hold reads as absent, never
// as a panic.
package linux
