package cfi

import (
	"debug/elf"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// sameTables reports how two parses of one section differ, or "".
func sameTables(a, b *Table) string {
	if len(a.fdes) != len(b.fdes) {
		return "FDE counts differ"
	}
	for i := range a.fdes {
		x, y := &a.fdes[i], &b.fdes[i]
		if x.start != y.start || x.end != y.end || !slices.Equal(x.instr, y.instr) ||
			x.cie.codeAlign != y.cie.codeAlign || x.cie.dataAlign != y.cie.dataAlign ||
			x.cie.raReg != y.cie.raReg || x.cie.signal != y.cie.signal || !slices.Equal(x.cie.initial, y.cie.initial) {
			return "FDE " + string(rune('0'+i%10)) + " differs"
		}
	}
	return ""
}

// cfiSections returns the .debug_frame and .eh_frame sections of the
// test programs and, when the corpora are there, of vmlinux and libc.
func cfiSections(t *testing.T) map[string]struct {
	data []byte
	kind SectionKind
	addr uint64
} {
	files := []string{"../../symbols/testdata/prog", "../../symbols/testdata/prog-df", "../../fixtures/deepcore/deep"}
	if dir, err := corpus.Find("kernel"); err == nil {
		files = append(files, filepath.Join(dir, "fp", "vmlinux"))
	}
	if dir, err := corpus.Find("prod"); err == nil {
		files = append(files, filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"))
	}
	if dir, err := corpus.Find("user"); err == nil {
		files = append(files, filepath.Join(dir, "lib", "libc.so.6"), filepath.Join(dir, "lib", "libc.so.6.debug"),
			filepath.Join(dir, "lib", "ld-linux-x86-64.so.2"))
	}
	out := map[string]struct {
		data []byte
		kind SectionKind
		addr uint64
	}{}
	for _, path := range files {
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range f.Sections {
			kind := DebugFrame
			switch {
			case s.Name == ".eh_frame" && s.Type != elf.SHT_NOBITS && s.Addr != 0:
				kind = EHFrame
			case s.Name == ".debug_frame" && s.Type != elf.SHT_NOBITS:
			default:
				continue
			}
			b, err := s.Data()
			if err != nil {
				t.Fatal(err)
			}
			out[path+" "+s.Name] = struct {
				data []byte
				kind SectionKind
				addr uint64
			}{b, kind, s.Addr}
		}
		f.Close()
	}
	return out
}

// parseFast reads the sections compilers write itself, to the same table
// as delve's parser.
func TestParseFastMatchesDelve(t *testing.T) {
	n := 0
	for name, s := range cfiSections(t) {
		if err := checkFraming(s.data, s.kind); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fast, ok := parseFast(s.data, s.kind, s.addr, 0x1000)
		if !ok {
			t.Errorf("%s: parseFast leaves it to delve", name)
			continue
		}
		fast.finish()
		slow, err := parseDelve(s.data, s.kind, s.addr, 0x1000)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := sameTables(fast, slow); d != "" {
			t.Errorf("%s: %s", name, d)
		}
		n += fast.Len()
		t.Logf("%s: %d FDEs", name, fast.Len())
	}
	if n == 0 {
		t.Fatal("no FDEs compared")
	}
}

// FuzzParseFast holds parseFast to delve's parser: whenever it reads a
// section itself, delve reads the same table from it.
func FuzzParseFast(f *testing.F) {
	f.Add(debugFrame("", standardCIE, fdeSpec{0x1000, 16, []byte{cfaAdvanceLoc | 1, cfaDefCFAOffset, 16}}), false)
	for _, path := range []string{"../../symbols/testdata/prog", "../../symbols/testdata/prog-df"} {
		ef, err := elf.Open(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range []string{".eh_frame", ".debug_frame"} {
			if s := ef.Section(name); s != nil {
				b, err := s.Data()
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b, name == ".eh_frame")
			}
		}
		ef.Close()
	}
	f.Fuzz(func(t *testing.T, data []byte, eh bool) {
		kind, ehAddr := DebugFrame, uint64(0)
		if eh {
			kind, ehAddr = EHFrame, 0x1000
		}
		if checkFraming(data, kind) != nil {
			return
		}
		fast, ok := parseFast(data, kind, ehAddr, 0x400000)
		if !ok {
			return
		}
		fast.finish()
		slow, err := parseDelve(data, kind, ehAddr, 0x400000)
		if err != nil {
			t.Fatalf("parseFast read the section, delve says %v", err)
		}
		if d := sameTables(fast, slow); d != "" {
			t.Fatal(d)
		}
	})
}
