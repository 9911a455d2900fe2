package dwarf_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// Reading a line table from a mark taken after any row gives the rows
// that followed that row, and a mark outside the program is refused.
func TestLineMark(t *testing.T) {
	_, d := fromELF(t, "../../symbols/testdata/prog")
	r := d.Reader()
	cu, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	lr, err := d.LineReader(cu)
	if err != nil || lr == nil {
		t.Fatalf("no line table: %v", err)
	}
	var rows []dwarf.LineEntry
	var marks []dwarf.LineMark
	var le dwarf.LineEntry
	for lr.Next(&le) == nil {
		rows = append(rows, le)
		marks = append(marks, lr.Mark())
	}
	if len(rows) < 10 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, m := range marks {
		if err := lr.SeekMark(m); err != nil {
			t.Fatal(err)
		}
		for j := i + 1; j < len(rows); j++ {
			if err := lr.Next(&le); err != nil {
				t.Fatalf("after row %d: row %d: %v", i, j, err)
			}
			if le != rows[j] {
				t.Fatalf("after row %d: row %d is %+v, want %+v", i, j, le, rows[j])
			}
		}
	}
	bad := marks[0]
	bad.Off = 1
	if lr.SeekMark(bad) == nil {
		t.Error("a mark in the header accepted")
	}
	bad.Off = marks[len(marks)-1].Off + 1
	if lr.SeekMark(bad) == nil {
		t.Error("a mark past the program accepted")
	}
}

// LineProgram reads the rows LineReader reads, without file names: File
// nil, Mark's File the index of the row's file in LineReader's Files.
func TestLineProgram(t *testing.T) {
	_, d := fromELF(t, "../../symbols/testdata/prog")
	cu, err := d.Reader().Next()
	if err != nil {
		t.Fatal(err)
	}
	lr, err := d.LineReader(cu)
	if err != nil || lr == nil {
		t.Fatalf("no line table: %v", err)
	}
	lp, err := d.LineProgram(cu)
	if err != nil || lp == nil || len(lp.Files()) != 0 {
		t.Fatalf("line program %v, %v", lp, err)
	}
	var want, got dwarf.LineEntry
	n := 0
	for lr.Next(&want) == nil {
		if err := lp.Next(&got); err != nil {
			t.Fatalf("row %d: %v", n, err)
		}
		file := lr.Files()[lp.Mark().File]
		if got.File != nil || file != want.File {
			t.Fatalf("row %d: file %v (index %d: %v), want %v", n, got.File, lp.Mark().File, file, want.File)
		}
		got.File = want.File
		if got != want {
			t.Fatalf("row %d: %+v, want %+v", n, got, want)
		}
		n++
	}
	if n < 10 || lp.Next(&got) == nil {
		t.Errorf("%d rows, then more", n)
	}
}

// compareNextAddress reads every line table of d with Next and with
// NextAddress and returns the rows read, or the first difference: the
// rows' addresses and ends, the marks after them, the errors.
func compareNextAddress(d *dwarf.Data) (int, error) {
	rows := 0
	r := d.Reader()
	for {
		cu, err := r.Next()
		if err != nil || cu == nil {
			return rows, nil
		}
		r.SkipChildren()
		lr, err := d.LineReader(cu)
		la, err2 := d.LineReader(cu)
		if err != nil || lr == nil || err2 != nil || la == nil {
			continue
		}
		var le dwarf.LineEntry
		for {
			werr := lr.Next(&le)
			addr, end, gerr := la.NextAddress()
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				return rows, fmt.Errorf("row %d: error %v, Next's %v", rows, gerr, werr)
			}
			if werr != nil {
				break
			}
			if addr != le.Address || end != le.EndSequence || la.Mark() != lr.Mark() {
				return rows, fmt.Errorf("row %d: %#x end %v mark %+v, Next's %+v mark %+v", rows, addr, end, la.Mark(), le, lr.Mark())
			}
			rows++
		}
	}
}

// NextAddress reads the rows Next reads (their addresses and ends, the
// state after them).
func TestNextAddress(t *testing.T) {
	paths := []string{"../../symbols/testdata/prog"}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	for _, p := range paths {
		_, d := fromELF(t, p)
		n, err := compareNextAddress(d)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if n < 50 {
			t.Fatalf("%s: %d rows", p, n)
		}
		t.Logf("%s: %d rows", p, n)
	}
}

// FuzzNextAddress mutates the test program's .debug_line: NextAddress
// reads what Next reads, never panics, and ends.
func FuzzNextAddress(f *testing.F) {
	_, sec := openELF(f, "../../symbols/testdata/prog")
	f.Add(sec["line"])
	f.Add(sec["line"][:len(sec["line"])/2])
	f.Fuzz(func(t *testing.T, line []byte) {
		d, err := dwarf.New(sec["abbrev"], nil, nil, sec["info"], line, nil, sec["ranges"], sec["str"])
		if err != nil {
			return
		}
		addSections(d, sec)
		if _, err := compareNextAddress(d); err != nil {
			t.Fatal(err)
		}
	})
}
