package verify

import (
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/unwind"
)

var (
	full  = flag.Bool("verify.full", false, "check every instruction boundary of every scenario (default: a sample)")
	every = flag.Uint64("verify.every", 3, "sampling of the default sweep: every N-th boundary of each CPU")
)

func loadScenario(t testing.TB, name string) (*emu.Scenario, []byte) {
	t.Helper()
	text, err := unwindfixtures.Scenario(name)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := emu.ParseScenario(name, text)
	if err != nil {
		t.Fatal(err)
	}
	k, err := unwindfixtures.Kernel(sc.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	return sc, k
}

// loadRun is loadScenario plus the driver (machine at its start) and the
// kernel's Code, as Run sets them up.
func loadRun(t testing.TB, name string) (*driver, noLines) {
	t.Helper()
	sc, k := loadScenario(t, name)
	d, err := newDriver(sc, k)
	if err != nil {
		t.Fatal(err)
	}
	set, err := KernelCode(k, "kernel")
	if err != nil {
		t.Fatal(err)
	}
	return d, verifyCode(set, k)
}

// TestSweep unwinds every sampled boundary of every built-in scenario with
// the three strategy sets and holds the bar: no wrong-but-reliable trace
// and no wrong frame marked reliable in any strategy, and CFI exact
// everywhere on scenarios that do not corrupt their stack.
func TestSweep(t *testing.T) {
	n := *every
	if *full {
		n = 1
	}
	for _, name := range unwindfixtures.Scenarios() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, k := loadScenario(t, name)
			var mu sync.Mutex
			var misses []string
			corrupts := Corrupts(sc)
			r, err := Run(sc, k, Options{Every: n, OnMismatch: func(s Strategy, cl Class, cpu int, where, reason string) {
				if cl != WrongReliable && cl != WrongFlagged && (s != CFI || corrupts) {
					return // not a miss of the bar
				}
				mu.Lock()
				defer mu.Unlock()
				if len(misses) < 5 {
					misses = append(misses, fmt.Sprintf("%s %s at cpu %d %s: %s", s, cl, cpu, where, reason))
				} else if len(misses) == 5 {
					misses = append(misses, "…")
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d boundaries (every %d): cfi %+v fp %+v combined %+v", name, r.Boundaries, n,
				r.Strategies[CFI], r.Strategies[FP], r.Strategies[Combined])
			if r.Boundaries == 0 {
				t.Fatal("no boundary checked")
			}
			if r.Err != nil {
				t.Errorf("machine error: %v", r.Err)
			}
			if problems := r.Problems(); len(problems) > 0 {
				var b strings.Builder
				_ = WriteText(&b, []*Result{r})
				t.Errorf("%s\nfirst misses:\n  %s\n%s", strings.Join(problems, "\n"), strings.Join(misses, "\n  "), b.String())
			}
		})
	}
}

// TestComparisonCatchesWrongTraces checks that the comparison is not
// vacuous: a correct trace is exact, and a trace with a wrong return
// address, a wrong interrupted register or a missing frame is not.
func TestComparisonCatchesWrongTraces(t *testing.T) {
	sc, k := loadScenario(t, "demo")
	traces, err := SnapshotTraces(sc, k, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) == 0 {
		t.Fatal("demo took no snapshot")
	}
	st := traces[0]
	th := st.Doc.Threads[st.Snapshot.CPU]
	truth := st.Truth[st.Snapshot.CPU]
	code, err := KernelCode(k, "kernel")
	if err != nil {
		t.Fatal(err)
	}
	if _, reason := FrameCheck(th.Frames, truth, code); reason != "" {
		t.Fatalf("demo trace not exact: %s", reason)
	}
	for _, tc := range []struct {
		name   string
		mutate func(fr []unwindFrame) []unwindFrame
	}{
		{"wrong return address", func(fr []unwindFrame) []unwindFrame { fr[3].PC += 4; return fr }},
		{"missing frame", func(fr []unwindFrame) []unwindFrame { return fr[:len(fr)-1] }},
		{"wrong interrupted register", func(fr []unwindFrame) []unwindFrame {
			for i := range fr {
				if fr[i].Interrupted() {
					v, _ := fr[i].Regs.Get(3)
					fr[i].Regs.Set(3, v+1)
					break
				}
			}
			return fr
		}},
		{"wrong entry", func(fr []unwindFrame) []unwindFrame {
			for i := range fr {
				if fr[i].Interrupted() {
					fr[i].Entry = "page_fault"
					break
				}
			}
			return fr
		}},
	} {
		fr := tc.mutate(append([]unwindFrame(nil), th.Frames...))
		if _, reason := FrameCheck(fr, truth, code); reason == "" {
			t.Errorf("%s: not detected", tc.name)
		}
	}
}

type unwindFrame = unwind.Frame

// TestDriverMatchesRunScenario checks the driver's reimplementation of the
// scenario triggers against emu.RunScenario: the same instructions retired
// and the same final state on every CPU, and a boundary visited for every
// instruction or delivery.
func TestDriverMatchesRunScenario(t *testing.T) {
	for _, name := range unwindfixtures.Scenarios() {
		sc, k := loadScenario(t, name)
		res, err := emu.RunScenario(sc, k, emu.RunOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := newDriver(sc, k)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		visits := uint64(0)
		if _, err := d.run(func(int) { visits++ }); err != nil && res.Err == nil {
			t.Errorf("%s: driver stopped with %v, RunScenario did not", name, err)
		}
		if got, want := d.m.Instructions(), res.Instructions; got != want {
			t.Errorf("%s: driver retired %d instructions, RunScenario %d", name, got, want)
		}
		if visits < d.m.Instructions() {
			t.Errorf("%s: %d boundaries visited for %d instructions", name, visits, d.m.Instructions())
		}
		for i, c := range d.m.CPUs {
			w := res.Machine.CPUs[i]
			if c.RIP != w.RIP || c.Insns != w.Insns || c.GPR != w.GPR || c.Done != w.Done {
				t.Errorf("%s: cpu %d ends at %#x (insn %d), RunScenario at %#x (insn %d)", name, i, c.RIP, c.Insns, w.RIP, w.Insns)
			}
		}
	}
}
