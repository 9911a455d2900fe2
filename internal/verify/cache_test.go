package verify

import (
	"fmt"
	"testing"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/unwind"
)

// trace is everything a walk reports.
type trace struct {
	frames   []unwind.Frame
	reliable bool
	stop     string
	err      string
	inval    int
}

func walkTrace(u *unwind.Unwinder, buf []unwind.Frame) trace {
	t := trace{frames: buf[:0]}
	for u.Next() {
		t.frames = append(t.frames, u.Frame())
	}
	t.reliable, t.stop, t.inval = u.Reliable(), u.StopReason(), u.Invalidated()
	if err := u.Err(); err != nil {
		t.err = err.Error()
	}
	return t
}

func (t *trace) diff(o *trace) string {
	if t.reliable != o.reliable || t.stop != o.stop || t.err != o.err || t.inval != o.inval {
		return fmt.Sprintf("reliable %v / %v, stop %q / %q, err %q / %q, invalidated %d / %d",
			t.reliable, o.reliable, t.stop, o.stop, t.err, o.err, t.inval, o.inval)
	}
	if len(t.frames) != len(o.frames) {
		return fmt.Sprintf("%d / %d frames", len(t.frames), len(o.frames))
	}
	for i := range t.frames {
		if t.frames[i] != o.frames[i] {
			return fmt.Sprintf("frame %d: %+v\n / %+v", i, t.frames[i], o.frames[i])
		}
	}
	return ""
}

// TestWarmCachesMatchFreshUnwind checks the caches and the incremental
// replay the verify loop relies on: at sampled boundaries of every
// scenario (the code-patching ones included, where the text changes under
// the unwinder), the reused sibling Unwinders, whose caches are warm and
// whose last walk was at the boundary before, report exactly what a fresh
// Unwinder reports, frame for frame. With -verify.full, at every boundary
// (688k boundaries x 3 strategies: about 15 minutes on 2 cores).
func TestWarmCachesMatchFreshUnwind(t *testing.T) {
	n := uint64(37)
	if testing.Short() {
		n = 301
	}
	if *full {
		n = 1
	}
	for _, name := range unwindfixtures.Scenarios() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, code := loadRun(t, name)
			us := newUnwinders(d.m, code)
			var seen uint64
			bad := 0
			var fb, wb []unwind.Frame
			if _, err := d.run(func(cpu int) {
				seen++
				m := d.m
				regs := m.CPUs[cpu].Regs()
				if seen%n != 0 {
					// Keep the caches warm at every boundary, as Run does.
					for s := Strategy(0); s < NumStrategies; s++ {
						u := us[cpu][s]
						u.Reset(m.Memory(), regs)
						for u.Next() {
						}
					}
					return
				}
				for s := Strategy(0); s < NumStrategies; s++ {
					o := &unwind.Options{Code: code, Stacks: topInclusive(m.Stacks(cpu)), Methods: s.Methods(), Kernel: true}
					m.EntryConventions(o)
					fresh := unwind.New(m.Memory(), regs, o)
					ft := walkTrace(fresh, fb)
					u := us[cpu][s]
					u.Reset(m.Memory(), regs)
					wt := walkTrace(u, wb)
					fb, wb = ft.frames, wt.frames
					if d := ft.diff(&wt); d != "" {
						bad++
						if bad <= 3 {
							t.Errorf("cpu %d at %s, %s: fresh / warm: %s", cpu, m.Where(m.CPUs[cpu].RIP), s, d)
						}
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
			if bad > 3 {
				t.Errorf("%d boundaries differ", bad)
			}
		})
	}
}
