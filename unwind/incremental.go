package unwind

import (
	"encoding/binary"
	"unsafe"
)

// Incremental walks (Options.Incremental).
//
// A tool that unwinds a live target again and again (the verify loop, at
// every instruction boundary of an emulated CPU) mostly walks the same
// frames: one instruction changes frame 0, seldom more. A step is a
// function of the frame it starts from, the walk's own state (the stack it
// is on, the stacks left behind, whether a guess came before...) and the
// memory it reads; the Code and the stack bounds are fixed. So an
// incremental Unwinder keeps the last walk: per frame, the frame, the walk
// state at it, and every read its step made (address, length, the bytes).
// When a walk reaches a frame and a state equal to the last walk's at the
// same position, and memory still holds every byte the last walk's
// remaining steps read, those steps would do exactly what they did: the
// rest of the last walk is the rest of this one, and is replayed instead
// of computed. Anything else walks as usual, and is kept for the next
// walk.
//
// The record is consistent from every position once a walk has run to its
// end: a replaying walk only keeps its own prefix, up to a frame it proved
// equal. A walk abandoned before its end leaves the record mixed, and the
// next Reset drops it.

// traceMemo is the last walk of an incremental Unwinder.
type traceMemo struct {
	valid bool // frames[:n], states[:n], steps[:n] and final describe a walk
	n     int
	// Frame 0 is recorded (has0) only when it is at the PC the walk
	// before started from (pc0): a moving target's next frame 0 is not
	// this one, and frame 0 is never replayed, only matched.
	pc0    uint64
	has0   bool
	frames []Frame     // frame k as emitted
	states []walkState // the walk state at frame k, before its step
	steps  []stepRec   // what step k (from frame k, and emit of frame k+1) read
	final  finalState  // how the walk ended (after step n-1)
	sfx    suffixCheck // the reads of steps sfx.from.., merged
}

// suffixCheck is what memory must hold for the rest of the last walk from
// frame from to be replayed: the reads of steps from to n-1, the full ones
// merged into runs of adjacent bytes (a walk reads the stack upwards, frame
// after frame), the short ones (a read that hit unmapped memory) as they
// were. Most boundaries of a verify loop replay from the same frame, so it
// is built once and checked many times.
//
// With a WriteJournal, a check that passed is remembered (the journal and
// its WriteSeq then): the next check compares again only the runs written
// over since.
type suffixCheck struct {
	built, never bool // never: two reads disagree, no memory can hold both
	from         int
	jr           WriteJournal // the memory the check last passed on, if it logs writes
	seq          uint64       // jr's WriteSeq then
	runs         []memRun
	short        []memRead // reads that returned fewer bytes than asked
	data         []byte    // the runs' bytes, then the short reads'
	sorted       []stepRead
}

// memRun is n bytes at addr that must read as data[off:off+n].
type memRun struct {
	addr uint64
	off  uint32
	n    uint32
}

// build makes s the check of the steps from..m.n-1.
func (s *suffixCheck) build(m *traceMemo, from int) {
	s.built, s.never, s.from = true, false, from
	s.jr = nil
	s.runs, s.short, s.data = s.runs[:0], s.short[:0], s.data[:0]
	// The full reads by address (a few per step: insertion sort), then
	// joined where they overlap or touch.
	reads := s.sorted[:0]
	for k := from; k < m.n; k++ {
		for _, rd := range m.steps[k].reads {
			if rd.want > maxLoggedRead {
				s.never = true
				return
			}
			if rd.got != rd.want {
				continue
			}
			r := stepRead{k: k, memRead: rd}
			i := len(reads)
			reads = append(reads, r)
			for i > 0 && reads[i-1].addr > r.addr {
				reads[i] = reads[i-1]
				i--
			}
			reads[i] = r
		}
	}
	s.sorted = reads
	for _, r := range reads {
		b := m.steps[r.k].data[r.off : r.off+uint32(r.got)]
		if n := len(s.runs); n > 0 && r.addr <= s.runs[n-1].addr+uint64(s.runs[n-1].n) {
			last := &s.runs[n-1]
			start := uint64(last.off) + (r.addr - last.addr)
			over := min(uint64(last.off)+uint64(last.n)-start, uint64(len(b)))
			if !sameBytes(s.data[start:start+over], b[:over]) {
				s.never = true // no memory holds both
				return
			}
			s.data = append(s.data, b[over:]...)
			last.n += uint32(uint64(len(b)) - over)
			continue
		}
		s.runs = append(s.runs, memRun{addr: r.addr, off: uint32(len(s.data)), n: uint32(len(b))})
		s.data = append(s.data, b...)
	}
	for k := from; k < m.n; k++ {
		r := &m.steps[k]
		for _, rd := range r.reads {
			if rd.got != rd.want {
				sh := rd
				sh.off = uint32(len(s.data))
				s.data = append(s.data, r.data[rd.off:rd.off+uint32(rd.got)]...)
				s.short = append(s.short, sh)
			}
		}
	}
}

// stepRead is a read of step k.
type stepRead struct {
	k int
	memRead
}

// holds reports whether mem (and view and jr, mem as a MemoryView and a
// WriteJournal when it is one) still holds what the steps read.
func (s *suffixCheck) holds(mem Memory, view MemoryView, jr WriteJournal, buf *[maxLoggedRead]byte) bool {
	if s.never || mem == nil {
		return false
	}
	var seq uint64
	since := jr != nil && s.jr == jr // the check passed on this memory at s.seq
	if jr != nil {
		seq = jr.WriteSeq()
		if since && seq == s.seq {
			return true // nothing written at all
		}
	}
	if !s.compare(mem, view, jr, since, buf) {
		s.jr = nil
		return false
	}
	s.jr, s.seq = jr, seq
	return true
}

// compare is holds without the shortcut: it compares every run (with
// since, only those jr says were written over after s.seq).
func (s *suffixCheck) compare(mem Memory, view MemoryView, jr WriteJournal, since bool, buf *[maxLoggedRead]byte) bool {
	for _, run := range s.runs {
		if since && !jr.WrittenSince(s.seq, run.addr, int(run.n)) {
			continue
		}
		addr, want := run.addr, s.data[run.off:run.off+run.n]
		for len(want) > 0 {
			// A piece that does not cross a page (View serves one page).
			n := min(len(want), maxLoggedRead, int(4096-addr&4095))
			var got []byte
			if view != nil {
				got = view.View(addr, n)
			}
			if got == nil {
				k, _ := mem.ReadAt(buf[:n], addr)
				if k != n {
					return false
				}
				got = buf[:n]
			}
			if !sameBytes(got, want[:n]) {
				return false
			}
			addr += uint64(n)
			want = want[n:]
		}
	}
	for _, rd := range s.short {
		if since && !jr.WrittenSince(s.seq, rd.addr, int(rd.want)) {
			continue
		}
		k, _ := mem.ReadAt(buf[:rd.want], rd.addr)
		if k != int(rd.got) || !sameBytes(buf[:k], s.data[rd.off:rd.off+uint32(rd.got)]) {
			return false
		}
	}
	return true
}

// walkState is what a step depends on besides its frame and memory.
type walkState struct {
	curStack   Stack
	curStackOK bool
	nestedSeen bool
	tainted    bool
	allGood    bool
	scanning   bool // a stack scan is under way: such a state is never matched
	altOK      bool
	nvisited   int
	n          int
	alt        Stack
	curRead    int
	curLow     uint64
	nestCeil   uint64
	istRead    int
	istStack   Stack
	corr       corruption
	visited    [8]uint64
	visitRead  [8]int
}

func (u *Unwinder) walkState() walkState {
	s := walkState{curStack: u.curStack, curStackOK: u.curStackOK, nestedSeen: u.nestedSeen,
		tainted: u.tainted, allGood: u.allGood, scanning: u.scan.active, nvisited: u.nvisited, n: u.n,
		alt: u.alt, altOK: u.altOK, curRead: u.curRead, curLow: u.curLow, nestCeil: u.nestCeil, corr: u.corr,
		istRead: u.istRead, istStack: u.istStack}
	copy(s.visited[:u.nvisited], u.visited[:u.nvisited])
	copy(s.visitRead[:u.nvisited], u.visitRead[:u.nvisited])
	return s
}

// sameState reports whether a step from the walk's state does what it did
// from o.
func (u *Unwinder) sameState(o *walkState) bool {
	if u.scan.active || o.scanning || u.curStackOK != o.curStackOK || u.nestedSeen != o.nestedSeen ||
		u.tainted != o.tainted || u.allGood != o.allGood || u.nvisited != o.nvisited || u.n != o.n ||
		u.curRead != o.curRead || u.curLow != o.curLow || u.nestCeil != o.nestCeil || u.corr != o.corr ||
		u.istRead != o.istRead || u.istRead != 0 && u.istStack != o.istStack ||
		u.curStack.Lo != o.curStack.Lo || u.curStack.Hi != o.curStack.Hi || u.curStack != o.curStack ||
		u.altOK != o.altOK || u.altOK && u.alt != o.alt {
		return false
	}
	for i := 0; i < u.nvisited; i++ {
		if u.visited[i] != o.visited[i] || u.visitRead[i] != o.visitRead[i] {
			return false
		}
	}
	return true
}

// sameFrame reports whether *a == *b, comparing the frames' memory: two
// frames with the same bytes are equal (a Frame holds no pointers but its
// strings' data, no floats, no interfaces). The converse can fail (equal
// strings at two addresses, padding), which only costs a replay: a
// frame's strings come from the caches and tables, the same each time.
func sameFrame(a, b *Frame) bool {
	if a.PC != b.PC || a.SP != b.SP || a.Kind != b.Kind {
		return false
	}
	return *(*[unsafe.Sizeof(Frame{})]byte)(unsafe.Pointer(a)) == *(*[unsafe.Sizeof(Frame{})]byte)(unsafe.Pointer(b))
}

// finalState is an ended walk's outcome.
type finalState struct {
	failed  bool
	proper  bool
	trunc   bool
	allGood bool
	tainted bool
	stop    string
	fail    failure
	def     deferredPtRegs
	lazy    lazyErr
	corr    corruption
}

func (u *Unwinder) finalState() finalState {
	f := finalState{failed: u.failed, proper: u.proper, trunc: u.truncated, allGood: u.allGood, tainted: u.tainted,
		fail: u.fail, def: u.def, lazy: u.lazy, corr: u.corr}
	if !u.failed {
		f.stop = u.stop // a failed walk builds its stop reason from its error, on demand
	}
	return f
}

// stepRec is the memory one step read.
type stepRec struct {
	reads []memRead
	data  []byte
}

// memRead is one read: want bytes asked at addr, got returned, the first
// got of them kept at data[off:].
type memRead struct {
	addr      uint64
	off       uint32
	want, got uint16
}

// maxLoggedRead bounds a read an incremental walk can check again (the
// largest a step makes is an entry stub's stack above SP).
const maxLoggedRead = 512

func (r *stepRec) reset() {
	r.reads = r.reads[:0]
	r.data = r.data[:0]
}

func (r *stepRec) log(addr uint64, p []byte, n int) {
	n = min(max(n, 0), len(p))
	if len(p) > maxLoggedRead {
		// Too large to check again: the step can never be replayed.
		r.reads = append(r.reads, memRead{addr: addr, want: maxLoggedRead + 1})
		return
	}
	r.reads = append(r.reads, memRead{addr: addr, off: uint32(len(r.data)), want: uint16(len(p)), got: uint16(n)})
	r.data = append(r.data, p[:n]...)
}

// sameBytes is bytes.Equal, by words for the few bytes of most reads.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 32 {
		return string(a) == string(b)
	}
	for len(a) >= 8 {
		if binary.LittleEndian.Uint64(a) != binary.LittleEndian.Uint64(b) {
			return false
		}
		a, b = a[8:], b[8:]
	}
	return string(a) == string(b)
}

// memoAt is called at frame j (u.cur, just emitted), before its step: it
// returns true when the rest of the last walk is this walk's rest (then
// Next replays it); otherwise it records the frame and the state, and
// starts logging the step's reads.
func (u *Unwinder) memoAt() bool {
	m := &u.memo
	j := u.n - 1
	if j < 0 || u.outInline {
		return false
	}
	if j == 0 {
		if pc := u.cur.PC; pc != m.pc0 {
			// Frame 0 of a target that moved on since the last walk:
			// neither matched nor recorded, and step 0 not logged
			// (the record's rest stays that of a whole walk).
			m.pc0, m.has0 = pc, false
			return false
		}
	}
	if m.valid && j < m.n && (j > 0 || m.has0) && sameFrame(u.cur, &m.frames[j]) && u.sameState(&m.states[j]) {
		if m.sfx.from != j || !m.sfx.built {
			m.sfx.build(m, j)
		}
		if m.sfx.holds(u.mem, u.view, u.journal, &u.vbuf) {
			u.replay = j + 1
			return true
		}
	}
	if m.sfx.built && j >= m.sfx.from {
		m.sfx.built = false // step j is recorded anew
	}
	for len(m.frames) <= j {
		m.frames = append(m.frames, Frame{})
		m.states = append(m.states, walkState{})
		m.steps = append(m.steps, stepRec{})
	}
	m.frames[j] = *u.cur
	m.states[j] = u.walkState()
	if j == 0 {
		m.has0 = true
	}
	u.rec = &m.steps[j]
	u.rec.reset()
	return false
}

// memoStepped ends the record of step j; end says the walk ended there.
func (u *Unwinder) memoStepped(end bool) {
	u.rec = nil
	if end {
		m := &u.memo
		m.n = u.n // frames 0..n-1; step n-1 ended the walk
		if u.outInline || m.n <= 0 || m.n > len(m.frames) {
			m.valid = false
			return
		}
		m.final = u.finalState()
		m.valid = true
		m.sfx.built = false
	}
}

// replayNext emits the next frame of the last walk, and at its end takes
// over how it ended.
func (u *Unwinder) replayNext() bool {
	m := &u.memo
	if k := u.replay; k < m.n {
		u.replay++
		u.cur = &m.frames[k]
		u.n = k + 1
		return true
	}
	u.replay = 0
	f := &m.final
	u.done, u.failed, u.proper, u.allGood, u.tainted = true, f.failed, f.proper, f.allGood, f.tainted
	u.truncated = f.trunc
	u.stop, u.fail, u.def, u.lazy, u.err = f.stop, f.fail, f.def, f.lazy, nil
	u.corr = f.corr
	return false
}
