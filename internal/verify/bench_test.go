package verify

import (
	"testing"
	"time"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// BenchmarkVerify runs the whole verification of a scenario (emulation,
// shadow stack and three unwinds plus comparison per boundary) and reports
// unwinds per second of wall time: as Run does by default, in chunks on
// GOMAXPROCS workers. BenchmarkVerifyOnePass is the same in one pass on
// one goroutine.
func BenchmarkVerify(b *testing.B) { benchmarkVerify(b, 0) }

// BenchmarkVerifyOnePass is BenchmarkVerify with Parallel 1.
func BenchmarkVerifyOnePass(b *testing.B) { benchmarkVerify(b, 1) }

func benchmarkVerify(b *testing.B, parallel int) {
	sc, k := loadScenario(b, "nmi-irq-task")
	var unwinds uint64
	var elapsed time.Duration
	b.ReportAllocs()
	for b.Loop() {
		r, err := Run(sc, k, Options{MaxMismatches: -1, Parallel: parallel})
		if err != nil {
			b.Fatal(err)
		}
		unwinds += r.Boundaries * uint64(NumStrategies)
		elapsed += r.Elapsed
	}
	b.ReportMetric(float64(unwinds)/elapsed.Seconds(), "unwinds/s")
}

// BenchmarkUnwindAtBoundary measures the verify loop's unwind step alone:
// the machine stopped in the demo's #DB handler (29 frames through #DB, NMI
// and IRQ entries), unwound from the live state again and again with a
// reused Unwinder, as Run does at every boundary, and compared with the
// truth. The state does not change between iterations, so Run's
// incremental Unwinders replay the whole trace after the first (checking
// every byte it read); the .../walk variants walk it each time (warm
// caches, not incremental).
func BenchmarkUnwindAtBoundary(b *testing.B) {
	d, code := loadRun(b, "demo")
	if _, err := d.run(func(int) {}); err != nil {
		b.Fatal(err)
	}
	us := newUnwinders(d.m, code)
	regs := d.m.CPUs[0].Regs()
	truth := d.m.ShadowStack(0)
	cmp := comparison{code: code, fixups: exTable(d.m)}
	var zero ptregs.Regs
	for _, s := range []Strategy{CFI, FP, Combined} {
		o := &unwind.Options{Code: code, Stacks: topInclusive(d.m.Stacks(0)), Methods: s.Methods(), Kernel: true}
		d.m.EntryConventions(o)
		walk := unwind.New(d.m.Memory(), zero, o)
		for _, v := range []struct {
			name string
			u    *unwind.Unwinder
		}{{s.String(), us[0][s]}, {s.String() + "/walk", walk}} {
			bench(b, v.name, v.u, d.m.Memory(), regs, truth, &cmp)
		}
	}
}

func bench(b *testing.B, name string, u *unwind.Unwinder, mem unwind.Memory, regs ptregs.Regs, truth []emu.Frame, cmp *comparison) {
	b.Run(name, func(b *testing.B) {
		frames := 0
		b.ReportAllocs()
		for b.Loop() {
			u.Reset(mem, regs)
			cmp.classify(u, truth)
			frames = 0
			u.Reset(mem, regs)
			for u.Next() {
				frames++
			}
		}
		// Each iteration unwinds twice (classify, then the count).
		b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "unwinds/s")
		b.ReportMetric(float64(frames), "frames/unwind")
	})
}

// TestBoundaryAllocFree checks that checking a boundary allocates nothing
// beyond what the unwinder itself allocates (warm caches, CFI strategy):
// the comparison describes mismatches only on demand.
func TestBoundaryAllocFree(t *testing.T) {
	d, code := loadRun(t, "demo")
	if _, err := d.run(func(int) {}); err != nil {
		t.Fatal(err)
	}
	us := newUnwinders(d.m, code)
	cmp := comparison{code: code, fixups: exTable(d.m)}
	u := us[0][CFI]
	check := func() {
		regs := d.m.CPUs[0].Regs()
		truth := d.m.ShadowStack(0)
		u.Reset(d.m.Memory(), regs)
		cmp.classify(u, truth)
	}
	walk := func() {
		regs := d.m.CPUs[0].Regs()
		d.m.ShadowStack(0)
		u.Reset(d.m.Memory(), regs)
		for u.Next() {
			_ = u.Frame()
		}
	}
	check()
	walk()
	total := testing.AllocsPerRun(50, check)
	inUnwind := testing.AllocsPerRun(50, walk)
	if total > inUnwind {
		t.Errorf("checking a boundary allocates %.1f times, the unwind alone %.1f: the comparison allocates", total, inUnwind)
	}
	if inUnwind > 0 {
		t.Errorf("a warm walk of the fixture kernel allocates %.1f times (the README says a warm walk allocates nothing)", inUnwind)
	}
}
