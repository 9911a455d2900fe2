package symbols

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTableLookup(t *testing.T) {
	tab := NewTable([]Sym{
		{Name: "c", Addr: 0x3000}, // last: size unknown, matches only 0x3000
		{Name: "a", Addr: 0x1000, Size: 0x10},
		{Name: "b", Addr: 0x2000},             // size filled to 0x1000
		{Name: "a", Addr: 0x1000, Size: 0x10}, // duplicate
		{Name: "_a_alias", Addr: 0x1000},
		{Name: "big", Addr: 0x500, Size: 0x1000}, // encloses a
	})
	if tab.Len() != 5 {
		t.Errorf("Len = %d, want 5 after dedupe", tab.Len())
	}
	tests := []struct {
		addr uint64
		name string
		ok   bool
	}{
		{0x4ff, "", false},
		{0x500, "big", true},
		{0x1000, "a", true},
		{0x100f, "a", true},
		{0x1010, "big", true}, // past a: the enclosing symbol
		{0x1500, "", false},   // past big, before b
		{0x2000, "b", true},
		{0x2fff, "b", true},
		{0x3000, "c", true},
		{0x3001, "", false},
		{^uint64(0), "", false},
	}
	for _, tc := range tests {
		got, ok := tab.Lookup(tc.addr)
		if ok != tc.ok || got.Name != tc.name {
			t.Errorf("Lookup(%#x) = %q %v, want %q %v", tc.addr, got.Name, ok, tc.name, tc.ok)
		}
	}
	if s, _ := tab.Lookup(0x2000); s.Size != 0x1000 {
		t.Errorf("b's filled size = %#x", s.Size)
	}
	if s, ok := tab.ByName("_a_alias"); !ok || s.Addr != 0x1000 {
		t.Errorf("ByName = %+v %v", s, ok)
	}
	if _, ok := tab.ByName("nope"); ok {
		t.Error("ByName(nope) found something")
	}
	var empty *Table
	if _, ok := empty.Lookup(1); ok || empty.Len() != 0 {
		t.Error("nil table is not empty")
	}
}

const sampleMap = `ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81000070 T secondary_startup_64
ffffffff810001f0 t verify_cpu
0000000000000000 A __per_cpu_start
ffffffff82000000 D _sdata
`

func TestParseSystemMap(t *testing.T) {
	const kaslr = 0x1c000000
	tab, err := ParseSystemMap(strings.NewReader(sampleMap), kaslr)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := tab.Lookup(0xffffffff81000010 + kaslr)
	want := Sym{Name: "startup_64", Addr: 0xffffffff81000000 + kaslr, Size: 0x70}
	if !ok || !cmp.Equal(got, want) {
		t.Errorf("Lookup = %+v %v; diff %s", got, ok, cmp.Diff(want, got))
	}
	if s, ok := tab.ByName("__per_cpu_start"); !ok || s.Addr != 0 {
		t.Errorf("absolute symbol relocated: %+v", s)
	}
	if _, ok := tab.Lookup(0xffffffff81000010); ok {
		t.Error("unrelocated address found")
	}
}

func TestParseKallsyms(t *testing.T) {
	in := "ffffffffc0002000 t foo_init\t[foo]\nffffffffc0002040 T foo_exit\t[foo]\nffffffff81000000 T _text\n"
	tab, err := ParseKallsyms(strings.NewReader(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := tab.Lookup(0xffffffffc0002004)
	if !ok || s.Name != "foo_init" || s.Module != "foo" {
		t.Errorf("Lookup = %+v %v", s, ok)
	}
	var set Set
	set.AddTable(tab, "vmlinux")
	if s, ok := set.Symbol(0xffffffff81000000); !ok || s.Module != "vmlinux" {
		t.Errorf("Set.Symbol = %+v %v", s, ok)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"zzzz T x\n",
		"ffff T\n",
		"ffff TT x\n",
		"ffff T x y\n",
		strings.Repeat("f", maxLine+10) + " T x\n",
	} {
		_, err := ParseSystemMap(strings.NewReader(in), 0)
		var pe *ParseError
		if err == nil || (!errors.As(err, &pe) && !strings.Contains(err.Error(), "too long")) {
			t.Errorf("ParseSystemMap(%.20q) = %v", in, err)
		}
	}
	if _, err := ParseKallsyms(strings.NewReader("ffff t x [mod\n"), 0); err == nil {
		t.Error("bad module column accepted")
	}
}

func TestFileBasics(t *testing.T) {
	const bias = 0x7f0000000000
	f, err := Open("testdata/prog", bias)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	main, ok := f.Syms.ByName("main")
	if !ok || main.Addr != 0x1080+bias || main.Size != 0x3e || main.Module != "testdata/prog" {
		t.Fatalf("main = %+v %v", main, ok)
	}
	if !f.IsText(main.Addr) || f.IsText(main.Addr-0x1000) {
		t.Error("IsText wrong")
	}
	code := f.CodeAt(main.Addr)
	if len(code) == 0 || code[0] != 0xf3 { // endbr64 or a prologue byte
		t.Logf("main starts with % x", code[:min(len(code), 4)])
	}
	if f.CodeAt(0x10) != nil {
		t.Error("CodeAt outside text")
	}
	if id := f.BuildID(); len(id) != 20 {
		t.Errorf("BuildID = %x", id)
	}
	var row CFIRow
	if err := f.FindCFI(main.Addr+4, &row); err != nil {
		t.Fatalf("FindCFI(main+4): %v", err)
	}
	if row.Start < main.Addr || row.End > main.Addr+main.Size || row.CFA.Reg != 7 {
		t.Errorf("row = %+v", row)
	}
	if err := f.FindCFI(0x10, &row); !errors.Is(err, ErrNoFDE) {
		t.Errorf("FindCFI miss: %v", err)
	}
	var set Set
	set.Add(f)
	if s, ok := set.Symbol(main.Addr + 3); !ok || s.Name != "main" {
		t.Errorf("Set.Symbol = %+v", s)
	}
	if err := set.FindCFI(main.Addr+4, &row); err != nil {
		t.Error(err)
	}
	if lines := set.Lines(main.Addr+4, nil); len(lines) == 0 || lines[len(lines)-1].Function != "main" {
		t.Errorf("Set.Lines = %+v", lines)
	}
	if len(set.CodeAt(main.Addr)) == 0 || !set.IsText(main.Addr) || len(set.Modules()) != 1 {
		t.Error("Set text")
	}
	if _, ok := set.ByName("leaf"); !ok {
		t.Error("Set.ByName")
	}
}

func TestDebugFrameFile(t *testing.T) {
	f, err := Open("testdata/prog-df", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	leaf, _ := f.Syms.ByName("leaf")
	var row CFIRow
	if err := f.FindCFI(leaf.Addr, &row); err != nil {
		t.Fatalf("FindCFI from .debug_frame: %v", err)
	}
}

func TestNewFileGarbage(t *testing.T) {
	if _, err := NewFile(strings.NewReader("not an elf"), "x", 0); err == nil {
		t.Error("no error")
	}
	if _, err := Open("testdata/prog.c", 0); err == nil {
		t.Error("no error for a C file")
	}
}

// TestSystemMapTextOnly: a System.map's data and per-cpu symbols (here
// fixed_percpu_data at 0) keep their type letter and never name a PC.
func TestSystemMapTextOnly(t *testing.T) {
	const m = `0000000000000000 D __per_cpu_start
0000000000000000 D fixed_percpu_data
000000000000b000 D cpu_number
ffffffff81000000 T _text
ffffffff81000000 T startup_64
ffffffff81000100 t helper
ffffffff81000180 W weak_fn
ffffffff81000200 D some_data
ffffffff81000300 T last_fn
`
	tab, err := ParseSystemMap(strings.NewReader(m), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := tab.Lookup(0); !ok || s.Name != "fixed_percpu_data" {
		t.Errorf("Lookup(0) = %v %v, want the data symbol", s, ok)
	}
	var set Set
	set.AddTable(tab, "")
	for _, c := range []struct {
		pc   uint64
		name string
	}{{0, ""}, {0x10, ""}, {0xb000, ""}, {0xffffffff81000010, "startup_64"}, {0xffffffff81000110, "helper"},
		{0xffffffff81000190, "weak_fn"}, {0xffffffff81000210, ""}, {0xffffffff81000300, "last_fn"}} {
		s, ok := set.Symbol(c.pc)
		if (c.name == "") == ok || s.Name != c.name {
			t.Errorf("Symbol(%#x) = %q %v, want %q", c.pc, s.Name, ok, c.name)
		}
		if set.IsText(c.pc) != (c.name != "") {
			t.Errorf("IsText(%#x) = %v", c.pc, !(c.name != ""))
		}
	}
	for i := 0; i < tab.Len(); i++ {
		if s := tab.At(i); s.Name == "helper" && tab.Type(i) != 't' {
			t.Errorf("helper has type %q", tab.Type(i))
		}
	}
}

// A symbol list with an overlong line says which line, not bufio's
// "token too long".
func TestParseSystemMapLongLine(t *testing.T) {
	text := "ffffffff81000000 T _text\n" + strings.Repeat("x", 70000) + "\n"
	_, err := ParseSystemMap(strings.NewReader(text), 0)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || strings.Contains(err.Error(), "bufio") {
		t.Errorf("err %v, want a ParseError at line 2", err)
	}
}

// strHashRef is strHash as the debug cache's name index was first made
// (entries made then must still be found): a word at a time, the last
// len%8 bytes one by one.
func strHashRef(seed uint64, s string) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	h := mix(seed^k0, uint64(len(s))^k1)
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = mix(h^w, k1)
		s = s[8:]
	}
	var w uint64
	for i := len(s) - 1; i >= 0; i-- {
		w = w<<8 | uint64(s[i])
	}
	return mix(h^w^k2, k0)
}

func TestStrHash(t *testing.T) {
	s := "0123456789abcdefghijklmnopqrstuvwxyz\x00\xff"
	for i := range len(s) + 1 {
		for j := i; j <= len(s); j++ {
			for _, seed := range []uint64{0, 1, 0x9e3779b97f4a7c15} {
				if got, want := strHash(seed, s[i:j]), strHashRef(seed, s[i:j]); got != want {
					t.Fatalf("strHash(%#x, %q) = %#x, want %#x", seed, s[i:j], got, want)
				}
			}
		}
	}
}

func FuzzStrHash(f *testing.F) {
	f.Add(uint64(1), "schedule")
	f.Fuzz(func(t *testing.T, seed uint64, s string) {
		if got, want := strHash(seed, s), strHashRef(seed, s); got != want {
			t.Fatalf("strHash(%#x, %q) = %#x, want %#x", seed, s, got, want)
		}
	})
}
