package verify

import (
	"flag"
	"fmt"
	"sort"
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

// knownDefect is a reported, not yet fixed defect outside this package that
// makes boundaries miss the bar. A scenario whose every miss is attributed
// to known defects is skipped (naming them); any other miss fails the test.
type knownDefect struct {
	name  string
	where string // the file and function at fault
	match func(where, reason string) bool
}

var knownDefects = []knownDefect{
	{
		name:  "emu-sysret-truth-rsp",
		where: `emu/shadow.go (the syscall record on the sysret tail): at entry_SYSCALL_64+0x97..+0x9b the truth's interrupted user RSP is garbage (0, 0x30, 0xa, 0x75: the user rdi the tail pushed over pt_regs->sp, or 0), not the user RSP sysretq returns with (already in %rsp from +0x98 on); the unwinder's value is right`,
		match: func(where, reason string) bool {
			return strings.HasPrefix(where, "entry_SYSCALL_64+0x9") && strings.Contains(reason, ": rsp ")
		},
	},
	{
		name:  "user-partial-pushf-cfi",
		where: `fixtures/kernel/src/user.c user_partial: the inline "pushfq; orq $0x100,(%rsp); popfq" has no CFI adjustment, so at user_partial+0x2 and +0xa the CFI reads the return address from the pushed RFLAGS (0x202/0x302); the unwinder flags it ("return address … is not text"). Needs .cfi_adjust_cfa_offset 8 / -8 around the pushf`,
		match: func(where, _ string) bool { return where == "user_partial+0x2" || where == "user_partial+0xa" },
	},
}

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

// TestSweep unwinds every sampled boundary of every built-in scenario with
// the three strategy sets and holds the bar: no wrong-but-reliable trace in
// any strategy, and CFI exact everywhere on scenarios that do not corrupt
// their stack.
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
			known := map[string]int{}
			var unknown []string
			corrupts := Corrupts(sc)
			r, err := Run(sc, k, Options{Every: n, OnMismatch: func(s Strategy, cl Class, cpu int, where, reason string) {
				if cl != WrongReliable && (s != CFI || corrupts) {
					return // not a miss of the bar
				}
				mu.Lock()
				defer mu.Unlock()
				for _, d := range knownDefects {
					if d.match(where, reason) {
						known[d.name]++
						return
					}
				}
				if len(unknown) < 5 {
					unknown = append(unknown, fmt.Sprintf("%s %s at cpu %d %s: %s", s, cl, cpu, where, reason))
				}
				if len(unknown) == 5 {
					unknown = append(unknown, "…")
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
			problems := r.Problems()
			if len(problems) == 0 {
				return
			}
			if len(unknown) > 0 {
				var b strings.Builder
				_ = WriteText(&b, []*Result{r})
				t.Errorf("%s\nmisses not explained by a known defect:\n  %s\n%s", strings.Join(problems, "\n"), strings.Join(unknown, "\n  "), b.String())
				return
			}
			var names []string
			for d, c := range known {
				names = append(names, fmt.Sprintf("%s (%d boundaries)", d, c))
			}
			sort.Strings(names)
			t.Skipf("misses the bar only through known, reported defects: %s; %s", strings.Join(names, ", "), strings.Join(problems, "; "))
		})
	}
}

// TestKnownDefectsDocumented keeps the list honest: every entry names a
// place and has a matcher.
func TestKnownDefectsDocumented(t *testing.T) {
	for _, d := range knownDefects {
		if d.name == "" || !strings.Contains(d.where, "/") || d.match == nil {
			t.Errorf("known defect %q is not fully described", d.name)
		}
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
