package emu

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/unwind-dev/unwind/unwind"
)

// MaxCPUs is the largest number of CPUs a Machine may have.
const MaxCPUs = 64

// Error is a condition that stops the machine: an undecodable or
// unimplemented instruction, a triple fault. It names the CPU, the address
// and the instruction bytes.
type Error struct {
	CPU   int
	RIP   uint64
	Bytes []byte
	Msg   string
}

func (e *Error) Error() string {
	if len(e.Bytes) > 0 {
		return fmt.Sprintf("cpu %d: %s at %#x (bytes % x)", e.CPU, e.Msg, e.RIP, e.Bytes)
	}
	return fmt.Sprintf("cpu %d: %s at %#x", e.CPU, e.Msg, e.RIP)
}

// ErrStopped is returned by Step once every CPU has finished or is halted
// with nothing that could wake it.
var ErrStopped = errors.New("emu: all CPUs stopped")

// Machine is the emulated computer: memory loaded from a kernel ELF and one
// or more CPUs run round-robin, one instruction (or one event delivery)
// per CPU per Step, in CPU order; the interleaving is therefore a pure
// function of the scenario and replays exactly.
type Machine struct {
	CPUs []*CPU

	mem        *Mem
	syms       *symTab
	entry      uint64
	console    []byte
	err        error
	steps      uint64
	deliveries uint64
	regsFuncs  map[uint64]bool
	watch      map[uint64]bool
	stacks     [][]unwind.Stack
	hook       func(c *CPU) // runs at watched boundaries (scenario triggers)
	decodeBuf  [15]byte
	checks     bool
	violations []Violation
	markerRet  uint64     // ret_from_entry_marker (ptregs-findable), 0 if absent
	names      *nameCache // function names of recent PCs (ShadowStack)
}

// nameCache remembers the function names of the PCs ShadowStack named
// last: a direct-mapped table, since a verify loop asks for the same few
// dozen PCs at every boundary. The names are those of the immutable
// symbol table, so a hit is what a lookup gives.
type nameCache [256]struct {
	pc   uint64
	name string
	ok   bool
}

// funcName is m.syms.name(pc), through m.names.
func (m *Machine) funcName(pc uint64) string {
	if m.names == nil {
		m.names = new(nameCache)
	}
	e := &m.names[(pc^pc>>8^pc>>16)&255]
	if !e.ok || e.pc != pc {
		e.pc, e.name, e.ok = pc, m.syms.name(pc), true
	}
	return e.name
}

// DefaultPtRegsHandlers are the C functions the fixture kernel's entry stubs
// call with %rdi = the pt_regs they built (fixtures/kernel/src/entry.S). A
// call to one of them records %rdi as the innermost entry frame's pt_regs.
var DefaultPtRegsHandlers = []string{
	"exc_divide_error", "exc_debug", "exc_nmi", "exc_int3", "exc_invalid_op",
	"exc_double_fault", "exc_general_protection", "exc_page_fault",
	"exc_machine_check", "sysvec_apic_timer_interrupt", "sysvec_marker_interrupt",
	"trace_apic_timer_interrupt", "common_interrupt", "do_syscall_64",
}

// New loads kernelELF (an x86-64 ELF executable: its PT_LOAD segments are
// mapped at p_vaddr) and resets cpus CPUs as MACHINE.md says.
func New(kernelELF []byte, cpus int) (*Machine, error) {
	if cpus < 1 || cpus > MaxCPUs {
		return nil, fmt.Errorf("emu: %d CPUs: want 1 to %d", cpus, MaxCPUs)
	}
	f, err := elf.NewFile(bytes.NewReader(kernelELF))
	if err != nil {
		return nil, fmt.Errorf("emu: kernel: %w", err)
	}
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("emu: kernel: not an x86-64 ELF64 file")
	}
	m := newMachine(newSymTab(f))
	m.entry = f.Entry
	var total uint64
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		if p.Filesz > p.Memsz || p.Vaddr+p.Memsz < p.Vaddr {
			return nil, fmt.Errorf("emu: kernel: bad PT_LOAD at %#x", p.Vaddr)
		}
		total += p.Memsz
		if total > 1<<30 {
			return nil, fmt.Errorf("emu: kernel: PT_LOAD segments exceed 1 GiB")
		}
		m.mem.mapRange(p.Vaddr, p.Memsz)
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return nil, fmt.Errorf("emu: kernel: segment at %#x: %w", p.Vaddr, err)
		}
		m.mem.WriteAt(data, p.Vaddr)
	}
	if m.mem.Pages() == 0 {
		return nil, fmt.Errorf("emu: kernel: no PT_LOAD segments")
	}
	m.SetPtRegsHandlers(DefaultPtRegsHandlers...)
	if s, ok := m.syms.byName[fixtureEntryMarker]; ok {
		m.markerRet = s.Addr
	}
	m.reset(cpus)
	return m, nil
}

func newMachine(syms *symTab) *Machine {
	return &Machine{mem: newMem(), syms: syms, watch: map[uint64]bool{}, regsFuncs: map[uint64]bool{}}
}

// reset creates the CPUs in their MACHINE.md reset state.
func (m *Machine) reset(cpus int) {
	m.CPUs = m.CPUs[:0]
	for i := 0; i < cpus; i++ {
		c := &CPU{ID: i, m: m, exc: -1, trigAt: ^uint64(0)}
		c.RIP = m.entry
		c.RFLAGS = 2
		c.Seg = [6]uint16{0x18, 0x10, 0x18, 0x18, 0, 0}
		c.GPR[RDI] = uint64(i)
		c.GPR[RSI] = uint64(cpus)
		m.CPUs = append(m.CPUs, c)
	}
	m.stacks = make([][]unwind.Stack, cpus)
	m.computeStacks()
}

// SetPtRegsHandlers replaces the names of the functions whose call records
// %rdi as the current entry frame's pt_regs address. Unknown names are ignored.
func (m *Machine) SetPtRegsHandlers(names ...string) {
	clear(m.regsFuncs)
	for _, n := range names {
		if s, ok := m.syms.byName[n]; ok {
			m.regsFuncs[s.Addr] = true
		}
	}
}

// Memory returns the machine's memory (an unwind.Memory).
func (m *Machine) Memory() *Mem { return m.mem }

// Console returns the bytes written to the debug console port so far.
func (m *Machine) Console() []byte { return m.console }

// Err returns the error that stopped the machine, if any.
func (m *Machine) Err() error { return m.err }

// Steps returns the number of Step calls that did work.
func (m *Machine) Steps() uint64 { return m.steps }

// Symbol returns the kernel symbol containing addr.
func (m *Machine) Symbol(addr uint64) (Symbol, bool) { return m.syms.lookup(addr) }

// SymbolByName returns the kernel symbol called name.
func (m *Machine) SymbolByName(name string) (Symbol, bool) {
	s, ok := m.syms.byName[name]
	return s, ok
}

// Instructions returns the total number of instructions retired by all CPUs.
func (m *Machine) Instructions() uint64 {
	var n uint64
	for _, c := range m.CPUs {
		n += c.Insns
	}
	return n
}

func (m *Machine) fail(c *CPU, msg string) {
	if m.err == nil {
		e := &Error{CPU: c.ID, RIP: c.RIP, Msg: msg}
		m.err = e
	}
	c.Done = true
}

func (m *Machine) unimplemented(c *CPU) {
	if m.err != nil {
		return
	}
	var b [15]byte
	n, _ := m.mem.ReadAt(b[:], c.RIP)
	msg := "unimplemented instruction"
	if inst, err := x86asm.Decode(b[:n], 64); err == nil {
		msg += " " + x86asm.GNUSyntax(inst, c.RIP, nil)
		n = inst.Len
	}
	m.err = &Error{CPU: c.ID, RIP: c.RIP, Bytes: append([]byte(nil), b[:n]...), Msg: msg}
	c.Done = true
}

// fetch returns the decoded instruction at addr, decoding and caching it on
// first use. A nil result with fault=true means addr (or a byte of the
// instruction) is unmapped; with fault=false the machine has failed.
func (m *Machine) fetch(c *CPU, addr uint64) (d *insn, fault bool) {
	pg := m.mem.lookup(addr)
	if pg == nil {
		c.CR[2] = addr
		return nil, true
	}
	off := addr & pageMask
	if pg.code != nil {
		if d := pg.code[off]; d != nil {
			return d, false
		}
	}
	buf := m.decodeBuf[:]
	n, _ := m.mem.ReadAt(buf, addr)
	inst, err := x86asm.Decode(buf[:n], 64)
	if err != nil {
		if n < len(buf) {
			c.CR[2] = addr + uint64(n)
			return nil, true
		}
		m.err = &Error{CPU: c.ID, RIP: addr, Bytes: append([]byte(nil), buf[:min(n, 8)]...), Msg: "undecodable instruction (" + err.Error() + ")"}
		c.Done = true
		return nil, false
	}
	d, ok := compile(&inst, buf)
	if !ok {
		m.err = &Error{CPU: c.ID, RIP: addr, Bytes: append([]byte(nil), buf[:inst.Len]...), Msg: "unsupported operands in " + x86asm.GNUSyntax(inst, addr, nil)}
		c.Done = true
		return nil, false
	}
	d.watch = m.watch[addr]
	pg = m.mem.lookup(addr) // ReadAt may have moved the cache
	if pg == zeroPage {
		pg = m.mem.own(addr) // never cache code in the shared zero page
	}
	if pg.code == nil {
		pg.code = new([pageSize]*insn)
	}
	pg.code[off] = d
	return d, false
}

// Watch makes the boundary hook run whenever a CPU is about to execute the
// instruction at addr.
func (m *Machine) watchAddr(addr uint64) {
	m.watch[addr] = true
	m.mem.invalidate(addr)
}

// Step advances every CPU that can run by one instruction or one event
// delivery, in CPU order. It returns ErrStopped when no CPU can make
// progress, or the *Error that stopped the machine.
func (m *Machine) Step() error {
	if m.err != nil {
		return m.err
	}
	progress := false
	for _, c := range m.CPUs {
		if c.Done {
			continue
		}
		if c.step() {
			progress = true
		}
		if m.err != nil {
			return m.err
		}
	}
	if !progress {
		return ErrStopped
	}
	m.steps++
	return nil
}

// StepCPU advances only CPU cpu by one instruction or one event delivery.
// Step is StepCPU for every CPU in CPU order; a caller that wants to look
// at every CPU's every boundary (unwind verify) calls StepCPU in that order
// to keep the same interleaving. It returns ErrStopped if the CPU cannot
// run now (done, or halted with nothing pending).
func (m *Machine) StepCPU(cpu int) error {
	if m.err != nil {
		return m.err
	}
	if cpu < 0 || cpu >= len(m.CPUs) {
		return fmt.Errorf("emu: no cpu %d", cpu)
	}
	c := m.CPUs[cpu]
	if c.Done || !c.step() {
		if m.err != nil {
			return m.err
		}
		return ErrStopped
	}
	return m.err
}

// Run steps the machine until it stops, fails, or limit steps have run
// (limit 0: no limit). It returns the number of steps and nil when the
// machine stopped normally or the limit was reached.
func (m *Machine) Run(limit uint64) (uint64, error) {
	var n uint64
	for limit == 0 || n < limit {
		err := m.Step()
		if err == ErrStopped {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// step runs one CPU for one instruction or one event delivery. It reports
// whether the CPU did anything.
func (c *CPU) step() bool {
	m := c.m
	var d *insn
	var fetchFault bool
	if !c.Halted {
		d, fetchFault = m.fetch(c, c.RIP)
		if d == nil && !fetchFault {
			return false
		}
	}
	if m.hook != nil && (c.Insns == c.trigAt || d != nil && d.watch) {
		m.hook(c)
		if m.err != nil || c.Done {
			return false
		}
		if !c.Halted { // the hook may have written memory
			d, fetchFault = m.fetch(c, c.RIP)
			if d == nil && !fetchFault {
				return false
			}
		}
	}
	if c.nmiPend && !c.NMIBlocked {
		c.nmiPend = false
		c.deliver(event{vec: VecNMI, external: true})
		return true
	}
	if c.irqAny && c.RFLAGS&FlagIF != 0 && !c.shadowIF {
		v := c.highestIRQ()
		c.clearIRQ(v)
		c.deliver(event{vec: v, external: true})
		return true
	}
	if c.Halted {
		return false
	}
	if fetchFault {
		cr2 := c.CR[2]
		c.pageFault(cr2, false, true)
		c.deliverPending()
		return true
	}
	if c.DR[7]&0xff != 0 && c.RFLAGS&FlagRF == 0 && c.codeBreakpoint() {
		c.deliver(event{vec: VecDB, fault: true})
		return true
	}
	tf := c.RFLAGS&FlagTF != 0
	c.shadowIF = false
	c.exc = -1
	c.exec(d)
	if c.exc >= 0 {
		if c.excTrap {
			c.RIP = c.nip
			c.Insns++
		}
		c.deliverPending()
		return true
	}
	c.RIP = c.nip
	if c.partial {
		c.partial = false
		return true
	}
	c.Insns++
	if d.op != x86asm.IRETQ {
		c.RFLAGS &^= FlagRF // iretq may set RF to skip a code breakpoint once
	}
	// Single-step: a trap after an instruction that began with TF set, unless
	// it cleared TF itself (syscall through FMASK; Linux relies on this).
	if tf && c.RFLAGS&FlagTF != 0 && !c.Done {
		c.DR[6] |= 1 << 14 // BS
		c.deliver(event{vec: VecDB})
	}
	return true
}

func (c *CPU) deliverPending() {
	ev := event{vec: c.exc, code: c.excErr, hasCode: c.excHas, soft: c.excSoft, fault: !c.excTrap}
	c.exc = -1
	c.deliver(ev)
}

// codeBreakpoint checks DR0–DR3 execute breakpoints enabled in DR7 against
// RIP and records the hits in DR6.
func (c *CPU) codeBreakpoint() bool {
	dr7 := c.DR[7]
	hit := false
	for i := 0; i < 4; i++ {
		if dr7>>(2*i)&3 == 0 || dr7>>(16+4*i)&3 != 0 || c.DR[i] != c.RIP {
			continue
		}
		c.DR[6] |= 1 << i
		hit = true
	}
	return hit
}
