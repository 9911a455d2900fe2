package unwind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// DefaultMaxFrames is the depth limit of a walk when Options.MaxFrames is 0.
const DefaultMaxFrames = 256

// Stop reasons returned by StopReason. Errors are reported as "error: "
// followed by the error text.
const (
	StopEndOfStack = "end of stack"
	StopUserMode   = "user mode"
)

// ErrTooManyFrames ends a walk that reached Options.MaxFrames.
var ErrTooManyFrames = errors.New("too many frames")

// Unwinder is a cursor over the frames of one stack: create it with New,
// call Next until it returns false, read each frame with Frame, then check
// Err, Reliable and StopReason. Reset reuses it (and its caches) for another
// walk over the same Code without allocating. An Unwinder is not safe for
// concurrent use.
type Unwinder struct {
	mem     Memory
	opts    Options
	methods Method
	max     int
	lines   LineSource

	cur       *Frame // last physical frame produced: one of fr
	fr        [2]Frame
	out       Frame // an inlined caller of cur, when outInline
	outInline bool
	inline    []symbols.Line
	inlineAt  int
	n         int
	started   bool
	done      bool
	err       error
	stop      string
	proper    bool // the walk reached a proper end
	allGood   bool // every frame so far was reliable
	tainted   bool // an unreliable frame was emitted: later frames are guesses

	visited    [8]uint64 // Lo of every stack left behind
	nvisited   int
	curStack   Stack
	curStackOK bool
	nestedSeen bool // a nested NMI went down the NMI stack once

	scan scanState

	c      *caches        // nil until the walk is deep or the Unwinder reused
	rowBuf symbols.CFIRow // the CFI row when there are no caches
	stBuf  frameState     // the prologue analysis when there are no caches
	word   [16]byte
	block  [ptregs.PtRegsSize]byte
	// scratch holds an entry stub's stack above SP (stubStep) or an iret
	// frame: a field, since a buffer passed to Memory.ReadAt escapes.
	scratch [maxStubScan + ptregs.IretFrameSize]byte
}

// New returns an Unwinder positioned before frame 0, which Next produces from
// regs (RIP and RSP must be valid). opts may be nil.
func New(mem Memory, regs ptregs.Regs, opts *Options) *Unwinder {
	u := &Unwinder{}
	if opts != nil {
		u.opts = *opts
	}
	u.methods = u.opts.Methods & allMethods
	if u.methods == 0 {
		u.methods = allMethods
	}
	u.max = u.opts.MaxFrames
	if u.max <= 0 {
		u.max = DefaultMaxFrames
	}
	if ls, ok := u.opts.Code.(LineSource); ok {
		u.lines = ls
		u.inline = make([]symbols.Line, 0, 8)
	}
	u.Reset(mem, regs)
	return u
}

// Reset starts a new walk over mem from regs with the same options, keeping
// the caches.
func (u *Unwinder) Reset(mem Memory, regs ptregs.Regs) {
	if u.started && u.c == nil {
		u.c = new(caches) // a reused Unwinder: worth caching
	}
	u.mem = mem
	u.fr[0] = Frame{Regs: regs}
	u.cur = &u.fr[0]
	u.out, u.outInline = Frame{}, false
	u.inline = u.inline[:0]
	u.inlineAt = 0
	u.n = 0
	u.started, u.done = false, false
	u.err, u.stop = nil, ""
	u.proper, u.allGood, u.tainted = false, true, false
	u.nvisited = 0
	u.curStack, u.curStackOK = Stack{}, false
	u.nestedSeen = false
	u.scan = scanState{}
}

// Next advances to the next frame and reports whether there is one. After
// it returns false, Err, StopReason and Reliable describe how the walk ended.
func (u *Unwinder) Next() bool {
	if u.done {
		return false
	}
	if u.inlineAt < len(u.inline) {
		return u.emitInline()
	}
	if !u.started {
		u.started = true
		if !u.first() {
			return false
		}
	} else if !u.step() {
		u.done = true
		return false
	}
	return u.emit()
}

// Frame returns the current frame. It is valid after Next returned true.
func (u *Unwinder) Frame() Frame {
	if u.outInline {
		return u.out
	}
	return *u.cur
}

// Err returns the error that ended the walk early, or nil when it reached a
// proper end (end of stack or user mode).
func (u *Unwinder) Err() error { return u.err }

// StopReason says why the walk ended: "end of stack", "user mode", or
// "error: ..." (then Err is non-nil). It is empty while the walk goes on.
func (u *Unwinder) StopReason() string { return u.stop }

// Reliable reports whether the whole trace can be trusted: every frame came
// from CFI, a validated frame-pointer step or a validated entry frame, and
// the walk reached a proper end (user pt_regs at the top of the task stack,
// the bottom of a kernel thread, or the outermost user frame). It is only
// meaningful after Next returned false.
func (u *Unwinder) Reliable() bool { return u.done && u.proper && u.allGood && u.err == nil }

// Frames returns the remaining frames as an iterator. A walk that stops on
// an error yields a final (Frame{}, err) pair after the frames found so far.
func (u *Unwinder) Frames() iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		for u.Next() {
			if !yield(u.Frame(), nil) {
				return
			}
		}
		if u.err != nil {
			yield(Frame{}, u.err)
		}
	}
}

// Walk unwinds the whole stack and returns its frames. When the walk stops
// early, the frames found so far are returned together with the error.
func Walk(mem Memory, regs ptregs.Regs, opts *Options) ([]Frame, error) {
	u := New(mem, regs, opts)
	var frames []Frame
	for u.Next() {
		frames = append(frames, u.Frame())
	}
	return frames, u.Err()
}

// finish ends the walk; proper says it reached a legitimate end.
func (u *Unwinder) finish(reason string, proper bool) {
	u.done = true
	u.stop = reason
	u.proper = proper
}

// fail ends the walk with an error.
func (u *Unwinder) fail(err error) {
	u.done = true
	u.err = err
	u.stop = "error: " + err.Error()
}

func (u *Unwinder) failf(format string, args ...any) { u.fail(fmt.Errorf(format, args...)) }

// first builds frame 0 from the initial registers.
func (u *Unwinder) first() bool {
	pc, okPC := u.cur.Regs.PC()
	sp, okSP := u.cur.Regs.SP()
	if !okPC || !okSP {
		u.failf("initial registers lack rip or rsp")
		return false
	}
	f := u.cur
	f.PC, f.LookupPC, f.SP = pc, pc, sp
	f.Kind, f.Method, f.Reliable = KindCall, MethodRegs, true
	if u.opts.Stacks != nil {
		if s, ok := u.opts.Stacks.StackOf(sp); ok {
			f.Stack = s
			u.curStack, u.curStackOK = s, true
		}
	}
	return true
}

// emit publishes u.cur (plus its inlined callers) as the next frame.
func (u *Unwinder) emit() bool {
	if u.n >= u.max {
		u.fail(fmt.Errorf("%w: limit %d reached", ErrTooManyFrames, u.max))
		return false
	}
	f := u.cur
	f.Index = u.n
	if u.n == cacheAfter && u.c == nil {
		u.c = new(caches)
	}
	if u.tainted && f.Kind != KindScan {
		f.Reliable = false
	}
	if !f.Reliable {
		u.allGood = false
		u.tainted = true // frames above a guess are guesses too
	}
	f.Function, f.File, f.Line, f.Inlined = "", "", 0, false
	f.SymOK = false
	tramp := f.Kind == KindCall && f.Index > 0 && !u.opts.Kernel && u.has(MethodSignal) && u.atRestoreRTCached(f.PC)
	if tramp {
		// A signal trampoline is returned to, never called: look it up
		// at its own address.
		f.LookupPC = f.PC
	}
	if u.opts.Code != nil {
		u.frameSymbol(f)
		if f.SymOK {
			f.Function = f.Sym.Name
		}
	}
	if !f.SymOK {
		f.Sym = symbols.Sym{}
	}
	if !f.SymOK && tramp {
		f.Function = "__restore_rt"
	}
	u.inline = u.inline[:0]
	u.inlineAt = 0
	if u.lines != nil && f.SymOK {
		u.inline = u.lines.Lines(f.LookupPC, u.inline[:0])
		if len(u.inline) > 0 {
			l := u.inline[0]
			if l.Function != "" {
				f.Function = l.Function
			}
			f.File, f.Line = l.File, l.Line
			u.inlineAt = 1
		}
	}
	u.n++
	u.outInline = false
	return true
}

// emitInline publishes the next inlined caller of the current frame.
func (u *Unwinder) emitInline() bool {
	if u.n >= u.max {
		u.fail(fmt.Errorf("%w: limit %d reached", ErrTooManyFrames, u.max))
		return false
	}
	l := u.inline[u.inlineAt]
	u.inlineAt++
	if !u.outInline {
		u.out = *u.cur
		u.outInline = true
	}
	u.out.Index = u.n
	u.out.Inlined = true
	if l.Function != "" {
		u.out.Function = l.Function
	}
	u.out.File, u.out.Line = l.File, l.Line
	u.n++
	return true
}

func (u *Unwinder) has(m Method) bool { return u.methods&m != 0 }

// read64 reads one word without allocating.
func (u *Unwinder) read64(addr uint64) (uint64, bool) {
	if u.mem == nil {
		return 0, false
	}
	n, _ := u.mem.ReadAt(u.word[:8], addr)
	if n != 8 {
		return 0, false
	}
	return uint64(u.word[0]) | uint64(u.word[1])<<8 | uint64(u.word[2])<<16 | uint64(u.word[3])<<24 |
		uint64(u.word[4])<<32 | uint64(u.word[5])<<40 | uint64(u.word[6])<<48 | uint64(u.word[7])<<56, true
}

func (u *Unwinder) isText(pc uint64) bool {
	return u.opts.Code != nil && u.opts.Code.IsText(pc)
}

// isRetText reports whether ra can be a return address: the call before it
// is text (ra itself may be one past the end of the section, after a call
// to a noreturn function).
func (u *Unwinder) isRetText(ra uint64) bool {
	return ra != 0 && u.isText(ra-1)
}

// slot hashes a key into a cache of 1<<bits entries.
func slot(key uint64, bits uint) uint64 { return (key * 0x9e3779b97f4a7c15) >> (64 - bits) }

// symCache remembers symbol lookups per lookup PC.
type symCache [256]struct {
	pc  uint64
	set bool
	ok  bool
	sym symbols.Sym
}

func (u *Unwinder) symbol(pc uint64) (symbols.Sym, bool) {
	if u.c == nil {
		if !u.opts.Code.IsText(pc) {
			return symbols.Sym{}, false
		}
		return u.opts.Code.Symbol(pc)
	}
	e := &u.c.syms[slot(pc, 8)]
	if !e.set || e.pc != pc {
		// Only code has a function: a data symbol that happens to cover a
		// bad PC (0, a user address in a kernel walk) is not its name.
		e.sym, e.ok = symbols.Sym{}, false
		if u.opts.Code.IsText(pc) {
			e.sym, e.ok = u.opts.Code.Symbol(pc)
		}
		e.pc, e.set = pc, true
	}
	return e.sym, e.ok
}

// pcCache holds, per frame PC, what a warm walk needs about it: the
// symbol at the frame's lookup PC, the prologue analysis at the PC, and the
// call-site verdict for the PC as a return address (with the callee it was
// checked against), and whether the PC is a signal trampoline. A step checks the call site of the caller's PC, the
// caller's emit looks its symbol up and its own step analyses it: one
// cache line fetch serves all three.
type pcCache [2048]pcEntry

type pcEntry struct {
	// The first 64 bytes: what emit needs.
	pc  uint64
	sym symbols.Sym
	// The rest.
	lookup          uint64 // the lookup PC sym and fnStart were found for
	callee          uint64 // the callee the call-site verdict is for
	fnStart         uint64 // start of the enclosing function
	st              frameState
	valid           bool
	symSet, symOK   bool
	stSet, fnSet    bool
	callSet, callOK bool
	trampSet, tramp bool     // the PC is a signal trampoline (__restore_rt)
	_               [13]byte // 128 bytes: an entry spans two cache lines
}

// forLookup points the entry at lookup PC lp (PC or PC-1 depending on the
// frame's kind), forgetting what was found for another.
func (e *pcEntry) forLookup(lp uint64) {
	if e.lookup != lp {
		e.lookup, e.symSet, e.fnSet = lp, false, false
	}
}

// pcEntry returns the cache entry of pc, emptied when it held another PC.
func (u *Unwinder) pcEntry(pc uint64) *pcEntry {
	e := &u.c.pcs[slot(pc, 11)]
	if !e.valid || e.pc != pc {
		*e = pcEntry{pc: pc, valid: true}
	}
	return e
}

// frameSymbol fills f.Sym and f.SymOK for f.LookupPC.
func (u *Unwinder) frameSymbol(f *Frame) {
	if u.c == nil {
		f.Sym, f.SymOK = u.symbol(f.LookupPC)
		return
	}
	e := u.pcEntry(f.PC)
	e.forLookup(f.LookupPC)
	if !e.symSet {
		e.sym, e.symOK = symbols.Sym{}, false
		// Only code has a function: a data symbol that happens to cover a
		// bad PC (0, a user address in a kernel walk) is not its name.
		if u.opts.Code.IsText(f.LookupPC) {
			e.sym, e.symOK = u.opts.Code.Symbol(f.LookupPC)
		}
		e.symSet = true
	}
	f.SymOK = e.symOK
	if e.symOK {
		f.Sym = e.sym
	}
}

func (u *Unwinder) atRestoreRTCached(pc uint64) bool {
	if u.c == nil {
		return u.atRestoreRT(pc)
	}
	e := u.pcEntry(pc)
	if !e.trampSet {
		e.trampSet, e.tramp = true, u.atRestoreRT(pc)
	}
	return e.tramp
}

// spare returns the frame buffer that is not the current frame, for a step
// to build the caller in without copying.
func (u *Unwinder) spare() *Frame {
	if u.cur == &u.fr[0] {
		return &u.fr[1]
	}
	return &u.fr[0]
}

// read2x64 reads two consecutive words (a frame record: saved rbp, return
// address) with one memory access.
func (u *Unwinder) read2x64(addr uint64) (lo, hi uint64, ok bool) {
	if u.mem == nil {
		return 0, 0, false
	}
	if n, _ := u.mem.ReadAt(u.word[:16], addr); n != 16 {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(u.word[:8]), binary.LittleEndian.Uint64(u.word[8:]), true
}

// caches are the per-PC caches of an Unwinder (about 400 KiB). A fresh
// Unwinder walks its first cacheAfter frames without them, so a one-shot
// Walk of a short stack stays cheap.
type caches struct {
	syms  symCache
	pcs   pcCache
	rows  rowCache
	calls callCache
}

const cacheAfter = 24
