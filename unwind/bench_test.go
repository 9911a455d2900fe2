package unwind

import (
	"testing"

	"github.com/unwind-dev/unwind/symbols"
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

// orcChain is cfiChain's stack described by ORC instead of CFI, walked as a
// kernel stack: each function's entries mirror its CFI rows, and _start's
// end marker ends the walk.
func orcChain(n int) (*chain, *fakeORC) {
	ch := cfiChain(n)
	o := &fakeORC{fakeCode: ch.code, orc: map[string][]orcRow{}}
	for _, f := range ch.code.funcs {
		var rows []orcRow
		for _, r := range f.rows {
			rows = append(rows, orcRow{r.off, orcCallAt(int16(r.cfaOff))})
		}
		o.orc[f.name] = rows
	}
	o.orc["_start"] = []orcRow{{0, symbols.ORCEntry{Type: symbols.ORCEndOfStack}}}
	return ch, o
}

// benchWalkORC is benchWalk for orcChain, a kernel walk.
func benchWalkORC(b *testing.B, cold bool) {
	ch, o := orcChain(200)
	opts := &Options{Code: o, Stacks: ch.stacks, Kernel: true, Methods: MethodORC}
	benchRun(b, ch, opts, cold)
}

// benchRun walks ch with opts b.N times and reports frames/s: warm, one
// Unwinder reset each time (its caches kept), or cold, a new Unwinder each
// time.
func benchRun(b *testing.B, ch *chain, opts *Options, cold bool) {
	var mem Memory = ch.mem
	u := New(mem, ch.regs, opts)
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
		if cold {
			u = New(mem, ch.regs, opts)
		} else {
			u.Reset(mem, ch.regs)
		}
		for u.Next() {
			frames++
		}
	}
	cpu := threadCPU() - cpu0
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	if cpu > 0 {
		b.ReportMetric(float64(frames)/cpu.Seconds(), "frames/cpu-s")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

// The ORC strategy next to CFI and frame pointers, warm (BenchmarkWalkORC;
// compare BenchmarkWalkCFI, BenchmarkWalkFP) and cold (a new Unwinder per
// walk, caches empty).
func BenchmarkWalkORC(b *testing.B)     { benchWalkORC(b, false) }
func BenchmarkWalkORCCold(b *testing.B) { benchWalkORC(b, true) }
func BenchmarkWalkCFICold(b *testing.B) {
	ch := cfiChain(200)
	benchRun(b, ch, &Options{Code: ch.code, Stacks: ch.stacks, Methods: MethodCFI}, true)
}
func BenchmarkWalkFPCold(b *testing.B) {
	ch := fpChain(200, false)
	benchRun(b, ch, &Options{Code: ch.code, Stacks: ch.stacks, Methods: MethodFP}, true)
}
