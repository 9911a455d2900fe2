package dwarf_test

import (
	"testing"

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
