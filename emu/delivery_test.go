package emu

import (
	"errors"
	"strings"
	"testing"
)

// runTo steps m until CPU 0 is about to execute addr (or fails after limit).
func runTo(t *testing.T, m *Machine, addr uint64, limit int) {
	t.Helper()
	c := m.CPUs[0]
	for i := 0; i < limit; i++ {
		if c.RIP == addr && !c.Halted {
			return
		}
		if err := m.Step(); err != nil {
			t.Fatalf("step: %v", err)
		}
	}
	t.Fatalf("never reached %s", m.Where(addr))
}

func word(t *testing.T, m *Machine, a uint64) uint64 {
	t.Helper()
	v, ok := m.mem.read(a, 8)
	if !ok {
		t.Fatalf("unmapped %#x", a)
	}
	return v
}

func TestPageFaultDelivery(t *testing.T) {
	m := loadMini(t, 1)
	c := m.CPUs[0]
	site := m.sym(t, "pf_site")
	runTo(t, m, site, 100000)
	rsp := c.GPR[RSP]
	if err := m.Step(); err != nil {
		t.Fatal(err)
	}
	if c.RIP != m.sym(t, "asm_exc_page_fault") {
		t.Fatalf("rip = %s", m.Where(c.RIP))
	}
	aligned := rsp &^ 15
	if c.GPR[RSP] != aligned-48 {
		t.Errorf("rsp = %#x, want aligned %#x - 48", c.GPR[RSP], aligned)
	}
	sp := c.GPR[RSP]
	want := []uint64{0 /* error code: read, kernel, not present */, site, 0x10, 0x282 | FlagRF, rsp, 0x18}
	for i, w := range want {
		if got := word(t, m, sp+uint64(8*i)); got != w {
			t.Errorf("frame word %d = %#x, want %#x", i, got, w)
		}
	}
	if c.CR[2] != 0xdeadb000 {
		t.Errorf("cr2 = %#x", c.CR[2])
	}
	if c.RFLAGS&FlagIF != 0 {
		t.Error("interrupt gate did not clear IF")
	}
	fr := m.ShadowStack(0)
	if len(fr) < 2 || fr[1].Entry != "page_fault" || fr[1].PC != site || fr[0].CFA != aligned {
		t.Errorf("shadow = %+v", fr[:2])
	}
}

// An NMI whose handler takes #BP: the #BP's iretq unblocks NMIs, a second
// NMI arrives on the NMI stack and IST reloads RSP from the TSS: the new
// frame lands exactly on the first one.
func TestISTReloadWhenOnISTStack(t *testing.T) {
	m := loadMini(t, 1)
	c := m.CPUs[0]
	m.mem.write(m.sym(t, "nmi_int3"), 8, 1)
	runTo(t, m, m.sym(t, "spin"), 100000)
	c.RaiseNMI()
	if err := m.Step(); err != nil {
		t.Fatal(err)
	}
	top := m.sym(t, "nmi_stacks") + 8192
	if c.GPR[RSP] != top-40 || !c.NMIBlocked {
		t.Fatalf("first NMI: rsp %#x want %#x, blocked %v", c.GPR[RSP], top-40, c.NMIBlocked)
	}
	c.RaiseNMI() // blocked: latched
	if !c.NMILatched {
		t.Fatal("NMI not latched while blocked")
	}
	c.NMILatched = false                          // drop it: this test wants the unblocking by #BP's iret
	runTo(t, m, m.sym(t, "after_nmi_int3"), 1000) // in the #BP's handle_event
	m.Step()
	runTo(t, m, m.sym(t, "after_nmi_int3"), 1000) // back in the NMI's, after iretq
	if c.NMIBlocked {
		t.Fatal("iretq from #BP did not unblock NMIs")
	}
	c.RaiseNMI()
	if err := m.Step(); err != nil {
		t.Fatal(err)
	}
	if c.RIP != m.sym(t, "asm_exc_nmi") || c.GPR[RSP] != top-40 {
		t.Fatalf("second NMI: rip %s rsp %#x, want rsp %#x", m.Where(c.RIP), c.GPR[RSP], top-40)
	}
	for _, r := range c.shadow.recs {
		if r.entry {
			if r.name != "nmi" || !r.clobbered {
				t.Errorf("first NMI record not marked clobbered: %+v", r)
			}
			break
		}
	}
	n := 0
	for _, f := range m.ShadowStack(0) {
		if f.Entry == "nmi" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("shadow stack has %d nmi entries, want 2", n)
	}
}

func TestNMILatchedDeliveredAtIRET(t *testing.T) {
	m := loadMini(t, 1)
	c := m.CPUs[0]
	runTo(t, m, m.sym(t, "spin"), 100000)
	c.RaiseNMI()
	m.Step()
	c.RaiseNMI()
	c.RaiseNMI() // at most one is latched
	handler := m.sym(t, "asm_exc_nmi")
	deliveries := 0
	for i := 0; i < 2000 && deliveries < 3; i++ {
		m.Step()
		if c.RIP == handler {
			deliveries++
			if c.NMILatched || !c.NMIBlocked {
				t.Fatalf("after latched delivery: latched %v blocked %v", c.NMILatched, c.NMIBlocked)
			}
		}
	}
	if deliveries != 1 {
		t.Errorf("latched NMIs delivered %d times, want 1", deliveries)
	}
	if got := word(t, m, m.sym(t, "counts")+16); got != 2 {
		t.Errorf("NMI handler ran %d times, want 2", got)
	}
}

func TestSingleStepTrap(t *testing.T) {
	m := loadMini(t, 1)
	c := m.CPUs[0]
	runTo(t, m, m.sym(t, "level2"), 100000)
	c.RFLAGS |= FlagTF
	next := c.RIP + 1 // push %rbp
	m.Step()
	if c.RIP != m.sym(t, "asm_exc_debug") {
		t.Fatalf("rip = %s", m.Where(c.RIP))
	}
	if got := word(t, m, c.GPR[RSP]); got != next {
		t.Errorf("pushed rip %#x, want %#x (trap after the instruction)", got, next)
	}
	if c.DR[6]&(1<<14) == 0 || c.RFLAGS&FlagTF != 0 {
		t.Errorf("dr6 %#x flags %#x", c.DR[6], c.RFLAGS)
	}
	if top := m.sym(t, "db_stacks") + 8192; c.GPR[RSP] != top-40 {
		t.Errorf("#DB not on IST3: rsp %#x", c.GPR[RSP])
	}
}

func TestCodeBreakpointFault(t *testing.T) {
	m := loadMini(t, 1)
	c := m.CPUs[0]
	l2 := m.sym(t, "level2")
	c.DR[0], c.DR[7] = l2, 1
	for i := 0; i < 100000 && c.RIP != m.sym(t, "asm_exc_debug"); i++ {
		m.Step()
	}
	if got := word(t, m, c.GPR[RSP]); got != l2 {
		t.Errorf("pushed rip %s, want level2 (fault before the instruction)", m.Where(got))
	}
	if c.DR[6]&1 == 0 {
		t.Errorf("dr6 = %#x", c.DR[6])
	}
	if word(t, m, c.GPR[RSP]+16)&FlagRF != 0 {
		t.Error("RF set in the image of an instruction-breakpoint #DB")
	}
	// Do what a handler does: set RF in the image; the breakpoint is then
	// skipped once, and level2's first instruction executes.
	m.mem.write(c.GPR[RSP]+16, 8, word(t, m, c.GPR[RSP]+16)|FlagRF)
	runTo(t, m, l2, 1000)
	if c.RFLAGS&FlagRF == 0 {
		t.Fatal("iretq did not restore RF")
	}
	m.Step()
	if c.RIP != l2+1 || c.RFLAGS&FlagRF != 0 {
		t.Errorf("after the resumed instruction: rip %s flags %#x", m.Where(c.RIP), c.RFLAGS)
	}
}

func TestTripleFaultWithoutIDT(t *testing.T) {
	m := loadMini(t, 1)
	m.CPUs[0].RaiseNMI()
	err := m.Step()
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "triple fault") {
		t.Fatalf("err = %v, want a triple fault", err)
	}
}

func TestShadowStackDeepChain(t *testing.T) {
	m := loadMini(t, 1)
	c := m.CPUs[0]
	runTo(t, m, m.sym(t, "spin"), 100000)
	for i := 0; i < 37; i++ {
		m.Step()
	}
	intRIP := c.RIP
	c.RaiseIRQ(0xec)
	runTo(t, m, m.sym(t, "handle_event")+1, 100)
	fr := m.ShadowStack(0)
	var names []string
	for _, f := range fr {
		names = append(names, f.Function+"/"+f.Kind.String())
	}
	want := "handle_event/call asm_timer/call level3/interrupted level2/call level1/call main/call _start/call"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("shadow stack\n got %s\nwant %s", got, want)
	}
	irq := fr[2]
	if irq.Entry != "irq:236" || irq.PC != intRIP || irq.RegsAddr == 0 {
		t.Errorf("interrupted frame %+v", irq)
	}
	if irq.RegsAddr+168 != fr[1].CFA {
		t.Errorf("pt_regs %#x does not end at the entry frame's CFA %#x", irq.RegsAddr, fr[1].CFA)
	}
	if ip := word(t, m, irq.RegsAddr+128); ip != intRIP {
		t.Errorf("pt_regs ip %#x, want %#x", ip, intRIP)
	}
	// Caller frames: PC is a return address, CFA = slot + 8.
	for _, f := range fr[3:5] {
		if got := word(t, m, f.SP-8); f.Kind == FrameCall && got == 0 {
			t.Errorf("frame %s: nothing at SP-8", f.Function)
		}
	}
	if fr[0].CFA != fr[0].SP+8+8 { // handle_event pushed rbp
		t.Errorf("handle_event CFA %#x SP %#x", fr[0].CFA, fr[0].SP)
	}
}

func TestShadowStackAllocFree(t *testing.T) {
	m := loadMini(t, 1)
	runTo(t, m, m.sym(t, "spin"), 100000)
	m.ShadowStack(0)
	allocs := testing.AllocsPerRun(100, func() {
		m.Step()
		m.ShadowStack(0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per step+ShadowStack", allocs)
	}
}

func TestSyscallShadow(t *testing.T) {
	m := loadMini(t, 1)
	runTo(t, m, m.sym(t, "handle_syscall")+1, 200000)
	fr := m.ShadowStack(0)
	var names []string
	for _, f := range fr {
		names = append(names, f.Function+"/"+f.Kind.String())
	}
	want := "handle_syscall/call entry_syscall/call uputs/user user_main/user"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if fr[2].Entry != "syscall" || fr[2].RegsAddr == 0 {
		t.Errorf("syscall frame %+v", fr[2])
	}
}

// StepCPU in CPU order gives the same run as Step.
func TestStepCPUMatchesStep(t *testing.T) {
	a, b := loadMini(t, 2), loadMini(t, 2)
	for i := 0; i < 20000; i++ {
		ea := a.Step()
		for cpu := range b.CPUs {
			b.StepCPU(cpu)
		}
		if ea != nil {
			break
		}
	}
	for cpu := range a.CPUs {
		if a.CPUs[cpu].Insns != b.CPUs[cpu].Insns || a.CPUs[cpu].RIP != b.CPUs[cpu].RIP {
			t.Errorf("cpu %d: Step %d insns rip %#x, StepCPU %d insns rip %#x", cpu,
				a.CPUs[cpu].Insns, a.CPUs[cpu].RIP, b.CPUs[cpu].Insns, b.CPUs[cpu].RIP)
		}
	}
}

// A clone runs on independently and identically.
func TestCloneIndependent(t *testing.T) {
	m := loadMini(t, 2)
	runTo(t, m, m.sym(t, "spin"), 100000)
	c := m.Clone()
	c.CPUs[0].RaiseNMI()
	for i := 0; i < 50000; i++ {
		if m.Step() != nil {
			break
		}
	}
	for i := 0; i < 50000; i++ {
		if c.Step() != nil {
			break
		}
	}
	if string(m.Console()) != string(c.Console()) {
		t.Errorf("console %q vs clone %q", m.Console(), c.Console())
	}
	nmis := func(x *Machine) uint64 { v, _ := x.mem.read(x.sym(t, "counts")+16, 8); return v }
	if nmis(m) != 1 || nmis(c) != 2 {
		t.Errorf("NMIs handled: original %d (want 1), clone %d (want 2)", nmis(m), nmis(c))
	}
}
