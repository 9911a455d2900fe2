// Tests of Reader.NextIf: stepping over the entries a caller does not want
// must leave the walk exactly where decoding them would.

package dwarf_test

import (
	stddwarf "debug/dwarf"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

func wantCode(t dwarf.Tag) bool {
	return t == dwarf.TagSubprogram || t == dwarf.TagInlinedSubroutine
}

// seekSibling skips the children of e, the entry r returned last, as
// SkipChildren did before it stepped to the sibling within the buffer:
// by Seek to e's DW_AT_sibling when that is not behind r, else by
// reading them.
func seekSibling(r *dwarf.Reader, e *dwarf.Entry) {
	if sib, ok := e.Val(dwarf.AttrSibling).(dwarf.Offset); ok && sib >= dwarf.ReaderOffset(r) {
		r.Seek(sib)
		return
	}
	r.SkipChildren()
}

// needCode is what the walks of compareNextIf need of the entries wantCode
// accepts.
var needCode = []dwarf.Attr{dwarf.AttrLowpc, dwarf.AttrHighpc, dwarf.AttrRanges}

// compareNextIf walks d with Next (skipping children by seekSibling),
// NextIf and NextIfOnly (wanting wantCode with needCode), and std (the same sections read by the standard
// library, or nil) with its Next, skipping the children of every third
// entry (not a unit's) that has some in all walks, and returns the number
// of entries NextIf stepped over, or the first difference before Next's
// (or std's) first error.
func compareNextIf(std *stddwarf.Data, d *dwarf.Data, limit int) (int, error) {
	skipped, err := compareNextIfWalk(std, d, limit, false)
	if err != nil {
		return skipped, err
	}
	if _, err := compareNextIfWalk(nil, d, limit, true); err != nil {
		return skipped, fmt.Errorf("NextIfOnly: %w", err)
	}
	return skipped, nil
}

// only returns e with the fields of attributes in need only.
func only(e *dwarf.Entry, need []dwarf.Attr) *dwarf.Entry {
	o := *e
	o.Field = nil
	for _, f := range e.Field {
		if slices.Contains(need, f.Attr) {
			o.Field = append(o.Field, f)
		}
	}
	return &o
}

// compareNextIfWalk is one walk of compareNextIf, with NextIfOnly if
// onlyNeed.
func compareNextIfWalk(std *stddwarf.Data, d *dwarf.Data, limit int, onlyNeed bool) (int, error) {
	r, ri := d.Reader(), d.Reader()
	var rs *stddwarf.Reader // where Next and SkipChildren leave a walk
	if std != nil {
		rs = std.Reader()
	}
	skipped := 0
	// A unit's first entry is decoded whatever its tag.
	first := map[dwarf.Offset]bool{}
	for _, h := range d.UnitHeaders() {
		first[h.Off] = true
	}
	for n := 0; n < limit; n++ {
		want, werr := r.Next()
		var got *dwarf.Entry
		var gerr error
		if onlyNeed {
			got, gerr = ri.NextIfOnly(wantCode, needCode...)
		} else {
			got, gerr = ri.NextIf(wantCode, needCode...)
		}
		if rs != nil {
			se, serr := rs.Next()
			switch {
			case serr != nil || werr != nil:
				rs = nil
			case (se == nil) != (want == nil):
				return skipped, fmt.Errorf("entry %d: %v, the standard library's %v", n, want, se)
			case se != nil && (dwarf.Offset(se.Offset) != want.Offset || dwarf.Tag(se.Tag) != want.Tag || se.Children != want.Children):
				return skipped, fmt.Errorf("entry %d: %+v, the standard library's %+v", n, want, se)
			}
		}
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
		unit := want.Tag == 0 && len(want.Field) == 0 || want.Tag == dwarf.TagCompileUnit || want.Tag == dwarf.TagPartialUnit || first[want.Offset]
		wanted := wantCode(want.Tag) && slices.ContainsFunc(want.Field, func(f dwarf.Field) bool { return slices.Contains(needCode, f.Attr) })
		decoded := unit || wanted
		// (An entry without attributes is the same decoded or not: a
		// fuzzed abbreviation of tag 0 is stepped over, its Field nil.)
		same := reflect.DeepEqual(got, want) || len(got.Field) == 0 && len(want.Field) == 0
		if onlyNeed && wanted && !unit && !same {
			// Only the attributes needed (or, a form NextIfOnly cannot
			// step over, all of them).
			if o := only(want, needCode); !reflect.DeepEqual(got, o) {
				return skipped, fmt.Errorf("entry %d at %#x: %+v, want %+v", n, got.Offset, got, o)
			}
			same = true
		}
		if decoded && !same {
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
			seekSibling(r, want)
			ri.SkipChildren()
			if rs != nil {
				rs.SkipChildren()
			}
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
		std, d := fromELF(t, p)
		skipped, err := compareNextIf(std, d, maxCompare)
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
		// (Not compared with the standard library: for a unit's first
		// entry, d takes the first abbreviation of an id given twice.)
		if _, err := compareNextIf(nil, d, 100000); err != nil {
			t.Fatal(err)
		}
	})
}
