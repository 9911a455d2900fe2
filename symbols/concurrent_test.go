package symbols

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// Lookups from many goroutines on one File must agree (run with -race).
func TestConcurrentLookups(t *testing.T) {
	f, err := Open("testdata/prog", 0x10000)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	leaf, _ := f.Syms.ByName("leaf")
	want := f.Lines(leaf.Addr+0x3b, nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []Line
			var row CFIRow
			for i := 0; i < 200; i++ {
				pc := leaf.Addr + uint64(i)%leaf.Size
				buf = f.Lines(pc, buf)
				if err := f.FindCFI(pc, &row); err != nil {
					t.Error(err)
					return
				}
				f.CodeAt(pc)
			}
			if got := f.Lines(leaf.Addr+0x3b, buf); len(got) != len(want) || got[0] != want[0] {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}()
	}
	wg.Wait()
}

// Goroutines that reach a file's units and functions first at the same
// time (each unit's line table, each function's scopes read once, on
// whichever goroutine gets there) find what one goroutine finds.
func TestConcurrentFirstLookups(t *testing.T) {
	path := "testdata/prog"
	if dir, err := corpus.Find("kernel"); err == nil {
		path = filepath.Join(dir, "fp", "vmlinux")
	}
	one, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	var pcs []uint64
	for i := 0; i < one.Syms.Len(); i += max(1, one.Syms.Len()/400) {
		s := one.Syms.At(i)
		pcs = append(pcs, s.Addr+s.Size/2)
	}
	want := make([][]Line, len(pcs))
	for i, pc := range pcs {
		want[i] = one.Lines(pc, nil)
	}
	many, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer many.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range pcs {
				i := (k*(g+1) + g*7) % len(pcs) // each goroutine in its own order
				if got := many.Lines(pcs[i], nil); !slices.Equal(got, want[i]) {
					t.Errorf("%#x: %+v, want %+v", pcs[i], got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}
