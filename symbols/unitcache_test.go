package symbols

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
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
	if err != nil || x.tab.numRanges() == 0 {
		tb.Fatalf("index of %d ranges: %v", x.tab.numRanges(), err)
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
	if y == nil || !reflect.DeepEqual(y.tab, x.tab) || len(y.units.chunks) != len(x.units.chunks) {
		t.Fatalf("decoded %+v, want %+v", y, x)
	}
	for i := range y.tab.numStarts() {
		u, w := y.unit(i), x.unit(i)
		if u.off != w.off || u.end != w.end {
			t.Errorf("unit %d: %#x-%#x, want %#x-%#x", i, u.off, u.end, w.off, w.end)
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
	empty := encodeUnits(&dwarfIndex{tab: unitTable{starts: x.tab.starts}}, key)
	if err := os.WriteFile(filepath.Join(string(dir), "units"), empty, 0o644); err != nil {
		t.Fatal(err)
	}
	noLines(t, progLines(t), "cached index")
	// A damaged index is made again, with the same lines.
	if err := os.WriteFile(filepath.Join(string(dir), "units"), b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if got := progLines(t); !reflect.DeepEqual(got, want) {
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
	e := encodeUnits(&dwarfIndex{tab: unitTable{starts: x.tab.starts}}, key)
	f.Add(e[:len(e)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		y := decodeUnits(data, key, x.d)
		if y == nil {
			return
		}
		var buf []Line
		for i := range y.tab.numRanges() {
			r := y.tab.rangeAt(i)
			buf = y.lines(r.lo, buf[:0])
			buf = y.lines(r.hi-1, buf[:0])
		}
	})
}

// The unit headers are stored by the first Open and read back as made; a
// second Open uses them (a valid entry of no units leaves it without
// lines); entries damaged, cut short or of other sections are ignored.
func TestUnitHeadersCache(t *testing.T) {
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := linesEverywhere(t, f)
	name := filepath.Join(string(f.dw.cache), "unithdrs")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var hs []dwarf.UnitHeader
	if t := decodeUnitHeaders(b, f.dw.key); t != nil {
		for i := range t.Len() {
			hs = append(hs, t.At(i))
		}
	}
	if len(hs) == 0 || !reflect.DeepEqual(hs, f.dw.d.UnitHeaders()) {
		t.Fatalf("stored headers %+v, want %+v", hs, f.dw.d.UnitHeaders())
	}
	other := append([]byte(nil), f.dw.key...)
	other[0]++
	if decodeUnitHeaders(b, other) != nil {
		t.Error("headers of other sections used")
	}
	for i := 0; i < len(b); i++ {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x08
		if decodeUnitHeaders(bad, f.dw.key) != nil {
			t.Errorf("headers with byte %d changed used", i)
		}
		if decodeUnitHeaders(b[:i], f.dw.key) != nil {
			t.Errorf("headers cut to %d bytes used", i)
		}
	}
	// Units and details cached for the real headers would give lines
	// without reading a header: make them again.
	var read []*cuInfo
	for i := range f.dw.tab.numStarts() {
		if u := f.dw.units.load(i); u != nil {
			read = append(read, u)
		}
	}
	if f.dw.ar != nil { // found by .debug_aranges
		for _, au := range f.dw.ar.units {
			if au != nil && au.u != nil {
				read = append(read, au.u)
			}
		}
	}
	if len(read) == 0 {
		t.Fatal("no unit read")
	}
	os.Remove(filepath.Join(string(f.dw.cache), "units"))
	setPackEntry(t, f.dw.cache, detailName(read[0]), nil)
	if err := os.WriteFile(name, encodeUnitHeaders(nil, f.dw.key), 0o644); err != nil {
		t.Fatal(err)
	}
	noLines(t, progLines(t), "cached headers")
	if err := os.WriteFile(name, b[:len(b)-2], 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(string(f.dw.cache), "units"))
	setPackEntry(t, f.dw.cache, detailName(read[0]), nil)
	if got := progLines(t); !reflect.DeepEqual(got, want) {
		t.Error("lines differ after damaged cached headers")
	}
}

// FuzzUnitHeaders decodes cached unit headers (the fuzzer's bytes with a
// valid CRC) and reads testdata/prog's entries through the units they
// give: an error or entries, never a panic or a hang.
func FuzzUnitHeaders(f *testing.F) {
	g, key, x := progIndex(f)
	b := encodeUnitHeaders(x.d.UnitHeadersRead(), key)
	f.Add(b[:len(b)-4])
	e := encodeUnitHeaders(nil, key)
	f.Add(e[:len(e)-4])
	sec := map[string][]byte{}
	for _, name := range []string{"abbrev", "info", "line", "str", "line_str", "addr", "str_offsets", "rnglists"} {
		if s := g.ef.Section(".debug_" + name); s != nil {
			sec[name], _ = s.Data()
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		hs := decodeUnitHeaders(data, key)
		if hs == nil {
			return
		}
		d, err := dwarf.NewWithUnitTable(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, nil, sec["str"], hs)
		if err != nil {
			return
		}
		if addDWARF5(d, sec) != nil {
			return
		}
		// Units placed anywhere the records say (each within
		// .debug_info, in order) are read without a panic.
		r := d.Reader()
		for n := 0; n < 10000; n++ {
			if e, err := r.Next(); e == nil || err != nil {
				break
			}
		}
	})
}

// libc's unit index (thousands of units) read back in place finds, for
// every range's ends, the unit the index made by reading the units finds,
// and makes only the units looked up.
func TestUnitIndexCacheLibc(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	libc := filepath.Join(dir, "lib", "libc.so.6")
	f, err := Open(libc, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.AttachDebug(libc + ".debug"); err != nil {
		t.Fatal(err)
	}
	f.dwarfOnce.Do(f.loadDWARF)
	if f.dw == nil {
		t.Fatal(f.dwErr)
	}
	x, err := buildDWARFIndex(f.dw.d)
	if err != nil || x.tab.numStarts() < 1000 {
		t.Fatalf("%d units: %v", x.tab.numStarts(), err)
	}
	key := []byte("libc")
	y := decodeUnits(encodeUnits(x, key), key, x.d)
	if y == nil {
		t.Fatal("index not read back")
	}
	made := func(x *dwarfIndex) (n int) {
		for i := range x.tab.numStarts() {
			if x.units.load(i) != nil {
				n++
			}
		}
		return n
	}
	pc := x.tab.rangeAt(x.tab.numRanges() / 2).lo
	if u, w := y.unitFor(pc), x.unitFor(pc); u == nil || u.off != w.off || u.end != w.end || made(y) != 1 {
		t.Fatalf("unit for %#x: %+v, want %+v; %d units made", pc, u, w, made(y))
	}
	// A unit ends where the next one's entry starts, as the units'
	// headers say.
	next := map[dwarf.Offset]dwarf.Offset{}
	hs := x.d.UnitHeaders()
	for k, h := range hs {
		next[h.Off] = ^dwarf.Offset(0)
		if k+1 < len(hs) {
			next[h.Off] = hs[k+1].Off
		}
	}
	for i := range x.tab.numRanges() {
		r := x.tab.rangeAt(i)
		for _, pc := range []uint64{r.lo, r.hi - 1, r.hi} {
			u, w := y.unitFor(pc), x.unitFor(pc)
			if (u == nil) != (w == nil) || u != nil && (u.off != w.off || u.end != w.end) {
				t.Fatalf("unit for %#x: %+v, want %+v", pc, u, w)
			}
			if u == nil {
				continue
			}
			if end, ok := next[u.off]; !ok || u.end != end {
				t.Fatalf("unit for %#x: %#x-%#x, want the end %#x", pc, u.off, u.end, end)
			}
		}
	}
}
