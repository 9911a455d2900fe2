package dump_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/linux"
	"github.com/unwind-dev/unwind/unwind"
)

// A lab vmcore whose CPU notes are replicated until it claims 5,000 CPUs
// opens and unwinds every CPU at a cost per CPU that does not grow with
// their number: allocations and bytes for each CPU added from 1,000 to
// 5,000 stay within twice those from 500 to 1,000.
func TestManyCPUsLinear(t *testing.T) {
	src, err := os.ReadFile(corpus.Vmcore(t, "nmibt", "nmibt"))
	if err != nil {
		t.Fatal(err)
	}
	vmlinux := filepath.Join(corpus.Dir(t, "kernel"), "fp", "vmlinux")
	cost := func(n int) (allocs, bytes float64) {
		path := dump.ReplicatePrStatus(t, src, n)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		allocs = testing.AllocsPerRun(1, func() {
			d, err := dump.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			k, err := linux.Open(d, dump.SymbolOptions{Files: []string{vmlinux}})
			if err != nil {
				t.Fatal(err)
			}
			if len(k.CPUs()) < n {
				t.Fatalf("%d CPUs, want %d", len(k.CPUs()), n)
			}
			for i := range k.CPUs() {
				if _, err := k.UnwindCPU(i, unwind.Options{}); err != nil {
					t.Fatal(err)
				}
			}
		})
		runtime.ReadMemStats(&after)
		os.Remove(path)
		// AllocsPerRun runs the function twice (a warm-up, then the run).
		return allocs, float64(after.TotalAlloc-before.TotalAlloc) / 2
	}
	// A debug cache of the test's own, filled before anything is
	// counted: building vmlinux's symbol table and units into an empty
	// cache (a fresh machine's), or another test process merging the
	// cache's packs meanwhile, is a one-time cost that lands in one
	// measurement only and made the difference between two of them
	// meaningless (9 KB instead of 30 KB a CPU).
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	cost(500)
	// The cost of each CPU added (the fixed cost of opening the dump and
	// vmlinux taken out), from 500 to 1,000 CPUs and from 1,000 to 5,000.
	a500, b500 := cost(500)
	a1k, b1k := cost(1000)
	a5k, b5k := cost(5000)
	sa, sb := (a1k-a500)/500, (b1k-b500)/500
	la, lb := (a5k-a1k)/4000, (b5k-b1k)/4000
	t.Logf("each CPU added: %.0f allocations, %.0f bytes from 500 to 1,000 CPUs; %.0f, %.0f from 1,000 to 5,000", sa, sb, la, lb)
	if la > 2*sa+5 || lb > 2*sb+4096 {
		t.Errorf("the cost per CPU grows with the CPU count: %.0f allocations, %.0f bytes each from 500 to 1,000 CPUs; %.0f, %.0f from 1,000 to 5,000", sa, sb, la, lb)
	}
}
