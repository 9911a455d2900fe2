package dwarf_test

import (
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// TestNewLazyWithUnits: a lazy Data seeded with the headers another lazy
// Data read (UnitHeadersRead) finds those units without reading the
// headers before them, answers as the standard library does for them and
// for the units after, and refuses headers that do not fit.
func TestNewLazyWithUnits(t *testing.T) {
	path := filepath.Join("..", "..", "symbols", "testdata", "prog")
	if dir, err := corpus.Find("user"); err == nil {
		path = filepath.Join(dir, "lib", "libc.so.6.debug")
	}
	std, first, _ := lazyFromELF(t, path)
	_, all := fromELF(t, path)
	hs := all.UnitHeaders()
	if len(hs) < 2 {
		t.Skip("one unit")
	}
	// The first run reads the units up to the middle one.
	mid := hs[len(hs)/2]
	if _, _, ok := first.UnitAt(mid.Base); !ok {
		t.Fatal("no unit at", mid.Base)
	}
	seed := first.UnitHeadersRead()
	if seed.Len() < len(hs)/2 || seed.Len() == len(hs) {
		t.Fatalf("%d headers read of %d after looking up unit %d", seed.Len(), len(hs), len(hs)/2)
	}
	// The headers are kept in a buffer with room after them: reading
	// further units must not write into it.
	buf := make([]byte, len(seed), len(seed)+len(hs)*dwarf.UnitHeaderSize)
	copy(buf, seed)
	spare := buf[len(buf):cap(buf)]
	for i := range spare {
		spare[i] = 0xee
	}

	_, sec := openELF(t, path)
	info := &prefixOnly{b: sec["info"]}
	d, err := dwarf.NewLazyWithUnits(&prefixOnly{b: sec["abbrev"]}, info, &prefixOnly{b: sec["line"]}, sec["ranges"], sec["str"], dwarf.UnitHeaderTable(buf))
	if err != nil {
		t.Fatal(err)
	}
	addSections(d, sec)
	if dwarf.MadeUnits(d) != 0 || d.UnitHeadersRead().Len() != seed.Len() {
		t.Fatalf("%d units made, %d headers, before any lookup", dwarf.MadeUnits(d), d.UnitHeadersRead().Len())
	}
	// A unit the seed holds: found without reading further headers.
	k := len(hs) / 3
	if entry, next, ok := d.UnitAt(hs[k].Base); !ok || entry != hs[k].Off || next != hs[k].End {
		t.Fatalf("UnitAt(%#x) = %#x, %#x, %v", hs[k].Base, entry, next, ok)
	}
	if err := compareUnit(std, d, hs[k], hs[k].Off); err != nil {
		t.Fatal(err)
	}
	if n := d.UnitHeadersRead().Len(); n != seed.Len() {
		t.Errorf("%d headers after looking up a seeded unit, want the %d seeded", n, seed.Len())
	}
	// A unit past the seed: read on demand, as NewLazy reads it.
	last := hs[len(hs)-1]
	if entry, next, ok := d.UnitAt(last.Base); !ok || entry != last.Off || next != last.End {
		t.Fatalf("UnitAt(%#x) = %#x, %#x, %v", last.Base, entry, next, ok)
	}
	if err := compareUnit(std, d, last, last.Off); err != nil {
		t.Fatal(err)
	}
	for i, b := range spare {
		if b != 0xee {
			t.Fatalf("byte %d after the seeded headers was overwritten", i)
		}
	}
	if err := compareLines(std, d, len(hs)); err != nil {
		t.Error(err)
	}

	// Headers that do not fit the section are refused.
	bad := map[string]dwarf.UnitHeaderTable{
		"not whole records": dwarf.UnitHeaderTable(seed[:len(seed)-1]),
		"out of order":      append(append(dwarf.UnitHeaderTable(nil), seed[dwarf.UnitHeaderSize:2*dwarf.UnitHeaderSize]...), seed[:dwarf.UnitHeaderSize]...),
		"past the section":  dwarf.AppendUnitHeaders(nil, []dwarf.UnitHeader{{Base: 0, Off: 11, End: dwarf.Offset(len(sec["info"]) + 1), Vers: 5, ASize: 8}}),
	}
	for name, tab := range bad {
		_, err := dwarf.NewLazyWithUnits(&prefixOnly{b: sec["abbrev"]}, &prefixOnly{b: sec["info"]}, nil, sec["ranges"], sec["str"], tab)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
