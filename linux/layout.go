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
// at the structure asked for and goes on from there for the next), their
// types decoded on first use.
type dwarfLayout struct {
	dw *dwarf.Data

	mu      sync.Mutex
	scan    *dwarf.Reader           // the index's scan, nil once it reached the end
	offsets map[string]dwarf.Offset // structure name → its (first complete) definition, as far as scanned
	types   map[string]*dwarf.StructType
}

// NewDWARFLayout indexes the complete structure definitions of dw by name
// (the first definition of each name wins). The index is made as lookups
// need it: the kernel's task_struct comes early in vmlinux's DWARF.
func NewDWARFLayout(dw *dwarf.Data) Layout {
	return &dwarfLayout{dw: dw, scan: dw.Reader(), offsets: map[string]dwarf.Offset{}, types: map[string]*dwarf.StructType{}}
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

func (l *dwarfLayout) structType(name string) (*dwarf.StructType, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.types[name]; ok {
		return t, t != nil
	}
	off, ok := l.lookup(name)
	var st *dwarf.StructType
	if ok {
		if t, err := l.dw.Type(off); err == nil {
			st, _ = dwarfStruct(t)
		}
	}
	l.types[name] = st
	return st, st != nil
}

// StructSize implements Layout.
func (l *dwarfLayout) StructSize(name string) (int64, bool) {
	st, ok := l.structType(name)
	if !ok || st.ByteSize <= 0 {
		return 0, false
	}
	return st.ByteSize, true
}

// MemberOffset implements Layout.
func (l *dwarfLayout) MemberOffset(structName, member string) (int64, bool) {
	st, ok := l.structType(structName)
	if !ok {
		return 0, false
	}
	var sum int64
	for _, part := range strings.Split(member, ".") {
		if st == nil {
			return 0, false
		}
		off, t, ok := findField(st, part, 0)
		if !ok {
			return 0, false
		}
		sum += off
		st, _ = dwarfStructOrUnion(t)
	}
	return sum, true
}

// findField finds the member name of st, looking into anonymous members
// (structures and unions) too, and returns its offset and type.
func findField(st *dwarf.StructType, name string, depth int) (int64, dwarf.Type, bool) {
	for _, f := range st.Field {
		if f.Name == name {
			return f.ByteOffset, f.Type, true
		}
	}
	if depth >= 4 {
		return 0, nil, false
	}
	for _, f := range st.Field {
		if f.Name != "" {
			continue
		}
		if sub, ok := dwarfStructOrUnion(f.Type); ok {
			if off, t, ok := findField(sub, name, depth+1); ok {
				return f.ByteOffset + off, t, true
			}
		}
	}
	return 0, nil, false
}

// dwarfStructOrUnion strips typedefs and qualifiers down to a structure
// or union type (debug/dwarf represents both as *dwarf.StructType).
func dwarfStructOrUnion(t dwarf.Type) (*dwarf.StructType, bool) {
	return dwarfStruct(t)
}
