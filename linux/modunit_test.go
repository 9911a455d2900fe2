package linux

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/symbols"
)

// The prod vmlinux's unit of mod_sysfs_setup gives every offset the
// modules are read with, as its BTF does, and a first Open reads the
// modules with it (no BTF parsed) and finds what the BTF-only vmlinux
// (no DWARF) finds: the same modules, symbols, ORC and sections.
func TestModuleUnitLayoutProd(t *testing.T) {
	dir, err := corpus.Find("prod")
	if err != nil {
		corpus.Unavailable(t, "prod", err)
	}
	vmlinux := filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)
	sf, err := symbols.Open(vmlinux, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	ul, err := moduleUnitLayout(vmlinux, sf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ul.(*dwarfLayout); !ok {
		t.Fatalf("layout %T", ul)
	}
	bl, err := btfFromFile(vmlinux, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err1 := readModuleLayout(ul)
	want, err2 := readModuleLayout(bl)
	if err1 != nil || err2 != nil || *got != *want {
		t.Fatalf("unit: %+v, %v\nBTF:  %+v, %v", got, err1, want, err2)
	}

	path := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	modules := func(vmlinux string, btf bool) string {
		t.Helper()
		t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
		before := btfLoads.Load()
		k := openWith(t, path, dump.SymbolOptions{Files: []string{vmlinux}})
		if loaded := btfLoads.Load() > before; loaded != btf {
			t.Errorf("%s: BTF read %v, want %v", vmlinux, loaded, btf)
		}
		text := modelText(t, k)
		return text[strings.Index(text, "\nmodules "):strings.Index(text, "\nwarnings ")]
	}
	withDWARF := modules(vmlinux, false)
	btfOnly := modules(noDWARFVmlinux(t, vmlinux), true)
	if withDWARF != btfOnly {
		t.Errorf("modules read with the unit's layout:%s\nwith the BTF's:%s", withDWARF, btfOnly)
	}
	if !strings.Contains(withDWARF, "modules 8 <nil>") || !strings.Contains(withDWARF, ".text=0x") {
		t.Errorf("modules:%s", withDWARF)
	}
}

// abbrevs encodes an abbreviation table of one entry with the given
// (attribute, form) pairs.
func abbrevs(pairs ...uint64) []byte {
	b := []byte{1, 0x11, 1} // code 1, DW_TAG_compile_unit, children
	for _, v := range pairs {
		b = binary.AppendUvarint(b, v)
	}
	return append(b, 0, 0, 0)
}

// unit5 is a DWARF 5 compile unit header whose abbreviations are at off.
func unit5(off uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 8)
	b = binary.LittleEndian.AppendUint16(b, 5)
	b = append(b, 1, 8)
	return binary.LittleEndian.AppendUint32(b, off)
}

// A unit that may refer outside itself is refused; one whose references
// are its own, or whose abbreviations are cut short, is told apart.
func TestUnitRefsLocal(t *testing.T) {
	for _, c := range []struct {
		name   string
		abbrev []byte
		ok     bool
	}{
		{"ref4 strx1 line_strp", abbrevs(0x49, 0x13, 0x03, 0x25, 0x1b, 0x1f), true},
		{"implicit_const", append(abbrevs(0x0b, 0x21)[:5], append([]byte{0x7f}, abbrevs(0x49, 0x13)[3:]...)...), true},
		{"ref_addr", abbrevs(0x49, 0x13, 0x49, 0x10), false},
		{"ref_sig8", abbrevs(0x49, 0x20), false},
		{"GNU_ref_alt", abbrevs(0x49, 0x1f20), false},
		{"indirect", abbrevs(0x03, 0x16), false},
		{"cut short", abbrevs(0x49, 0x13)[:4], false},
	} {
		err := unitRefsLocal(unit5(0), c.abbrev)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if err := unitRefsLocal(unit5(100), abbrevs(0x49, 0x13)); err == nil {
		t.Error("abbreviations past the end of .debug_abbrev")
	}
}

// arangesSet encodes one .debug_aranges set for the unit at info with
// the ranges (start, length pairs).
func arangesSet(info uint32, ranges ...uint64) []byte {
	le := binary.LittleEndian
	b := make([]byte, 16) // length, version, info offset, sizes, padding
	le.PutUint16(b[4:], 2)
	le.PutUint32(b[6:], info)
	b[10] = 8
	for _, v := range append(ranges, 0, 0) {
		b = le.AppendUint64(b, v)
	}
	le.PutUint32(b, uint32(len(b)-4))
	return b
}

func TestArangesUnit(t *testing.T) {
	b := append(arangesSet(0x10, 0x1000, 0x100, 0x3000, 0x10), arangesSet(0x200, 0x2000, 0x800)...)
	for _, c := range []struct {
		pc   uint64
		info uint64
		ok   bool
	}{{0x1000, 0x10, true}, {0x10ff, 0x10, true}, {0x1100, 0, false}, {0x300f, 0x10, true},
		{0x27ff, 0x200, true}, {0x2800, 0, false}, {0xfff, 0, false}} {
		info, ok := arangesUnit(b, c.pc)
		if info != c.info || ok != c.ok {
			t.Errorf("pc %#x: %#x %v, want %#x %v", c.pc, info, ok, c.info, c.ok)
		}
	}
	if _, ok := arangesUnit(b[:len(b)-20], 0x2000); ok {
		t.Error("a set cut short was read")
	}
}

// FuzzModuleUnit: .debug_aranges and an abbreviation table from hostile
// files are read without a panic or a loop.
func FuzzModuleUnit(f *testing.F) {
	f.Add(arangesSet(0x10, 0x1000, 0x100), abbrevs(0x49, 0x13, 0x0b, 0x21, 0x7f), uint64(0x1010))
	f.Add(arangesSet(0x10, 0x1000, 0x100), abbrevs(0x49, 0x10), uint64(0x1010))
	f.Fuzz(func(t *testing.T, aranges, abbrev []byte, pc uint64) {
		arangesUnit(aranges, pc)
		unitRefsLocal(unit5(0), abbrev)
		if len(abbrev) > 8 {
			unitRefsLocal(append(unit5(0)[:4], abbrev...), abbrev)
		}
	})
}
