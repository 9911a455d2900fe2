package dump

import (
	"fmt"

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
	if d.kern != nil {
		return Trace{}, ErrKernelDump
	}
	if i < 0 || i >= len(d.threads) {
		return Trace{}, fmt.Errorf("no thread index %d (the dump has %d)", i, len(d.threads))
	}
	opts.Code = code
	opts.Stacks = d.Stacks(i)
	opts.Kernel = d.kind != KindUserCore
	if set, ok := code.(*symbols.Set); ok && opts.CodeCache == nil {
		opts.CodeCache = d.codeCacheFor(set)
	}
	return Walk(d.mem, d.threads[i].Regs, &opts), nil
}

// Walk runs one unwind from regs to its end and collects its frames. The
// frames a corrupt stack invalidates, yielded before the walk found out,
// are marked unreliable, and each frame's CFA is set (unwind.FillCFA).
func Walk(mem unwind.Memory, regs ptregs.Regs, opts *unwind.Options) Trace {
	u := unwind.New(mem, regs, opts)
	frames, n := collect(u)
	if frames == nil && n > 0 {
		// A deep stack: walk it again into a slice of its exact length
		// rather than copying its frames at every growth of the slice
		// (the walk is a small part of a frame's cost; the copies of
		// 560-byte frames and their garbage were most of it).
		u = unwind.New(mem, regs, opts)
		frames = make([]unwind.Frame, 0, n)
		for u.Next() {
			frames = append(frames, u.Frame())
		}
	}
	unwind.FillCFA(frames)
	if from := u.Invalidated(); from >= 0 {
		for i := from; i < len(frames); i++ {
			frames[i].Reliable = false
		}
	}
	return Trace{Frames: frames, Reliable: u.Reliable(), StopReason: u.StopReason(), Err: u.Err(), Truncated: u.Truncated(), Mem: mem}
}

// collect gathers a walk's frames when there are at most deepStack of
// them; past that it counts the rest and returns nil and the count, for
// the caller to walk again into a slice of that length.
func collect(u *unwind.Unwinder) ([]unwind.Frame, int) {
	var frames []unwind.Frame
	for u.Next() {
		if len(frames) == deepStack {
			n := len(frames) + 1
			for u.Next() {
				n++
			}
			return nil, n
		}
		frames = append(frames, u.Frame())
	}
	return frames, len(frames)
}

// deepStack is the number of frames past which Walk walks a stack twice.
var deepStack = 4096

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
