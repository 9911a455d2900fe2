package dwarf_test

import (
	"debug/elf"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// A Data made with NewWithUnits from another's headers decodes every entry
// as the standard library does; headers that do not fit are refused.
func TestNewWithUnits(t *testing.T) {
	for _, path := range []string{"../../symbols/testdata/prog", "../../symbols/testdata/prog-df"} {
		std, d := fromELF(t, path)
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sec := map[string][]byte{}
		for _, s := range f.Sections {
			if name, ok := strings.CutPrefix(s.Name, ".debug_"); ok && s.Type != elf.SHT_NOBITS {
				sec[name], _ = s.Data()
			}
		}
		f.Close()
		hs := d.UnitHeaders()
		if len(hs) == 0 {
			t.Fatalf("%s: no units", path)
		}
		e, err := dwarf.NewWithUnits(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, sec["ranges"], sec["str"], hs)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists"} {
			if b, ok := sec[name]; ok {
				e.AddSection(".debug_"+name, b)
			}
		}
		if n, err := compareAll(std, e); err != nil || n == 0 {
			t.Errorf("%s: %d entries: %v", path, n, err)
		}
		for i, bad := range []func(h *dwarf.UnitHeader){
			func(h *dwarf.UnitHeader) { h.End = dwarf.Offset(len(sec["info"]) + 1) },
			func(h *dwarf.UnitHeader) { h.Off = h.End + 1 },
			func(h *dwarf.UnitHeader) { h.Vers = 6 },
		} {
			b := append([]dwarf.UnitHeader(nil), hs...)
			bad(&b[len(b)-1])
			if _, err := dwarf.NewWithUnits(sec["abbrev"], nil, nil, sec["info"], sec["line"], nil, nil, nil, b); err == nil {
				t.Errorf("%s: bad header %d accepted", path, i)
			}
		}
	}
}
