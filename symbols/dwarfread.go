package symbols

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"strings"
)

// maxDebugSection caps one DWARF section read from a file (a corrupt
// section header must not make us allocate gigabytes).
const maxDebugSection = 1 << 30

// readDWARF loads the DWARF sections of ef with one exact-size read each.
// debug/elf's own (*File).DWARF reads through a growing buffer, which for a
// kernel's 100+ MiB of DWARF costs more than the reads themselves; here
// only files with compressed or relocatable debug sections take that path.
//
// When path can be memory-mapped the sections are slices of the mapping,
// which is never unmapped: the DWARF data refers to it for as long as the
// process may look lines up, and the kernel reclaims its pages freely.
func readDWARF(ef *elf.File, path string) (*dwarf.Data, error) {
	if ef.Type == elf.ET_REL {
		return ef.DWARF()
	}
	mapped, _ := mapFile(path)
	sec := map[string][]byte{}
	for _, s := range ef.Sections {
		name := s.Name
		if !strings.HasPrefix(name, ".debug_") {
			if strings.HasPrefix(name, ".zdebug_") {
				return ef.DWARF()
			}
			continue
		}
		if s.Flags&elf.SHF_COMPRESSED != 0 {
			return ef.DWARF()
		}
		if s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		if s.Size > maxDebugSection {
			return nil, fmt.Errorf("section %s: size %d too large", name, s.Size)
		}
		if mapped != nil && s.Offset <= uint64(len(mapped)) && s.Size <= uint64(len(mapped))-s.Offset {
			sec[name[len(".debug_"):]] = mapped[s.Offset : s.Offset+s.Size : s.Offset+s.Size]
			continue
		}
		b := make([]byte, s.Size)
		if n, err := s.ReadAt(b, 0); uint64(n) != s.Size {
			return nil, fmt.Errorf("section %s: short read: %v", name, err)
		}
		sec[name[len(".debug_"):]] = b
	}
	d, err := dwarf.New(sec["abbrev"], sec["aranges"], sec["frame"], sec["info"], sec["line"], sec["pubnames"], sec["ranges"], sec["str"])
	if err != nil {
		return nil, err
	}
	// DWARF 5 sections, added the way debug/elf does.
	for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists", "loclists"} {
		if b, ok := sec[name]; ok {
			if err := d.AddSection(".debug_"+name, b); err != nil {
				return nil, err
			}
		}
	}
	if b, ok := sec["types"]; ok {
		if err := d.AddTypes("types", b); err != nil {
			return nil, err
		}
	}
	return d, nil
}
