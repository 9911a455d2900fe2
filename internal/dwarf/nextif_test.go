// Tests of Reader.NextIf: stepping over the entries a caller does not want
// must leave the walk exactly where decoding them would.

package dwarf_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

func wantCode(t dwarf.Tag) bool {
	return t == dwarf.TagSubprogram || t == dwarf.TagInlinedSubroutine
}

// compareNextIf walks d twice, with Next and with NextIf, skipping the
// children of every third entry (not a unit's) that has some in both walks, and returns
// the number of entries NextIf stepped over, or the first difference
// before Next's first error.
func compareNextIf(d *dwarf.Data, limit int) (int, error) {
	r, ri := d.Reader(), d.Reader()
	skipped := 0
	// A unit's first entry is decoded whatever its tag.
	first := map[dwarf.Offset]bool{}
	for _, h := range d.UnitHeaders() {
		first[h.Off] = true
	}
	for n := 0; n < limit; n++ {
		want, werr := r.Next()
		got, gerr := ri.NextIf(wantCode, dwarf.AttrLowpc, dwarf.AttrRanges)
		if werr != nil {
			return skipped, nil // a skipped entry need not find Next's error
		}
		if gerr != nil {
			return skipped, fmt.Errorf("entry %d: NextIf error %v, Next none", n, gerr)
		}
		if want == nil || got == nil {
			if (want == nil) != (got == nil) {
				return skipped, fmt.Errorf("entry %d: %v, want %v", n, got, want)
			}
			return skipped, nil
		}
		if got.Offset != want.Offset || got.Tag != want.Tag || got.Children != want.Children {
			return skipped, fmt.Errorf("entry %d: %+v, want %+v", n, got, want)
		}
		// A null entry is decoded (nothing to step over); a fuzzed
		// abbreviation of tag 0 with attributes is an unwanted tag, which
		// NextIf steps over.
		decoded := want.Tag == 0 && len(want.Field) == 0 || want.Tag == dwarf.TagCompileUnit || want.Tag == dwarf.TagPartialUnit || first[want.Offset] ||
			wantCode(want.Tag) && (want.AttrField(dwarf.AttrLowpc) != nil || want.AttrField(dwarf.AttrRanges) != nil)
		// (An entry without attributes is the same decoded or not: a
		// fuzzed abbreviation of tag 0 is stepped over, its Field nil.)
		if decoded && !reflect.DeepEqual(got, want) && !(len(got.Field) == 0 && len(want.Field) == 0) {
			return skipped, fmt.Errorf("entry %d at %#x: %+v, want %+v", n, got.Offset, got, want)
		}
		if !decoded {
			// Stepped over, or (an attribute form NextIf cannot step
			// over) decoded as Next decodes it.
			if got.Field != nil && !reflect.DeepEqual(got, want) {
				return skipped, fmt.Errorf("entry %d at %#x (%v): %+v, neither stepped over nor %+v", n, got.Offset, got.Tag, got, want)
			}
			if got.Field == nil {
				skipped++
			}
		}
		if want.Children && n%3 == 0 && want.Tag != dwarf.TagCompileUnit && want.Tag != dwarf.TagPartialUnit {
			r.SkipChildren()
			ri.SkipChildren()
		}
	}
	return skipped, nil
}

func TestNextIfSameWalk(t *testing.T) {
	paths := []string{filepath.Join("..", "..", "symbols", "testdata", "prog")}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	for _, p := range paths {
		_, d := fromELF(t, p)
		skipped, err := compareNextIf(d, maxCompare)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if skipped < 20 {
			t.Fatalf("%s: only %d entries stepped over", p, skipped)
		}
	}
}

// FuzzNextIf mutates the test program's .debug_info and .debug_abbrev:
// NextIf walks as Next does up to Next's first error, never panics, and
// ends.
func FuzzNextIf(f *testing.F) {
	_, sec := openELF(f, filepath.Join("..", "..", "symbols", "testdata", "prog"))
	f.Add(sec["info"], sec["abbrev"])
	f.Add(sec["info"][:len(sec["info"])/2], sec["abbrev"])
	f.Fuzz(func(t *testing.T, info, abbrev []byte) {
		d, err := dwarf.New(abbrev, nil, nil, info, sec["line"], nil, sec["ranges"], sec["str"])
		if err != nil {
			return
		}
		addSections(d, sec)
		if _, err := compareNextIf(d, 100000); err != nil {
			t.Fatal(err)
		}
	})
}
