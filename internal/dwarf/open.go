// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dwarf

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// Data represents the DWARF debugging information
// loaded from an executable file (for example, an ELF or Mach-O executable).
type Data struct {
	// raw data
	abbrev   []byte
	aranges  []byte
	frame    []byte
	info     []byte
	line     []byte
	pubnames []byte
	ranges   []byte
	str      []byte

	// New sections added in DWARF 5.
	addr       []byte
	lineStr    []byte
	strOffsets []byte
	rngLists   []byte

	// parsed data
	abbrevCache map[uint64]*abbrevs // by offset; filled by New, AddTypes and units made on first use
	abbrevMu    sync.Mutex          // guards abbrevCache
	bigEndian   bool
	order       binary.ByteOrder
	typeCache   map[Offset]Type
	typeSigs    map[uint64]*typeUnit
	hdrs        *headerUnits  // the units' headers (a lazy Data appends); units are made on first use
	lazy        *lazySections // set by NewLazy
}

var errSegmentSelector = errors.New("non-zero segment_selector size not supported")

// newData is a Data of the given sections (lazy ones too, when lazy is
// set) with empty caches and its byte order found: New, NewWithUnits and
// NewLazy then give it its units.
func newData(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, lazy *lazySections) (*Data, error) {
	d := &Data{
		abbrev:      abbrev,
		aranges:     aranges,
		frame:       frame,
		info:        info,
		line:        line,
		pubnames:    pubnames,
		ranges:      ranges,
		str:         str,
		abbrevCache: make(map[uint64]*abbrevs),
		typeCache:   make(map[Offset]Type),
		typeSigs:    make(map[uint64]*typeUnit),
		lazy:        lazy,
	}
	if err := d.sniffOrder(); err != nil {
		return nil, err
	}
	return d, nil
}

// New returns a new [Data] object initialized from the given parameters.
// Rather than calling this function directly, clients should typically use
// the DWARF method of the File type of the appropriate package [debug/elf],
// [debug/macho], or [debug/pe].
//
// The []byte arguments are the data from the corresponding debug section
// in the object file; for example, for an ELF object, abbrev is the contents of
// the ".debug_abbrev" section.
func New(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte) (*Data, error) {
	d, err := newData(abbrev, aranges, frame, info, line, pubnames, ranges, str, nil)
	if err != nil {
		return nil, err
	}
	t, err := d.parseUnits()
	if err != nil {
		return nil, err
	}
	d.hdrs = newHeaderUnits(t, d.info)
	return d, nil
}

// NewReadingUnits is New for a .debug_info mapped from a file and not yet
// read: it reads each unit's header from infoAt (where infoAt.ReadAt(p,
// off) reads info[off:off+len(p)], such as the file), a few bytes a unit,
// so that making the Data touches none of info's pages but its first; New
// touches every page a header is in, thousands in a kernel's .debug_info,
// each a page fault. Sections New would refuse, or a read that fails, are
// read by New, which says why.
func NewReadingUnits(abbrev, aranges, frame, info, line, pubnames, ranges, str []byte, infoAt io.ReaderAt) (*Data, error) {
	d, err := newData(abbrev, aranges, frame, info, line, pubnames, ranges, str, nil)
	if err != nil {
		return nil, err
	}
	t, ok := d.readUnits(infoAt)
	if !ok {
		return New(abbrev, aranges, frame, info, line, pubnames, ranges, str)
	}
	d.hdrs = newHeaderUnits(t, d.info)
	return d, nil
}

// readUnits reads the unit headers parseUnits reads, each from r; false
// where parseUnits would fail or a read does.
func (d *Data) readUnits(r io.ReaderAt) (UnitHeaderTable, bool) {
	size := int64(len(d.info))
	var t UnitHeaderTable
	var hdr [48]byte // a unit length and the longest header (a type unit's)
	// A unit after units of length 0 starts, as parseUnits (and the
	// standard library) take it, where the first of them does.
	base := int64(-1)
	for off := int64(0); off < size; {
		n := min(int64(len(hdr)), size-off)
		if m, _ := r.ReadAt(hdr[:n], off); int64(m) != n {
			return nil, false
		}
		b := makeBuf(d, unknownFormat{}, "info", Offset(off), hdr[:n])
		length, is64 := b.unitLength()
		if b.err != nil || length != Offset(uint32(length)) {
			return nil, false
		}
		dataOff := b.off
		next := int64(dataOff) + int64(length)
		if next > size {
			return nil, false
		}
		if length == 0 && base < 0 {
			base = off
		}
		if length > 0 {
			start := off
			if base >= 0 {
				start, base = base, -1
			}
			h, ok := unitHeaderFields(&b, Offset(start), is64)
			if !ok || b.err != nil || b.off-dataOff > length {
				return nil, false
			}
			h.End = Offset(next)
			t = appendUnitHeader(t, h)
		}
		off = next
	}
	return t, true
}

// sniffOrder sets the byte order from the first unit's version in d.info.
func (d *Data) sniffOrder() error {
	// Sniff .debug_info to figure out byte order.
	// 32-bit DWARF: 4 byte length, 2 byte version.
	// 64-bit DWARf: 4 bytes of 0xff, 8 byte length, 2 byte version.
	if len(d.info) < 6 {
		return DecodeError{"info", Offset(len(d.info)), "too short"}
	}
	offset := 4
	if d.info[0] == 0xff && d.info[1] == 0xff && d.info[2] == 0xff && d.info[3] == 0xff {
		if len(d.info) < 14 {
			return DecodeError{"info", Offset(len(d.info)), "too short"}
		}
		offset = 12
	}
	// Fetch the version, a tiny 16-bit number (1, 2, 3, 4, 5).
	x, y := d.info[offset], d.info[offset+1]
	switch {
	case x == 0 && y == 0:
		return DecodeError{"info", 4, "unsupported version 0"}
	case x == 0:
		d.bigEndian = true
		d.order = binary.BigEndian
	case y == 0:
		d.bigEndian = false
		d.order = binary.LittleEndian
	default:
		return DecodeError{"info", 4, "cannot determine byte order"}
	}

	return nil
}

// AddTypes will add one .debug_types section to the DWARF data. A
// typical object with DWARF version 4 debug info will have multiple
// .debug_types sections. The name is used for error reporting only,
// and serves to distinguish one .debug_types section from another.
func (d *Data) AddTypes(name string, types []byte) error {
	return d.parseTypes(name, types)
}

// AddSection adds another DWARF section by name. The name should be a
// DWARF section name such as ".debug_addr", ".debug_str_offsets", and
// so forth. This approach is used for new DWARF sections added in
// DWARF 5 and later.
func (d *Data) AddSection(name string, contents []byte) error {
	var err error
	switch name {
	case ".debug_addr":
		d.addr = contents
	case ".debug_line_str":
		d.lineStr = contents
	case ".debug_str_offsets":
		d.strOffsets = contents
	case ".debug_rnglists":
		d.rngLists = contents
	}
	// Just ignore names that we don't yet support.
	return err
}
