package cfi

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// ehIndex is an .eh_frame read through its .eh_frame_hdr: the header's
// table of (initial location, FDE) pairs, sorted by location, finds the
// FDE covering a pc, and only that FDE is read. ParseEH makes one only
// when the header lists every FDE of the section, each at the location
// the FDE itself gives, in (location, section offset) order, and every
// entry is one parseFast reads: then a lookup finds what Find on the
// whole section's table finds.
type ehIndex struct {
	data   []byte
	ehAddr uint64
	table  []byte // the header's pairs: (location, FDE address) as 4-byte offsets from the header
	hdr    uint64 // the header's link-time address
	cies   map[int]fastCIE
	n      int // the FDEs with a non-empty range (Len)
	cache  []atomic.Pointer[compiled]
	once   sync.Once
	full   *Table // the whole section's table, for Range
}

// The .eh_frame_hdr encodings ParseEH reads (what GNU ld, gold, lld and
// mold write): the .eh_frame pointer pc-relative, the count an unsigned
// 4-byte number, the table's entries 4-byte signed offsets from the
// header's start.
const (
	hdrPtrEnc   = 0x1b // DW_EH_PE_pcrel | DW_EH_PE_sdata4
	hdrCountEnc = 0x03 // DW_EH_PE_udata4
	hdrTableEnc = 0x3b // DW_EH_PE_datarel | DW_EH_PE_sdata4
)

// ParseEH reads a .eh_frame section (data, at link-time address
// sectionAddr) as Parse does, using the section's .eh_frame_hdr (hdr, at
// hdrAddr) to read only the FDEs that lookups need: for a debugger that
// unwinds a few frames through a large library, it saves parsing and
// sorting every FDE. When hdr is nil, of an encoding or version it does
// not read, or does not describe data exactly (every FDE listed once, at
// its own location, sorted), it returns Parse's table. Either way Find,
// Len and Range answer as on Parse's table.
func ParseEH(data []byte, sectionAddr uint64, hdr []byte, hdrAddr, bias uint64) (*Table, error) {
	if sectionAddr == 0 {
		return Parse(data, EHFrame, sectionAddr, bias)
	}
	if err := checkFraming(data, EHFrame); err != nil {
		return nil, err
	}
	if x, ok := newEHIndex(data, sectionAddr, hdr, hdrAddr, bias); ok {
		return &Table{kind: EHFrame, bias: bias, eh: x}, nil
	}
	return Parse(data, EHFrame, sectionAddr, bias)
}

// hdrTable checks an .eh_frame_hdr's header against the .eh_frame at
// ehAddr and returns its table of pairs.
func hdrTable(hdr []byte, hdrAddr, ehAddr uint64) ([]byte, bool) {
	if len(hdr) < 12 || hdr[0] != 1 || hdr[1] != hdrPtrEnc || hdr[2] != hdrCountEnc || hdr[3] != hdrTableEnc {
		return nil, false
	}
	le := binary.LittleEndian
	if hdrAddr+4+uint64(int64(int32(le.Uint32(hdr[4:])))) != ehAddr {
		return nil, false
	}
	n := uint64(le.Uint32(hdr[8:]))
	if n > uint64(len(hdr)-12)/8 {
		return nil, false
	}
	return hdr[12 : 12+8*n], true
}

// newEHIndex makes the index of data through hdr, or reports !ok when
// ParseEH must parse the whole section.
func newEHIndex(data []byte, ehAddr uint64, hdr []byte, hdrAddr, bias uint64) (*ehIndex, bool) {
	table, ok := hdrTable(hdr, hdrAddr, ehAddr)
	if !ok {
		return nil, false
	}
	le := binary.LittleEndian
	x := &ehIndex{data: data, ehAddr: ehAddr, table: table, hdr: hdrAddr, cies: map[int]fastCIE{}}
	count := len(table) / 8
	// The pairs in strictly increasing (location, offset) order: the
	// order of the whole table's sort, which keeps section order among
	// equal starts.
	for i := 1; i < count; i++ {
		l0, o0 := x.pair(i - 1)
		l1, o1 := x.pair(i)
		if l1 < l0 || l1 == l0 && o1 <= o0 {
			return nil, false
		}
	}
	// Every FDE of the section, read as parseFast reads it, listed in
	// the table at its own location; as many FDEs as pairs.
	fdes, next := 0, 0
	for off := 0; off < len(data); {
		n := int(le.Uint32(data[off:]))
		if n == 0 {
			off += 4
			continue
		}
		start := off
		id := le.Uint32(data[off+4:])
		body := data[off+8 : off+4+n]
		off += 4 + n
		if id == 0 {
			ci, ok := parseCIEFast(body, true)
			if !ok {
				return nil, false
			}
			x.cies[start] = ci
			continue
		}
		begin, size, _, ok := x.readFDE(start)
		if !ok {
			return nil, false
		}
		// A linker writes FDEs mostly in address order: the pair after
		// the last one found is tried before a search.
		if next < count && x.pairIs(next, begin, start) {
			next++
		} else if i, found := x.listed(begin, start); found {
			next = i + 1
		} else {
			return nil, false
		}
		if begin+size > begin {
			x.n++
		}
		fdes++
	}
	if fdes != count {
		return nil, false
	}
	// The whole table's sort is by biased start: it must be the
	// table's order, so no biased location may wrap around 2^64.
	if count > 0 {
		first, _ := x.pair(0)
		last, _ := x.pair(count - 1)
		if first+bias > last+bias {
			return nil, false
		}
	}
	x.cache = make([]atomic.Pointer[compiled], count)
	return x, true
}

// pair returns the i-th pair of the table: an FDE's link-time location and
// its offset in the section (negative or past the end when the header is
// wrong).
func (x *ehIndex) pair(i int) (loc uint64, off int64) {
	le := binary.LittleEndian
	loc = x.hdr + uint64(int64(int32(le.Uint32(x.table[8*i:]))))
	fdeAddr := x.hdr + uint64(int64(int32(le.Uint32(x.table[8*i+4:]))))
	return loc, int64(fdeAddr - x.ehAddr)
}

// pairIs reports whether pair i is (loc, off).
func (x *ehIndex) pairIs(i int, loc uint64, off int) bool {
	l, o := x.pair(i)
	return l == loc && o == int64(off)
}

// listed returns the index of the pair (loc, off) in the table, and
// whether it is there.
func (x *ehIndex) listed(loc uint64, off int) (int, bool) {
	count := len(x.table) / 8
	lo, hi := 0, count
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l, _ := x.pair(m); l < loc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < count; i++ {
		l, o := x.pair(i)
		if l != loc {
			return 0, false
		}
		if o == int64(off) {
			return i, true
		}
	}
	return 0, false
}

// readFDE reads the FDE at section offset off as parseFast does: its
// link-time start and size and the fde (unbiased) it makes.
func (x *ehIndex) readFDE(off int) (begin, size uint64, f fde, ok bool) {
	data := x.data
	if off < 0 || off > len(data)-8 {
		return 0, 0, f, false
	}
	le := binary.LittleEndian
	n := int(le.Uint32(data[off:]))
	id := le.Uint32(data[off+4:])
	if n < 4 || n > len(data)-off-4 || id == 0 {
		return 0, 0, f, false
	}
	body := data[off+8 : off+4+n]
	ci, ok := x.cies[int(uint32(off-int(id)+4))]
	if !ok {
		return 0, 0, f, false
	}
	begin, size, instr, ok := ci.fdeBody(body, true, x.ehAddr+uint64(off+8))
	if !ok {
		return 0, 0, f, false
	}
	return begin, size, fde{start: begin, end: begin + size, cie: ci.c, instr: instr}, true
}

// find returns the FDE covering the run-time pc and its index in the
// table, as fdeIndex finds it in the whole table: of the last four FDEs
// with a non-empty range starting at or below pc, the one with the
// greatest start (the latest in the section among equal starts) that
// covers pc.
func (x *ehIndex) find(pc, bias uint64) (fde, int, bool) {
	count := len(x.table) / 8
	lo, hi := 0, count
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l, _ := x.pair(m); l+bias <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	seen := 0
	for i := lo - 1; i >= 0 && seen < 4; i-- {
		_, off := x.pair(i)
		begin, size, f, ok := x.readFDE(int(off))
		if !ok || begin+size <= begin {
			continue // newEHIndex read every FDE; an empty one is not in the whole table
		}
		seen++
		f.start, f.end = f.start+bias, f.end+bias
		if pc < f.end {
			return f, i, true
		}
	}
	return fde{}, -1, false
}

// whole returns the section's table as Parse makes it, made once (for
// Range, which numbers every FDE).
func (x *ehIndex) whole(bias uint64) *Table {
	x.once.Do(func() {
		t, ok := parseFast(x.data, EHFrame, x.ehAddr, bias)
		if !ok {
			t = &Table{kind: EHFrame, bias: bias} // newEHIndex read every entry
		}
		t.finish()
		x.full = t
	})
	return x.full
}
