// Tests of this copy's changes (see doc.go): lazily parsed abbreviation
// tables and DWARF 5 unit bases read once must decode every entry as the
// standard library does, from many goroutines at once.

package dwarf_test

import (
	stddwarf "debug/dwarf"
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
	std, sec := openELF(t, path)
	d, err := dwarf.New(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, sec["ranges"], sec["str"])
	if err != nil {
		t.Fatal(err)
	}
	addSections(d, sec)
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
		if err := sameEntry(std, d, want, got); err != nil {
			return n, fmt.Errorf("entry %d: %w", n, err)
		}
	}
	return n, nil
}

// sameEntry compares an entry of d with the standard library's, and a
// unit's ranges.
func sameEntry(std *stddwarf.Data, d *dwarf.Data, want *stddwarf.Entry, got *dwarf.Entry) error {
	if uint32(got.Offset) != uint32(want.Offset) || uint32(got.Tag) != uint32(want.Tag) ||
		got.Children != want.Children || len(got.Field) != len(want.Field) {
		return fmt.Errorf("%+v, want %+v", got, want)
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
			return fmt.Errorf("at %#x: field %d %+v, want %+v", got.Offset, i, g, w)
		}
	}
	if got.Tag == dwarf.TagCompileUnit {
		gr, gerr := d.Ranges(got)
		wr, werr := std.Ranges(want)
		if !reflect.DeepEqual(gr, wr) || (gerr == nil) != (werr == nil) {
			return fmt.Errorf("unit at %#x: ranges %v %v, want %v %v", got.Offset, gr, gerr, wr, werr)
		}
	}
	return nil
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

// prefixOnly is a Lazy over a whole section that gives exactly the bytes
// asked for (no more), counting the calls.
type prefixOnly struct {
	b    []byte
	read int // the longest prefix given
	mu   sync.Mutex
}

func (p *prefixOnly) Prefix(n int) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(n, len(p.b))
	p.read = max(p.read, n)
	return p.b[:n], nil
}

// lazyFromELF is fromELF with .debug_info, .debug_abbrev and .debug_line
// read through prefixOnly.
func lazyFromELF(t *testing.T, path string) (*stddwarf.Data, *dwarf.Data, [3]*prefixOnly) {
	t.Helper()
	std, sec := openELF(t, path)
	p := [3]*prefixOnly{{b: sec["abbrev"]}, {b: sec["info"]}, {b: sec["line"]}}
	d, err := dwarf.NewLazy(p[0], p[1], p[2], sec["ranges"], sec["str"])
	if err != nil {
		t.Fatal(err)
	}
	addSections(d, sec)
	return std, d, p
}

// compareLines compares the line table of every unit (up to maxUnits).
func compareLines(std *stddwarf.Data, d *dwarf.Data, maxUnits int) error {
	rs, r := std.Reader(), d.Reader()
	for n := 0; n < maxUnits; n++ {
		want, werr := rs.Next()
		got, gerr := r.Next()
		if werr != nil || gerr != nil || want == nil || got == nil {
			if (werr != nil) != (gerr != nil) || (want == nil) != (got == nil) {
				return fmt.Errorf("unit %d: %v %v, want %v %v", n, got, gerr, want, werr)
			}
			return nil
		}
		rs.SkipChildren()
		r.SkipChildren()
		if err := sameLines(std, d, want, got); err != nil {
			return err
		}
	}
	return nil
}

// sameLines compares the line table of a unit of d with the standard
// library's.
func sameLines(std *stddwarf.Data, d *dwarf.Data, want *stddwarf.Entry, got *dwarf.Entry) error {
	wl, werr := std.LineReader(want)
	gl, gerr := d.LineReader(got)
	if (werr != nil) != (gerr != nil) || (wl == nil) != (gl == nil) {
		return fmt.Errorf("unit at %#x: line reader %v, want %v", got.Offset, gerr, werr)
	}
	for wl != nil {
		var we stddwarf.LineEntry
		var ge dwarf.LineEntry
		werr, gerr := wl.Next(&we), gl.Next(&ge)
		if (werr != nil) != (gerr != nil) {
			return fmt.Errorf("unit at %#x: line %v, want %v", got.Offset, gerr, werr)
		}
		if werr != nil {
			break
		}
		if we.Address != ge.Address || we.Line != ge.Line || we.EndSequence != ge.EndSequence || (we.File == nil) != (ge.File == nil) || we.File != nil && we.File.Name != ge.File.Name {
			return fmt.Errorf("unit at %#x: line %+v, want %+v", got.Offset, ge, we)
		}
	}
	return nil
}

// A Data reading info, abbrev and line on demand, a few bytes at a time,
// decodes every entry and line as the standard library does.
func TestNewLazySameEntries(t *testing.T) {
	paths := []string{filepath.Join("..", "..", "symbols", "testdata", "prog")}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	for _, p := range paths {
		std, d, _ := lazyFromELF(t, p)
		n, err := compareAll(std, d)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if n < 50 {
			t.Fatalf("%s: only %d entries", p, n)
		}
		std, d, _ = lazyFromELF(t, p)
		if err := compareLines(std, d, 300); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// Seeking to a unit far into .debug_info reads info only to its end, and
// abbrev and line not much past its tables.
func TestNewLazyReadsOnlyWhatItNeeds(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, "lib", "libc.so.6.debug")
	std, d, p := lazyFromELF(t, path)
	// The unit in the middle of the section.
	rs := std.Reader()
	var want *stddwarf.Entry
	for {
		e, err := rs.Next()
		if err != nil || e == nil {
			t.Fatal("no unit past the middle", err)
		}
		if e.Tag == stddwarf.TagCompileUnit && int(e.Offset) > len(p[1].b)/2 {
			want = e
			break
		}
		rs.SkipChildren()
	}
	r := d.Reader()
	r.Seek(dwarf.Offset(want.Offset))
	got, err := r.Next()
	if err != nil || got == nil || uint32(got.Offset) != uint32(want.Offset) || got.Tag != dwarf.TagCompileUnit {
		t.Fatalf("entry %v %v, want unit at %#x", got, err, want.Offset)
	}
	if _, err := d.LineReader(got); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"abbrev", "info", "line"} {
		t.Logf("%s: read %d of %d bytes", name, p[i].read, len(p[i].b))
		if p[i].read == 0 || p[i].read >= len(p[i].b)*3/4 {
			t.Errorf("%s: read %d of %d bytes", name, p[i].read, len(p[i].b))
		}
	}
}

// Readers on many goroutines read different units of a lazy Data at once
// (run with -race).
func TestNewLazyConcurrent(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, "lib", "libc.so.6.debug")
	_, d, _ := lazyFromELF(t, path)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		std, _, _ := lazyFromELF(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := compareLines(std, d, 100*(g+1)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// walk describes every entry (up to max) and every unit's line rows, as
// a Reader and LineReader give them, errors included.
func walk(d *dwarf.Data, max int) string {
	var sb strings.Builder
	r := d.Reader()
	for n := 0; n < max; n++ {
		e, err := r.Next()
		if err != nil {
			fmt.Fprintf(&sb, "error %v\n", err)
			break
		}
		if e == nil {
			break
		}
		fmt.Fprintf(&sb, "%#x %v %v %d\n", e.Offset, e.Tag, e.Children, len(e.Field))
		for _, f := range e.Field {
			fmt.Fprintf(&sb, "  %v %v\n", f.Attr, f.Val)
		}
		if e.Tag != dwarf.TagCompileUnit {
			continue
		}
		lr, err := d.LineReader(e)
		fmt.Fprintf(&sb, "lines %v\n", err)
		for lr != nil && n < max {
			var le dwarf.LineEntry
			if err := lr.Next(&le); err != nil {
				fmt.Fprintf(&sb, "  %v\n", err)
				break
			}
			n++
			fmt.Fprintf(&sb, "  %#x %d %v\n", le.Address, le.Line, le.EndSequence)
		}
	}
	return sb.String()
}

// FuzzNewLazy mutates the test program's .debug_info, .debug_abbrev and
// .debug_line: where New reads them, a lazy Data given a few bytes at a
// time reads every entry and line as New's does; it never panics.
func FuzzNewLazy(f *testing.F) {
	_, sec := openELF(f, filepath.Join("..", "..", "symbols", "testdata", "prog"))
	f.Add(sec["info"], sec["abbrev"], sec["line"])
	f.Add(sec["info"][:len(sec["info"])/2], sec["abbrev"], sec["line"][:100])
	f.Add(sec["info"], sec["abbrev"][:len(sec["abbrev"])-10], sec["line"])
	f.Fuzz(func(t *testing.T, info, abbrev, line []byte) {
		add := func(d *dwarf.Data) {
			addSections(d, sec)
		}
		lazy, lerr := dwarf.NewLazy(&prefixOnly{b: abbrev}, &prefixOnly{b: info}, &prefixOnly{b: line}, sec["ranges"], sec["str"])
		d, err := dwarf.New(abbrev, nil, nil, info, line, nil, sec["ranges"], sec["str"])
		if lerr != nil {
			if err == nil {
				t.Fatalf("NewLazy: %v, New none", lerr)
			}
			return
		}
		add(lazy)
		got := walk(lazy, 5000)
		// A lazy Data seeded with the first half of the headers the walk
		// read (NewLazyWithUnits) walks the same.
		hs := lazy.UnitHeadersRead()
		if k := hs.Len() / 2; k > 0 {
			seeded, serr := dwarf.NewLazyWithUnits(&prefixOnly{b: abbrev}, &prefixOnly{b: info}, &prefixOnly{b: line}, sec["ranges"], sec["str"], hs[:k*dwarf.UnitHeaderSize])
			if serr != nil {
				t.Fatalf("NewLazyWithUnits with %d headers a lazy Data read: %v", k, serr)
			}
			add(seeded)
			if s := walk(seeded, 5000); s != got {
				t.Fatalf("seeded:\n%s\nlazy:\n%s", s, got)
			}
		}
		if err != nil {
			return // New refuses what a lazy Data reports later
		}
		add(d)
		if want := walk(d, 5000); got != want {
			t.Fatalf("lazy:\n%s\nNew:\n%s", got, want)
		}
	})
}
