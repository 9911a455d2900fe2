package emu

import (
	"encoding/json"
	"errors"
	"fmt"
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
	for res.Steps < sc.MaxSteps {
		err := m.Step()
		if r.cbErr != nil {
			return nil, r.cbErr
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
	}
	if res.StopReason == "" {
		res.StopReason = "limit of " + strconv.FormatUint(sc.MaxSteps, 10) + " steps"
	}
	res.Instructions = m.Instructions()
	r.check()
	return res, nil
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
	m.hook = r.boundary
	return nil
}

// boundary runs at a CPU's instruction boundary where a trigger may fire.
func (r *runner) boundary(c *CPU) {
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
	if ids, ok := r.symActs[c.RIP]; ok && !c.Halted {
		r.arrivals[c.ID][c.RIP]++
		k := r.arrivals[c.ID][c.RIP]
		for _, i := range ids {
			if a := r.sc.Actions[i]; a.CPU == c.ID && a.At.Count == k {
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
		if err := r.snapshot(c, a); err != nil && r.cbErr == nil {
			r.cbErr = err
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
	for _, inv := range r.sc.Invariants {
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
		case "idt-restored", "stack-intact", "no-frame-clobber":
			for _, v := range m.violations {
				if v.Check == inv.Kind {
					fail(fmt.Sprintf("cpu %d insn %d at %s", v.CPU, v.Insns, m.Where(v.RIP)), v.Detail)
				}
			}
		case "console-contains":
			if !strings.Contains(string(m.console), inv.Arg) {
				fail("end of run", fmt.Sprintf("console does not contain %q", inv.Arg))
			}
		case "exit-status":
			want, _ := parseUint(inv.Arg)
			c := m.CPUs[0]
			if !c.Done || uint64(c.ExitStatus) != want {
				fail("end of run", fmt.Sprintf("cpu 0 done=%v exit status %d, want %d", c.Done, c.ExitStatus, want))
			}
		case "no-snapshot-missed":
			for i, a := range r.sc.Actions {
				if a.Kind == ActSnapshot && !r.fired[i] {
					fail("end of run", fmt.Sprintf("snapshot %s (line %d, at=%s) was never taken", a.Name, a.Line, a.At))
				}
			}
		}
		switch {
		case !inv.ExpectFail:
			r.res.Failures = append(r.res.Failures, fs...)
		case len(fs) > 0:
			r.res.Expected = append(r.res.Expected, fs...)
		default:
			r.res.Failures = append(r.res.Failures, Failure{Invariant: inv.Name, Line: inv.Line, Place: "end of run",
				Detail: "expected to fail (expect=fail) but held"})
		}
	}
}
