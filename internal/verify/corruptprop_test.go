package verify

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// The corruption property: on a stack whose words were overwritten, a
// walk may stop, guess or go wrong, but every frame it marks reliable
// equals the emulator's shadow stack at that index. Snapshots of every
// scenario are corrupted one word at a time (a random stack word, a return
// address moved by 1..8 bytes, a pt_regs RIP no code can have) and
// unwound with every strategy set. (A word changed to another plausible
// value, a pt_regs RIP moved to the next instruction, is data no
// unwinder can check.)
//
// The scenarios that demonstrate a bug are in: there the corruption comes
// on top of the bug's own. The shadow stack is still the truth: it is
// what ran, built from calls, returns and deliveries, not read from the
// stack. Where the bug overwrote a live frame (a second entry through an
// IST gate), the frames from it on are history the memory lost: a walk
// reads the later entry's frame there, which differs from the truth, so
// marked reliable it fails. Where the machine ran on with no history (an
// iretq through the overwritten frame resumes code whose callers are
// gone; the shadow stack restarts with an outermost frame of unknown
// CFA), there is no truth beyond the shadow's frames, and a frame marked
// reliable there fails whatever it is. (A frame the bug overwrote with
// the same values, an entry the nested-NMI scheme restores from its
// copies, is right, and may be reliable.)

var corruptSeed = flag.Uint64("corrupt.seed", 1, "the seed of TestCorruptedWalks's corruptions")

var corruptWalks = flag.Int("corrupt.walks", 0, "corrupted walks TestCorruptedWalks checks (0: a small budget for the default run; the README's figure is 1200000)")

// overlay is memory with one 8-byte word replaced.
type overlay struct {
	base unwind.Memory
	addr uint64
	val  [8]byte
}

// ReadAt implements unwind.Memory.
func (o *overlay) ReadAt(p []byte, addr uint64) (int, error) {
	n, err := o.base.ReadAt(p, addr)
	for i := range o.val {
		a := o.addr + uint64(i)
		if a >= addr && a-addr < uint64(n) {
			p[a-addr] = o.val[i]
		}
	}
	return n, err
}

// propSnap is one sampled boundary of a scenario: the machine there and
// one CPU's registers and shadow stack.
type propSnap struct {
	scenario string
	m        *emu.Machine
	code     noLines
	cpu      int
	regs     ptregs.Regs
	truth    []emu.Frame
	us       [NumStrategies]*unwind.Unwinder
	// opts are us[0]'s options; limited holds unwinders like us with
	// MaxFrames set, by the limit (walkCorrupted).
	opts    unwind.Options
	limited map[int]*[NumStrategies]*unwind.Unwinder
}

var (
	propOnce  sync.Once
	propSnaps []*propSnap
	propErr   error
)

// propSnapshotsPer is how many boundaries of each scenario are sampled:
// half of them where an entry frame is on the shadow stack. A scenario
// that demonstrates a bug has as many again sampled after the machine's
// first failed check, when its checks see the bug (a frame overwritten,
// an IDT left wrong; not the patching scenarios' torn code).
const propSnapshotsPer = 24

// propSnapshots samples every scenario once per test binary.
func propSnapshots(t testing.TB) []*propSnap {
	t.Helper()
	propOnce.Do(func() {
		for _, name := range unwindfixtures.Scenarios() {
			snaps, err := sampleScenario(t, name)
			if err != nil {
				propErr = fmt.Errorf("%s: %w", name, err)
				return
			}
			propSnaps = append(propSnaps, snaps...)
		}
	})
	if propErr != nil {
		t.Fatal(propErr)
	}
	return propSnaps
}

// sampleScenario runs scenario name twice: to count its boundaries (those
// with an entry frame, those after the first failed check), then to clone
// the machine at the sampled ones.
func sampleScenario(t testing.TB, name string) ([]*propSnap, error) {
	sc, _ := loadScenario(t, name)
	buggy := Corrupts(sc) || expectsFailure(sc)
	d, code := loadRun(t, name)
	var total, entries, after uint64
	if _, err := d.run(func(cpu int) {
		total++
		if len(d.m.Violations()) > 0 {
			after++
		}
		for _, f := range d.m.ShadowStack(cpu) {
			if f.Entry != "" {
				entries++
				break
			}
		}
	}); err != nil && total == 0 {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(len(name)), total))
	pick := map[uint64]bool{}
	pickEntry := map[uint64]bool{}
	pickAfter := map[uint64]bool{}
	for i := 0; i < propSnapshotsPer/2 && total > 0; i++ {
		pick[rng.Uint64N(total)] = true
		if entries > 0 {
			pickEntry[rng.Uint64N(entries)] = true
		}
	}
	for i := 0; i < propSnapshotsPer && buggy && after > 0; i++ {
		pickAfter[rng.Uint64N(after)] = true
	}
	d, code = loadRun(t, name)
	var snaps []*propSnap
	var n, ne, na uint64
	d.run(func(cpu int) {
		truth := d.m.ShadowStack(cpu)
		take := pick[n]
		n++
		if len(d.m.Violations()) > 0 {
			take = take || pickAfter[na]
			na++
		}
		for _, f := range truth {
			if f.Entry != "" {
				take = take || pickEntry[ne]
				ne++
				break
			}
		}
		if !take || len(truth) == 0 {
			return
		}
		snaps = append(snaps, newPropSnap(name, d.m, code, cpu))
	})
	return snaps, nil
}

// newPropSnap makes the snapshot of CPU cpu of a clone of m.
func newPropSnap(name string, m *emu.Machine, code noLines, cpu int) *propSnap {
	truth := m.ShadowStack(cpu)
	s := &propSnap{scenario: name, code: code, cpu: cpu, truth: append([]emu.Frame(nil), truth...)}
	m = m.Clone()
	s.m, s.regs = m, m.CPUs[cpu].Regs()
	o := &unwind.Options{Code: code, Stacks: topInclusive(m.Stacks(cpu)), Methods: Strategy(0).Methods(), Kernel: true}
	m.EntryConventions(o)
	s.opts = *o
	s.us[0] = unwind.New(m.Memory(), s.regs, o)
	for st := Strategy(1); st < NumStrategies; st++ {
		s.us[st] = s.us[0].Sibling(m.Memory(), s.regs, st.Methods())
	}
	return s
}

// unwinder returns the Unwinder of strategy st whose walks stop at limit
// frames (Options.MaxFrames; 0: the default).
func (s *propSnap) unwinder(st Strategy, limit int) *unwind.Unwinder {
	if limit == 0 {
		return s.us[st]
	}
	us := s.limited[limit]
	if us == nil {
		if s.limited == nil {
			s.limited = make(map[int]*[NumStrategies]*unwind.Unwinder)
		}
		o := s.opts
		o.MaxFrames = limit
		us = new([NumStrategies]*unwind.Unwinder)
		us[0] = unwind.New(s.m.Memory(), s.regs, &o)
		for st := Strategy(1); st < NumStrategies; st++ {
			us[st] = us[0].Sibling(s.m.Memory(), s.regs, st.Methods())
		}
		s.limited[limit] = us
	}
	return us[st]
}

// corruption is one overwritten word.
type corruption struct {
	addr, old, val uint64
	what           string
}

// corrupt picks a word of snapshot s to overwrite, from r: mode 0 a
// random word above a live frame's SP set to random bits (or 0), mode 1 a
// return address moved by ±1..8 bytes, mode 2 a pt_regs RIP set to a
// value no code can have (all ones, non-canonical, random, a direct-map
// address).
func (s *propSnap) corrupt(r *rand.Rand, mode int) (corruption, bool) {
	mem := s.m.Memory()
	read := func(a uint64) (uint64, bool) {
		var b [8]byte
		if n, _ := mem.ReadAt(b[:], a); n != 8 {
			return 0, false
		}
		return binary.LittleEndian.Uint64(b[:]), true
	}
	tr := s.truth
	switch mode {
	case 1:
		i := 1 + r.IntN(max(len(tr)-1, 1))
		if i >= len(tr) || tr[i].Entry != "" || tr[i-1].CFA < 8 {
			return corruption{}, false
		}
		slot := tr[i-1].CFA - 8
		old, ok := read(slot)
		if !ok || old != tr[i].PC {
			return corruption{}, false
		}
		d := uint64(1 + r.IntN(8))
		val := old + d
		if r.IntN(2) == 0 {
			val = old - d
		}
		if s.returnSite(val) {
			// Another call's return site in the same code: another
			// possible history, which no unwinder can tell from this
			// one by the stack alone.
			return corruption{}, false
		}
		return corruption{slot, old, val, fmt.Sprintf("return address of frame %d %+d", i, int64(val-old))}, true
	case 2:
		var regs []uint64
		for _, f := range tr {
			if f.RegsAddr != 0 {
				regs = append(regs, f.RegsAddr)
			}
		}
		if len(regs) == 0 {
			return corruption{}, false
		}
		base := regs[r.IntN(len(regs))]
		// The interrupted RIP: values no code address can be (the
		// issue's RIP: 0010:0xffffffffffffffff, a direct-map address,
		// non-canonical, random bits).
		field := struct {
			off  uint64
			name string
		}{16 * 8, "rip"}
		old, ok := read(base + field.off)
		if !ok {
			return corruption{}, false
		}
		vals := [...]uint64{^uint64(0), 0x8000_0000_0000_0000 | r.Uint64N(1<<62), r.Uint64(), 0xffff888000000000 + r.Uint64N(1<<30)&^7}
		val := vals[r.IntN(len(vals))]
		return corruption{base + field.off, old, val, "pt_regs " + field.name}, true
	}
	f := tr[r.IntN(len(tr))]
	sp := f.SP
	if sp == 0 {
		sp, _ = s.regs.SP()
	}
	addr := (sp &^ 7) + 8*uint64(r.IntN(32))
	old, ok := read(addr)
	if !ok {
		return corruption{}, false
	}
	val := r.Uint64() // random bits
	if r.IntN(8) == 0 {
		val = 0
	}
	return corruption{addr, old, val, "stack word"}, true
}

// walkCorrupted unwinds s with strategy st over mem and returns the first
// frame marked reliable that differs from the truth, or "".
func (s *propSnap) walkCorrupted(st Strategy, mem unwind.Memory, limit int) string {
	u := s.unwinder(st, limit)
	u.Reset(mem, s.regs)
	var frames []unwind.Frame
	for u.Next() {
		frames = append(frames, u.Frame())
	}
	invalidate(frames, u)
	cmp := comparison{code: s.code, pointersOnly: true, explain: true}
	for i := range frames {
		f := &frames[i]
		if !f.Reliable {
			continue
		}
		if i >= len(s.truth) {
			return fmt.Sprintf("frame %d %s marked reliable beyond the truth's %d frames", i, frameName(f), len(s.truth))
		}
		cmp.reason = ""
		if !cmp.frameOK(i, f, &s.truth[i], -1) { // PC, kind, entry, pt_regs, RIP and RSP
			if os.Getenv("PROPDBG") != "" {
				for _, g := range frames {
					fmt.Fprintf(os.Stderr, "  #%d %s kind %v method %v rel %v sp %#x slot %#x regs %#x\n", g.Index, frameName(&g), g.Kind, g.Method, g.Reliable, g.SP, g.Slot, g.RegsAddr)
				}
				for j, tf := range s.truth {
					fmt.Fprintf(os.Stderr, "  truth %d %s %#x sp %#x cfa %#x %s regs %#x\n", j, tf.Function, tf.PC, tf.SP, tf.CFA, tf.Entry, tf.RegsAddr)
				}
				fmt.Fprintf(os.Stderr, "  stop %s\n", u.StopReason())
			}
			return "marked reliable: " + cmp.reason
		}
	}
	return ""
}

// checkCorruptions runs n corrupted walks (each corruption unwound with
// every strategy set counts NumStrategies walks) from seed and returns
// the number of walks and the failures.
func checkCorruptions(t testing.TB, snaps []*propSnap, n int, seed uint64) (walks int, fails []string) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for walks < n {
		s := snaps[r.IntN(len(snaps))]
		c, ok := s.corrupt(r, r.IntN(3))
		if !ok {
			continue
		}
		o := &overlay{base: s.m.Memory(), addr: c.addr}
		binary.LittleEndian.PutUint64(o.val[:], c.val)
		// One corruption in eight is walked with a frame limit inside
		// the truth: the frames given must be as right as a whole walk's.
		limit := 0
		if r.IntN(8) == 0 {
			limit = 1 + r.IntN(len(s.truth))
		}
		for st := Strategy(0); st < NumStrategies; st++ {
			walks++
			if why := s.walkCorrupted(st, o, limit); why != "" && len(fails) < 10 {
				fails = append(fails, fmt.Sprintf("%s cpu %d at %s, %s at %#x %#x -> %#x, %s, frame limit %d: %s",
					s.scenario, s.cpu, s.m.Where(s.m.CPUs[s.cpu].RIP), c.what, c.addr, c.old, c.val, st, limit, why))
			}
		}
	}
	return walks, fails
}

// TestCorruptedWalks holds the corruption property over every scenario;
// -corrupt.walks N checks N walks and reports how many millions it
// checked (the README gives the figure of a long run).
func TestCorruptedWalks(t *testing.T) {
	n := *corruptWalks
	if n == 0 {
		n = 30000
		if testing.Short() {
			n = 3000
		}
	}
	snaps := propSnapshots(t)
	start := time.Now()
	walks, fails := checkCorruptions(t, snaps, n, *corruptSeed)
	for _, f := range fails {
		t.Error(f)
	}
	t.Logf("%d snapshots of %d scenarios: %d corrupted walks (%.3f million), %d with a wrong frame marked reliable, in %v",
		len(snaps), len(unwindfixtures.Scenarios()), walks, float64(walks)/1e6, len(fails), time.Since(start).Round(time.Millisecond))
}

// FuzzCorruptedWalk: one corrupted word of one sampled snapshot (the
// fuzzer picks the snapshot, the class and the seed of the word and its
// value, as TestCorruptedWalks draws them, and a frame limit), unwound
// with every strategy set; no frame marked reliable may be wrong. (A value of the fuzzer's own
// choosing can be another plausible one, which no unwinder can check: a
// user RIP, another call's return site.)
func FuzzCorruptedWalk(f *testing.F) {
	for i := range 12 {
		f.Add(uint16(i*37), uint8(i%3), uint16(i*11), uint64(i)*0x9e3779b97f4a7c15, uint8(i%4))
	}
	f.Fuzz(func(t *testing.T, snap uint16, mode uint8, pick uint16, bits uint64, lim uint8) {
		snaps := propSnapshots(t)
		s := snaps[int(snap)%len(snaps)]
		// A frame limit inside the truth's depth, or none (0).
		limit := int(lim) % (len(s.truth) + 1)
		r := rand.New(rand.NewPCG(uint64(pick), bits))
		c, ok := s.corrupt(r, int(mode%3))
		if !ok {
			return
		}
		o := &overlay{base: s.m.Memory(), addr: c.addr}
		binary.LittleEndian.PutUint64(o.val[:], c.val)
		for st := Strategy(0); st < NumStrategies; st++ {
			if why := s.walkCorrupted(st, o, limit); why != "" {
				t.Errorf("%s cpu %d, %s at %#x %#x -> %#x, %s, frame limit %d: %s", s.scenario, s.cpu, c.what, c.addr, c.old, c.val, st, limit, why)
			}
		}
	})
}

// returnSite reports whether a call instruction of the kernel image ends
// at ra, decoding its function from the start.
func (s *propSnap) returnSite(ra uint64) bool {
	sym, ok := s.code.Symbol(ra - 1)
	if !ok {
		return false
	}
	code := s.code.CodeAt(sym.Addr)
	for off := 0; off < len(code) && sym.Addr+uint64(off) < ra; {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			return false
		}
		off += inst.Len
		if sym.Addr+uint64(off) == ra {
			return inst.Op == x86asm.CALL
		}
	}
	return false
}

// expectsFailure reports whether sc demonstrates a bug (an expect=fail
// invariant), whether or not the bug corrupts what the unwinder reads
// (Corrupts): such a scenario is also sampled after the bug.
func expectsFailure(sc *emu.Scenario) bool {
	for _, inv := range sc.Invariants {
		if inv.ExpectFail {
			return true
		}
	}
	return false
}

// snapshotWhere runs scenario name to the first boundary of CPU 0 at
// where (symbol+0xoff) whose shadow stack satisfies want, and returns the
// snapshot there.
func snapshotWhere(t *testing.T, name, where string, want func(truth []emu.Frame) bool) *propSnap {
	t.Helper()
	d, code := loadRun(t, name)
	var s *propSnap
	d.run(func(cpu int) {
		if s != nil || cpu != 0 || d.m.Where(d.m.CPUs[0].RIP) != where {
			return
		}
		if want(d.m.ShadowStack(0)) {
			s = newPropSnap(name, d.m, code, 0)
			d.stop = "snapshot taken"
		}
	})
	if s == nil {
		t.Fatalf("%s: no boundary at %s with the shadow stack wanted", name, where)
	}
	return s
}

// TestExceptionStackUnconfirmed holds the corruption property on the
// inputs that found the class of wrong frames marked reliable it keeps
// fixed: an exception (IST) stack a second entry through its gate wrote
// over (the scenarios' bugs), plus one more overwritten word that stops
// the walk before it reaches what shows the first: the stack entered
// twice, the stack pointer moving down. The frames read from the
// exception stack came from the later entry, or from no history at all;
// a walk that has not left the exception stacks when it ends has not
// confirmed them, and may not call them reliable (unwind.confirmIST).
func TestExceptionStackUnconfirmed(t *testing.T) {
	hasEntry := func(entry string) func([]emu.Frame) bool {
		return func(truth []emu.Frame) bool {
			for _, f := range truth {
				if f.Entry == entry && f.RegsAddr != 0 {
					return true
				}
			}
			return false
		}
	}
	restarted := func(truth []emu.Frame) bool { return truth[len(truth)-1].Function == "exc_nmi" }
	regsOf := func(s *propSnap, entry string) uint64 {
		for _, f := range s.truth {
			if f.Entry == entry {
				return f.RegsAddr
			}
		}
		return 0
	}
	nmiTop := func(s *propSnap) uint64 {
		for _, st := range s.m.Stacks(s.cpu) {
			if st.Kind == unwind.StackNMI {
				return st.Hi
			}
		}
		return 0
	}
	for _, tc := range []struct {
		name, scenario, where string
		want                  func([]emu.Frame) bool
		addr                  func(*propSnap) uint64
		old, val              uint64
	}{{
		// The first #BP's pt_regs holds the second #BP's (it
		// interrupted the NMI handler); its ip overwritten, frame
		// pointers take the hardware frame above it and stop on the
		// NMI stack.
		name: "idt-swap-noswap pt_regs ip", scenario: "idt-swap-noswap", where: "puthex+0x65", want: hasEntry("int3"),
		addr: func(s *propSnap) uint64 { return regsOf(s, "int3") + 16*8 },
		old:  0xffffffff81001421, val: 0xab8ffcf8f0992e4f,
	}, {
		// Its rbp overwritten: CFI stops on the NMI stack.
		name: "idt-swap-noswap pt_regs rbp", scenario: "idt-swap-noswap", where: "puts_raw+0x13", want: hasEntry("int3"),
		addr: func(s *propSnap) uint64 { return regsOf(s, "int3") + 4*8 },
		old:  0xffffffff8101aed0, val: 0x3d25835de223bef0,
	}, {
		// After the outer NMI's iretq through the nested one's frame,
		// exc_nmi runs with no caller; the NMI stack's top still holds
		// the nested NMI's frame, whose RSP (below exc_nmi's) showed
		// the stack inconsistent until it is overwritten with 0.
		name: "ist-reset-naive iret rsp", scenario: "ist-reset-naive", where: "puthex+0x50", want: restarted,
		addr: func(s *propSnap) uint64 { return nmiTop(s) - 16 },
		old:  0xffffffff8101af18, val: 0,
	}, {
		// The same with its CS overwritten: user mode, behind an
		// interrupted frame no user code can have, ends the walk.
		name: "nested-nmi-naive iret cs", scenario: "nested-nmi-naive", where: "puthex+0x59", want: restarted,
		addr: func(s *propSnap) uint64 { return nmiTop(s) - 32 },
		old:  0x10, val: 0x0be8e3a17c1c7a13,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := snapshotWhere(t, tc.scenario, tc.where, tc.want)
			addr := tc.addr(s)
			var b [8]byte
			if n, _ := s.m.Memory().ReadAt(b[:], addr); n != 8 || binary.LittleEndian.Uint64(b[:]) != tc.old {
				t.Fatalf("the word at %#x is %#x, not %#x: the fixture changed, find the input again", addr, binary.LittleEndian.Uint64(b[:]), tc.old)
			}
			o := &overlay{base: s.m.Memory(), addr: addr}
			binary.LittleEndian.PutUint64(o.val[:], tc.val)
			// Whole walks, and walks cut by a frame limit at every depth
			// of the truth: the evidence of the overwrite lies below the
			// frames a short limit gives.
			for limit := 0; limit <= len(s.truth); limit++ {
				for st := Strategy(0); st < NumStrategies; st++ {
					if why := s.walkCorrupted(st, o, limit); why != "" {
						t.Errorf("%s, frame limit %d: %s", st, limit, why)
					}
				}
			}
		})
	}
}

// TestFrameLimitKeepsJudgment: a walk cut by a frame limit gives the
// frames it keeps as the whole walk judged them, over every sampled
// snapshot of every scenario, uncorrupted, at every depth of the truth:
// a limit neither makes a frame reliable the whole walk doubts nor doubts
// one it keeps (the walk past the limit settles what is unconfirmed at
// the cut, as the whole walk would).
func TestFrameLimitKeepsJudgment(t *testing.T) {
	snaps := propSnapshots(t)
	walk := func(u *unwind.Unwinder, s *propSnap) []unwind.Frame {
		u.Reset(s.m.Memory(), s.regs)
		var frames []unwind.Frame
		for u.Next() {
			frames = append(frames, u.Frame())
		}
		invalidate(frames, u)
		return frames
	}
	bad := 0
	for _, s := range snaps {
		for st := Strategy(0); st < NumStrategies; st++ {
			whole := walk(s.unwinder(st, 0), s)
			for limit := 1; limit < len(whole) && limit <= len(s.truth); limit++ {
				cut := walk(s.unwinder(st, limit), s)
				for i := range cut {
					if cut[i].PC != whole[i].PC || cut[i].Reliable != whole[i].Reliable {
						if bad++; bad <= 10 {
							t.Errorf("%s cpu %d at %s, %s, frame limit %d: frame %d %s reliable %v, the whole walk's %s reliable %v",
								s.scenario, s.cpu, s.m.Where(s.m.CPUs[s.cpu].RIP), st, limit, i, frameName(&cut[i]), cut[i].Reliable, frameName(&whole[i]), whole[i].Reliable)
						}
						break
					}
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d limited walks judged a frame otherwise than the whole walk", bad)
	}
}
