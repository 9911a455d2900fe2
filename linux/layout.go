package linux

import (
	"debug/dwarf"
	"strings"
	"sync"
)

// Layout answers the two questions the kernel model asks about the dumped
// kernel's structures: how big a structure is and where a member lies in
// it. vmlinux's DWARF answers them (NewDWARFLayout); the kernel's own BTF
// can, for a dump opened with System.map alone.
//
// Member names a member of the structure, or a path through nested
// structure members and anonymous structures and unions ("thread.sp",
// "thread_info.cpu"); ok is false when the structure or member is unknown.
type Layout interface {
	StructSize(name string) (size int64, ok bool)
	MemberOffset(structName, member string) (off int64, ok bool)
}

// dwarfLayout is a Layout read from DWARF: the structures are indexed by
// name as far as lookups need (a scan of the top-level entries that stops
// at the structure asked for and goes on from there for the next), and a
// structure's members are read from its entries on first use: their
// names, offsets and type entries, without decoding the types (a
// task_struct's member types reach most of the kernel's).
type dwarfLayout struct {
	dw *dwarf.Data

	mu      sync.Mutex
	scan    *dwarf.Reader               // the index's scan, nil once it reached the end
	offsets map[string]dwarf.Offset     // structure name → its (first complete) definition, as far as scanned
	byOff   map[dwarf.Offset]*dieStruct // structures read, by entry (nil: not one, or unreadable)
	r       *dwarf.Reader               // for reading structures and type chains
}

// dieStruct is a structure or union as its entries give it.
type dieStruct struct {
	size   int64 // DW_AT_byte_size, or 0
	fields []dieField
}

// dieField is a member: its name ("" for an anonymous one), offset from
// DW_AT_data_member_location (0 when absent, as in a union), and type
// entry.
type dieField struct {
	name string
	off  int64
	typ  dwarf.Offset
}

// NewDWARFLayout indexes the complete structure definitions of dw by name
// (the first definition of each name wins). The index is made as lookups
// need it: the kernel's task_struct comes early in vmlinux's DWARF.
func NewDWARFLayout(dw *dwarf.Data) Layout {
	l := newStructReader(dw)
	l.scan, l.offsets = dw.Reader(), map[string]dwarf.Offset{}
	return l
}

// newStructReader returns a dwarfLayout that reads structures by offset
// (structAt, pathOffset) but has no index by name.
func newStructReader(dw *dwarf.Data) *dwarfLayout {
	return &dwarfLayout{dw: dw, byOff: map[dwarf.Offset]*dieStruct{}, r: dw.Reader()}
}

// lookup returns the offset of the first complete definition of the
// structure name, scanning on as far as it must. Called with mu held.
func (l *dwarfLayout) lookup(name string) (dwarf.Offset, bool) {
	if off, ok := l.offsets[name]; ok {
		return off, true
	}
	for r := l.scan; r != nil; {
		e, err := r.Next()
		if err != nil || e == nil {
			l.scan = nil
			break
		}
		switch e.Tag {
		case dwarf.TagCompileUnit, dwarf.TagPartialUnit, dwarf.TagNamespace:
			continue
		case dwarf.TagStructType:
			n, _ := e.Val(dwarf.AttrName).(string)
			_, decl := e.Val(dwarf.AttrDeclaration).(bool)
			if _, seen := l.offsets[n]; n != "" && !decl && e.Children && !seen {
				l.offsets[n] = e.Offset
			}
		}
		if e.Children {
			r.SkipChildren()
		}
		if off, ok := l.offsets[name]; ok {
			return off, true
		}
	}
	return 0, false
}

// structType returns the structure name, found by lookup and read by
// structAt (both remember what they found).
func (l *dwarfLayout) structType(name string) (*dieStruct, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	off, ok := l.lookup(name)
	if !ok {
		return nil, false
	}
	st := l.structAt(off)
	return st, st != nil
}

// maxTypeChain bounds the typedefs and qualifiers followed to a structure.
const maxTypeChain = 8

// structAt reads the structure, union or class whose entry is at off,
// through up to maxTypeChain typedefs and qualifiers, or returns nil.
// Called with mu held.
func (l *dwarfLayout) structAt(off dwarf.Offset) *dieStruct {
	if st, ok := l.byOff[off]; ok {
		return st
	}
	start := off
	var st *dieStruct
	for range maxTypeChain {
		l.r.Seek(off)
		e, err := l.r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == dwarf.TagTypedef || e.Tag == dwarf.TagConstType ||
			e.Tag == dwarf.TagVolatileType || e.Tag == dwarf.TagRestrictType {
			next, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
			if !ok {
				break
			}
			off = next
			continue
		}
		if e.Tag == dwarf.TagStructType || e.Tag == dwarf.TagUnionType || e.Tag == dwarf.TagClassType {
			st = l.readStruct(e)
		}
		break
	}
	l.byOff[start] = st
	return st
}

// readStruct reads the members of the structure entry e, just read by l.r,
// or returns nil when they cannot be read.
func (l *dwarfLayout) readStruct(e *dwarf.Entry) *dieStruct {
	st := &dieStruct{}
	st.size, _ = e.Val(dwarf.AttrByteSize).(int64)
	if !e.Children {
		return st
	}
	for {
		kid, err := l.r.Next()
		if err != nil || kid == nil {
			return nil
		}
		if kid.Tag == 0 {
			return st
		}
		if kid.Children {
			l.r.SkipChildren()
		}
		if kid.Tag != dwarf.TagMember {
			continue
		}
		f := dieField{}
		f.name, _ = kid.Val(dwarf.AttrName).(string)
		f.typ, _ = kid.Val(dwarf.AttrType).(dwarf.Offset)
		switch loc := kid.Val(dwarf.AttrDataMemberLoc).(type) {
		case int64:
			f.off = loc
		case []byte:
			// DWARF 2's DW_OP_plus_uconst ULEB128.
			v, ok := plusUconst(loc)
			if !ok {
				return nil
			}
			f.off = v
		}
		st.fields = append(st.fields, f)
	}
}

// plusUconst decodes a member location expression DW_OP_plus_uconst N.
func plusUconst(b []byte) (int64, bool) {
	const opPlusUconst = 0x23
	if len(b) < 2 || b[0] != opPlusUconst {
		return 0, false
	}
	var v uint64
	for i, c := range b[1:] {
		if i >= 9 {
			return 0, false
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(v), true
		}
	}
	return 0, false
}

// StructSize implements Layout.
func (l *dwarfLayout) StructSize(name string) (int64, bool) {
	st, ok := l.structType(name)
	if !ok || st.size <= 0 {
		return 0, false
	}
	return st.size, true
}

// MemberOffset implements Layout.
func (l *dwarfLayout) MemberOffset(structName, member string) (int64, bool) {
	st, ok := l.structType(structName)
	if !ok {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pathOffset(st, member)
}

// pathOffset returns the offset in st of member, a path of member names
// through nested structures ("thread.sp"). Called with mu held.
func (l *dwarfLayout) pathOffset(st *dieStruct, member string) (int64, bool) {
	var sum int64
	for _, part := range strings.Split(member, ".") {
		if st == nil {
			return 0, false
		}
		off, t, ok := l.findField(st, part, 0)
		if !ok {
			return 0, false
		}
		sum += off
		st = l.structAt(t)
	}
	return sum, true
}

// findField finds the member name of st, looking into anonymous members
// (structures and unions) too, and returns its offset and type entry.
// Called with mu held.
func (l *dwarfLayout) findField(st *dieStruct, name string, depth int) (int64, dwarf.Offset, bool) {
	for _, f := range st.fields {
		if f.name == name {
			return f.off, f.typ, true
		}
	}
	if depth >= 4 {
		return 0, 0, false
	}
	for _, f := range st.fields {
		if f.name != "" {
			continue
		}
		if sub := l.structAt(f.typ); sub != nil {
			if off, t, ok := l.findField(sub, name, depth+1); ok {
				return f.off + off, t, true
			}
		}
	}
	return 0, 0, false
}
