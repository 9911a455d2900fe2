package dwarf_test

import (
	stddwarf "debug/dwarf"
	"debug/elf"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// openELF returns the standard library's Data of the ELF file at path
// (an executable or shared object: no relocations) and the file's debug
// sections, decompressed, by name without ".debug_".
func openELF(tb testing.TB, path string) (*stddwarf.Data, map[string][]byte) {
	tb.Helper()
	f, err := elf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	std, err := f.DWARF()
	if err != nil {
		tb.Fatal(err)
	}
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
	return std, sec
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
