package dwarf_test

import (
	"debug/elf"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// elfSections returns f's debug sections, decompressed, by name without
// ".debug_".
func elfSections(tb testing.TB, f *elf.File) map[string][]byte {
	tb.Helper()
	sec := map[string][]byte{}
	for _, s := range f.Sections {
		if name, ok := strings.CutPrefix(s.Name, ".debug_"); ok && s.Type != elf.SHT_NOBITS {
			b, err := s.Data()
			if err != nil {
				tb.Fatal(err)
			}
			sec[name] = b
		}
	}
	return sec
}

// addSections adds to d the sections of sec that New does not take (the
// DWARF 5 ones), as debug/elf does.
func addSections(d *dwarf.Data, sec map[string][]byte) {
	for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists"} {
		if b, ok := sec[name]; ok {
			d.AddSection(".debug_"+name, b)
		}
	}
}
