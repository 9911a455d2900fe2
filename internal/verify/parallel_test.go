package verify

import (
	"fmt"
	"reflect"
	"testing"
)

// TestParallelMatchesSequential checks that verifying a run in chunks on
// several workers gives exactly the result of one pass: the counts, the
// mismatches kept (the first ones, in order), the end of the run, the
// instructions retired. The scenarios: one CPU, two CPUs (patching code
// under the other), a stack-corrupting bug (mismatches to keep), sampled
// boundaries.
func TestParallelMatchesSequential(t *testing.T) {
	for _, tc := range []struct {
		name  string
		every uint64
	}{
		{"nmi-irq-task", 1}, {"patch-nmi-nowt", 1}, {"idt-swap-noswap", 1}, {"nested-nmi-naive", 3},
	} {
		t.Run(fmt.Sprintf("%s/every%d", tc.name, tc.every), func(t *testing.T) {
			t.Parallel()
			sc, k := loadScenario(t, tc.name)
			run := func(p int) *Result {
				r, err := Run(sc, k, Options{Every: tc.every, MaxMismatches: 2, Parallel: p})
				if err != nil {
					t.Fatal(err)
				}
				r.Elapsed = 0
				return r
			}
			seq := run(1)
			if seq.Instructions <= chunkSteps {
				t.Fatalf("%d instructions: too short to be split", seq.Instructions)
			}
			for _, p := range []int{2, 3} {
				par := run(p)
				if !reflect.DeepEqual(seq, par) {
					t.Errorf("parallel %d differs from one pass:\n  %+v\n  %+v", p, summary(par), summary(seq))
				}
			}
		})
	}
}

func summary(r *Result) string {
	s := fmt.Sprintf("%d boundaries, %v, undefined %v, %d insns, stop %q err %v, mismatches:", r.Boundaries, r.Strategies, r.Undefined, r.Instructions, r.StopReason, r.Err)
	for _, m := range r.Mismatches {
		s += fmt.Sprintf(" [%s %s cpu %d insn %d %s]", m.Strategy, m.Class, m.CPU, m.Insns, m.Where)
	}
	return s
}
