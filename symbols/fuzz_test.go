package symbols

import (
	"bytes"
	"debug/elf"
	"os"
	"testing"
)

// checkTable asserts the invariants every parsed table keeps.
func checkTable(t *testing.T, tab *Table, err error) {
	if (tab == nil) == (err == nil) {
		t.Fatalf("table %v with error %v", tab != nil, err)
	}
	for i := 0; i < tab.Len(); i++ {
		s := tab.At(i)
		if i > 0 && tab.At(i-1).Addr > s.Addr {
			t.Fatalf("not sorted at %d", i)
		}
		got, ok := tab.Lookup(s.Addr)
		if !ok || got.Addr != s.Addr {
			t.Fatalf("Lookup(%#x) of a symbol's own address = %+v %v", s.Addr, got, ok)
		}
		if _, ok := tab.ByName(s.Name); !ok {
			t.Fatalf("ByName(%q) missing", s.Name)
		}
	}
}

func FuzzParseSystemMap(f *testing.F) {
	f.Add([]byte(sampleMap), uint64(0))
	f.Add([]byte("ffffffff81000000 T _text\nffffffff81000000 T _text\n\n  \n"), uint64(0x10000000))
	f.Add([]byte("ffffffffffffffff T end\n0 a zero\n"), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, bias uint64) {
		tab, err := ParseSystemMap(bytes.NewReader(data), bias)
		checkTable(t, tab, err)
	})
}

func FuzzParseKallsyms(f *testing.F) {
	f.Add([]byte("ffffffffc0002000 t foo_init\t[foo]\nffffffff81000000 T _text\n"), uint64(0))
	f.Add([]byte("0000000000000000 A fixed_percpu_data\nffffffffc0000000 t x\t[m]\n"), uint64(0x200000))
	f.Fuzz(func(t *testing.T, data []byte, bias uint64) {
		tab, err := ParseKallsyms(bytes.NewReader(data), bias)
		checkTable(t, tab, err)
	})
}

// fuzzPlacement places every allocated section of an ELF file one after
// the other, as a module loader would.
func fuzzPlacement(data []byte) Placement {
	p := Placement{Sections: map[string]uint64{}, Resolve: resolveExport}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return p
	}
	a := uint64(0xffffffffc0000000)
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 {
			p.Sections[s.Name] = a
			a += min(s.Size, 1<<20) + 64
		}
	}
	p.TextEnds = []uint64{a}
	return p
}

// FuzzModuleFile drives the ET_REL relocation path: open a module placed
// section by section, then read its symbols, code, CFI, lines, ORC and
// section data. It must never panic; a File comes back exactly when the
// error is nil.
func FuzzModuleFile(f *testing.F) {
	for _, name := range []string{"testdata/relocmod.ko", "testdata/hello-mod.ko"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)*3/4])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := fuzzPlacement(data)
		m, err := NewModuleFile(bytes.NewReader(data), "fuzz.ko", p)
		if (m == nil) == (err == nil) {
			t.Fatalf("file %v with error %v", m != nil, err)
		}
		if m == nil {
			return
		}
		checkTable(t, m.Syms, nil)
		_ = m.DebugInfoErr()
		var row CFIRow
		var buf []Line
		for _, ts := range m.text {
			for _, pc := range []uint64{ts.start, ts.start + (ts.end-ts.start)/2, ts.end - 1} {
				_ = m.CodeAt(pc)
				_ = m.FindCFI(pc, &row)
				buf = m.Lines(pc, buf)
				_, _ = m.FindORC(pc)
			}
		}
		for name := range p.Sections {
			_, _, _ = m.SectionData(name)
		}
		if ips, entries, err := m.ModuleORC(); err == nil && len(entries) != len(ips)*ORCEntrySize {
			t.Fatalf("%d ORC ips, %d entry bytes", len(ips), len(entries))
		}
		_ = m.MatchModuleSymbols(m.ModuleName(), []ModuleSymbol{{Name: "x", Value: 1, Size: 2, Section: 1}})
	})
}
