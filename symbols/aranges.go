package symbols

import (
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// Where a file has .debug_aranges, the units are found by it instead of
// by reading every unit's entry, which would inflate all of a compressed
// .debug_info and, in a vmlinux, read 2,000+ entries spread over 160 MiB
// (most of a first run's DWARF cost; later runs can find the index in the
// debug cache, stored when a lookup had to fall back to it): a pc's
// unit is the one whose address ranges .debug_aranges says hold it. That
// answer is checked against the unit's own entry (its DW_AT_low_pc,
// DW_AT_high_pc and DW_AT_ranges, the ranges buildDWARFIndex reads); a pc
// that .debug_aranges places in no unit, or in a unit whose entry does
// not hold it, is looked up in the index buildDWARFIndex makes from every
// unit (read once, the first time it is needed), so lookups answer as
// they would without .debug_aranges.

// arIndex is a unit index made from .debug_aranges.
type arIndex struct {
	ranges []cuRange      // unit: an index in hdrs
	hdrs   []dwarf.Offset // each set's unit header
	mu     sync.Mutex     // held while a unit is read
	units  []*arUnit      // by index in hdrs, made on first use
	full   atomic.Pointer[dwarfIndex]
	once   sync.Once
}

// arUnit is a unit found by .debug_aranges and its entry's ranges.
type arUnit struct {
	u      *cuInfo // nil when no unit starts at the header
	ranges [][2]uint64
}

// maxArangesSets bounds the sets read from .debug_aranges (the section's
// size bounds it too: 16 bytes a set at least).
const maxArangesSets = 1 << 24

// parseAranges reads .debug_aranges (DWARF 2-5, little-endian, 8-byte
// addresses, no segments); nil when the section is absent or has anything
// else, so that the caller reads every unit's entry instead.
func parseAranges(b []byte) *arIndex {
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
	slices.SortFunc(x.ranges, func(a, b cuRange) int { return cmp.Compare(a.lo, b.lo) })
	x.units = make([]*arUnit, len(x.hdrs))
	return x
}

// unitFor returns the unit holding pc, as (*dwarfIndex).unitFor; x is the
// index a belongs to.
func (a *arIndex) unitFor(x *dwarfIndex, pc uint64) *cuInfo {
	if full := a.full.Load(); full != nil {
		return full.unitFor(pc)
	}
	if i := findRange(a.ranges, pc); i >= 0 {
		if au := a.unit(x, a.ranges[i].unit); au.u != nil {
			for _, r := range au.ranges {
				if r[0] <= pc && pc < r[1] {
					return au.u
				}
			}
		}
	}
	return a.fullIndex(x).unitFor(pc)
}

// unit returns unit i, reading its header and entry on first use.
func (a *arIndex) unit(x *dwarfIndex, i int) *arUnit {
	a.mu.Lock()
	defer a.mu.Unlock()
	if au := a.units[i]; au != nil {
		return au
	}
	au := &arUnit{}
	a.units[i] = au
	entry, next, ok := x.d.UnitAt(a.hdrs[i])
	if !ok {
		return au
	}
	u := &cuInfo{off: entry, end: next}
	u.once.Do(func() { u.load(x) })
	if u.err != nil || u.entry == nil {
		return au
	}
	rs, err := x.d.Ranges(u.entry)
	if err != nil {
		return au
	}
	for _, r := range rs {
		if r[1] > r[0] && r[0] != 0 {
			au.ranges = append(au.ranges, r)
		}
	}
	au.u = u
	return au
}

// fullIndex returns the index of every unit's entry (buildDWARFIndex),
// made on first use.
func (a *arIndex) fullIndex(x *dwarfIndex) *dwarfIndex {
	a.once.Do(func() {
		full, err := buildDWARFIndex(x.d)
		full.cache, full.key = x.cache, x.key
		if err == nil {
			// Later runs take this index from the cache (indexDWARF)
			// rather than fall back again.
			x.cache.storeUnits(full, x.key)
		}
		a.full.Store(full)
	})
	return a.full.Load()
}

// findRange returns the index in ranges (sorted by lo) of the range holding
// pc, looking back over up to 8 ranges that start at or before it, or -1.
func findRange(ranges []cuRange, pc uint64) int {
	lo, hi := 0, len(ranges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ranges[m].lo <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0 && i >= lo-8; i-- {
		if pc < ranges[i].hi {
			return i
		}
	}
	return -1
}

// arangesIndex returns the unit index made from .debug_aranges, or nil
// (no such section, or one parseAranges does not take: every unit's entry
// is read).
func (st *dwarfStreams) arangesIndex() *arIndex {
	if st == nil {
		return nil
	}
	return parseAranges(st.aranges)
}
