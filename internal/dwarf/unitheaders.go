package dwarf

import (
	"fmt"
	"sync"
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
	us := d.units()
	hs := make([]UnitHeader, len(us))
	for i, u := range us {
		hs[i] = UnitHeader{Base: u.base, Off: u.off, End: u.off + Offset(len(u.data)), Vers: u.vers,
			UType: u.utype, ASize: u.asize, Is64: u.is64, Abbrev: u.atable.off}
	}
	return hs
}

// NewWithUnits is New for sections whose unit headers are known: hs, as
// UnitHeaders returned them for a Data of the same sections. It reads
// none of the headers; it returns an error when hs cannot be the units of
// info (out of order, overlapping, past its end, or of a version New
// does not read).
func NewWithUnits(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, hs []UnitHeader) (*Data, error) {
	d, err := newData(abbrev, aranges, frame, info, line, pubnames, ranges, str, nil)
	if err != nil {
		return nil, err
	}
	units := make([]unit, len(hs))
	ptrs := make([]*unit, len(hs))
	// One allocation each for the units' Onces and abbreviation tables
	// (each unit of a libc has a table of its own): thousands of small
	// ones made most of a cached index's load.
	onces := make([]sync.Once, len(hs))
	tabs := make([]abbrevs, 0, len(hs))
	d.abbrevCache = make(map[uint64]*abbrevs, len(hs))
	end := Offset(0)
	for i, h := range hs {
		if h.Base < end || h.Off <= h.Base || h.End < h.Off || uint64(h.End) > uint64(len(info)) || h.Vers < 2 || h.Vers > 5 {
			return nil, fmt.Errorf("unit header %d (%#x-%#x) does not fit .debug_info", i, h.Base, h.End)
		}
		end = h.End
		u := &units[i]
		*u = unit{base: h.Base, off: h.Off, data: info[h.Off:h.End], vers: h.Vers, utype: h.UType,
			asize: h.ASize, is64: h.Is64, u5once: &onces[i]}
		a, ok := d.abbrevCache[h.Abbrev]
		if !ok {
			tabs = append(tabs, abbrevs{d: d, off: h.Abbrev, vers: h.Vers})
			a = &tabs[len(tabs)-1]
			d.abbrevCache[h.Abbrev] = a
		}
		u.atable = a
		ptrs[i] = u
	}
	d.unit.Store(&ptrs)
	return d, nil
}
