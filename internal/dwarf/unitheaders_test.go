package dwarf_test

import (
	"bytes"
	stddwarf "debug/dwarf"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// A Data made with NewWithUnits from another's headers decodes every entry
// as the standard library does; headers that do not fit are refused.
func TestNewWithUnits(t *testing.T) {
	for _, path := range []string{"../../symbols/testdata/prog", "../../symbols/testdata/prog-df"} {
		std, d := fromELF(t, path)
		_, sec := openELF(t, path)
		hs := d.UnitHeaders()
		if len(hs) == 0 {
			t.Fatalf("%s: no units", path)
		}
		e, err := dwarf.NewWithUnits(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, sec["ranges"], sec["str"], hs)
		if err != nil {
			t.Fatal(err)
		}
		addSections(e, sec)
		if n, err := compareAll(std, e); err != nil || n == 0 {
			t.Errorf("%s: %d entries: %v", path, n, err)
		}
		for i, bad := range []func(h *dwarf.UnitHeader){
			func(h *dwarf.UnitHeader) { h.End = dwarf.Offset(len(sec["info"]) + 1) },
			func(h *dwarf.UnitHeader) { h.Off = h.End + 1 },
			func(h *dwarf.UnitHeader) { h.Vers = 6 },
		} {
			b := append([]dwarf.UnitHeader(nil), hs...)
			bad(&b[len(b)-1])
			if _, err := dwarf.NewWithUnits(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, nil, nil, b); err == nil {
				t.Errorf("%s: bad header %d accepted", path, i)
			}
		}
	}
}

// withUnitsFromELF builds the standard library's Data of the file at path
// and a Data of the same sections made by NewWithUnits from the headers
// New reads.
func withUnitsFromELF(t *testing.T, path string) (*stddwarf.Data, *dwarf.Data, []dwarf.UnitHeader) {
	t.Helper()
	std, d := fromELF(t, path)
	_, sec := openELF(t, path)
	hs := d.UnitHeaders()
	e, err := dwarf.NewWithUnits(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, sec["ranges"], sec["str"], hs)
	if err != nil {
		t.Fatal(err)
	}
	addSections(e, sec)
	return std, e, hs
}

// compareUnit compares the entries of the unit of header h from off (an
// offset in it) to its end, and the unit's line table, with the standard
// library's; the Readers are made and sought as a lookup makes them.
func compareUnit(std *stddwarf.Data, d *dwarf.Data, h dwarf.UnitHeader, off dwarf.Offset) error {
	rs, r := std.Reader(), d.Reader()
	rs.Seek(stddwarf.Offset(off))
	r.Seek(off)
	for n := 0; ; n++ {
		want, werr := rs.Next()
		got, gerr := r.Next()
		if werr != nil || gerr != nil || want == nil || got == nil {
			if (werr != nil) != (gerr != nil) || (want == nil) != (got == nil) {
				return fmt.Errorf("unit at %#x, entry %d: %v %v, want %v %v", h.Off, n, got, gerr, want, werr)
			}
			return werr // the end of .debug_info, both
		}
		if got.Offset >= h.End {
			// The next unit's first entry: where a lookup of this unit stops.
			return sameEntry(std, d, want, got)
		}
		if err := sameEntry(std, d, want, got); err != nil {
			return fmt.Errorf("unit at %#x, entry %d: %w", h.Off, n, err)
		}
		if got.Tag == dwarf.TagCompileUnit {
			if err := sameLines(std, d, want, got); err != nil {
				return err
			}
		}
	}
}

// A Data, however made, makes a unit only when a lookup reaches it: none
// when made, and after looking up a few units of libc's thousands, those
// and the first (every Reader starts there). What the lookups find
// through units made so is what the standard library finds.
func TestUnitsMadeOnUse(t *testing.T) {
	path := filepath.Join("..", "..", "symbols", "testdata", "prog")
	if dir, err := corpus.Find("user"); err == nil {
		path = filepath.Join(dir, "lib", "libc.so.6.debug")
	}
	t.Run("NewWithUnits", func(t *testing.T) {
		std, d, hs := withUnitsFromELF(t, path)
		if got := d.UnitHeaders(); !reflect.DeepEqual(got, hs) {
			t.Fatal("UnitHeaders differ from those given")
		}
		unitsMadeOnUse(t, std, d, hs)
	})
	t.Run("New", func(t *testing.T) {
		std, d := fromELF(t, path)
		unitsMadeOnUse(t, std, d, d.UnitHeaders())
	})
	t.Run("NewLazy", func(t *testing.T) {
		_, e := fromELF(t, path)
		std, d, _ := lazyFromELF(t, path)
		unitsMadeOnUse(t, std, d, e.UnitHeaders())
	})
}

// unitsMadeOnUse looks up a few units of d, a Data whose units' headers
// are hs, and compares them with std's.
func unitsMadeOnUse(t *testing.T, std *stddwarf.Data, d *dwarf.Data, hs []dwarf.UnitHeader) {
	if got := dwarf.MadeUnits(d); got != 0 {
		t.Fatalf("%d of %d units made before any lookup", got, len(hs))
	}
	picks := []int{len(hs) / 2, len(hs) - 1, len(hs) / 3}
	if len(hs) < 8 {
		picks = []int{len(hs) - 1}
	}
	for n, k := range picks {
		h := hs[k]
		entry, next, ok := d.UnitAt(h.Base)
		if !ok || entry != h.Off || next != h.End {
			t.Fatalf("UnitAt(%#x) = %#x, %#x, %v; want %#x, %#x", h.Base, entry, next, ok, h.Off, h.End)
		}
		if _, _, ok := d.UnitAt(h.Base + 1); ok {
			t.Fatalf("UnitAt(%#x) found a unit inside one", h.Base+1)
		}
		if err := compareUnit(std, d, h, h.Off); err != nil {
			t.Fatal(err)
		}
		if made, most := dwarf.MadeUnits(d), 1+2*(n+1); made > most || made < 2 && len(hs) > 1 {
			// The first, this one and the next (whose first entry ends
			// the walk), and those of the picks before.
			t.Fatalf("%d of %d units made after looking up %d", made, len(hs), n+1)
		}
	}
	// A seek into the middle of a unit (offsetToUnit by the headers).
	k := len(hs) / 4
	r := std.Reader()
	r.Seek(stddwarf.Offset(hs[k].Off))
	r.Next()
	child, err := r.Next()
	if err != nil || child == nil {
		t.Fatal("no entry after the unit's", err)
	}
	if err := compareUnit(std, d, hs[k], dwarf.Offset(child.Offset)); err != nil {
		t.Fatal(err)
	}
	if made := dwarf.MadeUnits(d); made > 1+2*(len(picks)+1) {
		t.Fatalf("%d units made after %d lookups", made, len(picks)+1)
	}
}

// A Data made by NewWithUnits reads every entry as the standard library
// does, making every unit.
func TestNewWithUnitsSameEntries(t *testing.T) {
	path := filepath.Join("..", "..", "symbols", "testdata", "prog")
	if dir, err := corpus.Find("user"); err == nil {
		path = filepath.Join(dir, "lib", "libc.so.6.debug")
	}
	std, d, hs := withUnitsFromELF(t, path)
	if n, err := compareAll(std, d); err != nil || n < 50 {
		t.Fatalf("%d entries: %v", n, err)
	}
	if made := dwarf.MadeUnits(d); made == 0 || made > len(hs) {
		t.Fatalf("%d of %d units made", made, len(hs))
	}
}

// Readers on several goroutines make and read the same units of one Data
// made by NewWithUnits, and different ones (run with -race).
func TestNewWithUnitsConcurrent(t *testing.T) {
	path := filepath.Join("..", "..", "symbols", "testdata", "prog")
	if dir, err := corpus.Find("user"); err == nil {
		path = filepath.Join(dir, "lib", "libc.so.6.debug")
	}
	_, d, hs := withUnitsFromELF(t, path)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		std, _ := fromELF(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				k := (i * 7 * (g%2 + 1)) % len(hs) // the same units on even and odd goroutines
				if err := compareUnit(std, d, hs[k], hs[k].Off); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A UnitHeaderTable gives back the headers AppendUnitHeaders wrote; one
// cut inside a record, or a header whose address size or version does
// not fit its byte, is refused.
func TestUnitHeaderTable(t *testing.T) {
	_, d, hs := withUnitsFromELF(t, filepath.Join("..", "..", "symbols", "testdata", "prog-df"))
	tab := dwarf.UnitHeaderTable(dwarf.AppendUnitHeaders(nil, hs))
	if tab.Len() != len(hs) || len(tab) != len(hs)*dwarf.UnitHeaderSize {
		t.Fatalf("%d records in %d bytes, want %d", tab.Len(), len(tab), len(hs))
	}
	// And one of each field's widest values (64-bit DWARF).
	wide := dwarf.UnitHeader{Base: 1<<32 - 40, Off: 1<<32 - 16, End: 1<<32 - 1, Vers: 255, UType: 255, ASize: 255, Is64: true, Abbrev: 1<<64 - 3}
	all := append(append([]dwarf.UnitHeader(nil), hs...), wide)
	for i, h := range all {
		if got := dwarf.UnitHeaderTable(dwarf.AppendUnitHeaders(nil, all)).At(i); got != h {
			t.Errorf("record %d: %+v, want %+v", i, got, h)
		}
	}
	if got := d.UnitHeaders(); !reflect.DeepEqual(got, hs) {
		t.Errorf("UnitHeaders %+v, want %+v", got, hs)
	}
	info := make([]byte, hs[len(hs)-1].End)
	info[5] = 5 // a little-endian version, for the byte order
	if _, err := dwarf.NewWithUnitTable(nil, nil, nil, info, nil, nil, nil, nil, tab); err != nil {
		t.Fatal(err)
	}
	if _, err := dwarf.NewWithUnitTable(nil, nil, nil, info, nil, nil, nil, nil, tab[:len(tab)-1]); err == nil {
		t.Error("a table cut inside a record accepted")
	}
	for _, bad := range []func(h *dwarf.UnitHeader){
		func(h *dwarf.UnitHeader) { h.ASize = 256 + 8 },
		func(h *dwarf.UnitHeader) { h.Vers = 256 + 5 },
	} {
		b := append([]dwarf.UnitHeader(nil), hs...)
		bad(&b[0])
		if _, err := dwarf.NewWithUnits(nil, nil, nil, info, nil, nil, nil, nil, b); err == nil {
			t.Errorf("header %+v accepted", b[0])
		}
	}
}

// compareReadingUnits makes a Data of sec with info replaced by info, with
// New and with NewReadingUnits (reading the headers from a copy of info),
// and returns an error if they differ: in their errors, or their headers.
func compareReadingUnits(sec map[string][]byte, info []byte) (int, error) {
	want, werr := dwarf.New(sec["abbrev"], nil, nil, info, sec["line"], nil, sec["ranges"], sec["str"])
	got, gerr := dwarf.NewReadingUnits(sec["abbrev"], nil, nil, info, sec["line"], nil, sec["ranges"], sec["str"], bytes.NewReader(slices.Clone(info)))
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		return 0, fmt.Errorf("error %v, New's %v", gerr, werr)
	}
	if werr != nil {
		return 0, nil
	}
	if w, g := want.UnitHeaders(), got.UnitHeaders(); !reflect.DeepEqual(w, g) {
		return 0, fmt.Errorf("%d headers %+v, New's %d %+v", len(g), g, len(w), w)
	}
	return len(want.UnitHeaders()), nil
}

// NewReadingUnits reads the unit headers New reads, from the file.
func TestNewReadingUnits(t *testing.T) {
	paths := []string{filepath.Join("..", "..", "symbols", "testdata", "prog")}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	if _, vmlinux, err := corpus.FindTaskDump(); err == nil {
		paths = append(paths, vmlinux)
	}
	for _, p := range paths {
		_, sec := openELF(t, p)
		n, err := compareReadingUnits(sec, sec["info"])
		if err != nil || n == 0 {
			t.Fatalf("%s: %d units, %v", p, n, err)
		}
		t.Logf("%s: %d units", p, n)
	}
	_, sec := openELF(t, filepath.Join("..", "..", "symbols", "testdata", "prog"))
	info := sec["info"]
	for _, cut := range []int{len(info) - 1, len(info) / 2, 13, 5} {
		if _, err := compareReadingUnits(sec, info[:cut]); err != nil {
			t.Errorf("info cut to %d bytes: %v", cut, err)
		}
	}
	// A read that fails: New's headers all the same.
	d, err := dwarf.NewReadingUnits(sec["abbrev"], nil, nil, info, sec["line"], nil, sec["ranges"], sec["str"], bytes.NewReader(nil))
	if err != nil || len(d.UnitHeaders()) == 0 {
		t.Errorf("with failing reads: %v, %d units", err, len(d.UnitHeaders()))
	}
}

// FuzzNewReadingUnits mutates the test program's .debug_info:
// NewReadingUnits gives New's headers, or New's error.
func FuzzNewReadingUnits(f *testing.F) {
	_, sec := openELF(f, filepath.Join("..", "..", "symbols", "testdata", "prog"))
	f.Add(sec["info"])
	f.Add(sec["info"][:len(sec["info"])/2])
	f.Fuzz(func(t *testing.T, info []byte) {
		if _, err := compareReadingUnits(sec, info); err != nil {
			t.Fatal(err)
		}
	})
}
