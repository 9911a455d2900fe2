package emu

import (
	"fmt"
	"maps"
	"strings"
)

// Internal action kinds marking a sweep's window in the probe run.
const (
	actMarkFrom = "sweep-from"
	actMarkTo   = "sweep-to"
)

// SweepOptions are the inputs of SweepScenario besides the scenario.
type SweepOptions struct {
	RunOptions
	// Every samples the window: only every Every-th arrival point (and the
	// last) is run. 0 or 1: every instruction of the window.
	Every uint64
}

// SweepPoint is one arrival point of a sweep: the event was raised at the
// sweep CPU's boundary after Insn retired instructions, at Where.
type SweepPoint struct {
	Insn   uint64
	Where  string
	Failed []string // invariants that failed at this point (expect=fail ones included)
}

// InvariantSweep sums up one invariant over a sweep.
type InvariantSweep struct {
	Name       string
	Kind       string
	Line       int
	ExpectFail bool
	Failed     int    // points where it failed
	First      string // the first failing point and its failure
}

// SweepResult is what one sweep directive produced.
type SweepResult struct {
	Sweep      Sweep
	From, To   uint64 // the window: the sweep CPU's retired-instruction counts
	FromWhere  string
	Points     []SweepPoint
	Invariants []InvariantSweep
	// Failures: invariants that failed at some point (or, with
	// expect=fail, held at every point); Expected: expect=fail invariants
	// that failed at one or more points, as the scenario says they must.
	Failures []Failure
	Expected []Failure
}

// SweepScenario runs every sweep directive of sc: for each, a probe run
// finds the window (the sweep CPU's instruction counts at the from and to
// triggers), a second run stops just before the window and keeps the
// machine as a checkpoint, and then, for each instruction boundary of the
// window, a clone of the checkpoint (Machine.Clone) runs to the end with
// the event raised at that boundary, and the invariants are checked
// (no-snapshot-missed is not: the event may change the path; snapshots
// are not written). A plain invariant must hold at every point; an
// expect=fail one must fail at one point or more.
func SweepScenario(sc *Scenario, kernelELF []byte, opt SweepOptions) ([]*SweepResult, error) {
	var out []*SweepResult
	for i := range sc.Sweeps {
		sr, err := sweepOne(sc, &sc.Sweeps[i], kernelELF, opt)
		if err != nil {
			return nil, err
		}
		out = append(out, sr)
	}
	return out, nil
}

func sweepOne(sc *Scenario, sw *Sweep, kernelELF []byte, opt SweepOptions) (*SweepResult, error) {
	// The scenario with the window's triggers as marks.
	sc2 := *sc
	sc2.Actions = append(append([]Action(nil), sc.Actions...), Action{Kind: actMarkFrom, CPU: sw.CPU, At: sw.From, Line: sw.Line})
	if sw.Count == 0 {
		sc2.Actions = append(sc2.Actions, Action{Kind: actMarkTo, CPU: sw.CPU, At: sw.To, Line: sw.Line})
	}
	ropt := opt.RunOptions
	ropt.OnSnapshot = nil
	probe, err := newRunner(&sc2, kernelELF, ropt)
	if err != nil {
		return nil, err
	}
	probe.noCores = true
	probe.watchStep = sw.Count == 0
	if err := probe.loop(); err != nil {
		return nil, err
	}
	if !probe.markFromOK {
		return nil, fmt.Errorf("%s:%d: sweep: from=%s never fired", sc.Name, sw.Line, sw.From)
	}
	from, to := probe.markFrom, probe.markFrom+sw.Count
	if sw.Count == 0 {
		if !probe.markToOK {
			return nil, fmt.Errorf("%s:%d: sweep: to=%s never fired after from=%s", sc.Name, sw.Line, sw.To, sw.From)
		}
		to = probe.markTo
		if to < from {
			return nil, fmt.Errorf("%s:%d: sweep: to=%s (insn %d) fired before from=%s (insn %d)", sc.Name, sw.Line, sw.To, to, sw.From, from)
		}
	}

	// The checkpoint: the same run, stopped before the step in which the
	// from trigger fired.
	base, err := newRunner(&sc2, kernelELF, ropt)
	if err != nil {
		return nil, err
	}
	base.noCores = true
	if probe.fromStep > 0 {
		if err := base.loopUntil(probe.fromStep); err != nil {
			return nil, err
		}
	}
	sr := &SweepResult{Sweep: *sw, From: from, To: to}
	for _, inv := range sc.Invariants {
		sr.Invariants = append(sr.Invariants, InvariantSweep{Name: inv.Name, Kind: inv.Kind, Line: inv.Line, ExpectFail: inv.ExpectFail})
	}
	every := max(opt.Every, 1)
	var points []uint64
	for k := from; k <= to; k += every {
		points = append(points, k)
	}
	if points[len(points)-1] != to {
		points = append(points, to)
	}
	for _, k := range points {
		p, err := sweepPoint(base, sw, k)
		if err != nil {
			return nil, err
		}
		sr.add(sc, p)
	}
	if len(sr.Points) > 0 {
		sr.FromWhere = sr.Points[0].Where
	}
	for i, inv := range sc.Invariants {
		is := &sr.Invariants[i]
		if inv.Kind == "no-snapshot-missed" {
			continue
		}
		place := fmt.Sprintf("sweep (line %d) of %d points, insns %d..%d", sw.Line, len(sr.Points), from, to)
		switch {
		case !inv.ExpectFail && is.Failed > 0:
			sr.Failures = append(sr.Failures, Failure{Invariant: inv.Name, Line: inv.Line, Place: place,
				Detail: fmt.Sprintf("failed at %d of %d points; first: %s", is.Failed, len(sr.Points), is.First)})
		case inv.ExpectFail && is.Failed == 0:
			sr.Failures = append(sr.Failures, Failure{Invariant: inv.Name, Line: inv.Line, Place: place,
				Detail: "expected to fail (expect=fail) at one point or more but held at every point"})
		case inv.ExpectFail:
			sr.Expected = append(sr.Expected, Failure{Invariant: inv.Name, Line: inv.Line, Place: place,
				Detail: fmt.Sprintf("failed at %d of %d points; first: %s", is.Failed, len(sr.Points), is.First)})
		}
	}
	return sr, nil
}

func (sr *SweepResult) add(sc *Scenario, p *sweepRun) {
	pt := SweepPoint{Insn: p.at, Where: p.where}
	for i, inv := range sc.Invariants {
		if inv.Kind == "no-snapshot-missed" || !p.failed[i] {
			continue
		}
		pt.Failed = append(pt.Failed, inv.Name)
		is := &sr.Invariants[i]
		is.Failed++
		if is.First == "" {
			is.First = fmt.Sprintf("NMI/IRQ at insn %d (%s): %s", p.at, p.where, p.detail[i])
		}
	}
	sr.Points = append(sr.Points, pt)
}

type sweepRun struct {
	at     uint64
	where  string
	failed []bool
	detail map[int]string
}

// sweepPoint runs a clone of the checkpoint with the event at insn k.
func sweepPoint(base *runner, sw *Sweep, k uint64) (*sweepRun, error) {
	r := base.clone()
	r.sweep, r.sweepAt = sw, k
	c := r.m.CPUs[sw.CPU]
	c.trigAt = min(c.trigAt, max(k, c.Insns))
	if err := r.loop(); err != nil {
		return nil, err
	}
	r.check()
	out := &sweepRun{at: k, where: r.sweepWhere, failed: r.failed, detail: map[int]string{}}
	if !r.sweepFired {
		out.where = "never reached (the run ended first)"
	}
	all := append(append([]Failure(nil), r.res.Failures...), r.res.Expected...)
	for i, inv := range r.sc.Invariants {
		for _, f := range all {
			if f.Invariant == inv.Name && f.Line == inv.Line {
				out.detail[i] = f.Place + ": " + f.Detail
				break
			}
		}
	}
	return out, nil
}

// clone returns an independent copy of the runner and its machine.
func (r *runner) clone() *runner {
	n := *r
	n.m = r.m.Clone()
	n.m.hook = n.boundary
	res := *r.res
	res.Machine = n.m
	res.Failures, res.Expected, res.Snapshots = nil, nil, nil
	n.res = &res
	n.next = append([]int(nil), r.next...)
	n.fired = append([]bool(nil), r.fired...)
	n.arrivals = make([]map[uint64]int, len(r.arrivals))
	for i, a := range r.arrivals {
		n.arrivals[i] = maps.Clone(a)
	}
	n.invFails = map[int][]Failure{}
	for i, f := range r.invFails {
		n.invFails[i] = append([]Failure(nil), f...)
	}
	n.failed = nil
	return &n
}

// String formats a sweep result as the lines `unwind emulate` prints.
func (sr *SweepResult) String() string {
	var b strings.Builder
	sw := sr.Sweep
	fmt.Fprintf(&b, "sweep (line %d): %s on cpu %d at each of %d points, cpu %d insns %d..%d (from %s)\n",
		sw.Line, sw.Kind, sw.Target, len(sr.Points), sw.CPU, sr.From, sr.To, sr.FromWhere)
	for _, is := range sr.Invariants {
		if is.Kind == "no-snapshot-missed" {
			continue
		}
		verdict := "held at every point"
		if is.Failed > 0 {
			verdict = fmt.Sprintf("FAILED at %d of %d points", is.Failed, len(sr.Points))
		}
		exp := ""
		if is.ExpectFail {
			exp = " (expect=fail)"
		}
		fmt.Fprintf(&b, "  %-22s %s%s\n", is.Name, verdict, exp)
		if is.First != "" {
			fmt.Fprintf(&b, "  %-22s first: %s\n", "", is.First)
		}
	}
	return b.String()
}
