package unwind_test

import (
	"fmt"
	"testing"

	"github.com/unwind-dev/unwind/unwind"
)

// walkAll walks u to its end and describes how it ended.
func walkAll(u *unwind.Unwinder) ([]unwind.Frame, string) {
	var fs []unwind.Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	end := fmt.Sprintf("reliable %v, stop %q", u.Reliable(), u.StopReason())
	if err := u.Err(); err != nil {
		end += ", err " + err.Error()
	}
	return fs, end
}

// sameWalk reports how two walks differ ("" when they do not).
func sameWalk(a []unwind.Frame, aEnd string, b []unwind.Frame, bEnd string) string {
	if aEnd != bEnd {
		return aEnd + " / " + bEnd
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d / %d frames", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("frame %d:\n  %+v\n  %+v", i, a[i], b[i])
		}
	}
	return ""
}

// TestWarmWalkMatchesFresh walks every thread of every fixture user core
// with several strategy sets, once with a fresh Unwinder and then again
// with the same Unwinder reset (its caches warm, the frame-pointer walk on
// its fast path): the traces must be identical, frame for frame.
func TestWarmWalkMatchesFresh(t *testing.T) {
	m := fxManifestLoad(t)
	sets := []unwind.Method{unwind.MethodFP, unwind.MethodFP | unwind.MethodSignal,
		unwind.MethodFP | unwind.MethodSignal | unwind.MethodScan, unwind.MethodCFI, unwind.MethodCFI | unwind.MethodFP, 0}
	for _, v := range fxVariants {
		for _, cs := range fxCaseNames(m) {
			t.Run(v+"/"+cs, func(t *testing.T) {
				c := fxOpen(t, m, v, cs, true)
				for i, th := range c.d.Threads() {
					for _, ms := range sets {
						opts := &unwind.Options{Code: c.set, Stacks: c.d.Stacks(i), Methods: ms}
						u := unwind.New(c.d.Memory(), th.Regs, opts)
						fresh, freshEnd := walkAll(u)
						for k := 0; k < 2; k++ {
							u.Reset(c.d.Memory(), th.Regs)
							warm, warmEnd := walkAll(u)
							if d := sameWalk(fresh, freshEnd, warm, warmEnd); d != "" {
								t.Errorf("thread %s, methods %v, warm walk %d: fresh / warm: %s", c.roles[i], ms, k+1, d)
							}
						}
					}
				}
			})
		}
	}
}
