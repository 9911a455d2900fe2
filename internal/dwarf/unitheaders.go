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
	t := d.hdrs.table()
	hs := make([]UnitHeader, t.Len())
	for i := range hs {
		hs[i] = t.At(i)
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
		b = appendUnitHeader(b, h)
	}
	return b
}

func appendUnitHeader(b []byte, h UnitHeader) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Base))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Off))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.End))
	b = binary.LittleEndian.AppendUint64(b, h.Abbrev)
	is64 := byte(0)
	if h.Is64 {
		is64 = 1
	}
	return append(b, byte(h.Vers), h.UType, byte(h.ASize), is64)
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
	if err := checkUnitTable(t, info); err != nil {
		return nil, err
	}
	d.hdrs = newHeaderUnits(t, info)
	return d, nil
}

// checkUnitTable checks that the records of t describe units in order
// within info, of versions this package reads.
func checkUnitTable(t UnitHeaderTable, info []byte) error {
	n := t.Len()
	end := Offset(0)
	for i := 0; i < n; i++ {
		p := t[i*UnitHeaderSize : (i+1)*UnitHeaderSize]
		base, off, e, vers := Offset(binary.LittleEndian.Uint32(p)), Offset(binary.LittleEndian.Uint32(p[4:])), Offset(binary.LittleEndian.Uint32(p[8:])), p[20]
		if base < end || off <= base || e < off || uint64(e) > uint64(len(info)) || vers < 2 || vers > 5 {
			return fmt.Errorf("unit header %d (%#x-%#x) does not fit .debug_info", i, base, e)
		}
		end = e
	}
	return nil
}

// headerUnits holds the units of a Data: their headers, and the units
// made from them so far in chunks of unitChunkLen slots, each chunk made
// with its first unit. New and NewWithUnitTable give it every header; a
// lazy Data (NewLazy) appends headers as it reads them (grow). Its state
// is read without a lock; a unit is made, and the state grown, under mu.
type headerUnits struct {
	state atomic.Pointer[unitsState]
	mu    sync.Mutex
	made  int // units made so far (tests count them)
}

// unitsState is the headers read so far, the units' slots, and the bytes
// of .debug_info that hold those units (a prefix in a lazy Data).
type unitsState struct {
	tab    UnitHeaderTable
	chunks []atomic.Pointer[unitChunk]
	info   []byte
}

const unitChunkLen = 64

type unitChunk [unitChunkLen]atomic.Pointer[unit]

func newHeaderUnits(tab UnitHeaderTable, info []byte) *headerUnits {
	h := &headerUnits{}
	h.state.Store(&unitsState{tab: tab, info: info,
		chunks: make([]atomic.Pointer[unitChunk], (tab.Len()+unitChunkLen-1)/unitChunkLen)})
	return h
}

// table returns the headers read so far.
func (h *headerUnits) table() UnitHeaderTable {
	return h.state.Load().tab
}

// grow appends the records recs of the units read next, whose bytes info
// holds; only the lazy Data that made h calls it, with its lock held.
func (h *headerUnits) grow(recs, info []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.state.Load()
	// Appending in place leaves the records that readers of s see as
	// they were.
	tab := append(s.tab, recs...)
	chunks := s.chunks
	if need := (tab.Len() + unitChunkLen - 1) / unitChunkLen; need > len(chunks) {
		chunks = make([]atomic.Pointer[unitChunk], max(need, 2*len(chunks)))
		for k := range s.chunks {
			chunks[k].Store(s.chunks[k].Load())
		}
	}
	if len(info) < len(s.info) {
		info = s.info
	}
	h.state.Store(&unitsState{tab: tab, chunks: chunks, info: info})
}

// madeUnit is a unit made from its header with the Once it needs, in one
// allocation.
type madeUnit struct {
	u    unit
	once sync.Once
}

// unitAt returns unit i, made from its header on first use; nil past the
// last unit read.
func (h *headerUnits) unitAt(d *Data, i int) *unit {
	s := h.state.Load()
	if uint(i) >= uint(s.tab.Len()) {
		return nil
	}
	if c := s.chunks[i/unitChunkLen].Load(); c != nil {
		if u := c[i%unitChunkLen].Load(); u != nil {
			return u
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s = h.state.Load()
	c := s.chunks[i/unitChunkLen].Load()
	if c == nil {
		c = new(unitChunk)
		s.chunks[i/unitChunkLen].Store(c)
	}
	if u := c[i%unitChunkLen].Load(); u != nil {
		return u
	}
	hd := s.tab.At(i)
	m := &madeUnit{u: unit{base: hd.Base, off: hd.Off, data: s.info[hd.Off:hd.End], vers: hd.Vers,
		utype: hd.UType, asize: hd.ASize, is64: hd.Is64}}
	m.u.u5once = &m.once
	m.u.atable = d.lazyAbbrev(hd.Abbrev, hd.Vers)
	c[i%unitChunkLen].Store(&m.u)
	h.made++
	return &m.u
}

// index returns the index of the unit containing offset off among those
// read, or -1, by the headers: no unit is made.
func (h *headerUnits) index(off Offset) int {
	t := h.table()
	// Find the unit after off.
	lo, hi := 0, t.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.off(m) > off {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		return -1
	}
	if t.off(lo-1) <= off && off < t.end(lo-1) {
		return lo - 1
	}
	return -1
}

// unitStartingAt returns the index of the unit whose header starts at
// hdr, or -1.
func (h *headerUnits) unitStartingAt(hdr Offset) int {
	t := h.table()
	n := t.Len()
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.base(m) >= hdr {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo < n && t.base(lo) == hdr {
		return lo
	}
	return -1
}
