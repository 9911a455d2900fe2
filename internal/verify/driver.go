package verify

import (
	"errors"
	"fmt"
	"maps"
	"sort"

	"github.com/unwind-dev/unwind/emu"
)

// driver runs a scenario one CPU boundary at a time. emu.RunScenario has no
// per-boundary callback, so the driver reproduces its scheduling and its
// triggers (fixtures/scenarios/README.md) with the public Machine API:
// round-robin StepCPU in CPU order, insn:N and sym:NAME[+OFF][#K] triggers
// evaluated at a CPU's boundary before it steps (where emu's boundary hook
// runs), stop directives ending the run after the machine step in which
// they fired. Snapshots are not taken and invariants are not checked:
// emu.RunScenario does that (the golden files use it).
type driver struct {
	sc   *emu.Scenario
	m    *emu.Machine
	acts []emu.Action
	// per CPU: insn-triggered actions sorted by count, and the next one
	insnActs [][]int
	next     []int
	// sym-triggered actions by address, arrivals per CPU and address
	symActs  map[uint64][]int
	arrivals []map[uint64]int
	stop     string
	steps    uint64
}

func newDriver(sc *emu.Scenario, kernel []byte) (*driver, error) {
	m, err := emu.New(kernel, sc.CPUs)
	if err != nil {
		return nil, err
	}
	d := &driver{sc: sc, m: m, acts: sc.Actions, symActs: map[uint64][]int{}}
	m.EnableChecks()
	if len(sc.Handlers) > 0 {
		m.SetPtRegsHandlers(append(append([]string{}, emu.DefaultPtRegsHandlers...), sc.Handlers...)...)
	}
	resolve := func(sym string, off uint64, line int) (uint64, error) {
		s, ok := m.SymbolByName(sym)
		if !ok {
			return 0, fmt.Errorf("%s:%d: unknown symbol %q", sc.Name, line, sym)
		}
		return s.Addr + off, nil
	}
	for _, p := range sc.Pokes {
		a, err := resolve(p.Symbol, p.Off, p.Line)
		if err != nil {
			return nil, err
		}
		var b [8]byte
		for i := range b {
			b[i] = byte(p.Value >> (8 * i))
		}
		if _, err := m.Memory().WriteAt(b[:p.Size], a); err != nil {
			return nil, fmt.Errorf("%s:%d: poke: %w", sc.Name, p.Line, err)
		}
	}
	for _, b := range sc.Breaks {
		a, err := resolve(b.Symbol, b.Off, b.Line)
		if err != nil {
			return nil, err
		}
		if b.CPU >= len(m.CPUs) {
			return nil, fmt.Errorf("%s:%d: no cpu %d", sc.Name, b.Line, b.CPU)
		}
		c := m.CPUs[b.CPU]
		c.DR[b.Slot] = a
		c.DR[7] |= 1 << (2 * b.Slot)
		c.DR[7] &^= 0xf << (16 + 4*b.Slot)
	}
	n := len(m.CPUs)
	d.insnActs = make([][]int, n)
	d.next = make([]int, n)
	d.arrivals = make([]map[uint64]int, n)
	for i := range d.arrivals {
		d.arrivals[i] = map[uint64]int{}
	}
	for i, a := range sc.Actions {
		switch {
		case a.At.Halt:
		case a.At.IsSym():
			addr, err := resolve(a.At.Symbol, a.At.Off, a.Line)
			if err != nil {
				return nil, err
			}
			d.symActs[addr] = append(d.symActs[addr], i)
		default:
			if a.CPU >= n {
				return nil, fmt.Errorf("%s:%d: no cpu %d", sc.Name, a.Line, a.CPU)
			}
			d.insnActs[a.CPU] = append(d.insnActs[a.CPU], i)
		}
	}
	for _, acts := range d.insnActs {
		sort.SliceStable(acts, func(i, j int) bool { return sc.Actions[acts[i]].At.Insn < sc.Actions[acts[j]].At.Insn })
	}
	return d, nil
}

// boundary fires the triggers of CPU c at its current boundary.
func (d *driver) boundary(c *emu.CPU) {
	acts := d.insnActs[c.ID]
	for d.next[c.ID] < len(acts) {
		i := acts[d.next[c.ID]]
		if d.acts[i].At.Insn > c.Insns {
			break
		}
		d.next[c.ID]++
		d.fire(c, i)
	}
	if c.Halted || len(d.symActs) == 0 {
		return
	}
	if ids, ok := d.symActs[c.RIP]; ok && d.m.Memory().Mapped(c.RIP, 1) {
		d.arrivals[c.ID][c.RIP]++
		k := d.arrivals[c.ID][c.RIP]
		for _, i := range ids {
			if a := d.acts[i]; a.CPU == c.ID && a.At.Count == k {
				d.fire(c, i)
			}
		}
	}
}

func (d *driver) fire(c *emu.CPU, i int) {
	a := d.acts[i]
	switch a.Kind {
	case emu.ActNMI:
		c.RaiseNMI()
	case emu.ActIRQ:
		c.RaiseIRQ(uint8(a.Vector))
	case emu.ActStop:
		d.stop = fmt.Sprintf("stop directive (line %d) at cpu %d insn %d at %s", a.Line, c.ID, c.Insns, d.m.Where(c.RIP))
	}
}

// run steps the machine to its end, calling visit after every boundary a
// CPU reached (an instruction retired or an event delivered). It returns
// why the run ended and the machine error, if any.
func (d *driver) run(visit func(cpu int)) (string, error) {
	_, reason, err := d.runUntil(d.sc.MaxSteps, visit)
	if reason == "" {
		reason = fmt.Sprintf("limit of %d steps", d.sc.MaxSteps)
	}
	return reason, err
}

// runUntil is run up to limit machine steps in all (d.steps): ended says
// the run ended before (reason, err say why, as run does).
func (d *driver) runUntil(limit uint64, visit func(cpu int)) (ended bool, reason string, err error) {
	m := d.m
	limit = min(limit, d.sc.MaxSteps)
	for d.steps < limit {
		progress := false
		for i, c := range m.CPUs {
			if c.Done {
				continue
			}
			d.boundary(c)
			err := m.StepCPU(i)
			if errors.Is(err, emu.ErrStopped) {
				continue
			}
			if err != nil {
				return true, err.Error(), err
			}
			progress = true
			visit(i)
		}
		if !progress {
			return true, "stopped", nil
		}
		d.steps++
		if d.stop != "" {
			return true, d.stop, nil
		}
	}
	if d.steps >= d.sc.MaxSteps {
		return true, fmt.Sprintf("limit of %d steps", d.sc.MaxSteps), nil
	}
	return false, "", nil
}

// clone returns an independent copy of d and its machine, at the same
// point of the run.
func (d *driver) clone() *driver {
	n := *d
	n.m = d.m.Clone()
	n.next = append([]int(nil), d.next...)
	n.arrivals = make([]map[uint64]int, len(d.arrivals))
	for i, a := range d.arrivals {
		n.arrivals[i] = maps.Clone(a)
	}
	return &n
}
