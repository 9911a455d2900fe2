package dump

import (
	"fmt"
	"sync"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// Trace is one unwound thread, CPU or task.
type Trace struct {
	Frames     []unwind.Frame
	Reliable   bool   // every frame reliable and the walk reached a proper end
	StopReason string // why the walk ended (unwind.Unwinder.StopReason)
	Err        error  // the error that stopped the walk, nil at a proper end or the frame limit
	Truncated  bool   // the walk stopped at the frame limit (unwind.Unwinder.Truncated)
	// Mem is the memory the walk read (for a kernel CPU its own address
	// space, which also holds its current process's user half).
	Mem unwind.Memory
}

// Unwind unwinds thread i of Threads (a user thread or an emulator CPU)
// from its registers in the dump with code (the Set from Symbols) and the
// stack bounds of Stacks. opts may set Methods and MaxFrames. A kernel
// vmcore's CPUs and tasks are unwound by linux.Kernel.
func (d *Dump) Unwind(i int, code unwind.Code, opts unwind.Options) (Trace, error) {
	if err := d.walkOptions(i, code, &opts); err != nil {
		return Trace{}, err
	}
	return Walk(d.mem, d.threads[i].Regs, &opts), nil
}

// walkOptions completes opts for a walk of thread i with code.
func (d *Dump) walkOptions(i int, code unwind.Code, opts *unwind.Options) error {
	if d.kern != nil {
		return ErrKernelDump
	}
	if i < 0 || i >= len(d.threads) {
		return fmt.Errorf("no thread index %d (the dump has %d)", i, len(d.threads))
	}
	opts.Code = code
	opts.Stacks = d.Stacks(i)
	opts.Kernel = d.kind != KindUserCore
	if set, ok := code.(*symbols.Set); ok && opts.CodeCache == nil {
		opts.CodeCache = d.codeCacheFor(set)
	}
	return nil
}

// Walk runs one unwind from regs to its end and collects its frames. The
// frames a corrupt stack invalidates, yielded before the walk found out,
// are marked unreliable, and each frame's CFA is set (unwind.FillCFA).
func Walk(mem unwind.Memory, regs ptregs.Regs, opts *unwind.Options) Trace {
	u := unwind.New(mem, regs, opts)
	frames, deep := collect(u)
	if deep {
		// A deep stack: the rest of the walk goes into a compact
		// Recording and the frames into a slice of their exact length,
		// rather than copying 560-byte frames at every growth of the
		// slice (the copies and their garbage were most of the cost).
		r := u.Record(frames, true)
		return Trace{Frames: r.Frames(), Reliable: r.Reliable(), StopReason: r.StopReason(), Err: r.Err(), Truncated: r.Truncated(), Mem: mem}
	}
	unwind.FillCFA(frames)
	if from := u.Invalidated(); from >= 0 {
		for i := from; i < len(frames); i++ {
			frames[i].Reliable = false
		}
	}
	return Trace{Frames: frames, Reliable: u.Reliable(), StopReason: u.StopReason(), Err: u.Err(), Truncated: u.Truncated(), Mem: mem}
}

// collect gathers a walk's frames, at most deepStack of them: past that it
// returns the frames so far and true, the walk not yet done. The frames
// are gathered in a pooled buffer and returned in a slice of their exact
// length: growing a slice of 560-byte frames per walk made about three
// times the bytes a dump's ~300 task stacks need.
func collect(u *unwind.Unwinder) ([]unwind.Frame, bool) {
	bp := framePool.Get().(*[]unwind.Frame)
	buf := (*bp)[:0]
	deep := false
	for u.Next() {
		buf = append(buf, u.Frame())
		if len(buf) == deepStack {
			deep = true
			break
		}
	}
	var frames []unwind.Frame
	if len(buf) > 0 {
		frames = make([]unwind.Frame, len(buf))
		copy(frames, buf)
	}
	clear(buf) // the frames' lines and registers are the caller's now
	*bp = buf[:0]
	framePool.Put(bp)
	return frames, deep
}

// framePool holds collect's buffers.
var framePool = sync.Pool{New: func() any {
	b := make([]unwind.Frame, 0, 64)
	return &b
}}

// deepStack is the number of frames past which Walk records the rest of
// a stack compactly.
var deepStack = 4096

// Record unwinds thread i of Threads like Unwind, into a compact
// unwind.Recording instead of a slice of frames: for a debugger that
// prints or scans deep stacks (a 100,000-frame recursion needs about 5 MB
// instead of 56). Read the frames with its Len and Frame, in order or
// not. keepRegs keeps each frame's registers (JSON output and value
// recovery need them). A kernel vmcore's CPUs and tasks are unwound by
// linux.Kernel.
func (d *Dump) Record(i int, code unwind.Code, opts unwind.Options, keepRegs bool) (*unwind.Recording, error) {
	if err := d.walkOptions(i, code, &opts); err != nil {
		return nil, err
	}
	return unwind.Record(d.mem, d.threads[i].Regs, &opts, keepRegs), nil
}

// codeCacheFor returns the CodeCache every walk of this dump with set
// shares, so that a dump of many threads analyses each function once.
func (d *Dump) codeCacheFor(set *symbols.Set) *unwind.CodeCache {
	d.codeMu.Lock()
	defer d.codeMu.Unlock()
	if d.codeCaches == nil {
		d.codeCaches = make(map[*symbols.Set]*unwind.CodeCache)
	}
	c := d.codeCaches[set]
	if c == nil {
		c = new(unwind.CodeCache)
		d.codeCaches[set] = c
	}
	return c
}
