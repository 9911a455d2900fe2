package unwind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"reflect"

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

// Unwinder is a cursor over the frames of one stack: create it with New,
// call Next until it returns false, read each frame with Frame, then check
// Err, Reliable and StopReason. Reset reuses it (and its caches) for another
// walk over the same Code without allocating. An Unwinder is not safe for
// concurrent use.
type Unwinder struct {
	mem      Memory
	spliced  SplicedMemory // mem, when it is one: read without the interface
	windows  MemoryWindows // mem, when it is one (and no SplicedMemory)
	win      [2]memWindow  // its regions last read: for stack words, for code
	opts     Options
	methods  Method
	inc      bool // Options.Incremental, without source lines
	memo     traceMemo
	rec      *stepRec // the step being logged, in an incremental walk
	replay   int      // the next frame of memo to replay; 0: not replaying
	vbuf     [maxLoggedRead]byte
	view     MemoryView   // mem, when it is one
	journal  WriteJournal // mem, when it is one
	fpFirst  bool         // the frame pointer is the first strategy for a call frame (fpWarm)
	cfiFirst bool         // CFI is (cfiWarm)
	warm     *pcEntry     // the entry of the frame fpWarm or cfiWarm made
	max      int
	lines    LineSource
	orc      ORCSource // the Code's ORC tables in a kernel walk with MethodORC, else nil

	cur       *Frame // last physical frame produced: one of fr
	fr        [2]Frame
	out       Frame // an inlined caller of cur, when outInline
	outInline bool
	inline    []symbols.Line // the source lines at cur's lookup PC (frameLines: read only)
	lineBuf   []symbols.Line // frameLines' buffer when there are no caches
	inlineAt  int
	n         int
	started   bool
	done      bool
	err       error  // the error that ended the walk, once built (see fail)
	failed    bool   // the walk ended on an error
	stop      string // the stop reason, once built
	fail      failure
	proper    bool // the walk reached a proper end
	truncated bool // the walk reached the frame limit
	// regs0 are the registers the walk started from; probe marks the
	// Unwinder confirmPastLimit walks past the frame limit with.
	regs0 ptregs.Regs
	probe bool
	// lastPC and prevPC are the lookup pcs of the last two frames emitted
	// (not counting inlined ones): a signal frame's handler is prevPC.
	lastPC, prevPC uint64
	allGood        bool // every frame so far was reliable
	tainted        bool // an unreliable frame was emitted: later frames are guesses

	visited    [8]uint64 // Lo of every stack left behind
	visitRead  [8]int    // curRead of each of them
	nvisited   int
	curStack   Stack
	curStackOK bool
	nestedSeen bool  // a nested NMI went down the NMI stack once
	alt        Stack // a user walk's sigaltstack, once known (learnAltStack)
	altOK      bool

	// Stack consistency (CorruptStackError).
	curRead  int        // Index of the first frame read from the current stack's memory; 0: none yet
	curLow   uint64     // SP of the first frame on the current stack
	nestCeil uint64     // below a nested NMI, until the walk leaves its stack: its lowest SP (nestedNMI)
	istRead  int        // Index of the first frame read from an exception stack, until the walk leaves them (confirmIST); 0: none
	istStack Stack      // that exception stack
	pend     corruption // the step's finding: a caller rejected because its stack is inconsistent
	pendErr  error      // that rejection
	guessing bool       // the step tries its last-resort guess
	corr     corruption // the walk's finding

	scan scanState

	memErr error // the step's last failed read that said why (an excluded page, a damaged file)

	noEntry   pcEntry         // the entry of a PC the caches do not keep
	lastStack [2]*stackAnswer // the stack oracle's last two answers
	ownStack  [2]stackAnswer  // where they are kept when there are no caches
	def       deferredPtRegs  // the step's rejected pt_regs, described on demand
	lazy      lazyErr         // the step's other error, built on demand

	c       *caches        // nil until the walk is deep or the Unwinder reused
	rowBuf  symbols.CFIRow // the CFI row when there are no caches, FindCFI's buffer
	crowBuf crow           // the compact CFI row when there are no caches
	stBuf   frameState     // the prologue analysis when there are no caches
	word    [16]byte
	callBuf [9]byte       // the bytes before a return address
	span    [maxSpan]byte // the saved registers of a CFI row
	block   [ptregs.PtRegsSize]byte
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
	if o, ok := u.opts.Code.(ORCSource); ok && u.opts.Kernel && u.has(MethodORC) && o.HasORC() {
		u.orc = o // tried first: not the fused warm steps
	}
	u.fpFirst = u.has(MethodFP) && !u.has(MethodCFI) && u.opts.Code != nil && u.orc == nil
	u.cfiFirst = u.has(MethodCFI) && u.opts.Code != nil && u.orc == nil
	u.max = u.opts.MaxFrames
	switch {
	case u.max == 0:
		u.max = DefaultMaxFrames
	case u.max < 0:
		u.max = math.MaxInt
	}
	if ls, ok := u.opts.Code.(LineSource); ok {
		u.lines = ls
		u.lineBuf = make([]symbols.Line, 0, 8)
	}
	u.inc = u.opts.Incremental && u.lines == nil
	u.Reset(mem, regs)
	return u
}

// Sibling returns an Unwinder like New(mem, regs, opts) with u's options
// but methods as Options.Methods, sharing u's caches: a tool that unwinds
// the same stacks with several strategy sets (the verify loop: CFI, frame
// pointers, all of them) keeps one set of warm caches instead of one per
// strategy. What the caches hold depends only on the Code, the stack
// bounds and the bytes they were computed from, never on the methods. u
// and its siblings must not be used concurrently.
func (u *Unwinder) Sibling(mem Memory, regs ptregs.Regs, methods Method) *Unwinder {
	if u.c == nil {
		u.c = new(caches)
	}
	opts := u.opts
	opts.Methods = methods
	s := New(mem, regs, &opts)
	s.c = u.c
	return s
}

// Reset starts a new walk over mem from regs with the same options, keeping
// the caches.
func (u *Unwinder) Reset(mem Memory, regs ptregs.Regs) {
	if u.started && u.c == nil {
		u.c = new(caches) // a reused Unwinder: worth caching
	}
	if u.started && !u.done {
		u.memo.valid = false // an abandoned walk leaves the record mixed
	}
	u.replay, u.rec = 0, nil
	u.mem = mem
	u.spliced, _ = mem.(SplicedMemory)
	u.windows = nil
	if u.spliced == nil {
		u.windows, _ = mem.(MemoryWindows)
	}
	u.view, _ = mem.(MemoryView)
	u.journal, _ = mem.(WriteJournal)
	u.win = [2]memWindow{}
	f := &u.fr[0]
	*f = Frame{} // in place: Frame{Regs: regs} builds a copy first
	f.Regs = regs
	u.regs0 = regs
	u.cur = f
	u.outInline = false // u.out is only read while outInline
	u.inline = u.inline[:0]
	u.inlineAt = 0
	u.n = 0
	u.started, u.done = false, false
	u.err, u.stop, u.failed = nil, "", false
	u.fail = failure{}
	u.def.set, u.lazy.set = false, false
	u.proper, u.allGood, u.tainted, u.truncated = false, true, false, false
	u.lastPC, u.prevPC = 0, 0
	u.nvisited = 0
	u.curStack, u.curStackOK = Stack{}, false
	u.nestedSeen = false
	u.alt, u.altOK = Stack{}, false
	u.curRead, u.curLow, u.nestCeil = 0, 0, 0
	u.istRead, u.istStack = 0, Stack{}
	u.pend, u.pendErr, u.corr, u.guessing = corruption{}, nil, corruption{}, false
	u.scan = scanState{}
}

// Next advances to the next frame and reports whether there is one. After
// it returns false, Err, StopReason and Reliable describe how the walk ended.
func (u *Unwinder) Next() bool {
	if u.done {
		return false
	}
	if u.replay > 0 {
		return u.replayNext()
	}
	if u.inlineAt < len(u.inline) {
		if !u.emitInline() {
			u.walkEnded()
			return false
		}
		return true
	}
	if !u.started {
		u.started = true
		if !u.first() {
			return false
		}
		return u.emit()
	}
	if u.curRead == 0 && u.curStackOK {
		// The step from u.cur reads its stack: the frame it makes is
		// the first read from that stack's memory.
		u.readFrom(u.n)
	}
	if u.inc && u.memoAt() {
		return u.replayNext()
	}
	if f := u.cur; u.c != nil && !u.scan.active && u.nestCeil == 0 {
		// With warm caches, the fused steps (fpWarm, cfiWarm), else step.
		// (Below a nested NMI accept checks what a step reads.)
		if u.fpFirst && f.Kind == KindCall {
			if next := u.spare(); u.fpWarm(f, next) {
				u.cur = next
				ok := u.emitWarm()
				if !ok {
					u.walkEnded()
				}
				if u.rec != nil {
					u.memoStepped(!ok)
				}
				return ok
			}
		} else if u.cfiFirst {
			if next := u.spare(); u.cfiWarm(f, next) {
				u.cur = next
				ok := u.emitWarm()
				if !ok {
					u.walkEnded()
				}
				if u.rec != nil {
					u.memoStepped(!ok)
				}
				return ok
			}
		}
	}
	if !u.step() {
		u.done = true
		u.walkEnded()
		if u.rec != nil {
			u.memoStepped(true)
		}
		return false
	}
	ok := u.emit()
	if !ok {
		u.walkEnded()
	}
	if u.rec != nil {
		u.memoStepped(!ok)
	}
	return ok
}

// Frame returns the current frame. It is valid after Next returned true.
func (u *Unwinder) Frame() Frame {
	if u.outInline {
		return u.out
	}
	return *u.cur
}

// Current returns a pointer to the current frame, valid after Next
// returned true and until the next call to Next or Reset: Frame without
// the copy, for a loop that only reads each frame. Do not modify it.
func (u *Unwinder) Current() *Frame {
	if u.outInline {
		return &u.out
	}
	return u.cur
}

// Err returns the error that ended the walk early, or nil when it reached a
// proper end (end of stack or user mode). A walk that found a stack
// inconsistent (entered twice, a stack pointer moving down...) ends with
// a *CorruptStackError naming the frames it invalidates.
func (u *Unwinder) Err() error {
	if u.failed && u.err == nil {
		u.err = u.fail.build(u)
	}
	return u.err
}

// StopReason says why the walk ended: "end of stack", "user mode", or
// "error: ..." (then Err is non-nil). It is empty while the walk goes on.
func (u *Unwinder) StopReason() string {
	if u.failed && u.stop == "" {
		u.stop = "error: " + u.Err().Error()
	}
	return u.stop
}

// Reliable reports whether the whole trace can be trusted: every frame came
// from CFI, a validated frame-pointer step or a validated entry frame, and
// the walk reached a proper end (user pt_regs at the top of the task stack,
// the bottom of a kernel thread, or the outermost user frame). It is only
// meaningful after Next returned false.
func (u *Unwinder) Reliable() bool {
	return u.done && (u.proper || u.truncated) && u.allGood && !u.failed
}

// Truncated reports whether the walk stopped at the frame limit
// (Options.MaxFrames) rather than at the stack's end or on an error. A
// truncated walk is no error: its StopReason is "frame limit", and it is
// Reliable when every frame it yielded is.
func (u *Unwinder) Truncated() bool { return u.truncated }

// Frames returns the remaining frames as an iterator. A walk that stops on
// an error yields a final (Frame{}, err) pair after the frames found so far;
// when err is a *CorruptStackError, frames from its From on (already
// yielded) are not to be trusted.
func (u *Unwinder) Frames() iter.Seq2[Frame, error] {
	return func(yield func(Frame, error) bool) {
		for u.Next() {
			if !yield(u.Frame(), nil) {
				return
			}
		}
		if err := u.Err(); err != nil {
			yield(Frame{}, err)
		}
	}
}

// Walk unwinds the whole stack and returns its frames. When the walk stops
// early, the frames found so far are returned together with the error.
// The frames a finding of a corrupt stack invalidates (Invalidated) are
// marked unreliable, and each frame's CFA is set (FillCFA).
func Walk(mem Memory, regs ptregs.Regs, opts *Options) ([]Frame, error) {
	u := New(mem, regs, opts)
	var frames []Frame
	for u.Next() {
		frames = append(frames, u.Frame())
	}
	FillCFA(frames)
	if from := u.Invalidated(); from >= 0 {
		for i := from; i < len(frames); i++ {
			frames[i].Reliable = false
		}
	}
	return frames, u.Err()
}

// finish ends the walk; proper says it reached a legitimate end.
func (u *Unwinder) finish(reason string, proper bool) {
	u.done = true
	u.stop = reason
	u.proper = proper
}

// failErr ends the walk with an error.
func (u *Unwinder) failErr(err error) {
	u.done, u.failed = true, true
	u.err = err
}

func (u *Unwinder) failf(format string, args ...any) { u.failErr(fmt.Errorf(format, args...)) }

// failAt ends the walk with the error of kind k at frame index/pc, built
// only when Err or StopReason asks for it (a verify loop only wants to
// know whether the walk failed). why is the cause for failStep and
// failScan.
func (u *Unwinder) failAt(k failKind, index int, pc uint64, why error) {
	u.done, u.failed = true, true
	u.fail = failure{kind: k, index: index, pc: pc, why: why, mem: u.memErr}
}

// failKind says which error a failure describes.
type failKind uint8

const (
	failStep     failKind = iota + 1 // "frame %d at %#x: <why>"
	failScan                         // the same, and the stack scan found nothing
	failCFIUndef                     // the CFI ends the stack outside an outermost frame
)

// failure is a walk's ending error before it is built.
type failure struct {
	kind    failKind
	index   int
	pc      uint64
	why     error
	mem     error      // a failed read of the step that said why (Memory's own error)
	corrupt corruption // a stack found inconsistent: the error is a CorruptStackError
}

// build returns the error the failure describes.
func (fl *failure) build(u *Unwinder) error {
	err := fl.buildErr(u)
	if fl.corrupt.set {
		return fl.corrupt.wrap(err)
	}
	return err
}

func (fl *failure) buildErr(u *Unwinder) error {
	why := u.realize(fl.why)
	if fl.mem != nil && (fl.kind == failStep || fl.kind == failScan) {
		// The memory said why a read failed: that is the reason to show.
		if why == nil {
			why = fl.mem
		} else if !wrapsType(why, fl.mem) {
			why = fmt.Errorf("%w: %w", why, fl.mem)
		}
	}
	switch fl.kind {
	case failStep:
		return fmt.Errorf("frame %d at %#x: %w", fl.index, fl.pc, why)
	case failScan:
		return fmt.Errorf("frame %d at %#x: %w; the stack scan found no return address", fl.index, fl.pc, why)
	case failCFIUndef:
		return fmt.Errorf("frame %d at %#x: cfi: return address undefined outside an outermost frame", fl.index, fl.pc)
	}
	return errors.New("walk failed")
}

// wrapsType reports whether err's chain holds an error of target's
// dynamic type: the step's error already tells what the memory said.
func wrapsType(err, target error) bool {
	t := reflect.TypeOf(target)
	for err != nil {
		if reflect.TypeOf(err) == t {
			return true
		}
		switch e := err.(type) {
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				if wrapsType(x, target) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

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
		if !u.opts.Kernel && u.has(MethodSignal) {
			// Off the thread's own stack: maybe a signal handler on a
			// sigaltstack, whose frames come before the signal frame
			// that says so.
			if a := u.stackAt(sp); !a.ok {
				u.probeAltStack(sp, 0)
			} else if a.s.Kind == StackUnknown {
				u.probeAltStack(sp, a.s.Hi)
			}
		}
		if s, ok := u.stackOf(sp); ok {
			f.Stack = s
			u.curStack, u.curStackOK = s, true
			u.curLow = sp
		} else if !u.opts.Kernel {
			// A user stack the oracle does not know, as accept labels
			// the frames on one.
			f.Stack = Stack{Kind: StackUser, CPU: -1}
		}
	}
	return true
}

// emit publishes u.cur (plus its inlined callers) as the next frame.
func (u *Unwinder) emit() bool {
	if u.n >= u.max {
		u.finish("frame limit", false)
		u.truncated = true
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
	if f.Reliable && !u.pcTrusted(f) {
		f.Reliable = false
		if f.nullCall && f.Kind == KindInterrupted && f.PC == 0 && u.indirectCallAtSP(f) {
			// A call through NULL: the frame is no code, and the
			// trace cannot be reliable, but its pt_regs was found
			// by a cross-checked signal and the caller's return
			// address is checked: the frames above are no guesses.
			u.allGood = false
			goto judged
		}
	}
	if !f.Reliable {
		u.allGood = false
		u.tainted = true // frames above a guess are guesses too
	} else if u.istRead != 0 {
		u.confirmIST()
	}
judged:
	f.Function, f.File, f.Line, f.Inlined = "", "", 0, false
	f.SymOK = false
	tramp := (f.Kind == KindCall || f.Kind == KindScan) && f.Index > 0 && !u.opts.Kernel && u.has(MethodSignal) && u.atRestoreRTCached(f.PC)
	if tramp {
		// A signal trampoline is returned to, never called: look it up
		// at its own address.
		f.LookupPC = f.PC
	}
	if u.opts.Code != nil {
		u.frameSymbol(f)
	}
	if !f.SymOK {
		f.Sym = symbols.Sym{}
		if mn, ok := u.opts.Code.(moduleNamer); ok {
			// No symbol, but maybe a mapped file's text.
			f.Sym.Module = mn.ModuleOf(f.LookupPC)
		}
	}
	if !f.SymOK && tramp {
		f.Function = "__restore_rt"
	}
	u.inline = u.inline[:0]
	u.inlineAt = 0
	if u.lines != nil && f.SymOK {
		u.inline = u.frameLines(f)
		if len(u.inline) > 0 {
			l := u.inline[0]
			if l.Function != "" {
				f.Function = l.Function
			}
			f.File, f.Line, f.Inlined = l.File, l.Line, l.Inlined
			u.inlineAt = 1
		}
	}
	u.prevPC, u.lastPC = u.lastPC, f.LookupPC
	u.n++
	u.outInline = false
	return true
}

// emitInline publishes the next source-level frame at the current frame's
// pc: the function the last one was inlined into.
func (u *Unwinder) emitInline() bool {
	if u.n >= u.max {
		u.finish("frame limit", false)
		u.truncated = true
		return false
	}
	l := u.inline[u.inlineAt]
	u.inlineAt++
	if !u.outInline {
		u.out = *u.cur
		u.outInline = true
	}
	u.out.Index = u.n
	u.out.Inlined = l.Inlined
	if l.Function != "" {
		u.out.Function = l.Function
	}
	u.out.File, u.out.Line = l.File, l.Line
	u.n++
	return true
}

func (u *Unwinder) has(m Method) bool { return u.methods&m != 0 }

// memWindow is one region of a SplicedMemory.
type memWindow struct {
	lo   uint64
	data []byte
}

// The windows of an Unwinder: the region of the last stack read, of the
// last code read.
const (
	stackWin = 0
	codeWin  = 1
)

// at returns the n bytes at addr when the window holds them, else nil.
func (w *memWindow) at(addr uint64, n int) []byte {
	if off := addr - w.lo; addr >= w.lo && off < uint64(len(w.data)) && uint64(len(w.data))-off >= uint64(n) {
		return w.data[off : off+uint64(n)]
	}
	return nil
}

// splicedAt returns the n bytes at addr when mem is a SplicedMemory and
// one region holds them all, or a MemoryWindows and one of its pieces
// does, else nil (ReadAt may still read them, across regions). Window k
// remembers the region.
func (u *Unwinder) splicedAt(k int, addr uint64, n int) []byte {
	if u.rec != nil {
		return nil // an incremental walk logs its reads: readAt
	}
	w := &u.win[k]
	if b := w.at(addr, n); b != nil {
		return b
	}
	if u.windows != nil {
		lo, data := u.windows.Window(addr)
		if data == nil {
			return nil
		}
		w.lo, w.data = lo, data
		return w.at(addr, n)
	}
	i := u.spliced.find(addr)
	if i < 0 {
		return nil
	}
	r := &u.spliced[i]
	w.lo, w.data = r.Addr, r.Data
	return w.at(addr, n)
}

// readAt reads len(p) bytes at addr from the walk's memory; an
// incremental walk logs what it read (Options.Incremental). Every read of
// the target's memory during a step goes through readAt (or splicedAt).
func (u *Unwinder) readAt(p []byte, addr uint64) (int, error) {
	if u.mem == nil {
		return 0, errNoMemory
	}
	n, err := u.mem.ReadAt(p, addr)
	if u.rec != nil {
		u.rec.log(addr, p, n)
	}
	if n < len(p) && err != nil {
		if _, plain := err.(*MemoryError); !plain {
			u.memErr = err
		}
	}
	return n, err
}

// read64 reads one word without allocating.
func (u *Unwinder) read64(addr uint64) (uint64, bool) {
	if b := u.splicedAt(stackWin, addr, 8); b != nil {
		return binary.LittleEndian.Uint64(b), true
	}
	if u.mem == nil {
		return 0, false
	}
	n, _ := u.readAt(u.word[:8], addr)
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
	if ra == 0 || u.opts.Code == nil {
		return false
	}
	if u.c == nil {
		return u.opts.Code.IsText(ra - 1)
	}
	// Asked about a caller's PC, whose emit then uses the same entry.
	e := u.entry(ra, ra-1)
	if !e.has(efRT) {
		e.set(efRT, efRetText, u.opts.Code.IsText(ra-1))
	}
	return e.has(efRetText)
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
	if b := u.splicedAt(stackWin, addr, 16); b != nil {
		return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), true
	}
	if u.mem == nil {
		return 0, 0, false
	}
	if n, _ := u.readAt(u.word[:16], addr); n != 16 {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(u.word[:8]), binary.LittleEndian.Uint64(u.word[8:]), true
}
