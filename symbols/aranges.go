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
	sets, tuples := arangesTuples(b)
	x := &arIndex{ranges: make([]cuRange, 0, tuples), hdrs: make([]dwarf.Offset, 0, sets)}
	// A set's unit is new when its offset is above every one seen (the
	// order linkers write them in); only otherwise is it looked up, in a
	// map made the first time that happens.
	var unitOf map[uint64]int
	maxInfo := uint64(0)
	for len(b) > 0 {
		set, offSize, next, ok := arangesSet(b)
		if !ok {
			return nil
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
		start := tuplesAt(offSize)
		if start > len(set) {
			return nil
		}
		u, ok := 0, false
		if len(x.hdrs) > 0 && info <= maxInfo {
			if unitOf == nil {
				unitOf = make(map[uint64]int, len(x.hdrs))
				for i, h := range x.hdrs {
					if _, dup := unitOf[uint64(h)]; !dup {
						unitOf[uint64(h)] = i
					}
				}
			}
			u, ok = unitOf[info]
		}
		if !ok {
			if len(x.hdrs) >= maxArangesSets {
				return nil
			}
			u = len(x.hdrs)
			if unitOf != nil {
				unitOf[info] = u
			}
			x.hdrs = append(x.hdrs, dwarf.Offset(info))
			maxInfo = max(maxInfo, info)
		}
		for t := set[start:]; len(t) >= 16; t = t[16:] {
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
	sortRanges(x.ranges)
	x.units = make([]*arUnit, len(x.hdrs))
	return x
}

// arangesSet frames the first set of .debug_aranges b: its bytes after
// the unit length, the size of its offsets (4, or 8 in 64-bit DWARF), and
// the sets after it; !ok when b does not hold a whole set.
func arangesSet(b []byte) (set []byte, offSize int, next []byte, ok bool) {
	if len(b) < 4 {
		return nil, 0, nil, false
	}
	n, hdr, offSize := uint64(binary.LittleEndian.Uint32(b)), 4, 4
	if n == 0xffffffff {
		if len(b) < 12 {
			return nil, 0, nil, false
		}
		n, hdr, offSize = binary.LittleEndian.Uint64(b[4:]), 12, 8
	}
	if n > uint64(len(b)-hdr) {
		return nil, 0, nil, false
	}
	return b[hdr : hdr+int(n)], offSize, b[hdr+int(n):], true
}

// tuplesAt is where a set's tuples start in the bytes arangesSet gives:
// at a multiple of 16 bytes from the set's start (its unit length
// included), after the version, the unit's offset and the two sizes.
func tuplesAt(offSize int) int {
	hdr := 4
	if offSize == 8 {
		hdr = 12
	}
	return (hdr+2+offSize+2+15)&^15 - hdr
}

// arangesTuples returns how many sets .debug_aranges b holds and about
// how many address ranges (each set's room for tuples, less its
// terminator), for parseAranges to make room for them at once.
func arangesTuples(b []byte) (sets, tuples int) {
	for len(b) > 0 {
		set, offSize, next, ok := arangesSet(b)
		if !ok {
			break
		}
		if t := (len(set) - tuplesAt(offSize)) / 16; t > 1 {
			tuples += t - 1
		}
		sets++
		b = next
	}
	return sets, tuples
}

// sortRanges sorts rs by start, those with equal starts in the order they
// were read (a stable sort). Starts within 2^39 of each other, as in any
// one file, are sorted as packed integers, (start-min)<<24 | position,
// and the ranges moved into place by following the permutation's cycles:
// several times faster than a sort by a comparison function.
func sortRanges(rs []cuRange) {
	if len(rs) < 2 {
		return
	}
	lo, hi, sorted := rs[0].lo, rs[0].lo, true
	for i, r := range rs {
		lo, hi = min(lo, r.lo), max(hi, r.lo)
		if i > 0 && r.lo < rs[i-1].lo {
			sorted = false
		}
	}
	if sorted {
		return
	}
	const posBits, done = 24, 1 << 63
	if hi-lo >= 1<<39 || len(rs) >= 1<<posBits {
		slices.SortStableFunc(rs, func(a, b cuRange) int { return cmp.Compare(a.lo, b.lo) })
		return
	}
	keys := make([]uint64, len(rs))
	for i, r := range rs {
		keys[i] = (r.lo-lo)<<posBits | uint64(i)
	}
	slices.Sort(keys)
	// rs[i] becomes the range at position keys[i]'s low bits: each cycle
	// of that permutation is walked once, done marking the keys used.
	for i := range rs {
		if keys[i]&done != 0 {
			continue
		}
		first, j := rs[i], i
		for {
			k := int(keys[j] & (1<<posBits - 1))
			keys[j] |= done
			if k == i {
				rs[j] = first
				break
			}
			rs[j] = rs[k]
			j = k
		}
	}
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
