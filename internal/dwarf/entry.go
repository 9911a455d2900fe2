// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// DWARF debug information entry parser.
// An entry is a sequence of data items of a given format.
// The first word in the entry is an index into what DWARF
// calls the ``abbreviation table.''  An abbreviation is really
// just a type descriptor: it's an array of attribute tag/value format pairs.

package dwarf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// a single entry's description: a sequence of attributes
type abbrev struct {
	tag      Tag
	children bool
	field    []afield
	// For NextIf's stepping over an entry: the bytes of its attributes
	// when every form has a fixed size in a unit of 8-byte addresses and
	// 32-bit DWARF (fixedSize, -1 if any has not), and where its
	// DW_AT_sibling is among them (sibAt, sibSize; sibSize 0: none).
	fixed   int32
	sibAt   int32
	sibSize int8
	ok      bool // an abbreviation of the table (abbrevTable.dense)
}

type afield struct {
	attr  Attr
	fmt   format
	class Class
	val   int64 // for formImplicitConst
}

// abbrevTable maps entry format ids to their descriptions: ids from
// base on by dense[id-base] (a producer numbers them 1, 2, ...; a table
// parsed only as far as one id holds it alone, base that id), others by
// more.
type abbrevTable struct {
	base  uint32
	dense []abbrev
	more  map[uint32]*abbrev
}

// get returns the abbreviation id, or nil.
func (t *abbrevTable) get(id uint32) *abbrev {
	if i := id - t.base; i < uint32(len(t.dense)) {
		if a := &t.dense[i]; a.ok {
			return a
		}
		return nil
	}
	return t.more[id]
}

// add makes a the abbreviation id (the last of an id given twice wins).
func (t *abbrevTable) add(id uint32, a abbrev) {
	a.ok = true
	if len(t.dense) == 0 && t.more == nil {
		t.base = id
	}
	switch i := id - t.base; {
	case i < uint32(len(t.dense)):
		t.dense[i] = a
	case i == uint32(len(t.dense)) && t.more[id] == nil:
		t.dense = append(t.dense, a)
	default:
		if t.more == nil {
			t.more = make(map[uint32]*abbrev)
		}
		t.more[id] = &a
	}
}

// setFixed sets a.fixed, a.sibAt and a.sibSize (see abbrev).
func (a *abbrev) setFixed() {
	a.fixed, a.sibAt, a.sibSize = 0, 0, 0
	for i := range a.field {
		f := &a.field[i]
		n := fixedFormSize(f.fmt)
		if n < 0 {
			a.fixed, a.sibSize = -1, 0
			return
		}
		if f.attr == AttrSibling {
			switch f.fmt {
			case formRef1, formRef2, formRef4, formRef8:
				a.sibAt, a.sibSize = a.fixed, int8(n)
			default:
				a.fixed, a.sibSize = -1, 0 // left to the loop of skipAttrs
				return
			}
		}
		a.fixed += int32(n)
	}
}

// fixedFormSize returns the size of an attribute of form f in a unit of
// 8-byte addresses and 32-bit DWARF, or -1 when it varies (or skipAttrs
// does not step over the form).
func fixedFormSize(f format) int {
	switch f {
	case formAddr:
		return 8
	case formFlagPresent, formImplicitConst:
		return 0
	case formData1, formFlag, formStrx1, formAddrx1, formRef1:
		return 1
	case formData2, formStrx2, formAddrx2, formRef2:
		return 2
	case formStrx3, formAddrx3:
		return 3
	case formData4, formStrx4, formAddrx4, formRefSup4, formRef4,
		formStrp, formLineStrp, formSecOffset, formGnuRefAlt, formGnuStrpAlt, formStrpSup:
		return 4
	case formData8, formRefSig8, formRefSup8, formRef8:
		return 8
	case formData16:
		return 16
	}
	return -1
}

// abbrevs is the abbreviation table of one or more units, parsed on first
// use; a unit's first entry is decoded without parsing the whole table.
// It is safe for concurrent use.
type abbrevs struct {
	d    *Data
	off  uint64
	vers int // of the first unit using the table, as the eager cache had it
	once sync.Once
	done atomic.Bool // once has run: tab and err are set
	tab  abbrevTable
	err  error
}

// lazyAbbrev returns the table at off, shared by the units that use it.
// AddTypes calls it, and headerUnits.unitAt for a unit made on first use
// (maybe by Readers on several goroutines).
func (d *Data) lazyAbbrev(off uint64, vers int) *abbrevs {
	d.abbrevMu.Lock()
	defer d.abbrevMu.Unlock()
	if a, ok := d.abbrevCache[off]; ok {
		return a
	}
	a := &abbrevs{d: d, off: off, vers: vers}
	d.abbrevCache[off] = a
	return a
}

// table parses the whole table once.
func (a *abbrevs) table() (abbrevTable, error) {
	a.once.Do(func() {
		a.tab, a.err = a.d.parseAbbrev(a.off, a.vers, 0)
		a.done.Store(true)
	})
	return a.tab, a.err
}

// lookup returns the abbreviation id. For a unit's first entry (first),
// before the table has been parsed, it parses the table only as far as id:
// reading every unit's first entry (its ranges, its line table) then costs
// one abbreviation per unit.
func (a *abbrevs) lookup(id uint32, first bool) (*abbrev, bool, error) {
	if first && !a.done.Load() {
		m, err := a.d.parseAbbrev(a.off, a.vers, id)
		if err != nil {
			return nil, false, err
		}
		if ab := m.get(id); ab != nil {
			return ab, true, nil
		}
	}
	m, err := a.table()
	if err != nil {
		return nil, false, err
	}
	ab := m.get(id)
	return ab, ab != nil, nil
}

// parseAbbrev returns the abbreviation table that starts at byte off
// in the .debug_abbrev section; when stop is not 0 it stops after the
// abbreviation stop.
// A lazy Data (NewLazy) reads .debug_abbrev further while the table runs
// past what it has read.
func (d *Data) parseAbbrev(off uint64, vers int, stop uint32) (abbrevTable, error) {
	for {
		data, all := d.abbrevBytes()
		m, cut, err := d.parseAbbrevIn(data, off, vers, stop)
		if all || !cut && err == nil || !d.growAbbrev(off) {
			return m, err
		}
	}
}

// parseAbbrevIn parses the table at off in data; cut reports that it read
// to the end of data, whose reads past it give zeros (which end a table):
// if data is a prefix of the section, the table may go on.
func (d *Data) parseAbbrevIn(data []byte, off uint64, vers int, stop uint32) (_ abbrevTable, cut bool, _ error) {
	if off > uint64(len(data)) {
		data = nil
	} else {
		data = data[off:]
	}
	b := makeBuf(d, unknownFormat{}, "abbrev", 0, data)

	// Error handling is simplified by the buf getters
	// returning an endless stream of 0s after an error.
	var m abbrevTable
	var fields []afield
	if stop == 0 {
		// The whole table: sized first, so that its arrays are made once.
		n, nf := countAbbrevs(b)
		m.dense = make([]abbrev, 0, n)
		fields = make([]afield, 0, nf)
	} else {
		m.dense = make([]abbrev, 0, 1) // stop alone
		fields = make([]afield, 0, 16)
	}
	for {
		// Table ends with id == 0.
		id := uint32(b.uint())
		if id == 0 {
			break
		}
		if stop != 0 && id != stop {
			// Skip the abbreviation without writing it down.
			b.uint()
			b.uint8()
			for {
				tag := b.uint()
				fmt := b.uint()
				if tag == 0 && fmt == 0 {
					break
				}
				if format(fmt) == formImplicitConst {
					b.int()
				}
			}
			continue
		}

		// The attributes, in the table's one array of them (an
		// abbreviation's field keeps its part of it, even after the
		// array moves on growing).
		var a abbrev
		a.tag = Tag(b.uint())
		a.children = b.uint8() != 0
		start := len(fields)
		for {
			attr := b.uint()
			fmt := b.uint()
			if attr == 0 && fmt == 0 {
				break
			}
			f := afield{attr: Attr(attr), fmt: format(fmt)}
			f.class = formToClass(f.fmt, f.attr, vers, &b)
			if f.fmt == formImplicitConst {
				f.val = b.int()
			}
			fields = append(fields, f)
		}
		if b.err != nil {
			return abbrevTable{}, len(b.data) == 0, b.err
		}
		a.field = fields[start:len(fields):len(fields)]

		a.setFixed()
		m.add(id, a)
		if id == stop {
			break
		}
	}
	if b.err != nil {
		return abbrevTable{}, len(b.data) == 0, b.err
	}
	return m, len(b.data) == 0, nil
}

// countAbbrevs returns how many abbreviations the table b starts with
// has, and how many attributes (bounded by b's length: what a damaged
// table claims is not allocated).
func countAbbrevs(b buf) (n, fields int) {
	for b.uint() != 0 && b.err == nil {
		b.uint()
		b.uint8()
		for b.err == nil {
			attr, fmt := b.uint(), b.uint()
			if attr == 0 && fmt == 0 {
				break
			}
			if format(fmt) == formImplicitConst {
				b.int()
			}
			fields++
		}
		n++
	}
	return n, fields
}

// attrIsExprloc indicates attributes that allow exprloc values that
// are encoded as block values in DWARF 2 and 3. See DWARF 4, Figure
// 20.
var attrIsExprloc = map[Attr]bool{
	AttrLocation:      true,
	AttrByteSize:      true,
	AttrBitOffset:     true,
	AttrBitSize:       true,
	AttrStringLength:  true,
	AttrLowerBound:    true,
	AttrReturnAddr:    true,
	AttrStrideSize:    true,
	AttrUpperBound:    true,
	AttrCount:         true,
	AttrDataMemberLoc: true,
	AttrFrameBase:     true,
	AttrSegment:       true,
	AttrStaticLink:    true,
	AttrUseLocation:   true,
	AttrVtableElemLoc: true,
	AttrAllocated:     true,
	AttrAssociated:    true,
	AttrDataLocation:  true,
	AttrStride:        true,
}

// attrPtrClass indicates the *ptr class of attributes that have
// encoding formSecOffset in DWARF 4 or formData* in DWARF 2 and 3.
var attrPtrClass = map[Attr]Class{
	AttrLocation:      ClassLocListPtr,
	AttrStmtList:      ClassLinePtr,
	AttrStringLength:  ClassLocListPtr,
	AttrReturnAddr:    ClassLocListPtr,
	AttrStartScope:    ClassRangeListPtr,
	AttrDataMemberLoc: ClassLocListPtr,
	AttrFrameBase:     ClassLocListPtr,
	AttrMacroInfo:     ClassMacPtr,
	AttrSegment:       ClassLocListPtr,
	AttrStaticLink:    ClassLocListPtr,
	AttrUseLocation:   ClassLocListPtr,
	AttrVtableElemLoc: ClassLocListPtr,
	AttrRanges:        ClassRangeListPtr,
	// The following are new in DWARF 5.
	AttrStrOffsetsBase: ClassStrOffsetsPtr,
	AttrAddrBase:       ClassAddrPtr,
	AttrRnglistsBase:   ClassRngListsPtr,
	AttrLoclistsBase:   ClassLocListPtr,
}

// formToClass returns the DWARF 4 Class for the given form. If the
// DWARF version is less then 4, it will disambiguate some forms
// depending on the attribute.
func formToClass(form format, attr Attr, vers int, b *buf) Class {
	switch form {
	default:
		b.error("cannot determine class of unknown attribute form")
		return 0

	case formIndirect:
		return ClassUnknown

	case formAddr, formAddrx, formAddrx1, formAddrx2, formAddrx3, formAddrx4:
		return ClassAddress

	case formDwarfBlock1, formDwarfBlock2, formDwarfBlock4, formDwarfBlock:
		// In DWARF 2 and 3, ClassExprLoc was encoded as a
		// block. DWARF 4 distinguishes ClassBlock and
		// ClassExprLoc, but there are no attributes that can
		// be both, so we also promote ClassBlock values in
		// DWARF 4 that should be ClassExprLoc in case
		// producers get this wrong.
		if attrIsExprloc[attr] {
			return ClassExprLoc
		}
		return ClassBlock

	case formData1, formData2, formData4, formData8, formSdata, formUdata, formData16, formImplicitConst:
		// In DWARF 2 and 3, ClassPtr was encoded as a
		// constant. Unlike ClassExprLoc/ClassBlock, some
		// DWARF 4 attributes need to distinguish Class*Ptr
		// from ClassConstant, so we only do this promotion
		// for versions 2 and 3.
		if vers < 4 {
			if class, ok := attrPtrClass[attr]; ok {
				return class
			}
		}
		return ClassConstant

	case formFlag, formFlagPresent:
		return ClassFlag

	case formRefAddr, formRef1, formRef2, formRef4, formRef8, formRefUdata, formRefSup4, formRefSup8:
		return ClassReference

	case formRefSig8:
		return ClassReferenceSig

	case formString, formStrp, formStrx, formStrpSup, formLineStrp, formStrx1, formStrx2, formStrx3, formStrx4:
		return ClassString

	case formSecOffset:
		// DWARF 4 defines four *ptr classes, but doesn't
		// distinguish them in the encoding. Disambiguate
		// these classes using the attribute.
		if class, ok := attrPtrClass[attr]; ok {
			return class
		}
		return ClassUnknown

	case formExprloc:
		return ClassExprLoc

	case formGnuRefAlt:
		return ClassReferenceAlt

	case formGnuStrpAlt:
		return ClassStringAlt

	case formLoclistx:
		return ClassLocList

	case formRnglistx:
		return ClassRngList
	}
}

// An Entry is a sequence of attribute/value pairs.
type Entry struct {
	Offset   Offset // offset of Entry in DWARF info
	Tag      Tag    // tag (kind of Entry)
	Children bool   // whether Entry is followed by children
	Field    []Field
}

// A Field is a single attribute/value pair in an [Entry].
//
// A value can be one of several "attribute classes" defined by DWARF.
// The Go types corresponding to each class are:
//
//	DWARF class       Go type        Class
//	-----------       -------        -----
//	address           uint64         ClassAddress
//	block             []byte         ClassBlock
//	constant          int64          ClassConstant
//	flag              bool           ClassFlag
//	reference
//	  to info         dwarf.Offset   ClassReference
//	  to type unit    uint64         ClassReferenceSig
//	string            string         ClassString
//	exprloc           []byte         ClassExprLoc
//	lineptr           int64          ClassLinePtr
//	loclistptr        int64          ClassLocListPtr
//	macptr            int64          ClassMacPtr
//	rangelistptr      int64          ClassRangeListPtr
//
// For unrecognized or vendor-defined attributes, [Class] may be
// [ClassUnknown].
type Field struct {
	Attr  Attr
	Val   any
	Class Class
}

// A Class is the DWARF 4 class of an attribute value.
//
// In general, a given attribute's value may take on one of several
// possible classes defined by DWARF, each of which leads to a
// slightly different interpretation of the attribute.
//
// DWARF version 4 distinguishes attribute value classes more finely
// than previous versions of DWARF. The reader will disambiguate
// coarser classes from earlier versions of DWARF into the appropriate
// DWARF 4 class. For example, DWARF 2 uses "constant" for constants
// as well as all types of section offsets, but the reader will
// canonicalize attributes in DWARF 2 files that refer to section
// offsets to one of the Class*Ptr classes, even though these classes
// were only defined in DWARF 3.
type Class int

const (
	// ClassUnknown represents values of unknown DWARF class.
	ClassUnknown Class = iota

	// ClassAddress represents values of type uint64 that are
	// addresses on the target machine.
	ClassAddress

	// ClassBlock represents values of type []byte whose
	// interpretation depends on the attribute.
	ClassBlock

	// ClassConstant represents values of type int64 that are
	// constants. The interpretation of this constant depends on
	// the attribute.
	ClassConstant

	// ClassExprLoc represents values of type []byte that contain
	// an encoded DWARF expression or location description.
	ClassExprLoc

	// ClassFlag represents values of type bool.
	ClassFlag

	// ClassLinePtr represents values that are an int64 offset
	// into the "line" section.
	ClassLinePtr

	// ClassLocListPtr represents values that are an int64 offset
	// into the "loclist" section.
	ClassLocListPtr

	// ClassMacPtr represents values that are an int64 offset into
	// the "mac" section.
	ClassMacPtr

	// ClassRangeListPtr represents values that are an int64 offset into
	// the "rangelist" section.
	ClassRangeListPtr

	// ClassReference represents values that are an Offset offset
	// of an Entry in the info section (for use with Reader.Seek).
	// The DWARF specification combines ClassReference and
	// ClassReferenceSig into class "reference".
	ClassReference

	// ClassReferenceSig represents values that are a uint64 type
	// signature referencing a type Entry.
	ClassReferenceSig

	// ClassString represents values that are strings. If the
	// compilation unit specifies the AttrUseUTF8 flag (strongly
	// recommended), the string value will be encoded in UTF-8.
	// Otherwise, the encoding is unspecified.
	ClassString

	// ClassReferenceAlt represents values of type int64 that are
	// an offset into the DWARF "info" section of an alternate
	// object file.
	ClassReferenceAlt

	// ClassStringAlt represents values of type int64 that are an
	// offset into the DWARF string section of an alternate object
	// file.
	ClassStringAlt

	// ClassAddrPtr represents values that are an int64 offset
	// into the "addr" section.
	ClassAddrPtr

	// ClassLocList represents values that are an int64 offset
	// into the "loclists" section.
	ClassLocList

	// ClassRngList represents values that are a uint64 offset
	// from the base of the "rnglists" section.
	ClassRngList

	// ClassRngListsPtr represents values that are an int64 offset
	// into the "rnglists" section. These are used as the base for
	// ClassRngList values.
	ClassRngListsPtr

	// ClassStrOffsetsPtr represents values that are an int64
	// offset into the "str_offsets" section.
	ClassStrOffsetsPtr
)

//go:generate stringer -type=Class

func (i Class) GoString() string {
	return "dwarf." + i.String()
}

// Val returns the value associated with attribute [Attr] in [Entry],
// or nil if there is no such attribute.
//
// A common idiom is to merge the check for nil return with
// the check that the value has the expected dynamic type, as in:
//
//	v, ok := e.Val(AttrSibling).(int64)
func (e *Entry) Val(a Attr) any {
	if f := e.AttrField(a); f != nil {
		return f.Val
	}
	return nil
}

// AttrField returns the [Field] associated with attribute [Attr] in
// [Entry], or nil if there is no such attribute.
func (e *Entry) AttrField(a Attr) *Field {
	for i, f := range e.Field {
		if f.Attr == a {
			return &e.Field[i]
		}
	}
	return nil
}

// An Offset represents the location of an [Entry] within the DWARF info.
// (See [Reader.Seek].)
type Offset uint32

// Entry reads a single entry from buf, decoding
// according to the given abbreviation table.
func (b *buf) entry(cu *Entry, u *unit) *Entry {
	off := b.off
	id := uint32(b.uint())
	if id == 0 {
		return &Entry{}
	}
	a, ok, err := u.atable.lookup(id, off == u.off)
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return nil
	}
	if !ok {
		b.error("unknown abbreviation table index")
		return nil
	}
	e := &Entry{
		Offset:   off,
		Tag:      a.tag,
		Children: a.children,
		Field:    make([]Field, len(a.field)),
	}
	for i := range e.Field {
		if !b.attr(u, &a.field[i], &e.Field[i]) {
			return nil
		}
	}
	if b.err != nil {
		return nil
	}
	return e
}

// resolveStrx returns the string at index off of the string offsets at
// strBase (DW_FORM_strx*).
func (b *buf) resolveStrx(strBase, off uint64) string {
	off += strBase
	if uint64(int(off)) != off {
		b.error("DW_FORM_strx offset out of range")
	}

	b1 := makeBuf(b.dwarf, b.format, "str_offsets", 0, b.dwarf.strOffsets)
	b1.skip(int(off))
	is64, _ := b.format.dwarf64()
	if is64 {
		off = b1.uint64()
	} else {
		off = uint64(b1.uint32())
	}
	if b1.err != nil {
		b.err = b1.err
		return ""
	}
	if uint64(int(off)) != off {
		b.error("DW_FORM_strx indirect offset out of range")
	}
	b1 = makeBuf(b.dwarf, b.format, "str", 0, b.dwarf.str)
	b1.skip(int(off))
	val := b1.string()
	if b1.err != nil {
		b.err = b1.err
	}
	return val
}

// resolveRnglistx returns the offset of range list off of the range
// lists at rnglistsBase (DW_FORM_rnglistx).
func (b *buf) resolveRnglistx(rnglistsBase, off uint64) uint64 {
	is64, _ := b.format.dwarf64()
	if is64 {
		off *= 8
	} else {
		off *= 4
	}
	off += rnglistsBase
	if uint64(int(off)) != off {
		b.error("DW_FORM_rnglistx offset out of range")
	}

	b1 := makeBuf(b.dwarf, b.format, "rnglists", 0, b.dwarf.rngLists)
	b1.skip(int(off))
	if is64 {
		off = b1.uint64()
	} else {
		off = uint64(b1.uint32())
	}
	if b1.err != nil {
		b.err = b1.err
		return 0
	}
	if uint64(int(off)) != off {
		b.error("DW_FORM_rnglistx indirect offset out of range")
	}
	return rnglistsBase + off
}

// attr decodes into f the attribute af of an entry of unit u, false when
// the entry cannot be decoded (b.err then says why, or the entry is to be
// dropped as entry drops it).
func (b *buf) attr(u *unit, af *afield, f *Field) bool {
	ubase, vers := u.base, u.vers
	f.Attr = af.attr
	f.Class = af.class
	fmt := af.fmt
	if fmt == formIndirect {
		fmt = format(b.uint())
		f.Class = formToClass(fmt, af.attr, vers, b)
	}
	var val any
	switch fmt {
	default:
		b.error("unknown entry attr format 0x" + strconv.FormatInt(int64(fmt), 16))

	// address
	case formAddr:
		val = b.addr()
	case formAddrx, formAddrx1, formAddrx2, formAddrx3, formAddrx4:
		var off uint64
		switch fmt {
		case formAddrx:
			off = b.uint()
		case formAddrx1:
			off = uint64(b.uint8())
		case formAddrx2:
			off = uint64(b.uint16())
		case formAddrx3:
			off = uint64(b.uint24())
		case formAddrx4:
			off = uint64(b.uint32())
		}
		if b.dwarf.addr == nil {
			b.error("DW_FORM_addrx with no .debug_addr section")
		}
		if b.err != nil {
			return false
		}

		addrBase := int64(u.addrBase())
		var err error
		val, err = b.dwarf.debugAddr(b.format, uint64(addrBase), off)
		if err != nil {
			if b.err == nil {
				b.err = err
			}
			return false
		}

	// block
	case formDwarfBlock1:
		val = b.bytes(int(b.uint8()))
	case formDwarfBlock2:
		val = b.bytes(int(b.uint16()))
	case formDwarfBlock4:
		val = b.bytes(int(b.uint32()))
	case formDwarfBlock:
		val = b.bytes(int(b.uint()))

	// constant
	case formData1:
		val = int64(b.uint8())
	case formData2:
		val = int64(b.uint16())
	case formData4:
		val = int64(b.uint32())
	case formData8:
		val = int64(b.uint64())
	case formData16:
		val = b.bytes(16)
	case formSdata:
		val = b.int()
	case formUdata:
		val = int64(b.uint())
	case formImplicitConst:
		val = af.val

	// flag
	case formFlag:
		val = b.uint8() == 1
	// New in DWARF 4.
	case formFlagPresent:
		// The attribute is implicitly indicated as present, and no value is
		// encoded in the debugging information entry itself.
		val = true

	// reference to other entry
	case formRefAddr:
		vers := b.format.version()
		if vers == 0 {
			b.error("unknown version for DW_FORM_ref_addr")
		} else if vers == 2 {
			val = Offset(b.addr())
		} else {
			is64, known := b.format.dwarf64()
			if !known {
				b.error("unknown size for DW_FORM_ref_addr")
			} else if is64 {
				val = Offset(b.uint64())
			} else {
				val = Offset(b.uint32())
			}
		}
	case formRef1:
		val = Offset(b.uint8()) + ubase
	case formRef2:
		val = Offset(b.uint16()) + ubase
	case formRef4:
		val = Offset(b.uint32()) + ubase
	case formRef8:
		val = Offset(b.uint64()) + ubase
	case formRefUdata:
		val = Offset(b.uint()) + ubase

	// string
	case formString:
		val = b.string()
	case formStrp, formLineStrp:
		var off uint64 // offset into .debug_str
		is64, known := b.format.dwarf64()
		if !known {
			b.error("unknown size for DW_FORM_strp/line_strp")
		} else if is64 {
			off = b.uint64()
		} else {
			off = uint64(b.uint32())
		}
		if uint64(int(off)) != off {
			b.error("DW_FORM_strp/line_strp offset out of range")
		}
		if b.err != nil {
			return false
		}
		var b1 buf
		if fmt == formStrp {
			b1 = makeBuf(b.dwarf, b.format, "str", 0, b.dwarf.str)
		} else {
			if len(b.dwarf.lineStr) == 0 {
				b.error("DW_FORM_line_strp with no .debug_line_str section")
				return false
			}
			b1 = makeBuf(b.dwarf, b.format, "line_str", 0, b.dwarf.lineStr)
		}
		b1.skip(int(off))
		val = b1.string()
		if b1.err != nil {
			b.err = b1.err
			return false
		}
	case formStrx, formStrx1, formStrx2, formStrx3, formStrx4:
		var off uint64
		switch fmt {
		case formStrx:
			off = b.uint()
		case formStrx1:
			off = uint64(b.uint8())
		case formStrx2:
			off = uint64(b.uint16())
		case formStrx3:
			off = uint64(b.uint24())
		case formStrx4:
			off = uint64(b.uint32())
		}
		if len(b.dwarf.strOffsets) == 0 {
			b.error("DW_FORM_strx with no .debug_str_offsets section")
		}
		is64, known := b.format.dwarf64()
		if !known {
			b.error("unknown offset size for DW_FORM_strx")
		}
		if b.err != nil {
			return false
		}
		if is64 {
			off *= 8
		} else {
			off *= 4
		}

		strBase := int64(u.strOffsetsBase())
		val = b.resolveStrx(uint64(strBase), off)

	case formStrpSup:
		is64, known := b.format.dwarf64()
		if !known {
			b.error("unknown size for DW_FORM_strp_sup")
		} else if is64 {
			val = b.uint64()
		} else {
			val = b.uint32()
		}

	// lineptr, loclistptr, macptr, rangelistptr
	// New in DWARF 4, but clang can generate them with -gdwarf-2.
	// Section reference, replacing use of formData4 and formData8.
	case formSecOffset, formGnuRefAlt, formGnuStrpAlt:
		is64, known := b.format.dwarf64()
		if !known {
			b.error("unknown size for form 0x" + strconv.FormatInt(int64(fmt), 16))
		} else if is64 {
			val = int64(b.uint64())
		} else {
			val = int64(b.uint32())
		}

	// exprloc
	// New in DWARF 4.
	case formExprloc:
		val = b.bytes(int(b.uint()))

	// reference
	// New in DWARF 4.
	case formRefSig8:
		// 64-bit type signature.
		val = b.uint64()
	case formRefSup4:
		val = b.uint32()
	case formRefSup8:
		val = b.uint64()

	// loclist
	case formLoclistx:
		val = b.uint()

	// rnglist
	case formRnglistx:
		off := b.uint()

		rnglistsBase := int64(u.rngListsBase())
		val = b.resolveRnglistx(uint64(rnglistsBase), off)
	}

	f.Val = val
	return true
}

// A Reader allows reading [Entry] structures from a DWARF “info” section.
// The [Entry] structures are arranged in a tree. The [Reader.Next] function
// return successive entries from a pre-order traversal of the tree.
// If an entry has children, its Children field will be true, and the children
// follow, terminated by an [Entry] with [Tag] 0.
type Reader struct {
	b            buf
	d            *Data
	err          error
	unit         int
	lastUnit     bool    // set if last entry returned by Next is TagCompileUnit/TagPartialUnit
	lastChildren bool    // .Children of last entry returned by Next
	lastSibling  Offset  // .Val(AttrSibling) of last entry returned by Next
	cu           *Entry  // current compilation unit
	stub         Entry   // the entry NextIf returns for one it steps over
	fields       []Field // the attributes NextIfOnly returns in stub
}

// Reader returns a new Reader for [Data].
// The reader is positioned at byte offset 0 in the DWARF “info” section.
func (d *Data) Reader() *Reader {
	r := &Reader{d: d}
	r.Seek(0)
	return r
}

// AddressSize returns the size in bytes of addresses in the current compilation
// unit.
func (r *Reader) AddressSize() int {
	return r.d.unitAt(r.unit).asize
}

// ByteOrder returns the byte order in the current compilation unit.
func (r *Reader) ByteOrder() binary.ByteOrder {
	return r.b.order
}

// Seek positions the [Reader] at offset off in the encoded entry stream.
// Offset 0 can be used to denote the first entry.
func (r *Reader) Seek(off Offset) {
	d := r.d
	r.err = nil
	r.lastChildren = false
	if off == 0 {
		u := d.unitAt(0)
		if u == nil {
			r.err = d.lazyErr()
			return
		}
		r.unit = 0
		r.b = makeBuf(r.d, u, "info", u.off, u.data)
		r.collectDwarf5BaseOffsets(u)
		r.cu = nil
		return
	}

	i := d.offsetToUnit(off)
	if i == -1 {
		r.err = errors.New("offset out of range")
		if err := d.lazyErr(); err != nil {
			r.err = err
		}
		return
	}
	if i != r.unit {
		r.cu = nil
	}
	u := d.unitAt(i)
	r.unit = i
	r.b = makeBuf(r.d, u, "info", off, u.data[off-u.off:])
	r.collectDwarf5BaseOffsets(u)
}

// maybeNextUnit advances to the next unit if this one is finished.
func (r *Reader) maybeNextUnit() {
	for len(r.b.data) == 0 && r.d.unitAt(r.unit+1) != nil {
		r.nextUnit()
	}
}

// nextUnit advances to the next unit.
func (r *Reader) nextUnit() {
	r.unit++
	u := r.d.unitAt(r.unit)
	r.b = makeBuf(r.d, u, "info", u.off, u.data)
	r.cu = nil
	r.collectDwarf5BaseOffsets(u)
}

func (r *Reader) collectDwarf5BaseOffsets(u *unit) {
	if u.vers < 5 {
		return
	}
	u.u5once.Do(func() {
		u.unit5 = new(unit5)
		u.u5err = r.d.collectDwarf5BaseOffsets(u)
	})
	if u.u5err != nil {
		r.err = u.u5err
	}
}

// Next reads the next entry from the encoded entry stream.
// It returns nil, nil when it reaches the end of the section.
// It returns an error if the current offset is invalid or the data at the
// offset cannot be decoded as a valid [Entry].
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.maybeNextUnit()
	if len(r.b.data) == 0 {
		return nil, nil
	}
	u := r.d.unitAt(r.unit)
	e := r.b.entry(r.cu, u)
	if r.b.err != nil {
		r.err = r.b.err
		return nil, r.err
	}
	r.lastUnit = false
	if e != nil {
		r.lastChildren = e.Children
		if r.lastChildren {
			r.lastSibling, _ = e.Val(AttrSibling).(Offset)
		}
		if e.Tag == TagCompileUnit || e.Tag == TagPartialUnit {
			r.lastUnit = true
			r.cu = e
		}
	} else {
		r.lastChildren = false
	}
	return e, nil
}

// NextIf is Next for a caller that needs the attributes of some entries
// only: those whose tag want accepts and, when need names attributes,
// whose abbreviation holds at least one of them. Any other entry is
// stepped over without decoding its attributes (no strings read, no
// values allocated) and returned with only Offset, Tag and Children set
// and no Field, in an Entry the Reader reuses on its next NextIf; a
// following SkipChildren still skips its children (by its DW_AT_sibling
// when it has one). Unit entries and the end-of-children entry are
// returned as Next returns them, and so is an entry with an attribute
// form NextIf cannot step over.
func (r *Reader) NextIf(want func(Tag) bool, need ...Attr) (*Entry, error) {
	return r.nextIf(want, need, false)
}

// NextIfOnly is NextIf for a caller that needs no more than the attributes
// in need of the entries it wants: such an entry is returned with only
// those of them it has in Field (in its order), the others stepped over,
// in an Entry the Reader reuses on its next NextIf or NextIfOnly, Field
// included. An entry with an attribute form it cannot step over is
// returned as Next returns it, with all its attributes.
func (r *Reader) NextIfOnly(want func(Tag) bool, need ...Attr) (*Entry, error) {
	return r.nextIf(want, need, true)
}

func (r *Reader) nextIf(want func(Tag) bool, need []Attr, only bool) (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.maybeNextUnit()
	if len(r.b.data) == 0 {
		return nil, nil
	}
	u := r.d.unitAt(r.unit)
	save := r.b
	off := r.b.off
	id := uint32(r.b.uint())
	if id != 0 && off != u.off && r.b.err == nil {
		a, ok, err := u.atable.lookup(id, false)
		if err == nil && ok && a.tag != TagCompileUnit && a.tag != TagPartialUnit {
			switch {
			case !(want(a.tag) && a.holds(need)):
				if sib, ok := r.b.skipAttrs(a, u); ok {
					return r.stepped(off, a, sib, nil), nil
				}
			case only:
				if e := r.decodeOnly(off, a, u, need); e != nil {
					return e, nil
				}
			}
		}
	}
	r.b = save
	return r.Next()
}

// stepped records the entry at off with abbreviation a just read (its
// sibling sib, its attributes fields) as the last one returned, and
// returns it in r.stub.
func (r *Reader) stepped(off Offset, a *abbrev, sib Offset, fields []Field) *Entry {
	r.lastUnit = false
	r.lastChildren = a.children
	r.lastSibling = sib
	r.stub = Entry{Offset: off, Tag: a.tag, Children: a.children, Field: fields}
	return &r.stub
}

// decodeOnly reads the attributes of an entry of u with abbreviation a,
// decoding those in need into r.fields and stepping over the others, and
// returns it as stepped does; nil for a form it cannot step over or an
// attribute it cannot decode.
func (r *Reader) decodeOnly(off Offset, a *abbrev, u *unit, need []Attr) *Entry {
	fields := r.fields[:0]
	var sib Offset
	offSize := r.b.offSize()
	for i := range a.field {
		af := &a.field[i]
		if slices.Contains(need, af.attr) {
			var f Field
			if !r.b.attr(u, af, &f) || r.b.err != nil {
				return nil
			}
			fields = append(fields, f)
			if af.attr == AttrSibling {
				sib, _ = f.Val.(Offset)
			}
			continue
		}
		ref, isRef, ok := r.b.skipField(af.fmt, offSize)
		if !ok {
			return nil
		}
		if isRef && af.attr == AttrSibling {
			sib = Offset(ref) + u.base
		}
	}
	r.fields = fields
	return r.stepped(off, a, sib, fields)
}

// holds reports whether the abbreviation has one of the attributes in
// need, or need is empty.
func (a *abbrev) holds(need []Attr) bool {
	if len(need) == 0 {
		return true
	}
	for i := range a.field {
		for _, n := range need {
			if a.field[i].attr == n {
				return true
			}
		}
	}
	return false
}

// skipAttrs steps over the attributes of an entry with abbreviation a,
// returning its DW_AT_sibling (0 if none); false (b's position then
// undefined) for a form it does not step over or data that ends early.
func (b *buf) skipAttrs(a *abbrev, u *unit) (Offset, bool) {
	ubase := u.base
	if a.fixed >= 0 && u.asize == 8 && !u.is64 {
		// Every form of a fixed size: one step over them all.
		if int(a.fixed) > len(b.data) {
			return 0, false
		}
		var sib Offset
		if a.sibSize > 0 {
			p := b.data[a.sibAt:]
			var ref uint64
			switch a.sibSize {
			case 1:
				ref = uint64(p[0])
			case 2:
				ref = uint64(b.order.Uint16(p))
			case 4:
				ref = uint64(b.order.Uint32(p))
			default:
				ref = b.order.Uint64(p)
			}
			sib = Offset(ref) + ubase
		}
		b.skip(int(a.fixed))
		return sib, true
	}
	var sib Offset
	offSize := b.offSize()
	for i := range a.field {
		f := &a.field[i]
		ref, isRef, ok := b.skipField(f.fmt, offSize)
		if !ok {
			return 0, false
		}
		if isRef && f.attr == AttrSibling {
			sib = Offset(ref) + ubase
		}
	}
	return sib, true
}

// offSize returns the size of a section offset in b's unit, -1 if unknown.
func (b *buf) offSize() int {
	if is64, known := b.format.dwarf64(); !known {
		return -1
	} else if is64 {
		return 8
	}
	return 4
}

// skipField steps over an attribute of form fmt, returning its value if
// it is a reference within the unit (isRef); false (b's position then
// undefined) for a form it does not step over or data that ends early.
// offSize is b.offSize().
func (b *buf) skipField(fmt format, offSize int) (ref uint64, isRef, ok bool) {
	n := 0 // fixed size to skip
	switch fmt {
	default:
		return 0, false, false
	case formAddr:
		n = b.format.addrsize()
		if n != 1 && n != 2 && n != 4 && n != 8 {
			return 0, false, false
		}
	case formFlagPresent, formImplicitConst:
	case formData1, formFlag, formStrx1, formAddrx1:
		n = 1
	case formData2, formStrx2, formAddrx2:
		n = 2
	case formStrx3, formAddrx3:
		n = 3
	case formData4, formStrx4, formAddrx4, formRefSup4:
		n = 4
	case formData8, formRefSig8, formRefSup8:
		n = 8
	case formData16:
		n = 16
	case formSdata, formUdata, formStrx, formAddrx, formLoclistx, formRnglistx:
		b.uint()
	case formStrp, formLineStrp, formSecOffset, formGnuRefAlt, formGnuStrpAlt, formStrpSup:
		if offSize < 0 {
			return 0, false, false
		}
		n = offSize
	case formString:
		z := bytes.IndexByte(b.data, 0)
		if z < 0 {
			return 0, false, false
		}
		n = z + 1
	case formDwarfBlock1:
		n = int(b.uint8())
	case formDwarfBlock2:
		n = int(b.uint16())
	case formDwarfBlock4:
		n = int(b.uint32())
	case formDwarfBlock, formExprloc:
		l := b.uint()
		if l > uint64(len(b.data)) {
			return 0, false, false
		}
		n = int(l)
	case formRef1:
		ref, isRef = uint64(b.uint8()), true
	case formRef2:
		ref, isRef = uint64(b.uint16()), true
	case formRef4:
		ref, isRef = uint64(b.uint32()), true
	case formRef8:
		ref, isRef = b.uint64(), true
	case formRefUdata:
		ref, isRef = b.uint(), true
	case formRefAddr:
		return 0, false, false // rare; decoded in full
	}
	if n > len(b.data) {
		return 0, false, false
	}
	if n > 0 {
		b.skip(n)
	}
	if b.err != nil {
		return 0, false, false
	}
	return ref, isRef, true
}

// SkipChildren skips over the child entries associated with
// the last [Entry] returned by [Reader.Next]. If that [Entry] did not have
// children or [Reader.Next] has not been called, SkipChildren is a no-op.
func (r *Reader) SkipChildren() {
	if r.err != nil || !r.lastChildren {
		return
	}

	// If the last entry had a sibling attribute,
	// that attribute gives the offset of the next
	// sibling, so we can avoid decoding the
	// child subtrees.
	if r.lastSibling >= r.b.off {
		if n := int(r.lastSibling - r.b.off); n < len(r.b.data) {
			r.b.skip(n) // in this unit: where Seek would put r.b
			r.lastChildren = false
			return
		}
		r.Seek(r.lastSibling)
		return
	}

	if r.lastUnit && r.d.unitAt(r.unit+1) != nil {
		r.nextUnit()
		return
	}

	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			break
		}
		if e.Children {
			r.SkipChildren()
		}
	}
}

// clone returns a copy of the reader. This is used by the typeReader
// interface.
func (r *Reader) clone() typeReader {
	return r.d.Reader()
}

// offset returns the current buffer offset. This is used by the
// typeReader interface.
func (r *Reader) offset() Offset {
	return r.b.off
}

// SeekPC returns the [Entry] for the compilation unit that includes pc,
// and positions the reader to read the children of that unit.  If pc
// is not covered by any unit, SeekPC returns [ErrUnknownPC] and the
// position of the reader is undefined.
//
// Because compilation units can describe multiple regions of the
// executable, in the worst case SeekPC must search through all the
// ranges in all the compilation units. Each call to SeekPC starts the
// search at the compilation unit of the last call, so in general
// looking up a series of PCs will be faster if they are sorted. If
// the caller wishes to do repeated fast PC lookups, it should build
// an appropriate index using the Ranges method.
func (r *Reader) SeekPC(pc uint64) (*Entry, error) {
	unit := r.unit
	n := r.d.allUnits()
	for i := 0; i < n; i++ {
		if unit >= n {
			unit = 0
		}
		r.err = nil
		r.lastChildren = false
		r.unit = unit
		r.cu = nil
		u := r.d.unitAt(unit)
		r.b = makeBuf(r.d, u, "info", u.off, u.data)
		r.collectDwarf5BaseOffsets(u)
		e, err := r.Next()
		if err != nil {
			return nil, err
		}
		if e == nil || e.Tag == 0 {
			return nil, ErrUnknownPC
		}
		ranges, err := r.d.Ranges(e)
		if err != nil {
			return nil, err
		}
		for _, pcs := range ranges {
			if pcs[0] <= pc && pc < pcs[1] {
				return e, nil
			}
		}
		unit++
	}
	return nil, ErrUnknownPC
}

// Ranges returns the PC ranges covered by e, a slice of [low,high) pairs.
// Only some entry types, such as [TagCompileUnit] or [TagSubprogram], have PC
// ranges; for others, this will return nil with no error.
func (d *Data) Ranges(e *Entry) ([][2]uint64, error) {
	var ret [][2]uint64

	low, lowOK := e.Val(AttrLowpc).(uint64)

	var high uint64
	var highOK bool
	highField := e.AttrField(AttrHighpc)
	if highField != nil {
		switch highField.Class {
		case ClassAddress:
			high, highOK = highField.Val.(uint64)
		case ClassConstant:
			off, ok := highField.Val.(int64)
			if ok {
				high = low + uint64(off)
				highOK = true
			}
		}
	}

	if lowOK && highOK {
		ret = append(ret, [2]uint64{low, high})
	}

	var u *unit
	if uidx := d.offsetToUnit(e.Offset); uidx >= 0 {
		u = d.unitAt(uidx)
	}

	if u != nil && u.vers >= 5 && d.rngLists != nil {
		// DWARF version 5 and later
		field := e.AttrField(AttrRanges)
		if field == nil {
			return ret, nil
		}
		switch field.Class {
		case ClassRangeListPtr:
			ranges, rangesOK := field.Val.(int64)
			if !rangesOK {
				return ret, nil
			}
			cu, base, err := d.baseAddressForEntry(e)
			if err != nil {
				return nil, err
			}
			return d.dwarf5Ranges(u, cu, base, ranges, ret)

		case ClassRngList:
			rnglist, ok := field.Val.(uint64)
			if !ok {
				return ret, nil
			}
			cu, base, err := d.baseAddressForEntry(e)
			if err != nil {
				return nil, err
			}
			return d.dwarf5Ranges(u, cu, base, int64(rnglist), ret)

		default:
			return ret, nil
		}
	}

	// DWARF version 2 through 4
	ranges, rangesOK := e.Val(AttrRanges).(int64)
	if rangesOK && d.ranges != nil {
		_, base, err := d.baseAddressForEntry(e)
		if err != nil {
			return nil, err
		}
		return d.dwarf2Ranges(u, base, ranges, ret)
	}

	return ret, nil
}

// baseAddressForEntry returns the initial base address to be used when
// looking up the range list of entry e.
// DWARF specifies that this should be the lowpc attribute of the enclosing
// compilation unit, however comments in gdb/dwarf2read.c say that some
// versions of GCC use the entrypc attribute, so we check that too.
func (d *Data) baseAddressForEntry(e *Entry) (*Entry, uint64, error) {
	var cu *Entry
	if e.Tag == TagCompileUnit {
		cu = e
	} else {
		i := d.offsetToUnit(e.Offset)
		if i == -1 {
			return nil, 0, errors.New("no unit for entry")
		}
		u := d.unitAt(i)
		if cu = u.entry.Load(); cu == nil {
			b := makeBuf(d, u, "info", u.off, u.data)
			cu = b.entry(nil, u)
			if b.err != nil {
				return nil, 0, b.err
			}
			u.entry.Store(cu) // read-only: one decoding for every entry's ranges

		}
	}

	if cuEntry, cuEntryOK := cu.Val(AttrEntrypc).(uint64); cuEntryOK {
		return cu, cuEntry, nil
	} else if cuLow, cuLowOK := cu.Val(AttrLowpc).(uint64); cuLowOK {
		return cu, cuLow, nil
	}

	return cu, 0, nil
}

func (d *Data) dwarf2Ranges(u *unit, base uint64, ranges int64, ret [][2]uint64) ([][2]uint64, error) {
	if ranges < 0 || ranges > int64(len(d.ranges)) {
		return nil, fmt.Errorf("invalid range offset %d (max %d)", ranges, len(d.ranges))
	}
	buf := makeBuf(d, u, "ranges", Offset(ranges), d.ranges[ranges:])
	for len(buf.data) > 0 {
		low := buf.addr()
		high := buf.addr()

		if low == 0 && high == 0 {
			break
		}

		if low == ^uint64(0)>>uint((8-u.addrsize())*8) {
			base = high
		} else {
			ret = append(ret, [2]uint64{base + low, base + high})
		}
	}

	return ret, nil
}

// dwarf5Ranges interprets a debug_rnglists sequence, see DWARFv5 section
// 2.17.3 (page 53).
func (d *Data) dwarf5Ranges(u *unit, cu *Entry, base uint64, ranges int64, ret [][2]uint64) ([][2]uint64, error) {
	if ranges < 0 || ranges > int64(len(d.rngLists)) {
		return nil, fmt.Errorf("invalid rnglist offset %d (max %d)", ranges, len(d.ranges))
	}
	var addrBase int64
	if cu != nil {
		addrBase, _ = cu.Val(AttrAddrBase).(int64)
	}

	buf := makeBuf(d, u, "rnglists", 0, d.rngLists)
	buf.skip(int(ranges))
	for {
		opcode := buf.uint8()
		switch opcode {
		case rleEndOfList:
			if buf.err != nil {
				return nil, buf.err
			}
			return ret, nil

		case rleBaseAddressx:
			baseIdx := buf.uint()
			var err error
			base, err = d.debugAddr(u, uint64(addrBase), baseIdx)
			if err != nil {
				return nil, err
			}

		case rleStartxEndx:
			startIdx := buf.uint()
			endIdx := buf.uint()

			start, err := d.debugAddr(u, uint64(addrBase), startIdx)
			if err != nil {
				return nil, err
			}
			end, err := d.debugAddr(u, uint64(addrBase), endIdx)
			if err != nil {
				return nil, err
			}
			ret = append(ret, [2]uint64{start, end})

		case rleStartxLength:
			startIdx := buf.uint()
			len := buf.uint()
			start, err := d.debugAddr(u, uint64(addrBase), startIdx)
			if err != nil {
				return nil, err
			}
			ret = append(ret, [2]uint64{start, start + len})

		case rleOffsetPair:
			off1 := buf.uint()
			off2 := buf.uint()
			ret = append(ret, [2]uint64{base + off1, base + off2})

		case rleBaseAddress:
			base = buf.addr()

		case rleStartEnd:
			start := buf.addr()
			end := buf.addr()
			ret = append(ret, [2]uint64{start, end})

		case rleStartLength:
			start := buf.addr()
			len := buf.uint()
			ret = append(ret, [2]uint64{start, start + len})
		}
	}
}

// debugAddr returns the address at idx in debug_addr
func (d *Data) debugAddr(format dataFormat, addrBase, idx uint64) (uint64, error) {
	off := idx*uint64(format.addrsize()) + addrBase

	if uint64(int(off)) != off {
		return 0, errors.New("offset out of range")
	}

	b := makeBuf(d, format, "addr", 0, d.addr)
	b.skip(int(off))
	val := b.addr()
	if b.err != nil {
		return 0, b.err
	}
	return val, nil
}
