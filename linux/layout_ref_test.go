package linux

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
)

// refMemberOffset is the layout as debug/dwarf's decoded types give it
// (the dwarfLayout before it read members from their entries): the
// reference TestDWARFLayoutRef holds dwarfLayout to.
func refMemberOffset(dw *dwarf.Data, off dwarf.Offset, member string) (int64, bool) {
	t, err := dw.Type(off)
	if err != nil {
		return 0, false
	}
	st, ok := dwarfStruct(t)
	if !ok {
		return 0, false
	}
	var sum int64
	for _, part := range strings.Split(member, ".") {
		if st == nil {
			return 0, false
		}
		off, t, ok := refFindField(st, part, 0)
		if !ok {
			return 0, false
		}
		sum += off
		st, _ = dwarfStruct(t)
	}
	return sum, true
}

func refFindField(st *dwarf.StructType, name string, depth int) (int64, dwarf.Type, bool) {
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
		if sub, ok := dwarfStruct(f.Type); ok {
			if off, t, ok := refFindField(sub, name, depth+1); ok {
				return f.ByteOffset + off, t, true
			}
		}
	}
	return 0, nil, false
}

// dwarfStruct strips typedefs and qualifiers down to a structure type.
func dwarfStruct(t dwarf.Type) (*dwarf.StructType, bool) {
	for i := 0; i < 8; i++ {
		switch v := t.(type) {
		case *dwarf.StructType:
			return v, true
		case *dwarf.TypedefType:
			t = v.Type
		case *dwarf.QualType:
			t = v.Type
		default:
			return nil, false
		}
	}
	return nil, false
}

// TestDWARFLayoutRef asks dwarfLayout, and debug/dwarf's decoded types,
// the size of every complete structure in the first units of the fixture
// kernel and of the corpus vmlinux files, and the offset of each member,
// of each member's members (one level into nested structures and unions,
// through anonymous ones), and of names no structure has: the answers must
// be the same.
func TestDWARFLayoutRef(t *testing.T) {
	paths := append([]string{filepath.Join("..", "fixtures", "kernel", "build", "kernel-fp.elf")}, corpusVmlinuxes()...)
	for _, path := range paths {
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dw, err := firstUnitsDWARF(&dwarfSections{f: f})
		if err != nil {
			f.Close()
			t.Fatalf("%s: %v", path, err)
		}
		l := NewDWARFLayout(dw)
		structs, questions := 0, 0
		r := dw.Reader()
		seen := map[string]bool{}
		for {
			e, err := r.Next()
			if err != nil || e == nil {
				break
			}
			if e.Tag != dwarf.TagStructType || !e.Children {
				continue
			}
			name, _ := e.Val(dwarf.AttrName).(string)
			if _, decl := e.Val(dwarf.AttrDeclaration).(bool); name == "" || decl || seen[name] {
				continue
			}
			seen[name] = true
			structs++
			off, _ := l.(*dwarfLayout).lookup(name)
			ref, err := dw.Type(off)
			refSize := int64(0)
			if err == nil {
				if st, ok := dwarfStruct(ref); ok && st.ByteSize > 0 {
					refSize = st.ByteSize
				}
			}
			if got, ok := l.StructSize(name); got != refSize || ok != (refSize > 0) {
				t.Errorf("%s: sizeof(%s) = %d %v, want %d", path, name, got, ok, refSize)
			}
			var members []string
			if st, ok := dwarfStruct(ref); err == nil && ok {
				for _, fl := range st.Field {
					members = append(members, fl.Name)
					if sub, ok := dwarfStruct(fl.Type); ok {
						for _, g := range sub.Field {
							members = append(members, fl.Name+"."+g.Name, g.Name)
						}
					}
				}
			}
			members = append(members, "no_such_member", "x.y")
			for _, m := range members {
				questions++
				wo, wok := refMemberOffset(dw, off, m)
				if got, ok := l.MemberOffset(name, m); got != wo || ok != wok {
					t.Errorf("%s: %s.%s = %d %v, want %d %v", path, name, m, got, ok, wo, wok)
				}
			}
		}
		f.Close()
		if structs < 5 {
			t.Errorf("%s: %d structures asked about", path, structs)
		}
		t.Logf("%s: %d structures, %d members asked", path, structs, questions)
	}
}

// TestTkCoreXtimeSecRef: tkCoreXtimeSec, which reads members from their
// entries, gives the offset debug/dwarf's decoded type of tk_core gives,
// for the lab and prod vmlinux.
func TestTkCoreXtimeSecRef(t *testing.T) {
	paths := needVmlinuxes(t)
	for _, path := range paths {
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		tk := elfSymbolValue(t, f, "ktime_get_real_seconds")
		secs := &dwarfSections{f: f}
		got, err := tkCoreXtimeSec(secs, tk)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// The reference: tk_core's type decoded by debug/dwarf.
		off, err := unitAt(f, tk)
		if err != nil {
			t.Fatal(err)
		}
		info := f.Section(".debug_info")
		var hdr [4]byte
		if _, err := info.ReadAt(hdr[:], int64(off)); err != nil {
			t.Fatal(err)
		}
		unit := make([]byte, 4+uint64(binary.LittleEndian.Uint32(hdr[:])))
		if _, err := info.ReadAt(unit, int64(off)); err != nil {
			t.Fatal(err)
		}
		dw, err := dwarfFromUnits(secs, unit)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := int64(-1), false
		for r := dw.Reader(); ; {
			e, err := r.Next()
			if err != nil || e == nil {
				break
			}
			if name, _ := e.Val(dwarf.AttrName).(string); e.Tag == dwarf.TagVariable && name == "tk_core" {
				toff, _ := e.Val(dwarf.AttrType).(dwarf.Offset)
				want, ok = refMemberOffset(dw, toff, "timekeeper.xtime_sec")
				break
			}
		}
		if !ok || got != want {
			t.Errorf("%s: tk_core.timekeeper.xtime_sec at %d, debug/dwarf's type says %d (%v)", path, got, want, ok)
		}
		t.Logf("%s: tk_core.timekeeper.xtime_sec at %d", path, got)
	}
}
