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
// virtual PT_LOAD segments. The registers of each CPU come from its
// NT_PRSTATUS note, its control registers and descriptor-table bases from
// QEMU's per-CPU note when the dump has one. What the kernel's own data
// structures say (per-CPU stacks, tasks, the log, uname, taint, the
// crashing CPU) is package linux's, which wraps a Dump: Symbols refuses a
// kernel vmcore (ErrKernelDump) and Stacks gives nil for its CPUs.
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
