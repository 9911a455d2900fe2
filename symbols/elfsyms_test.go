package symbols

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// symtabFiles are ELF files whose .symtab symtabSource must read exactly
// as debug/elf does: the test programs and modules, and vmlinux from the
// corpora when they are there.
func symtabFiles(t *testing.T) []string {
	files := []string{"testdata/prog", "testdata/prog-df", "testdata/relocmod.ko", "testdata/hello-mod.ko"}
	if dir, err := corpus.Find("kernel"); err == nil {
		files = append(files, filepath.Join(dir, "fp", "vmlinux"))
	}
	if dir, err := corpus.Find("user"); err == nil {
		files = append(files, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	return files
}

// symtabSource gives the symbols debug/elf's Symbols gives, in its order,
// read from a mapping, from a file and from bytes.
func TestSymtabSourceMatchesDebugELF(t *testing.T) {
	for _, path := range symtabFiles(t) {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		ef, err := elf.NewFile(fh)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ef.Symbols()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			how    string
			r      io.ReaderAt
			mapped []byte
		}{{"file", fh, nil}, {"bytes", bytes.NewReader(data), nil}, {"mapped", fh, mapReader(fh)}, {"section", nil, nil}} {
			how := c.how
			if how == "mapped" && c.mapped == nil {
				if len(data) >= 1<<16 {
					t.Fatalf("%s: not mapped", path)
				}
				continue // too small to map
			}
			src, err := symtabSource(ef, c.r, c.mapped)
			if err != nil {
				t.Fatalf("%s (%s): %v", path, how, err)
			}
			if src.Len() != len(want) {
				t.Fatalf("%s (%s): %d symbols, debug/elf %d", path, how, src.Len(), len(want))
			}
			for i, w := range want {
				g := src.At(i)
				if g.Name != w.Name || g.Info != w.Info || g.Section != w.Section || g.Value != w.Value || g.Size != w.Size {
					t.Fatalf("%s (%s): symbol %d = %+v, debug/elf %+v", path, how, i, g, w)
				}
				checkDefinesName(t, &src, i, w)
			}
		}
	}
}

// Damaged symbol tables fail where debug/elf's Symbols fails: a size
// that is no multiple of 24, a string table link out of range, a section
// beyond the end of the file. Names out of the string table are "".
func TestSymtabSourceDamaged(t *testing.T) {
	orig, err := os.ReadFile("testdata/prog")
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	var idx int
	for i, s := range ef.Sections {
		if s.Type == elf.SHT_SYMTAB {
			idx = i
		}
	}
	shdr := func(b []byte) []byte { // the symtab's section header
		off := ef.ByteOrder.Uint64(b[0x28:]) + uint64(idx)*64
		return b[off : off+64]
	}
	for _, c := range []struct {
		name  string
		patch func(h []byte)
	}{
		{"size", func(h []byte) { ef.ByteOrder.PutUint64(h[32:], ef.ByteOrder.Uint64(h[32:])-1) }},
		{"link", func(h []byte) { ef.ByteOrder.PutUint32(h[40:], 0xffff) }},
		{"offset", func(h []byte) { ef.ByteOrder.PutUint64(h[24:], uint64(len(orig))) }},
		{"huge", func(h []byte) { ef.ByteOrder.PutUint64(h[32:], 24<<40) }},
	} {
		b := bytes.Clone(orig)
		c.patch(shdr(b))
		bef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		_, want := bef.Symbols()
		_, got := symtabSource(bef, bytes.NewReader(b), nil)
		if want == nil || got == nil {
			t.Errorf("%s: debug/elf says %v, symtabSource %v: both must fail", c.name, want, got)
		}
	}
	if got := stringAt("ab\x00cd", 3); got != "" {
		t.Errorf("unterminated name = %q", got)
	}
	if got := stringAt("ab\x00cd\x00", 3); got != "cd" {
		t.Errorf("name = %q", got)
	}
	if got := stringAt("ab\x00", 3); got != "" {
		t.Errorf("name past the end = %q", got)
	}
}

// FuzzSymtab holds symtabSource to debug/elf's Symbols on any ELF file:
// both fail, or both give the same symbols (and so does a File's
// ELFSymbols; its SectionBytes give what debug/elf's Data gives). Seeded with the test program
// and copies whose symbol table header is damaged.
func FuzzSymtab(f *testing.F) {
	for _, name := range []string{"testdata/prog", "testdata/relocmod.ko"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		ef, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		for i, s := range ef.Sections {
			if s.Type != elf.SHT_SYMTAB {
				continue
			}
			h := ef.ByteOrder.Uint64(b[0x28:]) + uint64(i)*64
			for _, field := range []int{24, 32, 40} { // offset, size, link
				d := bytes.Clone(b)
				d[h+uint64(field)] ^= 0x5a
				f.Add(d)
			}
		}
	}
	old := minCachedSyms
	minCachedSyms = 0 // every table cached (from a mapped file)
	f.Cleanup(func() { minCachedSyms = old })
	f.Fuzz(func(t *testing.T, data []byte) {
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkFileTables(t, data)
		want, werr := ef.Symbols()
		src, gerr := symtabSource(ef, bytes.NewReader(data), nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("debug/elf: %v; symtabSource: %v", werr, gerr)
		}
		n := 0
		for s := range ELFSymbols(ef) {
			if n >= len(want) || s != want[n] {
				t.Fatalf("ELFSymbols: symbol %d = %+v, debug/elf %d symbols", n, s, len(want))
			}
			n++
		}
		if n != len(want) {
			t.Fatalf("ELFSymbols gave %d symbols, debug/elf %d", n, len(want))
		}
		// A File's ELFSymbols, from the table it read when opened, gives
		// the same.
		if file, err := NewFile(bytes.NewReader(data), "fuzz", 0); err == nil {
			n = 0
			for s := range file.ELFSymbols() {
				if n >= len(want) || s != want[n] {
					t.Fatalf("File.ELFSymbols: symbol %d = %+v, debug/elf %d symbols", n, s, len(want))
				}
				n++
			}
			if n != len(want) {
				t.Fatalf("File.ELFSymbols gave %d symbols, debug/elf %d", n, len(want))
			}
			// ELFSymbolsNamed gives the symbols of some names, in order:
			// every fifth symbol's name, a one-byte name and one no symbol
			// has, without "" and with it.
			names := map[string]bool{"_": true, "no such symbol": true}
			for i := 0; i < len(want); i += 5 {
				if want[i].Name != "" { // section symbols
					names[want[i].Name] = true
				}
			}
			for range 2 {
				var wantNamed []elf.Symbol
				for _, w := range want {
					if names[w.Name] {
						wantNamed = append(wantNamed, w)
					}
				}
				if got := file.ELFSymbolsNamed(names); !slices.Equal(got, wantNamed) {
					t.Fatalf("ELFSymbolsNamed (with \"\": %v): %d symbols, want %d", names[""], len(got), len(wantNamed))
				}
				names[""] = true
			}
			for _, sec := range ef.Sections {
				if sec.Type == elf.SHT_NOBITS || sec.Size > 1<<20 {
					continue
				}
				wb, err := sec.Data()
				if err != nil {
					continue
				}
				if gb := file.SectionBytes(sec.Name, 1<<20); ef.Section(sec.Name) == sec && !bytes.Equal(gb, wb) {
					t.Fatalf("SectionBytes(%s): %d bytes, Data %d", sec.Name, len(gb), len(wb))
				}
			}
		}
		if werr != nil {
			return
		}
		if src.Len() != len(want) {
			t.Fatalf("%d symbols, debug/elf %d", src.Len(), len(want))
		}
		for i, w := range want {
			if g := src.At(i); g.Name != w.Name || g.Info != w.Info || g.Section != w.Section || g.Value != w.Value || g.Size != w.Size {
				t.Fatalf("symbol %d = %+v, debug/elf %+v", i, g, w)
			}
			checkDefinesName(t, &src, i, w)
		}
	})
}

// checkFileTables holds the symbol table of the ELF file data, read from
// bytes and (padded to be mapped) from a file, built into a new debug
// cache entry and then loaded from it, to the old implementation's
// (refReadSymbols).
func checkFileTables(t *testing.T, data []byte) {
	t.Helper()
	file, err := NewFile(bytes.NewReader(data), "fuzz", 0x1000)
	if err != nil {
		return
	}
	sameSyms(t, "from bytes", file.Syms, refReadSymbols(file))
	if file.Syms.Len() == 0 {
		return // nothing to cache
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "elf")
	if err := os.WriteFile(path, append(data, make([]byte, max(0, 1<<16-len(data)))...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("UNWIND_DEBUG_CACHE", filepath.Join(dir, "cache"))
	for _, what := range []string{"built", "from the cache"} {
		file, err := Open(path, 0x1000)
		if err != nil {
			return
		}
		sameSyms(t, what, file.Syms, refReadSymbols(file))
		file.Close()
	}
}

// sameSyms checks that tab holds the symbols want, in order, and that
// ByName finds the first of each name.
func sameSyms(t *testing.T, what string, tab *Table, want []Sym) {
	t.Helper()
	if tab.Len() != len(want) {
		t.Fatalf("%s: %d symbols, want %d", what, tab.Len(), len(want))
	}
	first := map[string]Sym{}
	for i, w := range want {
		if got := tab.At(i); got != w {
			t.Fatalf("%s: symbol %d = %+v, want %+v", what, i, got, w)
		}
		if _, ok := first[w.Name]; !ok {
			first[w.Name] = w
		}
	}
	for name, w := range first {
		if got, ok := tab.ByName(name); !ok || got != w {
			t.Fatalf("%s: ByName(%q) = %+v %v, want %+v", what, name, got, ok, w)
		}
	}
}

// checkDefinesName holds definesName to symbol w's name and section.
func checkDefinesName(t *testing.T, src *symSource, i int, w elf.Symbol) {
	t.Helper()
	for _, name := range []string{w.Name, "_stext", "linux_banner", w.Name + "x"} {
		if name == "" {
			continue // definesName takes a name
		}
		if want := w.Name == name && w.Section != elf.SHN_UNDEF; src.definesName(i, name) != want {
			t.Fatalf("symbol %d (%q in section %d): definesName(%q) = %v", i, w.Name, w.Section, name, !want)
		}
	}
}
