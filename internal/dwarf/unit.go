// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package dwarf

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// DWARF debug info is split into a sequence of compilation units.
// Each unit has its own abbreviation table and address size.

type unit struct {
	base   Offset // byte offset of header within the aggregate info
	off    Offset // byte offset of data within the aggregate info
	data   []byte
	atable *abbrevs // parsed on first use
	*unit5          // info specific to DWARF 5 units, set once by u5once
	u5once *sync.Once
	u5err  error
	asize  int
	vers   int
	is64   bool  // True for 64-bit DWARF format
	utype  uint8 // DWARF 5 unit type

	entry atomic.Pointer[Entry] // the unit's entry, as baseAddressForEntry read it, or nil
}

type unit5 struct {
	addrBase       uint64
	strOffsetsBase uint64
	rngListsBase   uint64
	locListsBase   uint64
}

// Implement the dataFormat interface.

func (u *unit) version() int {
	return u.vers
}

func (u *unit) dwarf64() (bool, bool) {
	return u.is64, true
}

func (u *unit) addrsize() int {
	return u.asize
}

func (u *unit) addrBase() uint64 {
	if u.unit5 != nil {
		return u.unit5.addrBase
	}
	return 0
}

func (u *unit) strOffsetsBase() uint64 {
	if u.unit5 != nil {
		return u.unit5.strOffsetsBase
	}
	return 0
}

func (u *unit) rngListsBase() uint64 {
	if u.unit5 != nil {
		return u.unit5.rngListsBase
	}
	return 0
}

func (u *unit) locListsBase() uint64 {
	if u.unit5 != nil {
		return u.unit5.locListsBase
	}
	return 0
}

// parseUnits reads every unit's header. Unlike the standard library's, it
// writes the headers down as records (UnitHeaderTable) and makes no unit:
// a unit is made from its record when it is first used (headerUnits).
func (d *Data) parseUnits() (UnitHeaderTable, error) {
	// Count units.
	nunit := 0
	b := makeBuf(d, unknownFormat{}, "info", 0, d.info)
	for len(b.data) > 0 {
		len, _ := b.unitLength()
		if len != Offset(uint32(len)) {
			b.error("unit length overflow")
			break
		}
		b.skip(int(len))
		if len > 0 {
			nunit++
		}
	}
	if b.err != nil {
		return nil, b.err
	}

	// Again, this time writing them down.
	b = makeBuf(d, unknownFormat{}, "info", 0, d.info)
	tab := make(UnitHeaderTable, 0, nunit*UnitHeaderSize)
	for range nunit {
		base := b.off
		var n Offset
		var is64 bool
		if b.err != nil {
			return nil, b.err
		}
		for n == 0 {
			n, is64 = b.unitLength()
		}
		h, ok := d.unitHeader(&b, base, is64, n)
		if !ok {
			break
		}
		tab = appendUnitHeader(tab, h)
	}
	if b.err != nil {
		return nil, b.err
	}
	return tab, nil
}

// unitHeader reads the header of the unit at base from b, which is
// positioned just after the unit's length n, and steps over the rest of
// the unit; it returns false (b's error set) for a version it does not
// read. (The standard library's sets a unit's fields, and its data.)
func (d *Data) unitHeader(b *buf, base Offset, is64 bool, n Offset) (UnitHeader, bool) {
	dataOff := b.off
	h, ok := unitHeaderFields(b, base, is64)
	if !ok {
		return h, false
	}
	b.skip(int(n - (b.off - dataOff)))
	h.End = b.off
	return h, true
}

// unitHeaderFields reads the header of the unit at base from b, which is
// past its unit length; Off is where b is left, End is not set.
func unitHeaderFields(b *buf, base Offset, is64 bool) (UnitHeader, bool) {
	h := UnitHeader{Base: base, Is64: is64}
	vers := b.uint16()
	if vers < 2 || vers > 5 {
		b.error("unsupported DWARF version " + strconv.Itoa(int(vers)))
		return h, false
	}
	h.Vers = int(vers)
	if vers >= 5 {
		h.UType = b.uint8()
		h.ASize = int(b.uint8())
	}
	if is64 {
		h.Abbrev = b.uint64()
	} else {
		h.Abbrev = uint64(b.uint32())
	}
	if vers < 5 {
		h.ASize = int(b.uint8())
	}

	switch h.UType {
	case utSkeleton, utSplitCompile:
		b.uint64() // unit ID
	case utType, utSplitType:
		b.uint64() // type signature
		if is64 {  // type offset
			b.uint64()
		} else {
			b.uint32()
		}
	}

	h.Off = b.off
	return h, true
}

// offsetToUnit returns the index of the unit containing offset off.
// It returns -1 if no unit contains this offset. It searches the units'
// headers, making no unit; in a lazy Data (NewLazy) it reads units up to
// off first.
func (d *Data) offsetToUnit(off Offset) int {
	if i := d.hdrs.index(off); i >= 0 || d.lazy == nil {
		return i
	}
	d.growUnits(off)
	return d.hdrs.index(off)
}

func (d *Data) collectDwarf5BaseOffsets(u *unit) error {
	if u.unit5 == nil {
		panic("expected unit5 to be set up already")
	}
	b := makeBuf(d, u, "info", u.off, u.data)
	cu := b.entry(nil, u)
	if cu == nil {
		// Unknown abbreviation table entry or some other fatal
		// problem; bail early on the assumption that this will be
		// detected at some later point.
		return b.err
	}
	if iAddrBase, ok := cu.Val(AttrAddrBase).(int64); ok {
		u.unit5.addrBase = uint64(iAddrBase)
	}
	if iStrOffsetsBase, ok := cu.Val(AttrStrOffsetsBase).(int64); ok {
		u.unit5.strOffsetsBase = uint64(iStrOffsetsBase)
	}
	if iRngListsBase, ok := cu.Val(AttrRnglistsBase).(int64); ok {
		u.unit5.rngListsBase = uint64(iRngListsBase)
	}
	if iLocListsBase, ok := cu.Val(AttrLoclistsBase).(int64); ok {
		u.unit5.locListsBase = uint64(iLocListsBase)
	}
	return nil
}
