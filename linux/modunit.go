package linux

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
)

// The modules list is read with the offsets of struct module and its
// parts (readModuleLayout). vmlinux's DWARF as the kernel model reads it
// (its first units) has all of them but struct module_sect_attrs, which
// only kernel/module/sysfs.c defines (kernel/module.c before 5.19); the
// kernel's BTF has every type, but parsing its 4 MB costs a first run
// some 16 ms. That one unit of DWARF (52 KB in Debian's 6.1) defines
// struct module, its parts and module_sect_attrs: moduleUnitLayout reads
// it alone, found through .debug_aranges by the address of
// mod_sysfs_setup, a function of that file.

// moduleUnitSym is a function of the unit that defines struct
// module_sect_attrs.
const moduleUnitSym = "mod_sysfs_setup"

// maxModuleUnit bounds the unit read (Debian's 6.1: 52 KB).
const maxModuleUnit = 4 << 20

// moduleUnitLayout returns the structure layouts of the DWARF unit of
// vmlinux path (opened by symbols as sf) that holds mod_sysfs_setup, when
// they answer every question readModuleLayout asks, section attributes
// included; an error says why not (then the BTF gives them).
func moduleUnitLayout(path string, sf *symbols.File) (Layout, error) {
	pc, _, ok := sf.SymbolValue(moduleUnitSym)
	if !ok {
		return nil, fmt.Errorf("no symbol %s", moduleUnitSym)
	}
	fh, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := elf.NewFile(fh)
	if err != nil {
		return nil, err
	}
	secs := &dwarfSections{f: f, sf: sf}
	off, ok := arangesUnit(secs.get(".debug_aranges"), pc)
	if !ok {
		return nil, fmt.Errorf(".debug_aranges has no unit for %s (%#x)", moduleUnitSym, pc)
	}
	info := f.Section(".debug_info")
	if info == nil || info.Type == elf.SHT_NOBITS || info.Flags&elf.SHF_COMPRESSED != 0 {
		return nil, errors.New("no uncompressed .debug_info")
	}
	var hdr [4]byte
	if off > info.Size || info.Size-off < 4 {
		return nil, fmt.Errorf("unit at %#x: past the end of .debug_info", off)
	}
	if _, err := info.ReadAt(hdr[:], int64(off)); err != nil {
		return nil, err
	}
	n := uint64(binary.LittleEndian.Uint32(hdr[:]))
	if n >= 0xfffffff0 || n > maxModuleUnit || n > info.Size-off-4 {
		return nil, fmt.Errorf("unit at %#x: length %#x", off, n)
	}
	unit := make([]byte, 4+n)
	if _, err := info.ReadAt(unit, int64(off)); err != nil {
		return nil, err
	}
	if err := unitRefsLocal(unit, secs.get(".debug_abbrev")); err != nil {
		return nil, fmt.Errorf("unit at %#x: %w", off, err)
	}
	dw, err := dwarfFromUnits(secs, unit)
	if err != nil {
		return nil, err
	}
	l := NewDWARFLayout(dw)
	ml, err := readModuleLayout(l)
	if err != nil {
		return nil, err
	}
	if ml.sectAttrs < 0 || ml.nsections < 0 || ml.attrs < 0 || ml.attrStride <= 0 || ml.attrAddr < 0 || ml.attrName < 0 {
		return nil, fmt.Errorf("unit at %#x: no struct module_sect_attrs", off)
	}
	return l, nil
}

// arangesUnit returns the .debug_info offset of the unit whose
// .debug_aranges set covers pc (DWARF 2 to 5, 8-byte addresses).
func arangesUnit(b []byte, pc uint64) (uint64, bool) {
	le := binary.LittleEndian
	for len(b) >= 4 {
		n := uint64(le.Uint32(b))
		hdr, offSize := uint64(4), uint64(4)
		if n == 0xffffffff {
			if len(b) < 12 {
				return 0, false
			}
			n, hdr, offSize = le.Uint64(b[4:]), 12, 8
		} else if n >= 0xfffffff0 {
			return 0, false
		}
		if n > uint64(len(b))-hdr {
			return 0, false
		}
		set := b[:hdr+n]
		b = b[hdr+n:]
		// version (2), debug_info_offset, address_size (1),
		// segment_selector_size (1); the tuples start at a multiple of
		// their size from the set's start.
		if uint64(len(set)) < hdr+2+offSize+2 {
			continue
		}
		var info uint64
		if offSize == 8 {
			info = le.Uint64(set[hdr+2:])
		} else {
			info = uint64(le.Uint32(set[hdr+2:]))
		}
		if set[hdr+2+offSize] != 8 || set[hdr+2+offSize+1] != 0 {
			continue
		}
		for t := (hdr + 2 + offSize + 2 + 15) &^ 15; t+16 <= uint64(len(set)); t += 16 {
			addr, size := le.Uint64(set[t:]), le.Uint64(set[t+8:])
			if addr == 0 && size == 0 {
				break
			}
			if pc >= addr && pc-addr < size {
				return info, true
			}
		}
	}
	return 0, false
}

// unitRefsLocal checks that the DWARF unit (its bytes from its unit
// length on, 32-bit DWARF 2 to 5) refers to nothing outside itself, as a
// dwarf.Data of it alone must: no abbreviation of it has a form whose
// value is an offset into all of .debug_info, another unit or another
// file (ref_addr, ref_sig8, ref_sup, indirect, the GNU alternates).
func unitRefsLocal(unit, abbrev []byte) error {
	le := binary.LittleEndian
	if len(unit) < 11 {
		return errors.New("short unit header")
	}
	var abbrevOff uint64
	switch v := le.Uint16(unit[4:]); {
	case v >= 2 && v <= 4:
		abbrevOff = uint64(le.Uint32(unit[6:]))
	case v == 5:
		if len(unit) < 12 {
			return errors.New("short unit header")
		}
		if ut := unit[6]; ut != 1 && ut != 3 { // DW_UT_compile, DW_UT_partial
			return fmt.Errorf("unit type %d", ut)
		}
		abbrevOff = uint64(le.Uint32(unit[8:]))
	default:
		return fmt.Errorf("DWARF version %d", v)
	}
	if abbrevOff >= uint64(len(abbrev)) {
		return fmt.Errorf("abbreviations at %#x: past the end of .debug_abbrev", abbrevOff)
	}
	b := abbrev[abbrevOff:]
	uleb := func() (uint64, bool) {
		var v uint64
		for i := 0; i < len(b) && i < 10; i++ {
			v |= uint64(b[i]&0x7f) << (7 * i)
			if b[i]&0x80 == 0 {
				b = b[i+1:]
				return v, true
			}
		}
		return 0, false
	}
	for {
		code, ok := uleb()
		if !ok {
			return errors.New("abbreviations cut short")
		}
		if code == 0 {
			return nil
		}
		if _, ok := uleb(); !ok || len(b) < 1 { // tag, children
			return errors.New("abbreviations cut short")
		}
		b = b[1:]
		for {
			attr, ok1 := uleb()
			form, ok2 := uleb()
			if !ok1 || !ok2 {
				return errors.New("abbreviations cut short")
			}
			if attr == 0 && form == 0 {
				break
			}
			switch form {
			case 0x10, 0x16, 0x1c, 0x1d, 0x20, 0x24, 0x1f20, 0x1f21:
				// ref_addr, indirect, ref_sup4, strp_sup, ref_sig8,
				// ref_sup8, GNU_ref_alt, GNU_strp_alt
				return fmt.Errorf("abbreviation %d: form %#x refers outside the unit", code, form)
			case 0x21: // implicit_const: a SLEB128 follows
				if _, ok := uleb(); !ok {
					return errors.New("abbreviations cut short")
				}
			}
		}
	}
}
