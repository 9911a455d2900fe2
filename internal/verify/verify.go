package verify

import (
	"bytes"
	"debug/elf"
	"fmt"
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
	Exact         uint64 `json:"exact"`
	Flagged       uint64 `json:"flagged"`
	WrongReliable uint64 `json:"wrong_reliable"`
	WrongFlagged  uint64 `json:"wrong_flagged"`
}

// Total returns the number of boundaries counted.
func (c Counts) Total() uint64 { return c.Exact + c.Flagged + c.WrongReliable + c.WrongFlagged }

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Exact += o.Exact
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
}

// Result is the verification of one scenario.
type Result struct {
	Name   string
	Kernel string // fp or nofp
	CPUs   int
	// Boundaries is the number of boundaries checked (each is unwound once
	// per strategy).
	Boundaries uint64
	// Corrupts marks a scenario that demonstrates a stack-corrupting bug
	// (it has an expect=fail invariant): there CFI need not be exact (the
	// bar is that no wrong frame is marked reliable).
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

// Corrupts reports whether a scenario demonstrates a bug that corrupts its
// stack: it declares an invariant with expect=fail (the buggy variants:
// naive nested NMI, IDT toggle, patching without write-through).
func Corrupts(sc *emu.Scenario) bool {
	for _, inv := range sc.Invariants {
		if inv.ExpectFail {
			return true
		}
	}
	return false
}

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

// checker holds the per-run state of the comparison.
type checker struct {
	m    *emu.Machine
	res  *Result
	opts Options
	us   [][NumStrategies]*unwind.Unwinder // per CPU (each has its stack bounds)
	kept [NumStrategies][numClasses]int
	cmp  comparison
}

// Run runs scenario sc on kernel (the image of the variant sc.Kernel names)
// and checks every Every-th boundary of every CPU with the three strategy
// sets.
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
	set, err := KernelCode(kernel, opts.KernelPath)
	if err != nil {
		return nil, err
	}
	d, err := newDriver(sc, kernel)
	if err != nil {
		return nil, err
	}
	res := &Result{Name: sc.Name, Kernel: sc.Kernel, CPUs: sc.CPUs, Corrupts: Corrupts(sc)}
	ck := &checker{m: d.m, res: res, opts: opts}
	code := verifyCode(set, kernel)
	ck.us = newUnwinders(d.m, code)
	ck.cmp = comparison{code: code, fixups: exTable(d.m)}
	seen := make([]uint64, sc.CPUs)
	start := time.Now()
	res.StopReason, res.Err = d.run(func(cpu int) {
		seen[cpu]++
		if seen[cpu]%opts.Every != 0 {
			return
		}
		ck.check(cpu)
	})
	res.Elapsed = time.Since(start)
	res.Instructions = d.m.Instructions()
	return res, nil
}

// check unwinds CPU cpu's current state with every strategy and counts the
// verdicts.
func (ck *checker) check(cpu int) {
	m := ck.m
	c := m.CPUs[cpu]
	regs := c.Regs()
	truth := m.ShadowStack(cpu)
	ck.res.Boundaries++
	if ck.opts.Progress != nil && ck.res.Boundaries&0xffff == 0 {
		ck.opts.Progress(ck.res.Boundaries)
	}
	for s := Strategy(0); s < NumStrategies; s++ {
		u := ck.us[cpu][s]
		u.Reset(m.Memory(), regs)
		cl := ck.cmp.classify(u, truth)
		ck.res.Strategies[s].count(cl)
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
		first := unwind.New(m.Memory(), zero, &unwind.Options{
			Code: code, Stacks: topInclusive(m.Stacks(cpu)), Methods: Strategy(0).Methods(), Kernel: true,
			Incremental: true})
		us[cpu][0] = first
		for s := Strategy(1); s < NumStrategies; s++ {
			us[cpu][s] = first.Sibling(m.Memory(), zero, s.Methods())
		}
	}
	return us
}
