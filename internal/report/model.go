package report

import (
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// Document is everything one `unwind bt` prints.
type Document struct {
	Dump    DumpInfo
	Threads []Thread
}

// DumpInfo describes the dump the threads came from.
type DumpInfo struct {
	Kind    string            // "user-core", "kernel-vmcore" or "emulator"
	Path    string            // the file's path as given
	Release string            // kernel release or executable path
	Extra   map[string]string // other facts (scenario, crash time, …)
}

// Thread is one thread's (user core) or one CPU's (vmcore) backtrace.
type Thread struct {
	TID     int
	CPU     int // -1 for a user thread
	Crashed bool
	Signal  int
	Task    string // comm
	Kernel  bool   // kernel-style text output
	// Kernel dumps: the rest of the kernel's own first line of a stack
	// dump after "Comm: COMM " ("Not tainted 6.1.192 #3"), its
	// "Hardware name:", and why this CPU is the crashing one. When
	// StackHeader is set the header is printed exactly as the kernel does
	// and the crash mark goes on a line of its own.
	StackHeader string
	Hardware    string
	CrashReason string
	Regs        ptregs.Regs
	Frames      []unwind.Frame
	Reliable    bool
	StopReason  string
	// Code, when set, reads this thread's text for "Code:" lines (a CPU's
	// own address space); it overrides TextOptions.Code.
	Code CodeReader
}

// CodeReader supplies the bytes around a RIP for the kernel's "Code:" line;
// nil leaves the line out.
type CodeReader interface {
	ReadAt(p []byte, addr uint64) (int, error)
}
