package emu

import (
	"testing"
	"time"
)

// BenchmarkInterpreter runs the mini kernel's call chain and spin loop
// (add/rol/dec/jnz) and reports instructions per second; one Step on one
// CPU is one instruction.
func BenchmarkInterpreter(b *testing.B) {
	m := loadMini(b, 1)
	m.mem.write(m.sym(b, "boot_args"), 8, 1<<62)
	for i := 0; i < 10000; i++ { // boot
		m.Step()
	}
	c := m.CPUs[0]
	start, t0 := c.Insns, time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.Step(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := c.Insns - start
	b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "instructions/s")
}

// BenchmarkStepAndShadow is the verify loop's per-boundary cost: one step
// plus reading the shadow stack.
func BenchmarkStepAndShadow(b *testing.B) {
	m := loadMini(b, 1)
	m.mem.write(m.sym(b, "boot_args"), 8, 1<<62)
	for i := 0; i < 10000; i++ {
		m.Step()
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Step()
		m.ShadowStack(0)
	}
}

// BenchmarkFixtureKernel runs the fixture kernel's BASIC mode (task call
// chains, spin loops) with an endless iteration count and reports
// instructions per second; one Step of one CPU is one instruction.
func BenchmarkFixtureKernel(b *testing.B) {
	m := loadFixture(b, "fp", 1)
	it, ok := m.SymbolByName("boot_iters")
	if !ok {
		b.Skip("no boot_iters")
	}
	m.mem.write(it.Addr, 8, 1<<62)
	for i := 0; i < 10000; i++ {
		m.Step()
	}
	c := m.CPUs[0]
	start, t0 := c.Insns, time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := m.Step(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(c.Insns-start)/time.Since(t0).Seconds(), "instructions/s")
	b.ReportMetric(float64(m.mem.Pages()), "pages")
	b.ReportMetric(float64(m.mem.Resident()), "resident_pages")
}
