package symbols

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// progIndex returns testdata/prog's DWARF, the key of its sections and the
// unit index made by reading every unit.
func progIndex(tb testing.TB) (*File, []byte, *dwarfIndex) {
	tb.Helper()
	f, err := Open("testdata/prog", 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	d, key, _, err := readDWARF(f.ef, f.r, f.Path, f.mapped)
	if err != nil {
		tb.Fatal(err)
	}
	x, err := buildDWARFIndex(d)
	if err != nil || len(x.ranges) == 0 {
		tb.Fatalf("index of %d ranges: %v", len(x.ranges), err)
	}
	return f, key, x
}

// The unit index read back from the cache is the one made by reading the
// units; the cache is what a second Open uses; a cached index of other
// sections, or damaged, or cut short, is ignored.
func TestUnitIndexCache(t *testing.T) {
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	f, key, x := progIndex(t)
	b := encodeUnits(x, key)
	y := decodeUnits(b, key, x.d)
	if y == nil || !reflect.DeepEqual(y.starts, x.starts) || !reflect.DeepEqual(y.ranges, x.ranges) || len(y.units) != len(x.units) {
		t.Fatalf("decoded %+v, want %+v", y, x)
	}
	for i, u := range y.units {
		if u.off != x.units[i].off || u.end != x.units[i].end {
			t.Errorf("unit %d: %#x-%#x, want %#x-%#x", i, u.off, u.end, x.units[i].off, x.units[i].end)
		}
	}
	other := append([]byte(nil), key...)
	other[0]++ // another .debug_info size
	if decodeUnits(b, other, x.d) != nil {
		t.Error("index of other sections used")
	}
	for i := 0; i < len(b); i += max(1, len(b)/50) {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x40
		if decodeUnits(bad, key, x.d) != nil {
			t.Errorf("index with byte %d changed used", i)
		}
		if decodeUnits(b[:i], key, x.d) != nil {
			t.Errorf("index cut to %d bytes used", i)
		}
	}

	// Open stores the index and a second Open uses it: an index without
	// ranges (valid, but not the file's) leaves it without lines.
	want := linesEverywhere(t, f)
	dir := debugCacheFor(f.ef, f.Path)
	stored, err := os.ReadFile(filepath.Join(string(dir), "units"))
	if err != nil || !reflect.DeepEqual(stored, b) {
		t.Fatalf("stored index %d bytes, %v; want %d bytes", len(stored), err, len(b))
	}
	empty := encodeUnits(&dwarfIndex{starts: x.starts}, key)
	if err := os.WriteFile(filepath.Join(string(dir), "units"), empty, 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, l := range linesEverywhere(t, g) {
		if len(l) > 0 {
			t.Fatalf("cached index not used: %+v", l)
		}
	}
	// A damaged index is made again, with the same lines.
	if err := os.WriteFile(filepath.Join(string(dir), "units"), b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := linesEverywhere(t, h); !reflect.DeepEqual(got, want) {
		t.Error("lines differ after a damaged cached index")
	}
}

// FuzzUnitIndex decodes cached unit indexes (the fuzzer's bytes with a
// valid CRC, so that what follows the check is reached) and looks lines up
// with what comes back: never a panic.
func FuzzUnitIndex(f *testing.F) {
	_, key, x := progIndex(f)
	b := encodeUnits(x, key)
	f.Add(b[:len(b)-4])
	e := encodeUnits(&dwarfIndex{starts: x.starts}, key)
	f.Add(e[:len(e)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		y := decodeUnits(data, key, x.d)
		if y == nil {
			return
		}
		var buf []Line
		for _, r := range y.ranges {
			buf = y.lines(r.lo, buf[:0])
			buf = y.lines(r.hi-1, buf[:0])
		}
	})
}
