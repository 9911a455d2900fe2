package unwind

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// checkRecord holds a Recording of the walk from regs to what Walk
// returns: every field of every frame (the unexported ones too), the
// error and the verdicts; without registers, the same frames with Regs
// empty (but in the frames kept whole). It returns the Recording.
func checkRecord(t *testing.T, mem Memory, regs ptregs.Regs, opts *Options) *Recording {
	t.Helper()
	want, werr := Walk(mem, regs, opts)
	u := New(mem, regs, opts)
	for u.Next() {
	}
	r := Record(mem, regs, opts, true)
	if r.Len() != len(want) || fmt.Sprint(r.Err()) != fmt.Sprint(werr) || r.Reliable() != u.Reliable() ||
		r.Truncated() != u.Truncated() || r.StopReason() != u.StopReason() || r.Invalidated() != u.Invalidated() {
		t.Fatalf("recorded %d frames, %v, reliable %v, truncated %v, %q; Walk: %d, %v, reliable %v, truncated %v, %q",
			r.Len(), r.Err(), r.Reliable(), r.Truncated(), r.StopReason(), len(want), werr, u.Reliable(), u.Truncated(), u.StopReason())
	}
	got := r.Frames()
	for i := range want {
		if diff := cmp.Diff(want[i], got[i], cmp.AllowUnexported(Frame{}, ptregs.Regs{})); diff != "" {
			t.Fatalf("frame %d (-Walk +Recording):\n%s", i, diff)
		}
	}
	bare := Record(mem, regs, opts, false)
	for i := range want {
		f := bare.Frame(i)
		if f.Regs.Mask() != 0 && bare.recs.at(i).flags&recExtra == 0 {
			t.Fatalf("frame %d recorded without registers has %#x", i, f.Regs.Mask())
		}
		f.Regs = want[i].Regs
		if diff := cmp.Diff(want[i], f, cmp.AllowUnexported(Frame{}, ptregs.Regs{})); diff != "" {
			t.Fatalf("frame %d without registers (-Walk +Recording):\n%s", i, diff)
		}
	}
	return r
}

// A Recording gives the frames Walk gives: kernel entry frames (kept
// whole), inlined frames, a scan, a frame limit.
func TestRecordMatchesWalk(t *testing.T) {
	for _, withCFI := range []bool{true, false} {
		sc := irqOverSyscall(withCFI)
		r := checkRecord(t, sc.mem, sc.regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true})
		if len(r.extra) == 0 {
			t.Errorf("irq over syscall (cfi %v): no frame kept whole", withCFI)
		}
	}
	ch := fpChain(3, true)
	checkRecord(t, ch.mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks})
	ch = cfiChain(3)
	checkRecord(t, ch.mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks, Methods: MethodScan})
	ch = fpChain(40, true)
	if r := checkRecord(t, ch.mem, ch.regs, &Options{Code: ch.code, MaxFrames: -1}); len(r.syms) < 40 || r.symIndex != nil {
		t.Errorf("40 functions: %d symbolizations (index %v)", len(r.syms), r.symIndex != nil)
	}
	r := checkRecord(t, ch.mem, ch.regs, &Options{Code: ch.code, MaxFrames: 7})
	if !r.Truncated() || r.Len() != 7 {
		t.Errorf("frame limit 7: %d frames, truncated %v", r.Len(), r.Truncated())
	}
	ch = fpChain(2, true)
	ch.code.lines = map[string][]symbols.Line{
		"f2": {{Function: "inl", File: "x.c", Line: 3, Inlined: true}, {Function: "f2", File: "x.c", Line: 9}},
	}
	r = checkRecord(t, ch.mem, ch.regs, &Options{Code: fakeLines{ch.code}})
	if f := r.Frame(1); !f.Inlined || f.CFA == 0 || f.CFA != r.Frame(2).CFA {
		t.Errorf("inlined frame 1: inlined %v, CFA %#x (its caller's %#x)", f.Inlined, f.CFA, r.Frame(2).CFA)
	}
}

// A Recording's blocks hold every element where at finds it, and grow
// from 16 elements to 4,096 without copying.
func TestRecordChunks(t *testing.T) {
	var c chunks[int]
	const n = 70*chunkMax + 77
	for i := 0; i < n; i++ {
		c.push(i)
		if c.n != i+1 {
			t.Fatalf("pushed %d, n %d", i+1, c.n)
		}
	}
	for i := 0; i < n; i++ {
		if v := *c.at(i); v != i {
			t.Fatalf("element %d is %d", i, v)
		}
	}
	total := 0
	for k, b := range c.blocks {
		want := chunkMax
		if k < 8 {
			want = chunkMin << k
		}
		if len(b) != want {
			t.Errorf("block %d holds %d, want %d", k, len(b), want)
		}
		total += len(b)
	}
	if total >= n+chunkMax {
		t.Errorf("%d elements allocated for %d", total, n)
	}
}
