package emu

import (
	"maps"

	"github.com/unwind-dev/unwind/unwind"
)

// Clone returns an independent copy of the machine in its current state
// (memory, CPUs, shadow stacks, console, violations), without the scenario
// hook. Sweeps use it to run to the start of a window once and then try an
// event at each instruction of the window from a copy. Decoded code is not
// copied; the copy re-decodes on first use.
func (m *Machine) Clone() *Machine {
	n := &Machine{
		mem:        m.mem.clone(),
		syms:       m.syms, // immutable
		entry:      m.entry,
		console:    append([]byte(nil), m.console...),
		err:        m.err,
		steps:      m.steps,
		deliveries: m.deliveries,
		regsFuncs:  maps.Clone(m.regsFuncs),
		watch:      maps.Clone(m.watch),
		checks:     m.checks,
		violations: append([]Violation(nil), m.violations...),
		markerRet:  m.markerRet,
	}
	for _, s := range m.stacks {
		n.stacks = append(n.stacks, append([]unwind.Stack(nil), s...))
	}
	for _, c := range m.CPUs {
		cc := *c
		cc.m = n
		cc.shadow = shadowStack{recs: append([]shadowRec(nil), c.shadow.recs...), wLo: c.shadow.wLo, wHi: c.shadow.wHi}
		n.CPUs = append(n.CPUs, &cc)
	}
	return n
}

func (mem *Mem) clone() *Mem {
	n := newMem()
	for pn, p := range mem.pages {
		if p == zeroPage {
			n.pages[pn] = zeroPage
			continue
		}
		q := &page{data: p.data}
		n.pages[pn] = q
	}
	return n
}
