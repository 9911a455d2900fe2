package symbols

import (
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"
)

// progDetail returns testdata/prog's DWARF index (with the key of its
// sections), its first unit loaded without the debug cache, and the
// detail encodeDetail makes of it.
func progDetail(tb testing.TB) (*dwarfIndex, *cuInfo, []byte) {
	tb.Helper()
	_, key, x := progIndex(tb)
	u := x.unit(0)
	x.load(u)
	if u.err != nil || u.seqs == nil || len(u.top) == 0 {
		tb.Fatalf("unit %#x: %d sequences, %d functions, %v", u.off, len(u.seqs), len(u.top), u.err)
	}
	x.key = key
	det := unitDetail{seqs: u.seqs, files: u.callFiles}
	for _, r := range u.top {
		det.funcs = append(det.funcs, funcRange{lo: r.lo, hi: r.hi, off: r.s.off})
	}
	return x, u, encodeDetail(&det, key, u.off)
}

// A unit's detail is stored on its first load and read back as made; a
// second Open uses it; a detail of other sections, of another unit,
// damaged or cut short is ignored, and the lines are those of a run
// without the cache.
func TestUnitDetailCache(t *testing.T) {
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	x, u, b := progDetail(t)
	det := decodeDetail(b, x.key, u)
	if det != nil {
		numberBlocks(det.seqs) // as useSeqs did for u
	}
	if det == nil || !reflect.DeepEqual(det.seqs, u.seqs) || !reflect.DeepEqual(det.files, u.callFiles) || len(det.files) < 2 || len(det.funcs) != len(u.top) {
		t.Fatalf("decoded %+v, want sequences %+v and %d functions", det, u.seqs, len(u.top))
	}
	for i, f := range det.funcs {
		if r := u.top[i]; f.lo != r.lo || f.hi != r.hi || f.off != r.s.off {
			t.Errorf("function %d: %+v, want %#x-%#x at %#x", i, f, r.lo, r.hi, r.s.off)
		}
	}
	other := append([]byte(nil), x.key...)
	other[0]++ // another .debug_info size
	if decodeDetail(b, other, u) != nil {
		t.Error("detail of other sections used")
	}
	if decodeDetail(b, x.key, &cuInfo{off: u.off + 1, end: u.end}) != nil {
		t.Error("detail of another unit used")
	}
	for i := 0; i < len(b); i += max(1, len(b)/200) {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x40
		if decodeDetail(bad, x.key, u) != nil {
			t.Errorf("detail with byte %d changed used", i)
		}
		if decodeDetail(b[:i], x.key, u) != nil {
			t.Errorf("detail cut to %d bytes used", i)
		}
	}

	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := linesEverywhere(t, f)
	dir := debugCacheFor(f.ef, f.Path)
	name := detailName(u)
	stored := packEntries(t, dir)[name]
	if !reflect.DeepEqual(stored, b) {
		t.Fatalf("stored detail %d bytes, want %d bytes", len(stored), len(b))
	}
	// A valid detail without sequences or functions: no lines at all.
	empty := encodeDetail(&unitDetail{seqs: []lineSeq{}}, x.key, u.off)
	setPackEntry(t, dir, name, empty)
	noLines(t, progLines(t), "cached detail")
	// Damaged details are made again, with the same lines; the
	// functions of a detail without sequences are used, lines read
	// into rows.
	rows := encodeDetail(&unitDetail{funcs: det.funcs}, x.key, u.off)
	for _, damaged := range [][]byte{b[:len(b)-1], append(b[:len(b)-4:len(b)-4], 1, 2, 3, 4), rows} {
		setPackEntry(t, dir, name, damaged)
		if got := progLines(t); !reflect.DeepEqual(got, want) {
			t.Errorf("lines differ with a cached detail of %d bytes", len(damaged))
		}
	}
}

// FuzzUnitDetail decodes cached unit details (the fuzzer's bytes with a
// valid CRC, so that what follows the check is reached) for
// testdata/prog's first unit and looks lines and scopes up with what
// comes back: never a panic.
func FuzzUnitDetail(f *testing.F) {
	x, u, b := progDetail(f)
	f.Add(b[:len(b)-4])
	e := encodeDetail(&unitDetail{seqs: []lineSeq{}}, x.key, u.off)
	f.Add(e[:len(e)-4])
	e = encodeDetail(&unitDetail{funcs: []funcRange{{lo: 1, hi: 2, off: u.off + 1}}}, x.key, u.off)
	f.Add(e[:len(e)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		det := decodeDetail(data, x.key, u)
		if det == nil {
			return
		}
		v := &cuInfo{off: u.off, end: u.end}
		if det.seqs != nil {
			v.useSeqs(unitLineProgram(t, x.d, u.off), det.seqs, det.files)
		}
		v.top = det.level()
		var pcs []uint64
		for _, s := range det.seqs {
			pcs = append(pcs, s.lo, s.end-1, s.end)
			for _, m := range s.marks {
				pcs = append(pcs, m.Address)
			}
		}
		for _, f := range det.funcs {
			pcs = append(pcs, f.lo, f.hi-1)
		}
		var chain []*scope
		for _, pc := range pcs {
			v.line(pc)
			chain = v.scopesAt(x, pc, chain[:0])
		}
	})
}
