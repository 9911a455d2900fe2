package dwarf

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A UnitHeader is what New reads from the header of one unit of
// .debug_info. New reads every unit's header, which for a kernel's
// 100+ MiB of .debug_info means touching thousands of pages spread over
// it; a caller that keeps the headers of a Data (UnitHeaders) between
// runs can make the next Data of the same sections with NewWithUnits,
// which reads none of them.
type UnitHeader struct {
	Base   Offset // where the unit's header starts (references are relative to it)
	Off    Offset // where its first entry starts
	End    Offset // the offset just past the unit
	Vers   int    // DWARF version
	UType  uint8  // DWARF 5 unit type
	ASize  int    // address size
	Is64   bool   // 64-bit DWARF
	Abbrev uint64 // offset of its abbreviation table in .debug_abbrev
}

// UnitHeaders returns the headers of the units of d's .debug_info, in
// order (for a Data made by NewLazy, those read so far).
func (d *Data) UnitHeaders() []UnitHeader {
	if h := d.hdrs; h != nil {
		hs := make([]UnitHeader, h.n)
		for i := range hs {
			hs[i] = h.list.At(i)
		}
		return hs
	}
	us := d.units()
	hs := make([]UnitHeader, len(us))
	for i, u := range us {
		hs[i] = UnitHeader{Base: u.base, Off: u.off, End: u.off + Offset(len(u.data)), Vers: u.vers,
			UType: u.utype, ASize: u.asize, Is64: u.is64, Abbrev: u.atable.off}
	}
	return hs
}

// A UnitHeaderList gives the unit headers of a Data made by
// NewWithUnitList, by index. A caller that keeps the headers in a
// fixed-width encoding implements it over the encoded bytes: the Data
// reads a header when a lookup needs it (its units are found by binary
// search over At), so a Data of thousands of units of which a trace needs
// a few decodes a few dozen headers, not all.
type UnitHeaderList interface {
	// Len returns the number of headers.
	Len() int
	// At returns header i, 0 <= i < Len(). Its result must not change.
	At(i int) UnitHeader
}

// unitHeaderSlice is the UnitHeaderList of NewWithUnits.
type unitHeaderSlice []UnitHeader

func (s unitHeaderSlice) Len() int            { return len(s) }
func (s unitHeaderSlice) At(i int) UnitHeader { return s[i] }

// NewWithUnits is New for sections whose unit headers are known: hs, as
// UnitHeaders returned them for a Data of the same sections. It reads
// none of the headers; it returns an error when hs cannot be the units of
// info (out of order, overlapping, past its end, or of a version New
// does not read). A unit is made from its header when it is first used.
func NewWithUnits(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, hs []UnitHeader) (*Data, error) {
	return NewWithUnitList(abbrev, aranges, frame, info, line, pubnames, ranges, str, unitHeaderSlice(hs))
}

// NewWithUnitList is NewWithUnits with the headers given by a list,
// which the Data keeps and reads again as lookups need units: it checks
// every header here (as NewWithUnits does) without keeping anything per
// unit, and makes a unit, and names its abbreviation table, only when a
// Reader, LineReader or lookup first reaches it. The Data is safe for
// concurrent use as one made by New is; hs is called from several
// goroutines then.
func NewWithUnitList(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, hs UnitHeaderList) (*Data, error) {
	d, err := newData(abbrev, aranges, frame, info, line, pubnames, ranges, str, nil)
	if err != nil {
		return nil, err
	}
	n := hs.Len()
	end := Offset(0)
	for i := 0; i < n; i++ {
		h := hs.At(i)
		if h.Base < end || h.Off <= h.Base || h.End < h.Off || uint64(h.End) > uint64(len(info)) || h.Vers < 2 || h.Vers > 5 {
			return nil, fmt.Errorf("unit header %d (%#x-%#x) does not fit .debug_info", i, h.Base, h.End)
		}
		end = h.End
	}
	d.hdrs = &headerUnits{list: hs, n: n, chunks: make([]atomic.Pointer[unitChunk], (n+unitChunkLen-1)/unitChunkLen)}
	return d, nil
}

// headerUnits holds the units of a Data made by NewWithUnits: their
// headers, and the units made from them so far in chunks of unitChunkLen
// slots, each chunk made with its first unit. Slots are read without a
// lock; a unit is made, and stored, under mu.
type headerUnits struct {
	list   UnitHeaderList
	n      int
	chunks []atomic.Pointer[unitChunk]
	mu     sync.Mutex
	made   int // units made so far (tests count them)
}

const unitChunkLen = 64

type unitChunk [unitChunkLen]atomic.Pointer[unit]

// madeUnit is a unit made from its header with the Once it needs, in one
// allocation.
type madeUnit struct {
	u    unit
	once sync.Once
}

// unitAt returns unit i, made from its header on first use; nil past the
// last unit.
func (h *headerUnits) unitAt(d *Data, i int) *unit {
	if uint(i) >= uint(h.n) {
		return nil
	}
	if c := h.chunks[i/unitChunkLen].Load(); c != nil {
		if u := c[i%unitChunkLen].Load(); u != nil {
			return u
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.chunks[i/unitChunkLen].Load()
	if c == nil {
		c = new(unitChunk)
		h.chunks[i/unitChunkLen].Store(c)
	}
	if u := c[i%unitChunkLen].Load(); u != nil {
		return u
	}
	hd := h.list.At(i)
	m := &madeUnit{u: unit{base: hd.Base, off: hd.Off, data: d.info[hd.Off:hd.End], vers: hd.Vers,
		utype: hd.UType, asize: hd.ASize, is64: hd.Is64}}
	m.u.u5once = &m.once
	m.u.atable = d.lazyAbbrev(hd.Abbrev, hd.Vers)
	c[i%unitChunkLen].Store(&m.u)
	h.made++
	return &m.u
}

// index returns the index of the unit containing offset off, or -1, as
// unitIndex does, by the headers: no unit is made.
func (h *headerUnits) index(off Offset) int {
	// Find the unit after off.
	lo, hi := 0, h.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.list.At(m).Off > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return -1
	}
	if u := h.list.At(lo - 1); u.Off <= off && off < u.End {
		return lo - 1
	}
	return -1
}

// unitStartingAt returns the index of the unit whose header starts at
// hdr, or -1.
func (h *headerUnits) unitStartingAt(hdr Offset) int {
	lo, hi := 0, h.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.list.At(m).Base >= hdr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo < h.n && h.list.At(lo).Base == hdr {
		return lo
	}
	return -1
}
