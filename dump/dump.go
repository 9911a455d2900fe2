package dump

import (
	"io"
	"os"
	"sync"

	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// Kind names what a dump holds. Its string values are the "kind" field of
// the JSON output.
type Kind string

// Dump kinds.
const (
	KindUserCore Kind = "user-core"     // ELF core of a Linux user process
	KindVmcore   Kind = "kernel-vmcore" // Linux kernel vmcore (ELF or kdump)
	KindEmulator Kind = "emulator"      // snapshot written by package emu
)

// Thread is one thread of a user core or one CPU of a kernel dump, with the
// registers to start unwinding from. Every method that takes a thread index
// (Stacks, Unwind) means an index into Threads, for every kind of dump.
//
// For a vmcore, Dump.Threads has the CPUs as the notes give them (a TID
// only where pr_pid is a task's pid, as kdump writes it; no Comm; none
// Crashed); linux.Kernel.CPUs returns the same CPUs with their current
// task's pid and comm and the crashing CPU marked.
type Thread struct {
	TID      int // thread id (user core); for a vmcore CPU the pid of its current task when known, else 0
	CPU      int // CPU number for a kernel dump, -1 for a user thread
	Regs     ptregs.Regs
	PrStatus ptregs.PrStatus // the NT_PRSTATUS note the registers came from
	Signal   int             // signal that stopped the thread (pr_cursig), 0 if none
	Crashed  bool            // the thread or CPU that caused the dump
	Comm     string          // command name (user core), or a CPU's current task's (linux.Kernel.CPUs)
}

// Dump is an opened crash dump. Its methods are safe for concurrent use
// once Open has returned, except Close and Symbols (which completes the
// dump's threads, stacks and memory from the binaries it finds: call it
// before sharing the Dump).
type Dump struct {
	r     io.ReaderAt
	size  int64
	close func() error

	kind     Kind
	elf      *elfFile
	notes    []Note
	warnings []string
	// notesEnd is the file offset where the notes end (or the damage that
	// stopped reading them), notesProblem that damage: for ThreadsErr.
	notesEnd     int64
	notesProblem error

	threads []Thread
	mem     unwind.Memory

	user  *userCore
	files []*os.File      // mapped files opened by Symbols (read by syms and the memory), closed by Close
	syms  []*symbols.File // symbol files opened by Symbols, closed by Close
	kern  *kernel
	kdump *KdumpHeader
	emu   *emuState
	flat  bool // read through makedumpfile's flattened format

	codeMu     sync.Mutex
	codeCaches map[*symbols.Set]*unwind.CodeCache // Unwind's, per symbol set
}

// Open opens the dump file at path: an ELF core file (user core, vmcore,
// emulator snapshot) or a makedumpfile diskdump ("KDUMP   ") file, either
// of them possibly in makedumpfile's flattened format (as QEMU writes its
// kdump formats). Close it when done.
func Open(path string) (*Dump, error) {
	f, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	d, err := NewFile(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	d.close = f.Close
	return d, nil
}

// NewFile reads a dump of size bytes from r. Memory is read from r on demand,
// so r must stay usable until the Dump is no longer used. Close on a Dump
// made by NewFile does not close r.
func NewFile(r io.ReaderAt, size int64) (*Dump, error) {
	return newFile(r, size, true)
}

func newFile(r io.ReaderAt, size int64, flatOK bool) (*Dump, error) {
	var magic [16]byte
	if size >= 16 {
		if _, err := r.ReadAt(magic[:], 0); err != nil {
			return nil, formatErr(0, err, "reading magic")
		}
	}
	if string(magic[:8]) == kdumpSignature {
		return newKdump(r, size)
	}
	if isFlat(magic[:]) && flatOK {
		fr, err := newFlatReader(r, size)
		if err != nil {
			return nil, err
		}
		d, err := newFile(fr, fr.size, false)
		if err != nil {
			return nil, err
		}
		d.flat = true
		return d, nil
	}
	ef, err := readELF(r, size)
	if err != nil {
		return nil, err
	}
	if ef.typ != etCore {
		return nil, formatErr(16, ErrNotCore, "ELF type %d is not ET_CORE", ef.typ)
	}
	d := &Dump{r: r, size: size, elf: ef}
	sc, err := readNotes(r, size, ef.progs)
	if err != nil {
		return nil, err
	}
	d.notes, d.warnings = sc.notes, sc.warns
	d.notesEnd, d.notesProblem = sc.end, sc.problem
	d.kind = classify(d.notes)
	switch d.kind {
	case KindVmcore:
		err = d.initKernel()
	case KindEmulator:
		err = d.initEmulator()
	default:
		err = d.initUser()
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func classify(notes []Note) Kind {
	k := KindUserCore
	for _, n := range notes {
		switch n.Name {
		case "UNWIND":
			return KindEmulator
		case "VMCOREINFO", "QEMU":
			k = KindVmcore
		}
	}
	return k
}

// Close releases the file Open opened and the symbol files Symbols
// opened (which first keep what they decompressed in the debug cache, see
// symbols.DebugCacheDir). Reads after Close fail.
func (d *Dump) Close() error {
	for _, f := range d.syms {
		f.Close()
	}
	d.syms = nil
	for _, f := range d.files { // after the symbol files that read them
		f.Close()
	}
	d.files = nil
	if d.close == nil {
		return nil
	}
	c := d.close
	d.close = nil
	return c()
}

// Kind says whether the dump is a user core, a kernel vmcore or an emulator
// snapshot.
func (d *Dump) Kind() Kind { return d.kind }

// Threads returns the dump's threads (user core) or CPUs (kernel dump), in
// the order of their NT_PRSTATUS notes. The slice is the caller's to modify.
func (d *Dump) Threads() []Thread {
	return append([]Thread(nil), d.threads...)
}

// Memory returns the target's virtual address space: a read of an address
// with nothing behind it returns a *unwind.MemoryError.
func (d *Dump) Memory() unwind.Memory { return d.mem }

// Notes returns every ELF note of the dump, for tools that want the raw data
// (an empty list for a diskdump file).
func (d *Dump) Notes() []Note { return d.notes }

// Segments returns the ELF program headers of the dump.
func (d *Dump) Segments() []Segment {
	if d.elf == nil {
		return nil
	}
	return append([]Segment(nil), d.elf.progs...)
}

// Warnings returns non-fatal problems met while reading the dump (a bad
// note, a missing per-CPU structure), to show the user.
func (d *Dump) Warnings() []string { return append([]string(nil), d.warnings...) }

func (d *Dump) warnf(format string, args ...any) {
	d.warnings = append(d.warnings, sprintf(format, args...))
}
