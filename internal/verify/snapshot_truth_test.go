package verify

import (
	"testing"

	unwindfixtures "github.com/unwind-dev/unwind"
)

// TestSnapshotsMatchTruth checks every snapshot of every built-in scenario
// (the points the golden files print) against the ground truth recorded in
// the snapshot itself, on every CPU: exact where the scenario keeps its
// stacks intact; where its bug corrupts a stack, a trace that differs from
// the truth must say so (not reliable, and no wrong frame marked
// reliable). As in the sweep's bar, a trace may stop short, flagged, at a
// frame whose CFI leaves the return address or RSP undefined on purpose
// (an int3 trampoline's return address lives in a per-CPU slot). The sweep
// samples boundaries; this pins the snapshots.
func TestSnapshotsMatchTruth(t *testing.T) {
	for _, name := range unwindfixtures.Scenarios() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc, k := loadScenario(t, name)
			traces, err := SnapshotTraces(sc, k, "")
			if err != nil {
				t.Fatal(err)
			}
			code, err := KernelCode(k, "kernel")
			if err != nil {
				t.Fatal(err)
			}
			corrupts := Corrupts(sc)
			checked := 0
			for _, st := range traces {
				for cpu, th := range st.Doc.Threads {
					if cpu >= len(st.Truth) || len(st.Truth[cpu]) == 0 {
						continue
					}
					checked++
					ok, reason := FrameCheck(th.Frames, st.Truth[cpu], code)
					if reason == "" {
						continue
					}
					if n := len(th.Frames); !th.Reliable && n > 0 && allTrue(ok) && cfiUndefinedAt(code, th.Frames[n-1].LookupPC) {
						continue // stopped short, flagged, where the CFI says it must
					}
					if !corrupts {
						t.Errorf("snapshot %s cpu %d: %s", st.Snapshot.Name, cpu, reason)
						continue
					}
					if th.Reliable {
						t.Errorf("snapshot %s cpu %d: wrong but reliable: %s", st.Snapshot.Name, cpu, reason)
					}
					for i := range th.Frames {
						if !ok[i] && th.Frames[i].Reliable {
							t.Errorf("snapshot %s cpu %d: frame %d is wrong but marked reliable (%s)", st.Snapshot.Name, cpu, i, reason)
							break
						}
					}
				}
			}
			if checked == 0 && len(traces) > 0 {
				t.Fatal("no snapshot checked")
			}
		})
	}
}

func allTrue(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}
