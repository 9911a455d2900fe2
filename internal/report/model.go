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

// Thread is one thread's (user core), one CPU's or one task's (vmcore)
// backtrace.
type Thread struct {
	TID int
	// CPU is the CPU the thread is running on; -1 when it is not running on
	// a known CPU (a user thread, a sleeping task). JSON gives null then.
	CPU     int
	Crashed bool
	Signal  int
	Comm    string // command name
	// Task describes the kernel task whose stack this is (kernel dumps,
	// when the task is known); nil otherwise.
	Task   *Task
	Kernel bool // kernel-style text output
	// Heading, when set, replaces the "CPU: N PID: P Comm: C" line of a
	// kernel thread in text: a task that is not running ("task:NAME
	// state:S pid:…"), or a group of tasks with identical stacks.
	Heading string
	// Kernel dumps: the rest of the kernel's own first line of a stack
	// dump after "Comm: COMM " ("Not tainted 6.1.192 #3"), its
	// "Hardware name:", and why this CPU is the crashing one. When
	// StackHeader is set the header is printed exactly as the kernel does
	// and the crash mark goes on a line of its own.
	StackHeader string
	Hardware    string
	CrashReason string
	Regs        ptregs.Regs
	// Control, for a crashed CPU of a dump that holds them (QEMU's notes),
	// adds the FS/GS/CS/CR lines of the kernel's show_regs to the register
	// block of the first kernel-mode pt_regs, as an oops prints them.
	Control *ptregs.ControlRegs
	Frames  []unwind.Frame
	// Record, when set, holds the frames instead of Frames: a deep trace
	// kept compactly, each frame rebuilt as it is printed.
	Record     *unwind.Recording
	Reliable   bool
	StopReason string
	// Truncated says the walk was cut by the frame limit (--max-frames),
	// not by the stack's end or an error; Unwalked counts the frames beyond
	// the limit when known (-1 when not).
	Truncated bool
	Unwalked  int
	// Code, when set, reads this thread's text for "Code:" lines (a CPU's
	// own address space); it overrides TextOptions.Code.
	Code CodeReader
	// Values, when set, holds each frame's parameters and locals (by
	// frame index): text prints the parameters on the frame line, JSON
	// gives "args" and "locals".
	Values []FrameValues
}

// CodeReader supplies the bytes around a RIP for the kernel's "Code:" line;
// nil leaves the line out.
type CodeReader interface {
	ReadAt(p []byte, addr uint64) (int, error)
}

// Task is a kernel task as `unwind ps` and the JSON "task" object show it.
type Task struct {
	PID, TGID, PPID int
	Comm            string
	State           string // as ps prints it: R, S, D, T, t, Z, X, I, P
	CPU             int    // the CPU it runs on or last ran on
	KThread         bool   // a kernel thread (PF_KTHREAD)
	Address         uint64 // its task_struct
}

// NumFrames returns the number of t's frames (in Frames or Record).
func (t *Thread) NumFrames() int {
	if t.Record != nil {
		return t.Record.Len()
	}
	return len(t.Frames)
}

// frame returns frame i of t: in Frames, or rebuilt from Record into buf.
func (t *Thread) frame(i int, buf *unwind.Frame) *unwind.Frame {
	if t.Record != nil {
		*buf = t.Record.Frame(i)
		return buf
	}
	return &t.Frames[i]
}

// repeats reports whether frame j prints as frame i does in a user trace
// and folds into a run it starts, known without formatting it: a recorded
// plain call that repeats frame i, with no values to print.
func (t *Thread) repeats(i, j int) bool {
	return t.Record != nil && t.Values == nil && t.Record.Repeats(i, j) && t.Record.Kind(i) == unwind.KindCall
}
