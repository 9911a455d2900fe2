package symbols

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/unwind-dev/unwind/internal/dwarf"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// libcAranges returns libc's debug file's .debug_aranges, decompressed.
func libcAranges(tb testing.TB) []byte {
	dir, err := corpus.Find("user")
	if err != nil {
		tb.Skip(err)
	}
	ef, err := elf.Open(filepath.Join(dir, "lib", "libc.so.6.debug"))
	if err != nil {
		tb.Fatal(err)
	}
	defer ef.Close()
	b, err := ef.Section(".debug_aranges").Data()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkParseAranges: libc's .debug_aranges read into the sorted
// index a warm run whose cache holds only prefixes of the sections makes.
func BenchmarkParseAranges(b *testing.B) {
	data := libcAranges(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if parseAranges(data) == nil {
			b.Fatal("no index")
		}
	}
}

// parseArangesRef is parseAranges as it was before it learnt to size its
// slices in advance, to look units up in a map only when their offsets go
// backwards, and to sort packed integers; with a stable sort, which the
// new one is. TestParseArangesRef and FuzzAranges hold parseAranges to it.
func parseArangesRef(b []byte) *arIndex {
	if len(b) == 0 {
		return nil
	}
	x := &arIndex{}
	unitOf := map[uint64]int{}
	for len(b) > 0 {
		if len(b) < 4 {
			return nil
		}
		n, hdr := uint64(binary.LittleEndian.Uint32(b)), 4
		if n == 0xffffffff {
			if len(b) < 12 {
				return nil
			}
			n, hdr = binary.LittleEndian.Uint64(b[4:]), 12
		}
		if n > uint64(len(b)-hdr) {
			return nil
		}
		set := b[hdr : hdr+int(n)]
		next := b[hdr+int(n):]
		offSize := 4
		if hdr == 12 {
			offSize = 8
		}
		if len(set) < 2+offSize+2 {
			return nil
		}
		if v := binary.LittleEndian.Uint16(set); v < 2 || v > 5 {
			return nil
		}
		var info uint64
		if offSize == 4 {
			info = uint64(binary.LittleEndian.Uint32(set[2:]))
		} else {
			info = binary.LittleEndian.Uint64(set[2:])
		}
		if set[2+offSize] != 8 || set[3+offSize] != 0 || info > 1<<32-1 {
			return nil
		}
		// Tuples start at a multiple of 16 bytes from the set's start.
		start := (hdr + 2 + offSize + 2 + 15) &^ 15
		if start-hdr > len(set) {
			return nil
		}
		u, ok := unitOf[info]
		if !ok {
			if len(x.hdrs) >= maxArangesSets {
				return nil
			}
			u = len(x.hdrs)
			unitOf[info] = u
			x.hdrs = append(x.hdrs, dwarf.Offset(info))
		}
		for t := set[start-hdr:]; len(t) >= 16; t = t[16:] {
			lo, l := binary.LittleEndian.Uint64(t), binary.LittleEndian.Uint64(t[8:])
			if lo == 0 && l == 0 {
				break
			}
			if l > 0 && lo != 0 && lo+l > lo {
				x.ranges = append(x.ranges, cuRange{lo: lo, hi: lo + l, unit: u})
			}
		}
		b = next
	}
	if len(x.hdrs) == 0 {
		return nil
	}
	slices.SortStableFunc(x.ranges, func(a, b cuRange) int { return cmp.Compare(a.lo, b.lo) })
	x.units = make([]*arUnit, len(x.hdrs))
	return x
}

// TestParseArangesRef: parseAranges gives what the plain reading gives, on
// libc's .debug_aranges, on one whose sets come in reverse order (offsets
// going backwards, every range out of order), and on one with each set
// twice (units named again).
func TestParseArangesRef(t *testing.T) {
	libc := libcAranges(t)
	var sets [][]byte
	for b := libc; len(b) >= 4; {
		n := 4 + int(binary.LittleEndian.Uint32(b))
		sets = append(sets, b[:n])
		b = b[n:]
	}
	var rev, twice []byte
	for i := range sets {
		rev = append(rev, sets[len(sets)-1-i]...)
		twice = append(twice, sets[i]...)
		twice = append(twice, sets[(i*7)%len(sets)]...)
	}
	for name, b := range map[string][]byte{"libc": libc, "reversed": rev, "twice": twice} {
		got, want := parseAranges(b), parseArangesRef(b)
		if got == nil || want == nil {
			t.Fatalf("%s: index %v, reference %v", name, got != nil, want != nil)
		}
		if !reflect.DeepEqual(got.hdrs, want.hdrs) || !reflect.DeepEqual(got.ranges, want.ranges) || len(got.units) != len(want.units) {
			t.Errorf("%s: %d units, %d ranges; the plain reading gives %d, %d (or their order differs)",
				name, len(got.hdrs), len(got.ranges), len(want.hdrs), len(want.ranges))
		}
	}
}

// TestSortRangesLarge: starts 2^39 or more apart are sorted by the
// comparison sort, equal starts kept in order, as the packed sort does.
func TestSortRangesLarge(t *testing.T) {
	rs := []cuRange{{lo: 1 << 40, unit: 0}, {lo: 5, unit: 1}, {lo: 1 << 40, unit: 2}, {lo: 5, unit: 3}, {lo: 7, unit: 4}}
	sortRanges(rs)
	want := []int{1, 3, 4, 0, 2}
	for i, r := range rs {
		if r.unit != want[i] {
			t.Fatalf("order %+v, want units %v", rs, want)
		}
	}
	small := []cuRange{{lo: 9, unit: 0}, {lo: 5, unit: 1}, {lo: 9, unit: 2}, {lo: 5, unit: 3}, {lo: 7, unit: 4}}
	sortRanges(small)
	if !slices.IsSortedFunc(small, func(a, b cuRange) int { return cmp.Compare(a.lo, b.lo) }) ||
		small[0].unit != 1 || small[1].unit != 3 || small[3].unit != 0 || small[4].unit != 2 {
		t.Fatalf("packed sort %+v: not by start, or equal starts out of order", small)
	}
}

// TestFindRangeLookBack: a pc past the ranges nested in a unit's range
// that starts before them is found in the enclosing range, as long as it
// starts at most 8 ranges back; further back it is not found (the caller
// then reads every unit's entry).
func TestFindRangeLookBack(t *testing.T) {
	outer := cuRange{lo: 0x100, hi: 0x10000, unit: 0}
	for nested := 0; nested <= 9; nested++ {
		rs := []cuRange{outer}
		for i := 0; i < nested; i++ {
			lo := uint64(0x200 + 0x100*i)
			rs = append(rs, cuRange{lo: lo, hi: lo + 0x80, unit: i + 1})
		}
		got := findRange(rs, 0x8000)
		want := 0
		if nested >= 8 {
			want = -1
		}
		if got != want {
			t.Errorf("%d ranges nested: range %d, want %d", nested, got, want)
		}
		if nested > 0 {
			if i := findRange(rs, 0x210); i != 1 {
				t.Errorf("%d ranges nested: pc in the first nested one found in range %d", nested, i)
			}
		}
	}
}

// TestUnitForLookBack holds dwarfIndex.unitFor, the unit index's copy of
// findRange's loop, to the same look-back: a pc in a unit's range is found
// past up to 7 later-starting nested ranges, not past 8, and a pc in a
// nested range is found in it.
func TestUnitForLookBack(t *testing.T) {
	for nested := 0; nested <= 9; nested++ {
		starts := []dwarf.Offset{0x10}
		rs := []cuRange{{lo: 0x100, hi: 0x10000, unit: 0}}
		for i := 0; i < nested; i++ {
			lo := uint64(0x200 + 0x100*i)
			starts = append(starts, dwarf.Offset(0x100*(i+1)))
			rs = append(rs, cuRange{lo: lo, hi: lo + 0x80, unit: i + 1})
		}
		x := &dwarfIndex{tab: makeUnitTable(starts, rs), units: newUnitSlots(len(starts))}
		u := x.unitFor(0x8000)
		if nested >= 8 {
			if u != nil {
				t.Errorf("%d ranges nested: unit at %#x found past 8 ranges", nested, u.off)
			}
		} else if u == nil || u.off != 0x10 {
			t.Errorf("%d ranges nested: pc in the outer unit found in %+v", nested, u)
		}
		if nested > 0 {
			if u := x.unitFor(0x210); u == nil || u.off != 0x100 {
				t.Errorf("%d ranges nested: pc in the first nested unit found in %+v", nested, u)
			}
		}
		if u := x.unitFor(0x20000); u != nil {
			t.Errorf("%d ranges nested: a pc past every range found in unit at %#x", nested, u.off)
		}
	}
}
