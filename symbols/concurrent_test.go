package symbols

import (
	"sync"
	"testing"
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
