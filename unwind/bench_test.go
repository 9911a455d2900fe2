package unwind

import (
	"testing"
)

// benchWalk unwinds the same deep stack repeatedly with one Unwinder
// (warm caches) and reports frames/s.
func benchWalk(b *testing.B, ch *chain, m Method) {
	var mem Memory = ch.mem // convert once: the conversion allocates
	u := New(mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks, Methods: m})
	for u.Next() {
	}
	if !u.Reliable() {
		b.Fatalf("warm-up walk: %s", u.StopReason())
	}
	frames := 0
	defer lockThread()()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	for b.Loop() {
		u.Reset(mem, ch.regs)
		for u.Next() {
			frames++
		}
	}
	cpu := threadCPU() - cpu0
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	if cpu > 0 {
		// frames per second of this thread's CPU time: the figure that
		// does not depend on what else runs on the machine.
		b.ReportMetric(float64(frames)/cpu.Seconds(), "frames/cpu-s")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

func BenchmarkWalkFP(b *testing.B)          { benchWalk(b, fpChain(200, false), MethodFP) }
func BenchmarkWalkCFI(b *testing.B)         { benchWalk(b, cfiChain(200), MethodCFI) }
func BenchmarkWalkCFIOnFPCode(b *testing.B) { benchWalk(b, fpChain(200, true), 0) }

// BenchmarkNewWalk is a one-shot Walk of a short stack: the cost of a cold
// Unwinder (its caches) included.
func BenchmarkNewWalk(b *testing.B) {
	ch := fpChain(8, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Walk(ch.mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks}); err != nil {
			b.Fatal(err)
		}
	}
}
