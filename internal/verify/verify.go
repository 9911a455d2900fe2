package verify

import (
	"bytes"
	"debug/elf"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// Strategy is one of the three strategy sets every boundary is unwound with.
type Strategy int

// The strategy sets.
const (
	// CFI is DWARF call-frame information alone (unwind.MethodCFI). The
	// fixture kernel describes its entry code with CFI signal frames
	// (.cfi_signal_frame, the hardware frame and every pt_regs push), so
	// CFI alone crosses interrupts, exceptions, NMIs and syscalls; no
	// pt_regs heuristics, frame pointers or scanning are allowed to help.
	CFI Strategy = iota
	// FP is the frame-pointer walk plus entry-frame detection
	// (unwind.MethodFP|unwind.MethodPtRegs): what an unwinder without
	// DWARF (Linux's ORC-less CONFIG_UNWINDER_FRAME_POINTER) can do.
	FP
	// Combined is every strategy (Options.Methods = 0).
	Combined
	// NumStrategies is the number of strategy sets.
	NumStrategies
)

var strategyNames = [NumStrategies]string{"cfi", "fp", "combined"}

// String returns the strategy's JSON name: "cfi", "fp" or "combined".
func (s Strategy) String() string {
	if s >= 0 && s < NumStrategies {
		return strategyNames[s]
	}
	return "unknown"
}

// Methods returns the unwinder strategies of the set.
func (s Strategy) Methods() unwind.Method {
	switch s {
	case CFI:
		return unwind.MethodCFI
	case FP:
		return unwind.MethodFP | unwind.MethodPtRegs
	}
	return 0
}

// Class is the verdict on one unwind at one boundary.
type Class uint8

// Verdicts.
const (
	// Exact: every frame equals the ground truth and the trace ends where
	// it ends.
	Exact Class = iota
	// Flagged: not exact, the trace says so (Reliable() is false or the walk
	// stopped with an error), and every frame it marks reliable is right.
	Flagged
	// WrongReliable: not exact, yet the whole trace claims to be reliable.
	// The project's bar is zero.
	WrongReliable
	// WrongFlagged: the trace as a whole is flagged, but a frame it marks
	// reliable is wrong.
	WrongFlagged
	numClasses
)

var classNames = [numClasses]string{"exact", "flagged", "wrong_reliable", "wrong_flagged"}

func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// Counts are the boundaries of one strategy by verdict.
type Counts struct {
	Exact uint64 `json:"exact"`
	// ExactReliable counts the exact traces that also say they are
	// reliable (Unwinder.Reliable): a subset of Exact, which judges the
	// frames alone. A reliability check that doubts true frames shows
	// here.
	ExactReliable uint64 `json:"exact_reliable"`
	Flagged       uint64 `json:"flagged"`
	WrongReliable uint64 `json:"wrong_reliable"`
	WrongFlagged  uint64 `json:"wrong_flagged"`
}

// Total returns the number of boundaries counted.
func (c Counts) Total() uint64 { return c.Exact + c.Flagged + c.WrongReliable + c.WrongFlagged }

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Exact += o.Exact
	c.ExactReliable += o.ExactReliable
	c.Flagged += o.Flagged
	c.WrongReliable += o.WrongReliable
	c.WrongFlagged += o.WrongFlagged
}

func (c *Counts) count(cl Class) {
	switch cl {
	case Exact:
		c.Exact++
	case Flagged:
		c.Flagged++
	case WrongReliable:
		c.WrongReliable++
	default:
		c.WrongFlagged++
	}
}

// Options tune a verification run.
type Options struct {
	// Every checks every N-th boundary of each CPU (0 or 1: all of them).
	Every uint64
	// MaxMismatches is how many mismatches are kept per strategy and
	// verdict (default 3; negative: none).
	MaxMismatches int
	// Progress, when set, is called about every 65536 checked boundaries
	// with the number checked so far.
	Progress func(boundaries uint64)
	// OnMismatch, when set, is called for every boundary a strategy got
	// wrong or flagged (not for the Undefined ones), with the first
	// difference. Tests use it to attribute mismatches to known defects.
	OnMismatch func(s Strategy, cl Class, cpu int, where, reason string)
	// KernelPath names the kernel in symbols (default
	// fixtures/kernel/build/kernel-VARIANT.elf).
	KernelPath string
	// Parallel is how many spans of the run are verified at once
	// (default GOMAXPROCS; 1: one pass). The result does not depend on
	// it, but OnMismatch and Progress are then called from several
	// goroutines (Progress one call at a time).
	Parallel int
}

// Result is the verification of one scenario.
type Result struct {
	Name   string
	Kernel string // fp or nofp
	CPUs   int
	// Boundaries is the number of boundaries checked (each is unwound once
	// per strategy).
	Boundaries uint64
	// Corrupts marks a scenario that declares (`corrupts stack|code WHY`)
	// that its bug destroys what an unwinder reads: there CFI need not be
	// exact (the bar is that no wrong frame is marked reliable), but it
	// must miss somewhere, or the declaration is stale.
	Corrupts   bool
	Strategies [NumStrategies]Counts
	// Undefined counts, per strategy, the flagged boundaries where the
	// trace stopped at a PC whose CFI deliberately leaves the caller's RSP
	// or return address undefined (no unwinder can be exact there; the
	// kernel README lists them).
	Undefined    [NumStrategies]uint64
	Mismatches   []Mismatch
	Instructions uint64
	StopReason   string
	Err          error // the machine error that ended the run, if any
	Elapsed      time.Duration
}

// Problems lists how the result misses the project's bar: a wrong but
// reliable trace or a wrong frame marked reliable in any strategy, or (on
// a scenario that does not corrupt its stack) a CFI unwind that is not
// exact, or a machine error.
func (r *Result) Problems() []string {
	var out []string
	for s := Strategy(0); s < NumStrategies; s++ {
		if n := r.Strategies[s].WrongReliable; n > 0 {
			out = append(out, fmt.Sprintf("%s: %s: %d wrong but reliable", r.Name, s, n))
		}
		// No frame marked reliable may be wrong, even in a trace flagged
		// as a whole; on a stack the bug corrupted neither, once the walk
		// has found it inconsistent and invalidated the frames it read
		// from it (unwind.CorruptStackError).
		if n := r.Strategies[s].WrongFlagged; n > 0 {
			out = append(out, fmt.Sprintf("%s: %s: %d traces with a wrong frame marked reliable", r.Name, s, n))
		}
	}
	if c := r.Strategies[CFI]; !r.Corrupts && c.Exact+r.Undefined[CFI] != r.Boundaries {
		out = append(out, fmt.Sprintf("%s: cfi: %d of %d boundaries not exact", r.Name, r.Boundaries-c.Exact-r.Undefined[CFI], r.Boundaries))
	} else if r.Corrupts && r.Boundaries > 0 && c.Exact+r.Undefined[CFI] == r.Boundaries {
		out = append(out, fmt.Sprintf("%s: declares a corruption, yet cfi is exact at all %d boundaries: remove the `corrupts` line", r.Name, r.Boundaries))
	}
	if r.Err != nil {
		out = append(out, fmt.Sprintf("%s: machine error: %v", r.Name, r.Err))
	}
	return out
}

// Mismatch is one boundary where a strategy's trace differed from the truth.
type Mismatch struct {
	Strategy Strategy
	Class    Class
	CPU      int
	Insns    uint64 // instructions the CPU had retired
	RIP      uint64
	Where    string   // RIP as func+0xoff
	Reason   string   // the first difference
	Disasm   []string // instructions around RIP, the one at RIP marked "=>"
	Trace    []unwind.Frame
	Reliable bool
	Stop     string
	Truth    []emu.Frame
}

// Corrupts reports whether a scenario declares (`corrupts stack|code
// WHY`) that the bug it demonstrates destroys what an unwinder reads: a
// nested exception's frame written over another's, code run while half
// patched. A failed invariant alone is no such declaration: a bug that
// leaves the stack and the code intact (the IDT toggle) is held to exact
// CFI like every other scenario.
func Corrupts(sc *emu.Scenario) bool { return sc.Corrupts != "" }

// noLines hides the optional LineSource of a Code: the verification
// compares physical frames (the truth has no inlined frames), and line
// lookups would only slow it down. It also answers IsText from the
// kernel's executable sections directly (a profile showed the general
// lookup at 7% of the verify loop).
type noLines struct {
	unwind.Code
	text [][2]uint64 // [start, end) of each executable section
}

// IsText implements unwind.Code.
func (c noLines) IsText(pc uint64) bool {
	if c.text == nil {
		return c.Code.IsText(pc)
	}
	for _, r := range c.text {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}

// verifyCode wraps the kernel's Code for the verify loop.
func verifyCode(code unwind.Code, kernel []byte) noLines {
	c := noLines{Code: code}
	f, err := elf.NewFile(bytes.NewReader(kernel))
	if err != nil {
		return c
	}
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_EXECINSTR != 0 && s.Flags&elf.SHF_ALLOC != 0 && s.Type == elf.SHT_PROGBITS && s.Size > 0 {
			c.text = append(c.text, [2]uint64{s.Addr, s.Addr + s.Size})
		}
	}
	return c
}

// KernelCode opens a fixture kernel image as the unwinder's Code.
func KernelCode(kernel []byte, path string) (*symbols.Set, error) {
	f, err := symbols.NewFile(bytes.NewReader(kernel), path, 0)
	if err != nil {
		return nil, err
	}
	set := &symbols.Set{}
	set.Add(f)
	return set, nil
}

// SymbolAddr adapts set's ByName to emu.EntryConventions.
func SymbolAddr(set *symbols.Set) func(string) (uint64, bool) {
	return func(name string) (uint64, bool) {
		s, ok := set.ByName(name)
		return s.Addr, ok
	}
}

// checker holds the per-run state of the comparison.
type checker struct {
	m    *emu.Machine
	res  *Result
	opts Options
	us   [][NumStrategies]*unwind.Unwinder // per CPU (each has its stack bounds)
	kept [NumStrategies][numClasses]int
	cmp  comparison
	prog *progressCounter
}

// Run runs scenario sc on kernel (the image of the variant sc.Kernel names)
// and checks every Every-th boundary of every CPU with the three strategy
// sets.
//
// With Options.Parallel > 1 the run is verified in chunks of machine
// steps, several at once: one goroutine runs the machine alone, without
// unwinding (a few percent of the work), and hands out a copy of it at the
// start of every chunk; workers, each with its own Unwinders (whose caches
// carry over from chunk to chunk), verify the chunks. The
// emulator is deterministic and unwinding does not change the machine, so
// the result is the one a single pass gives.
func Run(sc *emu.Scenario, kernel []byte, opts Options) (*Result, error) {
	if opts.Every == 0 {
		opts.Every = 1
	}
	if opts.MaxMismatches == 0 {
		opts.MaxMismatches = 3
	}
	if opts.KernelPath == "" {
		opts.KernelPath = "fixtures/kernel/build/kernel-" + sc.Kernel + ".elf"
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	// One Code for all workers: a symbols.File is safe for concurrent
	// use (its CFI is compiled on first use, once).
	set, err := KernelCode(kernel, opts.KernelPath)
	if err != nil {
		return nil, err
	}
	code := verifyCode(set, kernel)
	d, err := newDriver(sc, kernel)
	if err != nil {
		return nil, err
	}
	fixups := exTable(d.m) // the kernel's __ex_table, read-only from here on
	prog := &progressCounter{fn: opts.Progress}
	start := time.Now()
	var chunks []*chunk
	if opts.Parallel == 1 {
		w := newWorker(code, d.m, fixups, opts, prog)
		c := &chunk{d: d, seen: make([]uint64, sc.CPUs), limit: sc.MaxSteps}
		w.verify(c)
		chunks = []*chunk{c}
	} else {
		chunks = runChunks(d, code, fixups, opts, prog)
	}
	res := &Result{Name: sc.Name, Kernel: sc.Kernel, CPUs: sc.CPUs, Corrupts: Corrupts(sc)}
	// The chunks in order: counts add up, the mismatches kept are the
	// first ones of the whole run, the run ended in the chunk that saw
	// it end.
	var kept [NumStrategies][numClasses]int
	for _, c := range chunks {
		r := c.res
		res.Boundaries += r.Boundaries
		for s := range res.Strategies {
			res.Strategies[s].Add(r.Strategies[s])
			res.Undefined[s] += r.Undefined[s]
		}
		for _, mm := range r.Mismatches {
			if opts.MaxMismatches >= 0 && kept[mm.Strategy][mm.Class] < opts.MaxMismatches {
				kept[mm.Strategy][mm.Class]++
				res.Mismatches = append(res.Mismatches, mm)
			}
		}
		if c.ended {
			res.StopReason, res.Err = r.StopReason, r.Err
			res.Instructions = c.insns
			break
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// chunkSteps is the length of a chunk, in machine steps: short enough
// that the workers finish together, long enough that a chunk's first
// walks (from scratch) and its copy of the machine cost little.
const chunkSteps = 8192

// chunk is a part of a run: the driver (a copy of the machine) at its
// start, the boundaries each CPU had reached before it, the step count it
// ends at; once verified, its result, and whether the run ended in it.
type chunk struct {
	d     *driver
	seen  []uint64
	limit uint64
	res   *Result
	ended bool
	insns uint64 // instructions retired at its end
}

// runChunks verifies the run of d in chunks with opts.Parallel workers
// and returns the chunks in order.
func runChunks(d *driver, code noLines, fixups map[uint64]uint64, opts Options, prog *progressCounter) []*chunk {
	workers := make([]*worker, opts.Parallel)
	for i := range workers {
		workers[i] = newWorker(code, d.m, fixups, opts, prog)
	}
	// The producer runs ahead of the workers by a few chunks at most
	// (each holds a copy of the machine's memory).
	todo := make(chan *chunk, opts.Parallel)
	var chunks []*chunk
	var mu sync.Mutex
	go func() {
		defer close(todo)
		seen := make([]uint64, len(d.m.CPUs))
		count := func(cpu int) { seen[cpu]++ }
		for {
			c := &chunk{d: d.clone(), seen: append([]uint64(nil), seen...), limit: d.steps + chunkSteps}
			mu.Lock()
			chunks = append(chunks, c)
			mu.Unlock()
			todo <- c
			if ended, _, _ := d.runUntil(c.limit, count); ended {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range todo {
				w.verify(c)
				c.d = nil // its copy of the machine is not needed any more
			}
		}()
	}
	wg.Wait()
	return chunks
}

// worker verifies chunks with its own Unwinders.
type worker struct {
	opts Options
	us   [][NumStrategies]*unwind.Unwinder
	cmp  comparison
	prog *progressCounter
}

func newWorker(code noLines, m *emu.Machine, fixups map[uint64]uint64, opts Options, prog *progressCounter) *worker {
	// The Unwinders' stack bounds are the scenario's, the same in every
	// copy of the machine; Reset gives them each chunk's memory.
	return &worker{opts: opts, us: newUnwinders(m, code), cmp: comparison{code: code, fixups: fixups}, prog: prog}
}

// verify checks the boundaries of chunk c and sets its result.
func (w *worker) verify(c *chunk) {
	c.res = &Result{}
	ck := &checker{m: c.d.m, res: c.res, opts: w.opts, us: w.us, cmp: w.cmp, prog: w.prog}
	every := w.opts.Every
	seen := c.seen
	ended, reason, err := c.d.runUntil(c.limit, func(cpu int) {
		seen[cpu]++
		if seen[cpu]%every != 0 {
			return
		}
		ck.check(cpu)
	})
	w.cmp = ck.cmp
	c.insns = c.d.m.Instructions()
	if ended {
		c.ended = true
		c.res.StopReason, c.res.Err = reason, err
	}
}

// progressCounter adds up the boundaries the spans checked and calls the
// progress callback, one call at a time.
type progressCounter struct {
	mu sync.Mutex
	n  uint64
	fn func(uint64)
}

func (p *progressCounter) add(k uint64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	p.n += k
	p.fn(p.n)
	p.mu.Unlock()
}

// check unwinds CPU cpu's current state with every strategy and counts the
// verdicts.
func (ck *checker) check(cpu int) {
	m := ck.m
	c := m.CPUs[cpu]
	regs := c.Regs()
	truth := m.ShadowStack(cpu)
	ck.res.Boundaries++
	if ck.res.Boundaries&0xffff == 0 {
		ck.prog.add(0x10000)
	}
	for s := Strategy(0); s < NumStrategies; s++ {
		u := ck.us[cpu][s]
		u.Reset(m.Memory(), regs)
		cl := ck.cmp.classify(u, truth)
		ck.res.Strategies[s].count(cl)
		if cl == Exact && u.Reliable() {
			ck.res.Strategies[s].ExactReliable++
		}
		if ck.cmp.undefined {
			ck.res.Undefined[s]++
			continue
		}
		if cl != Exact && ck.opts.OnMismatch != nil {
			c := m.CPUs[cpu]
			ck.opts.OnMismatch(s, cl, cpu, m.Where(c.RIP), ck.explain(u, regs, truth))
		}
		if cl != Exact && ck.keep(s, cl) {
			ck.record(s, cl, cpu, regs, truth)
		}
	}
}

// keep reports whether a mismatch of this strategy and verdict is kept.
// Flagged frame-pointer traces are expected (frame pointers cannot see
// through prologues and entry code) and not kept.
func (ck *checker) keep(s Strategy, cl Class) bool {
	if ck.opts.MaxMismatches < 0 || (s == FP && cl == Flagged) {
		return false
	}
	if ck.kept[s][cl] >= ck.opts.MaxMismatches {
		return false
	}
	ck.kept[s][cl]++
	return true
}

// record re-runs the failing unwind, keeping its frames, and stores the
// mismatch.
func (ck *checker) record(s Strategy, cl Class, cpu int, regs ptregs.Regs, truth []emu.Frame) {
	m := ck.m
	c := m.CPUs[cpu]
	u := ck.us[cpu][s]
	u.Reset(m.Memory(), regs)
	var frames []unwind.Frame
	for u.Next() {
		frames = append(frames, u.Frame())
	}
	invalidate(frames, u)
	reason := ck.explain(u, regs, truth)
	ck.res.Mismatches = append(ck.res.Mismatches, Mismatch{
		Strategy: s, Class: cl, CPU: cpu, Insns: c.Insns, RIP: c.RIP, Where: m.Where(c.RIP),
		Reason: reason, Disasm: Disasm(m.Memory(), m, c.RIP, 4, 4),
		Trace: frames, Reliable: u.Reliable(), Stop: u.StopReason(),
		Truth: append([]emu.Frame(nil), truth...),
	})
}

// invalidate marks unreliable the frames of u's walk that its finding of a
// corrupt stack invalidates (unwind.Unwinder.Invalidated).
func invalidate(frames []unwind.Frame, u *unwind.Unwinder) {
	if from := u.Invalidated(); from >= 0 {
		for i := from; i < len(frames); i++ {
			frames[i].Reliable = false
		}
	}
}

// explain re-runs a failed unwind and describes its first difference.
func (ck *checker) explain(u *unwind.Unwinder, regs ptregs.Regs, truth []emu.Frame) string {
	cmp := comparison{code: ck.cmp.code, fixups: ck.cmp.fixups, explain: true}
	u.Reset(ck.m.Memory(), regs)
	cmp.classify(u, truth)
	return cmp.reason
}

// newUnwinders makes one Unwinder per CPU and strategy, reused (Reset) at
// every boundary so that their caches stay warm. A CPU's three Unwinders
// are siblings: they share one set of caches, since they walk the same
// frames one after the other. They are incremental: one instruction
// seldom changes more than the innermost frames, and the rest of the last
// boundary's walk is taken over where the new walk joins it (with every
// byte it read still in memory).
func newUnwinders(m *emu.Machine, code unwind.Code) [][NumStrategies]*unwind.Unwinder {
	var zero ptregs.Regs
	us := make([][NumStrategies]*unwind.Unwinder, len(m.CPUs))
	for cpu := range us {
		o := &unwind.Options{
			Code: code, Stacks: topInclusive(m.Stacks(cpu)), Methods: Strategy(0).Methods(), Kernel: true,
			Incremental: true}
		m.EntryConventions(o)
		first := unwind.New(m.Memory(), zero, o)
		us[cpu][0] = first
		for s := Strategy(1); s < NumStrategies; s++ {
			us[cpu][s] = first.Sibling(m.Memory(), zero, s.Methods())
		}
	}
	return us
}
