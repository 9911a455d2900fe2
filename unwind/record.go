package unwind

import (
	"math"
	"math/bits"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// Recording is a whole walk's frames kept compactly, for a tool that
// prints or scans a deep trace without holding every Frame (a Frame is
// over 500 bytes; a 100,000-frame recursion would need 56 MB): a record of
// a few words per frame (pc, sp, the callee's CFA, the return-address
// slot, flags), each distinct symbol and source line once, the stacks
// once, and the registers only when asked for. Frames that a record
// cannot describe (interrupted and signal frames, with their pt_regs) are
// kept whole; there are few of them.
//
// Make one with Record (or Unwinder.Record); Len and Frame give the
// frames exactly as Walk returns them: CFA filled (FillCFA), and the
// frames a corrupt-stack finding invalidated (Invalidated) marked
// unreliable. Frames returns them all as a slice. A Recording is read
// only once made, and safe for concurrent readers.
type Recording struct {
	recs     chunks[record]
	regs     chunks[uint64] // the registers of the records, when kept
	syms     []recSym       // distinct symbolizations
	symIndex map[recSym]uint32
	recent   [64]uint32 // a symbolization's index in syms, by its lookup PC's hash
	stacks   []Stack
	extra    []Frame // frames kept whole
	keepRegs bool

	reliable, truncated bool
	stop                string
	err                 error
	invalidated         int
}

// record is one frame of a Recording.
type record struct {
	pc, sp    uint64
	calleeCFA uint64
	slot      uint64
	regOff    uint32 // its registers' first value in regs
	regMask   uint32 // the registers kept (ptregs.Regs.Mask)
	sym       uint32 // index in syms; in extra when recExtra
	kind      FrameKind
	method    Method
	stack     uint8 // index in stacks
	flags     uint8
}

const (
	recReliable = 1 << iota
	recInlined
	recLookupPC // LookupPC is PC (else PC-1)
	recExtra    // the frame is kept whole in extra
)

// recSym is what emit and emitInline give a frame about its code.
type recSym struct {
	sym      symbols.Sym
	symOK    bool
	inlined  bool
	function string
	file     string
	line     int
}

// Record walks the whole stack from regs, as Walk does, into a
// Recording. keepRegs keeps each frame's registers (Frame.Regs), which
// the JSON output and value recovery need; without it Frame leaves Regs
// empty (but in the frames kept whole) and a frame costs about 48 bytes.
func Record(mem Memory, regs ptregs.Regs, opts *Options, keepRegs bool) *Recording {
	return New(mem, regs, opts).Record(nil, keepRegs)
}

// Record walks the rest of u's stack into a Recording (see Record).
// done are the frames Next already yielded, in order from frame 0, as
// Frame returned them (nil for an Unwinder not yet started): a caller
// that collects a stack's first frames whole can go on compactly once it
// turns out deep.
func (u *Unwinder) Record(done []Frame, keepRegs bool) *Recording {
	r := &Recording{keepRegs: keepRegs}
	for i := range r.recent {
		r.recent[i] = math.MaxUint32
	}
	for i := range done {
		r.add(&done[i])
	}
	for u.Next() {
		r.add(u.Current())
	}
	r.reliable, r.truncated = u.Reliable(), u.Truncated()
	r.stop, r.err = u.StopReason(), u.Err()
	r.invalidated = u.Invalidated()
	if from := r.invalidated; from >= 0 {
		for i := from; i < r.recs.n; i++ {
			r.recs.at(i).flags &^= recReliable
		}
	}
	r.symIndex = nil // only needed while recording
	return r
}

// add appends f, the next frame of the walk.
func (r *Recording) add(f *Frame) {
	i := r.recs.n
	rec := record{pc: f.PC, sp: f.SP, calleeCFA: f.calleeCFA, slot: f.Slot, kind: f.Kind, method: f.Method}
	if f.Reliable {
		rec.flags |= recReliable
	}
	if f.Inlined {
		rec.flags |= recInlined
	}
	whole := f.Index != i || f.Entry != "" || f.Partial || f.RegsAddr != 0 || f.nullCall || f.PtRegs != (ptregs.PtRegs{})
	switch f.LookupPC {
	case f.PC:
		rec.flags |= recLookupPC
	case f.PC - 1:
	default:
		whole = true
	}
	if !whole {
		st, ok := r.stackIndex(&f.Stack)
		rec.stack = st
		whole = !ok
	}
	if !whole && r.keepRegs {
		if r.regs.n > math.MaxUint32-ptregs.NumRegs {
			whole = true
		} else {
			rec.regOff, rec.regMask = uint32(r.regs.n), f.Regs.Mask()
			for m := rec.regMask; m != 0; m &= m - 1 {
				v, _ := f.Regs.Get(ptregs.Reg(bits.TrailingZeros32(m)))
				r.regs.push(v)
			}
		}
	}
	if whole {
		rec.flags |= recExtra
		rec.sym = uint32(len(r.extra))
		r.extra = append(r.extra, *f)
	} else {
		rec.sym = r.symOf(f)
	}
	r.recs.push(rec)
}

// stackIndex returns s's index in stacks, adding it (at most 256).
func (r *Recording) stackIndex(s *Stack) (uint8, bool) {
	if n := r.recs.n; n > 0 && r.recs.at(n-1).flags&recExtra == 0 && r.stacks[r.recs.at(n-1).stack] == *s {
		return r.recs.at(n - 1).stack, true
	}
	for i := range r.stacks {
		if r.stacks[i] == *s {
			return uint8(i), true
		}
	}
	if len(r.stacks) > math.MaxUint8 {
		return 0, false
	}
	r.stacks = append(r.stacks, *s)
	return uint8(len(r.stacks) - 1), true
}

// symOf returns the index in syms of f's symbolization, adding it.
func (r *Recording) symOf(f *Frame) uint32 {
	s := recSym{sym: f.Sym, symOK: f.SymOK, inlined: f.Inlined, function: f.Function, file: f.File, line: f.Line}
	h := &r.recent[slot(f.LookupPC, 6)]
	if *h != math.MaxUint32 && r.syms[*h] == s {
		return *h
	}
	k, ok := uint32(0), false
	if r.symIndex == nil {
		// A few symbolizations (a short trace): searched, no map.
		for i := range r.syms {
			if r.syms[i] == s {
				k, ok = uint32(i), true
				break
			}
		}
		if !ok && len(r.syms) == 16 {
			r.symIndex = make(map[recSym]uint32, 32)
			for i := range r.syms {
				r.symIndex[r.syms[i]] = uint32(i)
			}
		}
	}
	if r.symIndex != nil {
		k, ok = r.symIndex[s]
	}
	if !ok {
		k = uint32(len(r.syms))
		r.syms = append(r.syms, s)
		if r.symIndex != nil {
			r.symIndex[s] = k
		}
	}
	*h = k
	return k
}

// Len returns the number of frames.
func (r *Recording) Len() int { return r.recs.n }

// Frame returns frame i (0 ≤ i < Len) as Walk would return it.
func (r *Recording) Frame(i int) Frame {
	rec := r.recs.at(i)
	var f Frame
	if rec.flags&recExtra != 0 {
		f = r.extra[rec.sym]
	} else {
		f.Index, f.PC, f.SP, f.calleeCFA, f.Slot = i, rec.pc, rec.sp, rec.calleeCFA, rec.slot
		f.LookupPC = rec.pc - 1
		if rec.flags&recLookupPC != 0 {
			f.LookupPC = rec.pc
		}
		s := &r.syms[rec.sym]
		f.Sym, f.SymOK, f.Function, f.File, f.Line, f.Inlined = s.sym, s.symOK, s.function, s.file, s.line, s.inlined
		f.Kind, f.Method = rec.kind, rec.method
		f.Stack = r.stacks[rec.stack]
		if r.keepRegs {
			k := int(rec.regOff)
			for m := rec.regMask; m != 0; m &= m - 1 {
				f.Regs.Set(ptregs.Reg(bits.TrailingZeros32(m)), *r.regs.at(k))
				k++
			}
		}
	}
	f.Reliable = rec.flags&recReliable != 0
	f.CFA = r.cfa(i)
	return f
}

// cfa is FillCFA for frame i: the callee CFA of the frame after i's
// physical frame (its inlined callees, then the function that holds the
// code), when that frame was reached by a call step.
func (r *Recording) cfa(i int) uint64 {
	j := i
	for j < r.recs.n && r.recs.at(j).flags&recInlined != 0 {
		j++
	}
	if j++; j < r.recs.n && r.recs.at(j).kind == KindCall {
		return r.recs.at(j).calleeCFA
	}
	return 0
}

// Frames returns every frame as a slice, as Walk does.
func (r *Recording) Frames() []Frame {
	fs := make([]Frame, r.recs.n)
	for i := range fs {
		fs[i] = r.Frame(i)
	}
	return fs
}

// Repeats reports whether frame j repeats frame i: the same code (PC,
// lookup PC, symbol, source line, inlining), kind, method and
// reliability, on the same stack. They differ at most in their index, SP,
// CFA, slot and registers: a recursion's frames, which a text trace folds.
func (r *Recording) Repeats(i, j int) bool {
	a, b := r.recs.at(i), r.recs.at(j)
	return a.pc == b.pc && a.sym == b.sym && a.kind == b.kind && a.method == b.method &&
		a.stack == b.stack && a.flags == b.flags && a.flags&recExtra == 0
}

// Reliable reports whether the whole trace can be trusted
// (Unwinder.Reliable).
func (r *Recording) Reliable() bool { return r.reliable }

// Truncated reports whether the walk stopped at the frame limit
// (Unwinder.Truncated).
func (r *Recording) Truncated() bool { return r.truncated }

// StopReason says why the walk ended (Unwinder.StopReason).
func (r *Recording) StopReason() string { return r.stop }

// Err returns the error that ended the walk early, nil at a proper end
// or the frame limit (Unwinder.Err).
func (r *Recording) Err() error { return r.err }

// Invalidated returns the index of the first frame a finding of a
// corrupt stack invalidated, or -1 (Unwinder.Invalidated); Frame already
// marks those frames unreliable.
func (r *Recording) Invalidated() int { return r.invalidated }

// Kind returns frame i's kind without rebuilding the frame.
func (r *Recording) Kind(i int) FrameKind {
	rec := r.recs.at(i)
	if rec.flags&recExtra != 0 {
		return r.extra[rec.sym].Kind
	}
	return rec.kind
}

// chunks is an append-only sequence kept in blocks that are never copied:
// 16 elements, then twice as many in each block up to chunkMax, then
// blocks of chunkMax. A short walk allocates little, a deep one no more
// than it keeps.
type chunks[T any] struct {
	blocks [][]T
	n      int
}

const (
	chunkMin = 16
	chunkMax = 4096
	// chunkGrown is the number of elements in the growing blocks (16 to
	// 2048 elements).
	chunkGrown = chunkMax - chunkMin
	chunkBig   = 12 // log2(chunkMax)
)

// locate returns the block and the offset in it of element i.
func locate(i int) (int, int) {
	if i < chunkGrown {
		k := bits.Len(uint(i/chunkMin+1)) - 1
		return k, i - chunkMin*(1<<k-1)
	}
	j := i - chunkGrown
	return chunkBig - 4 + j>>chunkBig, j & (chunkMax - 1)
}

func (c *chunks[T]) at(i int) *T {
	b, o := locate(i)
	return &c.blocks[b][o]
}

func (c *chunks[T]) push(v T) {
	b, o := locate(c.n)
	if b == len(c.blocks) {
		size := chunkMax
		if b < chunkBig-4 {
			size = chunkMin << b
		}
		c.blocks = append(c.blocks, make([]T, size))
	}
	c.blocks[b][o] = v
	c.n++
}
