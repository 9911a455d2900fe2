// Tests of this copy's changes (see doc.go): lazily parsed abbreviation
// tables and DWARF 5 unit bases read once must decode every entry as the
// standard library does, from many goroutines at once.

package dwarf_test

import (
	stddwarf "debug/dwarf"
	"debug/elf"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// fromELF builds both packages' Data from the executable or shared object
// at path (no relocations: not for ET_REL files).
func fromELF(t *testing.T, path string) (*stddwarf.Data, *dwarf.Data) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	std, err := f.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	sec := map[string][]byte{}
	for _, s := range f.Sections {
		if name, ok := strings.CutPrefix(s.Name, ".debug_"); ok && s.Type != elf.SHT_NOBITS {
			if sec[name], err = s.Data(); err != nil {
				t.Fatal(err)
			}
		}
	}
	d, err := dwarf.New(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, sec["ranges"], sec["str"])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists"} {
		if b, ok := sec[name]; ok {
			d.AddSection(".debug_"+name, b)
		}
	}
	return std, d
}

// compareAll walks every entry of both and returns the number of entries,
// or the first difference.
func compareAll(std *stddwarf.Data, d *dwarf.Data) (int, error) {
	rs, r := std.Reader(), d.Reader()
	n := 0
	for ; n < maxCompare; n++ {
		want, werr := rs.Next()
		got, gerr := r.Next()
		if (werr != nil) != (gerr != nil) {
			return n, fmt.Errorf("entry %d: error %v, want %v", n, gerr, werr)
		}
		if want == nil || got == nil {
			if (want == nil) != (got == nil) {
				return n, fmt.Errorf("entry %d: %v, want %v", n, got, want)
			}
			break
		}
		if uint32(got.Offset) != uint32(want.Offset) || uint32(got.Tag) != uint32(want.Tag) ||
			got.Children != want.Children || len(got.Field) != len(want.Field) {
			return n, fmt.Errorf("entry %d: %+v, want %+v", n, got, want)
		}
		for i := range got.Field {
			g, w := got.Field[i], want.Field[i]
			gv, wv := g.Val, w.Val
			if o, ok := gv.(dwarf.Offset); ok {
				gv = uint32(o)
			}
			if o, ok := wv.(stddwarf.Offset); ok {
				wv = uint32(o)
			}
			if uint32(g.Attr) != uint32(w.Attr) || int(g.Class) != int(w.Class) || !reflect.DeepEqual(gv, wv) {
				return n, fmt.Errorf("entry %d at %#x: field %d %+v, want %+v", n, got.Offset, i, g, w)
			}
		}
		if got.Tag == dwarf.TagCompileUnit {
			gr, gerr := d.Ranges(got)
			wr, werr := std.Ranges(want)
			if !reflect.DeepEqual(gr, wr) || (gerr == nil) != (werr == nil) {
				return n, fmt.Errorf("unit at %#x: ranges %v %v, want %v %v", got.Offset, gr, gerr, wr, werr)
			}
		}
	}
	return n, nil
}

// maxCompare bounds the entries compared per file (libc's debug file has
// more than a million).
const maxCompare = 200000

func TestLazyAbbrevSameEntries(t *testing.T) {
	paths := []string{filepath.Join("..", "..", "symbols", "testdata", "prog")}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	for _, p := range paths {
		std, d := fromELF(t, p)
		n, err := compareAll(std, d)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if n < 50 {
			t.Fatalf("%s: only %d entries", p, n)
		}
	}
}

// Readers on many goroutines parse the tables and DWARF 5 bases of the same
// units at once (run with -race).
func TestLazyAbbrevConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		_, d := fromELF(t, filepath.Join("..", "..", "symbols", "testdata", "prog"))
		for h := 0; h < 3; h++ {
			// The standard library's Data is not safe for concurrent
			// readers of DWARF 5 (it sets a unit's bases on first use).
			std, _ := fromELF(t, filepath.Join("..", "..", "symbols", "testdata", "prog"))
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := compareAll(std, d); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
}
