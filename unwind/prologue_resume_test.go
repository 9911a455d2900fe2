package unwind

import (
	"bytes"
	"math/rand"
	"testing"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/symbols"
)

// TestAnalysisResumes checks that a prologue analysis continued from an
// earlier target (the caches' analysis positions) gives what a fresh
// analysis from the function's first byte gives, at every byte offset of
// every function of both fixture kernels (their first 400 bytes), in order and in random order,
// with and without an int3 before the target.
func TestAnalysisResumes(t *testing.T) {
	for _, variant := range []string{"fp", "nofp"} {
		k, err := unwindfixtures.Kernel(variant)
		if err != nil {
			t.Fatal(err)
		}
		f, err := symbols.NewFile(bytes.NewReader(k), "kernel-"+variant, 0)
		if err != nil {
			t.Fatal(err)
		}
		rnd := rand.New(rand.NewSource(1))
		funcs, checked := 0, 0
		for i := 0; i < f.Syms.Len(); i++ {
			sym := f.Syms.At(i)
			code := f.CodeAt(sym.Addr)
			if sym.ELFSize == 0 || code == nil {
				continue
			}
			funcs++
			n := min(sym.ELFSize+2, 400) // a little past the end as well
			var seq, shuffled analysis
			for off := uint64(0); off < n; off++ {
				for _, int3 := range []bool{false, true} {
					want := analyzeFrame(code, off, int3)
					if got := seq.run(code, off, int3); got != want {
						t.Errorf("%s %s+%#x int3 %v: in order %+v, fresh %+v", variant, sym.Name, off, int3, got, want)
					}
					r := uint64(rnd.Int63n(int64(n)))
					if got, want := shuffled.run(code, r, int3), analyzeFrame(code, r, int3); got != want {
						t.Errorf("%s %s+%#x int3 %v: shuffled %+v, fresh %+v", variant, sym.Name, r, int3, got, want)
					}
					checked++
				}
			}
		}
		if funcs < 20 {
			t.Fatalf("%s: only %d functions", variant, funcs)
		}
		t.Logf("%s: %d functions, %d analyses", variant, funcs, checked)
	}
}
