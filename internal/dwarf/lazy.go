package dwarf

// Lazily read sections (an addition to the standard library's package, see
// doc.go): a Data made by NewLazy reads .debug_info, .debug_abbrev and
// .debug_line only as far as its readers go, for callers whose sections
// are expensive to produce in full (compressed debug sections, inflated
// as a stream from their start).

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// A Lazy section is produced on demand from its start.
type Lazy interface {
	// Prefix returns the section's first n bytes or more, or the whole
	// section when it is shorter than n. The bytes returned never change;
	// a later call may return a longer prefix in another slice.
	Prefix(n int) ([]byte, error)
}

// lazySections is the state of a Data made by NewLazy.
type lazySections struct {
	mu   sync.Mutex // held while units, abbreviations or line tables are read further
	info Lazy
	next Offset // where the next unit's header starts in .debug_info
	done bool   // every unit's header is in Data.hdrs
	err  error  // why no further unit can be read

	abbrev, line         Lazy
	abbrevData, lineData atomic.Pointer[[]byte] // the prefixes read so far
	abbrevDone           bool                   // abbrevData is the whole section
}

// NewLazy is New for sections read on demand: the units of info, the
// abbreviation tables and the line tables are read only as far as a
// Reader, LineReader or lookup needs them. line may be nil (no line
// tables); ranges and str are whole sections, as for New, and AddSection
// adds the DWARF 5 ones. An error in a unit's header beyond the first is
// returned by the Reader that reaches it (New returns it).
// Reading all of a lazy Data reads every section whole.
func NewLazy(abbrev, info, line Lazy, ranges, str []byte) (*Data, error) {
	return NewLazyWithUnits(abbrev, info, line, ranges, str, nil)
}

// NewLazyWithUnits is NewLazy for a caller that kept the headers a lazy
// Data read before (UnitHeadersRead, from an earlier run over the same
// sections): the units t describes are found by binary search over its
// records, as for NewWithUnitTable, instead of by reading every header
// from the start of .debug_info up to them; units past them are read on
// demand as NewLazy reads them. t must describe the section's first units
// in order (a lazy Data's, as read); it is checked as NewWithUnitTable
// checks it, against as much of info as it covers, and an error returned
// when it does not fit. With no t, it is NewLazy.
func NewLazyWithUnits(abbrev, info, line Lazy, ranges, str []byte, t UnitHeaderTable) (*Data, error) {
	if len(t)%UnitHeaderSize != 0 {
		return nil, fmt.Errorf("unit header table of %d bytes: not whole records", len(t))
	}
	need, next := 14, Offset(0) // enough for the first unit's header
	if len(t) > 0 {
		next = t.At(t.Len() - 1).End
		need = int(min(uint64(next), 1<<40))
	}
	head, err := info.Prefix(need)
	if err != nil {
		return nil, err
	}
	if err := checkUnitTable(t, head); err != nil {
		return nil, err
	}
	d, err := newData(nil, nil, nil, head, nil, nil, ranges, str, &lazySections{info: info, abbrev: abbrev, line: line, next: next})
	if err != nil {
		return nil, err
	}
	// Clipped, so that reading further units appends to a copy, not into
	// the caller's bytes (a mapped file).
	d.hdrs = newHeaderUnits(t[:len(t):len(t)], head)
	d.lazy.abbrevData.Store(new([]byte))
	d.lazy.lineData.Store(new([]byte))
	if len(t) == 0 {
		// The first unit now, so that a header error shows here as in New.
		d.growUnits(0)
		if d.lazy.err != nil {
			return nil, d.lazy.err
		}
	}
	return d, nil
}

// UnitHeadersRead returns the headers of the units d has read so far,
// without reading further (every unit's, for a Data that is not lazy):
// what a caller keeps for NewLazyWithUnits.
func (d *Data) UnitHeadersRead() UnitHeaderTable {
	return d.hdrs.table()
}

// unitAt returns unit i, made from its header on first use (headerUnits),
// reading further units of a lazy Data up to it; nil past the last unit.
func (d *Data) unitAt(i int) *unit {
	if u := d.hdrs.unitAt(d, i); u != nil || d.lazy == nil {
		return u
	}
	for {
		if i < d.hdrs.table().Len() {
			return d.hdrs.unitAt(d, i)
		}
		end, ok := d.lazy.end()
		if !ok {
			return nil
		}
		d.growUnits(end) // reads a unit, or steps over an empty one, or stops
	}
}

// end returns where the next unit header starts, false when every unit
// has been read (or no more can be).
func (l *lazySections) end() (Offset, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next, !l.done && l.err == nil
}

// lazyErr returns why a lazy Data cannot read further units, or nil.
func (d *Data) lazyErr() error {
	if d.lazy == nil {
		return nil
	}
	d.lazy.mu.Lock()
	defer d.lazy.mu.Unlock()
	return d.lazy.err
}

// growUnits reads units of a lazy Data until one ends past off, or none
// is left.
func (d *Data) growUnits(off Offset) {
	l := d.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	var recs, info []byte
	for !l.done && l.err == nil && l.next <= off {
		base := l.next
		var err error
		info, err = l.info.Prefix(int(base) + 12)
		if err != nil {
			l.err = err
			break
		}
		if len(info) <= int(base) {
			l.done = true
			break
		}
		b := makeBuf(d, unknownFormat{}, "info", base, info[base:])
		n, is64 := b.unitLength()
		if b.err == nil && n != Offset(uint32(n)) {
			b.error("unit length overflow")
		}
		if b.err != nil {
			l.err = b.err
			break
		}
		end := b.off + n
		if n == 0 {
			l.next = end // no unit here, as New skips it
			continue
		}
		if info, err = l.info.Prefix(int(end)); err != nil {
			l.err = err
			break
		}
		if Offset(len(info)) < end {
			l.err = DecodeError{"info", base, "unit length runs past the section"}
			break
		}
		b = makeBuf(d, unknownFormat{}, "info", b.off, info[b.off:end])
		h, ok := d.unitHeader(&b, base, is64, n)
		if !ok || b.err != nil {
			l.err = b.err
			break
		}
		recs = appendUnitHeader(recs, h)
		l.next = end
	}
	if len(recs) > 0 {
		d.hdrs.grow(recs, info)
	}
}

// allUnits reads every unit of a lazy Data and returns the number of
// units.
func (d *Data) allUnits() int {
	if d.lazy != nil {
		d.growUnits(^Offset(0))
	}
	return d.hdrs.table().Len()
}

// abbrevBytes returns .debug_abbrev as far as it is read, and whether
// that is all of it.
func (d *Data) abbrevBytes() ([]byte, bool) {
	if d.lazy == nil {
		return d.abbrev, true
	}
	d.lazy.mu.Lock()
	defer d.lazy.mu.Unlock()
	return *d.lazy.abbrevData.Load(), d.lazy.abbrevDone
}

// growAbbrev reads .debug_abbrev further: past off, to at least twice what
// was read before. It returns false when there is no more to read.
func (d *Data) growAbbrev(off uint64) bool {
	l := d.lazy
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.abbrevDone || l.err != nil {
		return false
	}
	have := *l.abbrevData.Load()
	n := max(2*len(have), int(min(off, 1<<40))+16<<10)
	b, err := l.abbrev.Prefix(n)
	if err != nil {
		l.err = err
		return false
	}
	if len(b) < n {
		l.abbrevDone = true
	}
	l.abbrevData.Store(&b)
	return len(b) > len(have)
}

// lineAt returns .debug_line read at least to the end of the line table at
// off (as far as the section goes), or nil when there is no .debug_line.
func (d *Data) lineAt(off int64) ([]byte, error) {
	l := d.lazy
	if l == nil {
		return d.line, nil
	}
	if l.line == nil {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	have := *l.lineData.Load()
	if off < 0 || off > 1<<40 {
		return have, nil // out of range, as the caller reports
	}
	read := func(n int64) error {
		if n <= int64(len(have)) {
			return nil
		}
		b, err := l.line.Prefix(int(n))
		if err != nil {
			return err
		}
		have = b
		l.lineData.Store(&b)
		return nil
	}
	if err := read(off + 12); err != nil {
		return nil, err
	}
	if off >= int64(len(have)) {
		return have, nil
	}
	b := makeBuf(d, unknownFormat{}, "line", Offset(off), have[off:])
	n, _ := b.unitLength()
	if b.err != nil {
		return have, nil // the reader reports it
	}
	if err := read(int64(b.off) + int64(n)); err != nil {
		return nil, err
	}
	return have, nil
}

// lineAll reads all of a lazy Data's .debug_line and returns what
// lineAt returns after: the whole section (nil when there is none, d.line
// in a Data not lazy).
func (d *Data) lineAll() ([]byte, error) {
	return d.lineAt(1 << 40)
}

// UnitAt returns the offset of the first entry of the unit whose header
// starts at hdr (as .debug_aranges gives it) and the offset just past the
// unit, reading a lazy Data's units as far as it; false when no unit
// starts there.
func (d *Data) UnitAt(hdr Offset) (entry, next Offset, ok bool) {
	d.offsetToUnit(hdr) // in a lazy Data, reads the units up to the one holding hdr
	t := d.hdrs.table()
	i := d.hdrs.unitStartingAt(hdr)
	if i < 0 || i >= t.Len() {
		return 0, 0, false
	}
	return t.off(i), t.end(i), true
}
