package emu

import "fmt"

// Violation is a failed machine-level check (the idt-restored and
// stack-intact invariants), with the place it happened.
type Violation struct {
	Check  string // "idt-restored", "stack-intact" or "no-frame-clobber"
	CPU    int
	Insns  uint64 // the CPU's retired-instruction count
	RIP    uint64 // RIP after the offending instruction
	Detail string
	Victim string // no-frame-clobber: the entry whose frame was overwritten ("int3", "debug", "nmi", …)
}

func (v Violation) String() string {
	return fmt.Sprintf("cpu %d insn %d rip %#x: %s", v.CPU, v.Insns, v.RIP, v.Detail)
}

const maxViolations = 100

// EnableChecks turns on the idt-restored and stack-intact checks, which
// run at every iretq, and no-frame-clobber, which runs at every event
// delivery; Violations returns what they found.
func (m *Machine) EnableChecks() { m.checks = true }

// Violations returns the failed checks so far (at most 100).
func (m *Machine) Violations() []Violation { return m.violations }

func (m *Machine) violate(c *CPU, check, detail string) {
	if len(m.violations) >= maxViolations {
		return
	}
	m.violations = append(m.violations, Violation{Check: check, CPU: c.ID, Insns: c.Insns, RIP: c.nip, Detail: detail})
}

// Where formats addr as symbol+0xoff (or the bare address).
func (m *Machine) Where(addr uint64) string {
	if s, ok := m.syms.lookup(addr); ok {
		return fmt.Sprintf("%s+%#x", s.Name, addr-s.Addr)
	}
	return fmt.Sprintf("%#x", addr)
}
