package emu

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/unwind-dev/unwind/dump"
)

// RunOptions are the inputs of RunScenario besides the scenario.
type RunOptions struct {
	KernelPath    string // recorded in the snapshots' ground truth
	KernelBuildID string // hex, recorded likewise
	// OnSnapshot, if set, receives each snapshot as it is taken (the core
	// file and the truth JSON) instead of Result keeping the bytes.
	OnSnapshot func(s *Snapshot) error
}

// Snapshot is one snapshot a scenario took.
type Snapshot struct {
	Name  string
	CPU   int
	Where string // place: "cpu 0 insn 1234 at func+0x12"
	Info  *dump.EmulatorInfo
	Core  []byte // ELF core file
	Truth []byte // Info as indented JSON (NAME.truth.json)
}

// Failure is a failed invariant.
type Failure struct {
	Invariant string // the invariant's name
	Line      int    // its line in the scenario
	Place     string // where it failed ("end of run" for end-state checks)
	Detail    string
}

func (f Failure) String() string {
	return fmt.Sprintf("invariant %s (line %d) failed at %s: %s", f.Invariant, f.Line, f.Place, f.Detail)
}

// Result is what running a scenario produced.
type Result struct {
	Scenario     *Scenario
	Machine      *Machine
	Snapshots    []*Snapshot
	Failures     []Failure // failed invariants (including expect=fail ones that held)
	Expected     []Failure // failures of expect=fail invariants: the bug showed
	Steps        uint64
	Instructions uint64
	StopReason   string // "stopped", "stop directive at …", "limit", or the machine error
	Err          error  // the machine error that stopped the run, if any
}

// RunScenario runs sc on the kernel ELF image kernelELF (the variant sc.Kernel
// names) and returns its snapshots and failed invariants. An error is
// returned only when the scenario cannot start (bad kernel, unknown symbol,
// a snapshot callback error); a machine error is in Result.Err and fails
// the no-error invariant.
func RunScenario(sc *Scenario, kernelELF []byte, opt RunOptions) (*Result, error) {
	r, err := newRunner(sc, kernelELF, opt)
	if err != nil {
		return nil, err
	}
	if err := r.loop(); err != nil {
		return nil, err
	}
	r.check()
	return r.res, nil
}

func newRunner(sc *Scenario, kernelELF []byte, opt RunOptions) (*runner, error) {
	m, err := New(kernelELF, sc.CPUs)
	if err != nil {
		return nil, err
	}
	if opt.KernelBuildID == "" {
		opt.KernelBuildID = KernelBuildID(kernelELF)
	}
	res := &Result{Scenario: sc, Machine: m}
	r := &runner{sc: sc, m: m, res: res, opt: opt}
	if err := r.setup(); err != nil {
		return nil, err
	}
	return r, nil
}

// loop steps the machine until it stops, fails, a stop directive fires or
// the scenario's step limit is reached (or, with untilSteps != 0, that
// many steps have run in total).
func (r *runner) loop() error { return r.loopUntil(0) }

func (r *runner) loopUntil(untilSteps uint64) error {
	m, res, sc := r.m, r.res, r.sc
	for res.Steps < sc.MaxSteps && (untilSteps == 0 || res.Steps < untilSteps) {
		err := m.Step()
		if r.cbErr != nil {
			return r.cbErr
		}
		if errors.Is(err, ErrStopped) {
			res.StopReason = "stopped"
			break
		}
		if err != nil {
			res.Err = err
			res.StopReason = err.Error()
			break
		}
		res.Steps++
		if r.stop != "" {
			res.StopReason = r.stop
			break
		}
		if r.watchStep && r.markToOK {
			break
		}
	}
	if res.StopReason == "" && res.Steps >= sc.MaxSteps {
		res.StopReason = "limit of " + strconv.FormatUint(sc.MaxSteps, 10) + " steps"
	}
	res.Instructions = m.Instructions()
	return nil
}

type runner struct {
	sc       *Scenario
	m        *Machine
	res      *Result
	opt      RunOptions
	insnActs [][]int          // per CPU: indexes of insn-triggered actions, by Insn
	next     []int            // per CPU: position in insnActs
	symActs  map[uint64][]int // address → sym-triggered actions
	arrivals []map[uint64]int // per CPU: arrivals at watched addresses
	fired    []bool
	stop     string
	cbErr    error

	invAt    map[uint64][]int // address → invariants checked on arrival (site-bytes, call-like)
	invFails map[int][]Failure
	siteAlts map[int][][]byte // site-bytes: the accepted byte strings
	callRet  map[int]uint64   // call-like: the return address a real call from the site pushes

	// Sweeps (sweep.go): the event raised at the sweep CPU's boundary with
	// Insns == sweepAt, once; noCores: snapshots fire but write nothing.
	sweep      *Sweep
	sweepAt    uint64
	sweepFired bool
	sweepWhere string
	noCores    bool
	// markFrom/markTo: the sweep CPU's Insns when the window triggers
	// fired (0: not yet); fromStep: machine steps before from fired.
	markFrom, markTo uint64
	markFromOK       bool
	markToOK         bool
	fromStep         uint64
	watchStep        bool
	toArrivals       int
	failed           []bool // per invariant, after check: it failed (raw, before expect=fail)
}

func (r *runner) resolve(sym string, off uint64, line int) (uint64, error) {
	s, ok := r.m.SymbolByName(sym)
	if !ok {
		return 0, fmt.Errorf("%s:%d: unknown symbol %q", r.sc.Name, line, sym)
	}
	return s.Addr + off, nil
}

func (r *runner) setup() error {
	m, sc := r.m, r.sc
	m.EnableChecks()
	if len(sc.Handlers) > 0 {
		m.SetPtRegsHandlers(append(append([]string{}, DefaultPtRegsHandlers...), sc.Handlers...)...)
	}
	for _, p := range sc.Pokes {
		a, err := r.resolve(p.Symbol, p.Off, p.Line)
		if err != nil {
			return err
		}
		var b [8]byte
		for i := range b {
			b[i] = byte(p.Value >> (8 * i))
		}
		if _, err := m.mem.WriteAt(b[:p.Size], a); err != nil {
			return fmt.Errorf("%s:%d: poke: %w", sc.Name, p.Line, err)
		}
	}
	for _, b := range sc.Breaks {
		a, err := r.resolve(b.Symbol, b.Off, b.Line)
		if err != nil {
			return err
		}
		if b.CPU >= len(m.CPUs) {
			return fmt.Errorf("%s:%d: no cpu %d", sc.Name, b.Line, b.CPU)
		}
		c := m.CPUs[b.CPU]
		c.DR[b.Slot] = a
		c.DR[7] |= 1 << (2 * b.Slot)
		c.DR[7] &^= 0xf << (16 + 4*b.Slot)
	}
	n := len(m.CPUs)
	r.insnActs = make([][]int, n)
	r.next = make([]int, n)
	r.arrivals = make([]map[uint64]int, n)
	r.symActs = map[uint64][]int{}
	r.fired = make([]bool, len(sc.Actions))
	for i := range r.arrivals {
		r.arrivals[i] = map[uint64]int{}
	}
	for i, a := range sc.Actions {
		switch {
		case a.At.Halt:
		case a.At.IsSym():
			addr, err := r.resolve(a.At.Symbol, a.At.Off, a.Line)
			if err != nil {
				return err
			}
			r.symActs[addr] = append(r.symActs[addr], i)
			m.watchAddr(addr)
		default:
			r.insnActs[a.CPU] = append(r.insnActs[a.CPU], i)
		}
	}
	for cpu, acts := range r.insnActs {
		sort.SliceStable(acts, func(i, j int) bool { return sc.Actions[acts[i]].At.Insn < sc.Actions[acts[j]].At.Insn })
		if len(acts) > 0 {
			m.CPUs[cpu].trigAt = sc.Actions[acts[0]].At.Insn
		}
	}
	r.invAt = map[uint64][]int{}
	r.invFails = map[int][]Failure{}
	r.siteAlts = map[int][][]byte{}
	r.callRet = map[int]uint64{}
	for i, inv := range sc.Invariants {
		switch inv.Kind {
		case "site-bytes":
			sym, off, err := symOff(inv.Arg)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", sc.Name, inv.Line, err)
			}
			site, err := r.resolve(sym, off, inv.Line)
			if err != nil {
				return err
			}
			for _, alt := range inv.Args[1:] {
				if t, ok := strings.CutPrefix(alt, "call:"); ok {
					sym, off, err := symOff(t)
					if err != nil {
						return fmt.Errorf("%s:%d: %v", sc.Name, inv.Line, err)
					}
					a, err := r.resolve(sym, off, inv.Line)
					if err != nil {
						return err
					}
					rel := uint32(a - (site + 5))
					r.siteAlts[i] = append(r.siteAlts[i], []byte{0xe8, byte(rel), byte(rel >> 8), byte(rel >> 16), byte(rel >> 24)})
					continue
				}
				b, _ := hex.DecodeString(alt)
				r.siteAlts[i] = append(r.siteAlts[i], b)
			}
			r.invAt[site] = append(r.invAt[site], i)
			m.watchAddr(site)
		case "call-like":
			sym, off, err := symOff(inv.Arg)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", sc.Name, inv.Line, err)
			}
			target, err := r.resolve(sym, off, inv.Line)
			if err != nil {
				return err
			}
			ssym, soff, err := symOff(inv.Site)
			if err != nil {
				return fmt.Errorf("%s:%d: %v", sc.Name, inv.Line, err)
			}
			site, err := r.resolve(ssym, soff, inv.Line)
			if err != nil {
				return err
			}
			r.callRet[i] = site + 5 // a 5-byte call rel32 at the site
			r.invAt[target] = append(r.invAt[target], i)
			m.watchAddr(target)
		}
	}
	m.hook = r.boundary
	return nil
}

// checkAt evaluates the arrival invariants (site-bytes, call-like) of the
// address c is about to execute.
func (r *runner) checkAt(c *CPU, ids []int) {
	m := r.m
	for _, i := range ids {
		inv := r.sc.Invariants[i]
		fail := func(detail string) {
			if len(r.invFails[i]) < maxViolations {
				r.invFails[i] = append(r.invFails[i], Failure{Invariant: inv.Name, Line: inv.Line, Place: r.place(c), Detail: detail})
			}
		}
		switch inv.Kind {
		case "site-bytes":
			alts := r.siteAlts[i]
			n := 0
			for _, a := range alts {
				n = max(n, len(a))
			}
			cur := make([]byte, n)
			m.mem.ReadAt(cur, c.RIP)
			ok := false
			for _, a := range alts {
				if string(cur[:len(a)]) == string(a) {
					ok = true
				}
			}
			if !ok {
				fail(fmt.Sprintf("executing %s with bytes % x, neither the old nor the new instruction", m.Where(c.RIP), cur))
			}
		case "call-like":
			want := r.callRet[i]
			sp := c.GPR[RSP]
			ra, _ := m.mem.read(sp, 8)
			fr := m.ShadowStack(c.ID)
			switch {
			case ra != want:
				fail(fmt.Sprintf("[rsp %#x] = %#x, a call from the site pushes %#x", sp, ra, want))
			case len(fr) < 2 || fr[0].CFA != sp+8 || fr[0].Kind != FrameCall:
				fail(fmt.Sprintf("ground truth innermost frame is not a call frame with CFA rsp+8 (%#x)", sp+8))
			case fr[1].PC != want || fr[1].Entry != "" || fr[1].Kind == FrameInterrupted:
				fail(fmt.Sprintf("ground truth caller is %s pc %#x (%s), want a call frame at %s", fr[1].Function, fr[1].PC, fr[1].Kind, m.Where(want)))
			case fr[1].Function != m.syms.name(want-1):
				fail(fmt.Sprintf("ground truth caller %s, the site is in %s", fr[1].Function, m.syms.name(want-1)))
			}
		}
	}
}

// boundary runs at a CPU's instruction boundary where a trigger may fire.
func (r *runner) boundary(c *CPU) {
	if r.sweep != nil && !r.sweepFired && c.ID == r.sweep.CPU && c.Insns >= r.sweepAt {
		r.sweepFired = true
		r.sweepWhere = r.m.Where(c.RIP)
		t := r.m.CPUs[r.sweep.Target]
		if r.sweep.Kind == ActNMI {
			t.RaiseNMI()
		} else {
			t.RaiseIRQ(uint8(r.sweep.Vector))
		}
	}
	acts := r.insnActs[c.ID]
	for r.next[c.ID] < len(acts) {
		i := acts[r.next[c.ID]]
		if r.sc.Actions[i].At.Insn > c.Insns {
			break
		}
		r.next[c.ID]++
		r.fire(c, i)
	}
	c.trigAt = ^uint64(0)
	if r.next[c.ID] < len(acts) {
		c.trigAt = r.sc.Actions[acts[r.next[c.ID]]].At.Insn
	}
	if r.sweep != nil && !r.sweepFired && c.ID == r.sweep.CPU {
		c.trigAt = min(c.trigAt, max(r.sweepAt, c.Insns+1))
	}
	if ids, ok := r.invAt[c.RIP]; ok && !c.Halted {
		r.checkAt(c, ids)
	}
	if ids, ok := r.symActs[c.RIP]; ok && !c.Halted {
		r.arrivals[c.ID][c.RIP]++
		k := r.arrivals[c.ID][c.RIP]
		for _, i := range ids {
			a := r.sc.Actions[i]
			if a.CPU != c.ID {
				continue
			}
			if a.Kind == actMarkTo {
				// a sweep's to= counts arrivals after its from= fired
				if r.markFromOK {
					r.toArrivals++
					if r.toArrivals == a.At.Count {
						r.fire(c, i)
					}
				}
				continue
			}
			if a.At.Count == k {
				r.fire(c, i)
			}
		}
	}
}

func (r *runner) place(c *CPU) string {
	return fmt.Sprintf("cpu %d insn %d at %s", c.ID, c.Insns, r.m.Where(c.RIP))
}

func (r *runner) fire(c *CPU, i int) {
	a := r.sc.Actions[i]
	r.fired[i] = true
	switch a.Kind {
	case ActNMI:
		c.RaiseNMI()
	case ActIRQ:
		c.RaiseIRQ(uint8(a.Vector))
	case ActStop:
		r.stop = "stop directive (line " + strconv.Itoa(a.Line) + ") at " + r.place(c)
	case ActSnapshot:
		if r.noCores {
			return
		}
		if err := r.snapshot(c, a); err != nil && r.cbErr == nil {
			r.cbErr = err
		}
	case actMarkFrom:
		if !r.markFromOK {
			r.markFrom, r.markFromOK = c.Insns, true
			r.fromStep = r.m.steps
		}
	case actMarkTo:
		if !r.markToOK {
			r.markTo, r.markToOK = c.Insns, true
		}
	}
}

func (r *runner) snapshot(c *CPU, a Action) error {
	info := r.m.Info()
	info.Scenario, info.Snapshot, info.Kernel = r.sc.Name, a.Name, r.sc.Kernel
	info.KernelPath, info.KernelBuildID, info.TriggerCPU = r.opt.KernelPath, r.opt.KernelBuildID, c.ID
	core, err := r.m.WriteCore(info)
	if err != nil {
		return err
	}
	truth, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	s := &Snapshot{Name: a.Name, CPU: c.ID, Where: r.place(c), Info: info, Core: core, Truth: append(truth, '\n')}
	if r.opt.OnSnapshot != nil {
		if err := r.opt.OnSnapshot(s); err != nil {
			return err
		}
		s.Core, s.Truth = nil, nil
	}
	r.res.Snapshots = append(r.res.Snapshots, s)
	return nil
}

// check evaluates the invariants at the end of the run.
func (r *runner) check() {
	m := r.m
	for i, inv := range r.sc.Invariants {
		var fs []Failure
		fail := func(place, detail string) {
			fs = append(fs, Failure{Invariant: inv.Name, Line: inv.Line, Place: place, Detail: detail})
		}
		switch inv.Kind {
		case "no-error":
			if m.err != nil {
				var e *Error
				place := "end of run"
				if errors.As(m.err, &e) {
					place = fmt.Sprintf("cpu %d at %s", e.CPU, m.Where(e.RIP))
				}
				fail(place, m.err.Error())
			}
		case "site-bytes", "call-like":
			fs = append(fs, r.invFails[i]...)
		case "idt-restored", "stack-intact", "no-frame-clobber", "iret-resumes", "ptregs-findable":
			for _, v := range m.violations {
				if v.Check == inv.Kind && (inv.Kind != "no-frame-clobber" || len(inv.Args) == 0 || slices.Contains(inv.Args, v.Victim)) {
					fail(fmt.Sprintf("cpu %d insn %d at %s", v.CPU, v.Insns, m.Where(v.RIP)), v.Detail)
				}
			}
		case "console-contains":
			if !strings.Contains(string(m.console), inv.Arg) {
				fail("end of run", fmt.Sprintf("console does not contain %q", inv.Arg))
			}
		case "exit-status":
			want, _ := parseUint(inv.Arg)
			c := m.CPUs[inv.CPU]
			if !c.Done || uint64(c.ExitStatus) != want {
				fail("end of run", fmt.Sprintf("cpu %d done=%v exit status %d, want %d", inv.CPU, c.Done, c.ExitStatus, want))
			}
		case "no-snapshot-missed":
			for i, a := range r.sc.Actions {
				if a.Kind == ActSnapshot && !r.fired[i] {
					fail("end of run", fmt.Sprintf("snapshot %s (line %d, at=%s) was never taken", a.Name, a.Line, a.At))
				}
			}
		}
		r.failed = append(r.failed, len(fs) > 0)
		switch {
		case !inv.ExpectFail:
			r.res.Failures = append(r.res.Failures, fs...)
		case len(fs) > 0:
			r.res.Expected = append(r.res.Expected, fs...)
		case len(r.sc.Sweeps) > 0:
			// Judged over the sweeps (SweepScenario): the bug must show
			// at one arrival point or more, not in the plain run.
		default:
			r.res.Failures = append(r.res.Failures, Failure{Invariant: inv.Name, Line: inv.Line, Place: "end of run",
				Detail: "expected to fail (expect=fail) but held"})
		}
	}
}
