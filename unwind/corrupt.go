package unwind

import (
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
)

// CorruptStackError reports a stack the walk found inconsistent: entered
// twice, a stack pointer that does not move up on it, a switch from it
// that goes inward, or, below an NMI nested on the same NMI stack, the
// interrupted NMI's frames reaching into the nested one's (or not shown to
// stay clear of them before the walk ended); or an exception stack whose
// frames the walk read but did not confirm, ending (or turning to a guess)
// before it left the exception stacks.
//
// On a real machine this is what a stack overwritten under a live frame
// looks like, above all an IST stack entered a second time (an exception
// or NMI delivered through the IST entry it is already running on resets
// the stack pointer to the top of that stack, and the new frames overwrite
// the old ones). The walk cannot tell which of the frames it read from
// that stack's memory are the overwritten ones, so the finding invalidates
// all of them: from the first frame whose derivation read the stack's
// memory (a return-address slot, a frame record, a pt_regs or an iret
// frame on it, or any read of a step from a frame on it) to the last.
// Frames before From came from other stacks' memory or, frame 0, from the
// initial registers; they stand.
//
// The cursor yields frames as it finds them and cannot take them back: a
// caller that keeps frames marks frames From.. unreliable itself (Walk
// does). The error is what Err returns when the walk stopped on the
// finding or on an error after it; Invalidated gives From in every case,
// a walk that went on with a stack scan (and ended without an error)
// included.
type CorruptStackError struct {
	// Stack is the stack found inconsistent.
	Stack Stack
	// From is the Index of the first frame the finding invalidates. It
	// may equal the number of frames yielded: then none is.
	From int
	// Err is the error that ended the walk.
	Err error

	note string // the finding, when Err is not about it
	n    int    // frames yielded when the walk found the stack inconsistent
}

func (e *CorruptStackError) Error() string {
	s := e.Err.Error()
	if e.note != "" {
		s += "; " + e.note
	}
	if e.From < e.n {
		s += fmt.Sprintf("; frames from #%d on depend on the %s stack's memory: unreliable", e.From, e.Stack.Kind)
	}
	return s
}

// Unwrap returns Err.
func (e *CorruptStackError) Unwrap() error { return e.Err }

// corruption is a stack found inconsistent, before it becomes a
// CorruptStackError: the stack and the first frame it invalidates.
// unconfirmed says the walk ended below a nested NMI before the
// interrupted NMI's frames were seen to stay clear of the nested one's;
// istOpen that it ended (or turned to a guess) before it left the
// exception stacks it read frames from.
type corruption struct {
	set         bool
	unconfirmed bool
	istOpen     bool // the walk ended or guessed on the exception stacks (confirmIST)
	from        int
	n           int // frames yielded then
	s           Stack
	note        string // the finding, when the walk's error will not say it
}

// corrupt records that the candidate caller was rejected because stack s
// is inconsistent, and returns err (the rejection). from is the first
// frame derived from s's memory. The step's first finding is kept; it
// becomes the walk's when no strategy finds a caller (settle).
//
// Only a caller derived from frames the walk trusts is evidence: after a
// guess (a scanned frame, the frame at the top of a stack taken as a last
// resort) every frame is unreliable already, and an inconsistent caller
// says more about the guess than about the stack.
func (u *Unwinder) corrupt(s Stack, from int, err error) error {
	if !u.pend.set && !u.tainted && !u.guessing {
		u.pend = corruption{set: true, from: max(from, 1), s: s}
		u.pendErr = err
	}
	return err
}

// settle makes the step's finding the walk's, when the walk did not
// already have one, as the step ends the walk or hands it to a guess (the
// stack scan, the frame at the top of a stack); so does a walk that ends
// or guesses below a nested NMI whose interrupted NMI's frames were not
// confirmed. note says the walk's error, if any, will not describe the
// finding: the CorruptStackError then adds its description.
func (u *Unwinder) settle(note bool) {
	if u.pend.set && !u.corr.set {
		u.corr = u.pend
		u.corr.n = u.n
		if note {
			u.corr.note = fmt.Sprintf("the %s stack was found inconsistent at frame %d (%v)", u.pend.s.Kind, u.cur.Index, u.realize(u.pendErr))
		}
	}
	if u.nestCeil != 0 {
		if !u.corr.set {
			u.corr = corruption{set: true, unconfirmed: true, from: max(u.curRead, 1), n: u.n, s: u.curStack}
		}
		u.nestCeil = 0
	}
	if u.istRead != 0 {
		// A proper end confirms them when every frame up to it was
		// reliable (user mode behind an interrupted frame no code can
		// have is no proper end of theirs). A walk cut by the frame
		// limit before it left the exception stacks goes on past the
		// limit, without yielding, to find out (confirmPastLimit).
		switch {
		case u.corr.set || u.istRead >= u.n:
		case u.truncated && !u.tainted && !u.probe:
			if from := u.confirmPastLimit(); from >= 0 && from < u.n {
				u.corr = corruption{set: true, istOpen: true, from: from, n: u.n, s: u.istStack}
			}
		case !u.proper || u.tainted:
			u.corr = corruption{set: true, istOpen: true, from: u.istRead, n: u.n, s: u.istStack}
		}
		u.istRead = 0
	}
}

// confirmLimit is how many frames past the frame limit confirmPastLimit
// walks: far more than the exception stacks of any kernel hold (each has
// a few frames of handler code and the hardware frame), and small enough
// that a hostile stack costs little.
const confirmLimit = 512

// confirmPastLimit walks u's stack again from its first registers, past
// the frame limit that cut u while its frames read from an exception stack
// were still unconfirmed, and returns the first frame that walk's findings
// invalidate, -1 when none. Without it a caller who asked for a few frames
// would be given frames of an overwritten exception stack as reliable: the
// evidence of the overwrite lies further down the stack.
func (u *Unwinder) confirmPastLimit() int {
	opts := u.opts
	opts.MaxFrames = u.n + confirmLimit
	p := New(u.mem, u.regs0, &opts)
	p.c = u.c
	p.probe = true
	for p.Next() {
	}
	return p.Invalidated()
}

// walkEnded settles the walk's findings once it has ended: the error that
// ended it becomes a CorruptStackError, and a walk that ended without
// one is no proper end.
func (u *Unwinder) walkEnded() {
	// The error describes the step's finding when the step failed on it
	// (step makes it the reason).
	u.settle(!(u.failed && u.fail.kind == failStep && u.pend.set && u.fail.why == u.pendErr))
	if !u.corr.set {
		return
	}
	if u.corr.from < u.corr.n {
		u.allGood = false // a trace cut by the frame limit included
	}
	switch {
	case u.err != nil:
		u.err = u.corr.wrap(u.err)
	case u.failed:
		u.fail.corrupt = u.corr
	default:
		u.proper = false
	}
}

// wrap returns the CorruptStackError of the finding, with err the error
// that ended the walk.
func (c *corruption) wrap(err error) error {
	e := &CorruptStackError{Stack: c.s, From: c.from, Err: err, note: c.note, n: c.n}
	if c.unconfirmed {
		e.note = fmt.Sprintf("below a nested nmi on the %s stack at %#x: the interrupted nmi's frames were not confirmed intact", c.s.Kind, c.s.Lo)
	}
	if c.istOpen {
		e.note = fmt.Sprintf("the walk did not leave the exception stacks: the frames read from the %s stack at %#x were not confirmed intact (a second entry through its IST gate writes over them)", c.s.Kind, c.s.Lo)
	}
	return e
}

// Invalidated returns the Index of the first frame that the walk's finding
// of a corrupt stack invalidates (see CorruptStackError), or -1 when it
// found none. Frames from there on were yielded as Reliable as the walk
// judged them then, and may be wrong: a caller that keeps frames marks
// them unreliable. It is final once Next has returned false.
func (u *Unwinder) Invalidated() int {
	if !u.corr.set {
		return -1
	}
	return u.corr.from
}

// acceptBelowNested is accept while the walk is on the NMI stack below an
// NMI nested on it (nestCeil): the interrupted NMI's frames must lie
// below the nested NMI's, which its entry pushed from the top of the
// stack down, over whatever was there. A candidate whose step read at or
// above the nested NMI's lowest frame (its return-address slot, its
// pt_regs or iret frame) is read from the nested NMI's frames: the stack
// is inconsistent. Leaving the NMI stack confirms the interrupted NMI's
// frames.
func (u *Unwinder) acceptBelowNested(next *Frame) error {
	s := u.curStack
	end := uint64(0)
	if next.Slot != 0 && s.holds(next.Slot) {
		end = next.Slot + 8
	}
	if next.RegsAddr != 0 && s.holds(next.RegsAddr) {
		n := uint64(ptregs.PtRegsSize)
		if next.Partial {
			n = ptregs.IretFrameSize
		}
		end = max(end, next.RegsAddr+n)
	}
	if end > u.nestCeil {
		return u.corrupt(s, u.curRead, u.errorf("the caller is read up to %#x, into the nested nmi's frames from %#x on the %s stack",
			xarg(end), xarg(u.nestCeil), karg(s.Kind)))
	}
	leaving := !s.holds(next.SP)
	err := u.acceptStack(next)
	if err == nil && leaving {
		u.nestCeil = 0
	}
	return err
}
