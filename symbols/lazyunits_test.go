package symbols

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// A run over libc's debug file whose sections are streamed keeps the
// headers of the units it read ("unithdrs-lazy"); the next run finds
// those units from them, reading no header before them, and gives the
// same lines.
func TestLazyUnitHeadersCached(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, "lib", "libc.so.6.debug")
	cache := t.TempDir()
	t.Setenv("UNWIND_DEBUG_CACHE", cache)
	var pcs []uint64
	var first [][]Line
	for run := 0; run < 2; run++ {
		f, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			for _, name := range []string{"abort", "__libc_start_main", "raise"} {
				if v, _, ok := f.SymbolValue(name); ok {
					pcs = append(pcs, v+4)
				}
			}
			if len(pcs) == 0 {
				t.Fatal("none of libc's functions found")
			}
		}
		var got [][]Line
		for _, pc := range pcs {
			got = append(got, append([]Line(nil), f.Lines(pc, nil)...))
		}
		st := f.dw.streams
		if st == nil || st.d == nil {
			t.Fatalf("run %d: libc's sections were not streamed", run)
		}
		if run == 0 {
			first = got
			if st.seeded != 0 {
				t.Fatalf("run 0: %d headers from an empty cache", st.seeded)
			}
		} else {
			if st.seeded == 0 {
				t.Error("run 1: no unit headers taken from the cache")
			}
			if n := st.d.UnitHeadersRead().Len(); n != st.seeded {
				t.Errorf("run 1 read %d headers beyond the %d cached, for the same lookups", n-st.seeded, st.seeded)
			}
			if !reflect.DeepEqual(got, first) {
				t.Errorf("run 1's lines differ from run 0's:\n%v\n%v", got, first)
			}
		}
		c := debugCacheFor(f.ef, path)
		f.Close()
		if _, err := os.Stat(filepath.Join(string(c), lazyUnitHeadersEntry)); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
}
