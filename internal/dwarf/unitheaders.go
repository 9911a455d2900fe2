package dwarf

import (
	"encoding/binary"
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
		hs := make([]UnitHeader, h.tab.Len())
		for i := range hs {
			hs[i] = h.tab.At(i)
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

// A UnitHeaderTable is unit headers in records of UnitHeaderSize bytes
// (AppendUnitHeaders), which NewWithUnitTable reads in place: a caller
// keeps the bytes (in a file), and a Data made from them decodes a header
// when a lookup needs it (its units are found by binary search over the
// records), so that a Data of thousands of units of which a trace needs a
// few decodes a few dozen headers, not all.
type UnitHeaderTable []byte

// UnitHeaderSize is the size of a header's record in a UnitHeaderTable:
// Base, Off and End (uint32, as Offset), Abbrev (uint64), then Vers, UType,
// ASize and Is64 (a byte each), little-endian. A caller that stores tables
// names the format it stored with this size; if it changes, so does the
// format.
const UnitHeaderSize = 24

// AppendUnitHeaders appends the records of hs to b, for NewWithUnitTable.
// A header's version and address size are stored in a byte each
// (NewWithUnits refuses larger ones).
func AppendUnitHeaders(b []byte, hs []UnitHeader) []byte {
	for _, h := range hs {
		b = binary.LittleEndian.AppendUint32(b, uint32(h.Base))
		b = binary.LittleEndian.AppendUint32(b, uint32(h.Off))
		b = binary.LittleEndian.AppendUint32(b, uint32(h.End))
		b = binary.LittleEndian.AppendUint64(b, h.Abbrev)
		is64 := byte(0)
		if h.Is64 {
			is64 = 1
		}
		b = append(b, byte(h.Vers), h.UType, byte(h.ASize), is64)
	}
	return b
}

// Len returns the number of headers in t.
func (t UnitHeaderTable) Len() int { return len(t) / UnitHeaderSize }

// At decodes header i of t, 0 <= i < t.Len().
func (t UnitHeaderTable) At(i int) UnitHeader {
	p := t[i*UnitHeaderSize : (i+1)*UnitHeaderSize]
	return UnitHeader{
		Base:   Offset(binary.LittleEndian.Uint32(p)),
		Off:    t.off(i),
		End:    t.end(i),
		Abbrev: binary.LittleEndian.Uint64(p[12:]),
		Vers:   int(p[20]),
		UType:  p[21],
		ASize:  int(p[22]),
		Is64:   p[23] != 0,
	}
}

// base, off and end are At(i).Base, Off and End, for the searches.
func (t UnitHeaderTable) base(i int) Offset {
	return Offset(binary.LittleEndian.Uint32(t[i*UnitHeaderSize:]))
}

func (t UnitHeaderTable) off(i int) Offset {
	return Offset(binary.LittleEndian.Uint32(t[i*UnitHeaderSize+4:]))
}

func (t UnitHeaderTable) end(i int) Offset {
	return Offset(binary.LittleEndian.Uint32(t[i*UnitHeaderSize+8:]))
}

// NewWithUnits is New for sections whose unit headers are known: hs, as
// UnitHeaders returned them for a Data of the same sections. It reads
// none of the headers; it returns an error when hs cannot be the units of
// info (out of order, overlapping, past its end, or of a version New
// does not read). A unit is made from its header when it is first used,
// as by NewWithUnitTable.
func NewWithUnits(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, hs []UnitHeader) (*Data, error) {
	for i, h := range hs {
		if h.Vers < 2 || h.Vers > 5 || h.ASize < 0 || h.ASize > 255 {
			return nil, fmt.Errorf("unit header %d (%#x-%#x): version %d, address size %d", i, h.Base, h.End, h.Vers, h.ASize)
		}
	}
	return NewWithUnitTable(abbrev, aranges, frame, info, line, pubnames, ranges, str, AppendUnitHeaders(nil, hs))
}

// NewWithUnitTable is NewWithUnits with the headers as records
// (AppendUnitHeaders), which the Data keeps and reads as lookups need
// units: it checks every header here (as NewWithUnits does) without
// keeping anything per unit, and makes a unit, and names its abbreviation
// table, only when a Reader, LineReader or lookup first reaches it. The
// Data is safe for concurrent use as one made by New is; t must not
// change. It returns an error when t's length is not a multiple of
// UnitHeaderSize.
func NewWithUnitTable(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, t UnitHeaderTable) (*Data, error) {
	if len(t)%UnitHeaderSize != 0 {
		return nil, fmt.Errorf("unit header table of %d bytes: not whole records", len(t))
	}
	d, err := newData(abbrev, aranges, frame, info, line, pubnames, ranges, str, nil)
	if err != nil {
		return nil, err
	}
	n := t.Len()
	end := Offset(0)
	for i := 0; i < n; i++ {
		p := t[i*UnitHeaderSize : (i+1)*UnitHeaderSize]
		base, off, e, vers := Offset(binary.LittleEndian.Uint32(p)), Offset(binary.LittleEndian.Uint32(p[4:])), Offset(binary.LittleEndian.Uint32(p[8:])), p[20]
		if base < end || off <= base || e < off || uint64(e) > uint64(len(info)) || vers < 2 || vers > 5 {
			return nil, fmt.Errorf("unit header %d (%#x-%#x) does not fit .debug_info", i, base, e)
		}
		end = e
	}
	d.hdrs = &headerUnits{tab: t, chunks: make([]atomic.Pointer[unitChunk], (n+unitChunkLen-1)/unitChunkLen)}
	return d, nil
}

// headerUnits holds the units of a Data made by NewWithUnitTable: their
// headers, and the units made from them so far in chunks of unitChunkLen
// slots, each chunk made with its first unit. Slots are read without a
// lock; a unit is made, and stored, under mu.
type headerUnits struct {
	tab    UnitHeaderTable
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
	if uint(i) >= uint(h.tab.Len()) {
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
	hd := h.tab.At(i)
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
	lo, hi := 0, h.tab.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.tab.off(m) > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return -1
	}
	if h.tab.off(lo-1) <= off && off < h.tab.end(lo-1) {
		return lo - 1
	}
	return -1
}

// unitStartingAt returns the index of the unit whose header starts at
// hdr, or -1.
func (h *headerUnits) unitStartingAt(hdr Offset) int {
	n := h.tab.Len()
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.tab.base(m) >= hdr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo < n && h.tab.base(lo) == hdr {
		return lo
	}
	return -1
}
