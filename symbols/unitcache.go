package symbols

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// A file's unit index (every unit's entry offset and the address ranges of
// the units that have code) is kept in the debug cache (DebugCacheDir),
// beside decompressed sections, in a file named "units". A later run then
// finds the unit of a pc without reading every unit's entry, which for a
// vmlinux means thousands of entries spread over 100+ MiB of .debug_info
// and of abbreviation tables scanned to reach them. The index is used only
// when the sizes and sampled bytes of the DWARF sections it was made from
// match, and its own CRC does; anything else is ignored and the index made
// again. Relocatable files (kernel modules) are not cached: their addresses
// depend on where they were placed.

// unitsMagic starts a cached unit index (format version 1).
const unitsMagic = "UWUNITS1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dwarfKey identifies the DWARF sections (named without ".debug_") an index
// is made from: each section's size and a CRC of its first and last 4 KiB.
func dwarfKey(sec map[string][]byte) []byte {
	var key []byte
	for _, name := range []string{"info", "abbrev", "line", "ranges", "rnglists", "str", "line_str", "addr", "str_offsets", "types"} {
		b := sec[name]
		crc := crc32.Checksum(b[:min(len(b), 4096)], castagnoli)
		crc = crc32.Update(crc, castagnoli, b[max(0, len(b)-4096):])
		key = binary.LittleEndian.AppendUint64(key, uint64(len(b)))
		key = binary.LittleEndian.AppendUint32(key, crc)
	}
	return key
}

// unitTable is a unit index as a "units" cache entry holds it, read in
// place: every unit's entry offset (uint32, ascending) in starts, and in
// ranges the units' address ranges sorted by lo, 20 bytes each: lo and hi
// (uint64) and the index in starts of the range's unit (uint32);
// little-endian. decodeUnits checks all that once; a lookup reads a few
// records.
type unitTable struct {
	starts, ranges []byte
}

const unitRangeSize = 20

// makeUnitTable encodes starts and ranges (unit: an index in starts).
func makeUnitTable(starts []dwarf.Offset, ranges []cuRange) unitTable {
	b := make([]byte, 0, 4*len(starts)+unitRangeSize*len(ranges))
	for _, off := range starts {
		b = binary.LittleEndian.AppendUint32(b, uint32(off))
	}
	for _, r := range ranges {
		b = binary.LittleEndian.AppendUint64(b, r.lo)
		b = binary.LittleEndian.AppendUint64(b, r.hi)
		b = binary.LittleEndian.AppendUint32(b, uint32(r.unit))
	}
	return unitTable{starts: b[:4*len(starts)], ranges: b[4*len(starts):]}
}

func (t unitTable) numStarts() int { return len(t.starts) / 4 }

func (t unitTable) numRanges() int { return len(t.ranges) / unitRangeSize }

// start returns unit i's entry offset.
func (t unitTable) start(i int) dwarf.Offset {
	return dwarf.Offset(binary.LittleEndian.Uint32(t.starts[4*i:]))
}

// rangeLo returns range i's lo.
func (t unitTable) rangeLo(i int) uint64 {
	return binary.LittleEndian.Uint64(t.ranges[unitRangeSize*i:])
}

// rangeAt returns range i.
func (t unitTable) rangeAt(i int) cuRange {
	p := t.ranges[unitRangeSize*i : unitRangeSize*(i+1)]
	return cuRange{lo: binary.LittleEndian.Uint64(p), hi: binary.LittleEndian.Uint64(p[8:]), unit: int(binary.LittleEndian.Uint32(p[16:]))}
}

// unitSlots are the cuInfo of a unit index's units, made on first use, in
// chunks of 64 made with their first unit: an index of thousands of units
// of which a trace reaches a few allocates a few chunks. Safe for
// concurrent use.
type unitSlots struct {
	chunks []atomic.Pointer[[64]atomic.Pointer[cuInfo]]
}

func newUnitSlots(n int) unitSlots {
	return unitSlots{chunks: make([]atomic.Pointer[[64]atomic.Pointer[cuInfo]], (n+63)/64)}
}

// load returns unit i's cuInfo, nil if not made yet.
func (s *unitSlots) load(i int) *cuInfo {
	if c := s.chunks[i/64].Load(); c != nil {
		return c[i%64].Load()
	}
	return nil
}

// store makes c unit i's cuInfo unless it has one already, and returns
// the one it has.
func (s *unitSlots) store(i int, c *cuInfo) *cuInfo {
	ch := s.chunks[i/64].Load()
	if ch == nil {
		ch = new([64]atomic.Pointer[cuInfo])
		if !s.chunks[i/64].CompareAndSwap(nil, ch) {
			ch = s.chunks[i/64].Load()
		}
	}
	if ch[i%64].CompareAndSwap(nil, c) {
		return c
	}
	return ch[i%64].Load()
}

// encodeUnits serializes the unit index x made from the sections key names.
func encodeUnits(x *dwarfIndex, key []byte) []byte {
	b := []byte(unitsMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	b = binary.LittleEndian.AppendUint32(b, uint32(x.tab.numStarts()))
	b = append(b, x.tab.starts...)
	b = binary.LittleEndian.AppendUint32(b, uint32(x.tab.numRanges()))
	b = append(b, x.tab.ranges...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeUnits returns the unit index of d that encodeUnits wrote for the
// sections key names, read in place; nil when b is not one (another
// file's, another version's, cut short or corrupt).
func decodeUnits(b, key []byte, d *dwarf.Data) *dwarfIndex {
	if len(b) < len(unitsMagic)+4 || string(b[:len(unitsMagic)]) != unitsMagic {
		return nil
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil
	}
	p := body[len(unitsMagic):]
	u32 := func() (uint32, bool) {
		if len(p) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(p)
		p = p[4:]
		return v, true
	}
	n, ok := u32()
	if !ok || uint64(n) > uint64(len(p)) || string(p[:n]) != string(key) {
		return nil
	}
	p = p[n:]
	if n, ok = u32(); !ok || uint64(n) > uint64(len(p))/4 {
		return nil
	}
	t := unitTable{starts: p[:4*n]}
	p = p[4*n:]
	if n, ok = u32(); !ok || uint64(n) != uint64(len(p))/unitRangeSize || len(p)%unitRangeSize != 0 {
		return nil
	}
	t.ranges = p
	for i := 1; i < t.numStarts(); i++ {
		if t.start(i) <= t.start(i-1) {
			return nil
		}
	}
	for i := range t.numRanges() {
		r := t.rangeAt(i)
		if r.lo >= r.hi || r.unit < 0 || r.unit >= t.numStarts() || i > 0 && r.lo < t.rangeLo(i-1) {
			return nil
		}
	}
	return &dwarfIndex{d: d, tab: t, units: newUnitSlots(t.numStarts())}
}

// loadUnits returns the cached unit index of d, or nil.
func (c debugCache) loadUnits(d *dwarf.Data, key []byte) *dwarfIndex {
	if c == "" || key == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(string(c), "units"))
	if err != nil || len(b) > maxUnitsFile {
		return nil
	}
	return decodeUnits(b, key, d)
}

// maxUnitsFile bounds a cached unit index read back (a vmlinux's is a few
// hundred KiB).
const maxUnitsFile = 64 << 20

// storeUnits caches the unit index x made from the sections key names.
func (c debugCache) storeUnits(x *dwarfIndex, key []byte) {
	if c == "" || key == nil {
		return
	}
	c.store("units", encodeUnits(x, key))
}

// The unit headers of .debug_info (dwarf.UnitHeader) are kept in the debug
// cache too, in a file named "unithdrs": dwarf.New reads every unit's
// header, which for a vmlinux touches thousands of pages spread over
// 100+ MiB, while a later run's dwarf.NewWithUnitTable reads none. The
// same key of the sections and a CRC guard them. The headers are the
// fixed-width records of a dwarf.UnitHeaderTable, which the Data reads in
// place as its lookups need them: a run that reaches a few of libc's
// thousands of units decodes a few dozen headers.

// unitHdrsMagic starts cached unit headers (format version 3: the record
// size, dwarf.UnitHeaderSize, then the records; version 2 had no size,
// version 1 varints).
const unitHdrsMagic = "UWUHDR03"

// encodeUnitHeaders serializes the unit headers t (a Data's records, as
// dwarf.Data.UnitHeadersRead gives them) of the sections key names.
func encodeUnitHeaders(t dwarf.UnitHeaderTable, key []byte) []byte {
	b := []byte(unitHdrsMagic)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, dwarf.UnitHeaderSize)
	b = binary.AppendUvarint(b, uint64(t.Len()))
	b = append(b, t...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeUnitHeaders returns the headers encodeUnitHeaders wrote for the
// sections key names, as records decoded when they are read; nil when b
// is not that (another file's, another version's, cut short or corrupt).
// dwarf.NewWithUnitTable checks that they fit .debug_info.
func decodeUnitHeaders(b, key []byte) dwarf.UnitHeaderTable {
	r, ok := openEntry(b, unitHdrsMagic, key)
	if !ok {
		return nil
	}
	if size := r.uvarint(); r.bad || size != dwarf.UnitHeaderSize {
		return nil
	}
	n, ok := r.count(dwarf.UnitHeaderSize)
	if !ok || len(r.p) != n*dwarf.UnitHeaderSize {
		return nil
	}
	return dwarf.UnitHeaderTable(r.p)
}

// lazyUnitHeadersEntry names the headers of the units a lazy Data (the
// streamed sections of a compressed debug file) read: the first units of
// .debug_info, as far as the run's lookups went. It is apart from
// "unithdrs", which holds every unit's header for a Data over whole
// sections, and in the same format.
const lazyUnitHeadersEntry = "unithdrs-lazy"

// loadLazyUnitHeaders returns the headers storeLazyUnitHeaders kept for
// the sections key names, or nil.
func (c debugCache) loadLazyUnitHeaders(key []byte) dwarf.UnitHeaderTable {
	if c == "" || key == nil {
		return nil
	}
	b, err := readCapped(filepath.Join(string(c), lazyUnitHeadersEntry), maxUnitsFile)
	if err != nil {
		return nil
	}
	return decodeUnitHeaders(b, key)
}

// storeLazyUnitHeaders keeps t, the headers a lazy Data over the sections
// key names has read, for the next run's dwarf.NewLazyWithUnits: it then
// finds those units without reading every header before them.
func (c debugCache) storeLazyUnitHeaders(t dwarf.UnitHeaderTable, key []byte) {
	if c == "" || key == nil {
		return
	}
	c.store(lazyUnitHeadersEntry, encodeUnitHeaders(t, key))
}

// newDWARFUnits is newDWARF made with the unit headers cached under key
// when the cache holds them, else caching them. infoAt, if not nil, reads
// .debug_info (sec["info"] mapped from it): the headers are read from it
// (dwarf.NewReadingUnits) rather than from the mapping, whose pages each
// header would fault in.
func newDWARFUnits(sec map[string][]byte, c debugCache, key []byte, infoAt io.ReaderAt) (*dwarf.Data, error) {
	if c == "" || key == nil {
		return newDWARFReading(sec, infoAt)
	}
	name := filepath.Join(string(c), "unithdrs")
	if b, err := readCapped(name, maxUnitsFile); err == nil {
		if hs := decodeUnitHeaders(b, key); hs != nil {
			d, err := dwarf.NewWithUnitTable(sec["abbrev"], sec["aranges"], sec["frame"], sec["info"], sec["line"], sec["pubnames"], sec["ranges"], sec["str"], hs)
			if err == nil {
				if err := addDWARF5(d, sec); err != nil {
					return nil, err
				}
				return d, nil
			}
		}
	}
	d, err := newDWARFReading(sec, infoAt)
	if err == nil {
		c.store("unithdrs", encodeUnitHeaders(d.UnitHeadersRead(), key))
	}
	return d, err
}

// newDWARFReading is newDWARF reading the unit headers from infoAt, if
// not nil (see newDWARFUnits).
func newDWARFReading(sec map[string][]byte, infoAt io.ReaderAt) (*dwarf.Data, error) {
	if infoAt == nil {
		return newDWARF(sec)
	}
	d, err := dwarf.NewReadingUnits(sec["abbrev"], sec["aranges"], sec["frame"], sec["info"], sec["line"], sec["pubnames"], sec["ranges"], sec["str"], infoAt)
	if err != nil {
		return nil, err
	}
	if err := addDWARF5(d, sec); err != nil {
		return nil, err
	}
	return d, nil
}
