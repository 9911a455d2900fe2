package symbols

import (
	"debug/elf"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// refLookup is the old Table.Lookup on a slice of symbols.
func refLookup(s []Sym, addr uint64) (Sym, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].Addr <= addr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i := lo - 1
	if i < 0 {
		return Sym{}, false
	}
	for i > 0 && s[i-1].Addr == s[i].Addr {
		i--
	}
	for n := 0; i >= 0 && n < maxBack; n++ {
		if contains(s[i].Addr, s[i].Size, addr) {
			return s[i], true
		}
		i--
		for i > 0 && s[i-1].Addr == s[i].Addr {
			i--
		}
	}
	return Sym{}, false
}

// checkAgainstOld compares tab with the symbols the old table held: every
// symbol in order, Lookup at and around every symbol and at random
// addresses, nearest, and ByName of every name.
func checkAgainstOld(t *testing.T, what string, tab *Table, want []Sym) {
	t.Helper()
	if tab.Len() != len(want) {
		t.Errorf("%s: Len = %d, want %d", what, tab.Len(), len(want))
	}
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 10 {
			t.Errorf("%s: %s", what, fmt.Sprintf(format, args...))
		}
	}
	for i := range min(tab.Len(), len(want)) {
		if got := tab.At(i); got != want[i] {
			fail("At(%d) = %+v, want %+v", i, got, want[i])
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	probe := func(a uint64) {
		got, ok := tab.Lookup(a)
		w, wok := refLookup(want, a)
		if got != w || ok != wok {
			fail("Lookup(%#x) = %+v %v, want %+v %v", a, got, ok, w, wok)
		}
	}
	first := map[string]Sym{}
	for _, s := range want {
		probe(s.Addr)
		probe(s.Addr - 1)
		probe(s.Addr + s.Size)
		probe(s.Addr + s.Size - 1)
		probe(s.Addr + rng.Uint64N(max(s.Size, 1)))
		if _, ok := first[s.Name]; !ok {
			first[s.Name] = s
		}
	}
	for range 1000 {
		probe(rng.Uint64())
	}
	for name, w := range first {
		if got, ok := tab.ByName(name); !ok || got != w {
			fail("ByName(%q) = %+v %v, want %+v", name, got, ok, w)
		}
	}
	if _, ok := tab.ByName("\x00no such symbol"); ok {
		fail("ByName of a missing name found one")
	}
}

// TestTableMatchesOld checks that the tables of ELF files are the ones the
// old implementation built, at several biases: none, a KASLR offset, and
// ones that wrap some or every address around 2^64 (absolute symbols then
// fall elsewhere among the relocated ones).
func TestTableMatchesOld(t *testing.T) {
	paths := []string{"testdata/prog", "testdata/prog-df", "testdata/hello-mod.ko"}
	if dir, err := corpus.Find("kernel"); err == nil {
		paths = append(paths, filepath.Join(dir, "fp", "vmlinux"))
	}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6"), filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	if dir, err := corpus.Find("prod"); err == nil && !testing.Short() {
		paths = append(paths, filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"))
	}
	t.Setenv("UNWIND_DEBUG_CACHE", "off")
	for _, path := range paths {
		for _, bias := range []uint64{0, 0x1e000000, 1 << 63, 0x7e000000, ^uint64(0) - 0xfff} {
			f, err := Open(path, bias)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstOld(t, fmt.Sprintf("%s at %#x", filepath.Base(path), bias), f.Syms, refReadSymbols(f))
			f.Close()
		}
	}
}

// TestTableMatchesOldModule checks a placed module's table.
func TestTableMatchesOldModule(t *testing.T) {
	f := openRelocmod(t, Placement{Sections: relocmodPlacement, Resolve: resolveExport,
		TextEnds: []uint64{0xffffffffc0010090}})
	checkAgainstOld(t, "relocmod", f.Syms, refReadSymbols(f))
}

// TestNewTableMatchesOld checks NewTable and ParseKallsyms on random
// symbols with many aliases, duplicates and gaps against the old
// implementation.
func TestNewTableMatchesOld(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		n := 1 + rng.IntN(600)
		var syms []Sym
		var es []refEntry
		names := []string{"a", "_a", "__a", "b", "bb", "__start_x", "x_end", "f", "g"}
		mods := []string{"", "m1", "m2"}
		base := rng.Uint64()
		for range n {
			s := Sym{
				Name:   names[rng.IntN(len(names))],
				Addr:   base + rng.Uint64N(uint64(n)*8)*uint64(1+rng.IntN(3)<<(rng.IntN(3)*11)),
				Module: mods[rng.IntN(len(mods))],
			}
			if rng.IntN(3) == 0 {
				s.Size = rng.Uint64N(64)
				s.ELFSize = s.Size
			}
			syms = append(syms, s)
			es = append(es, refEntry{Sym: s})
		}
		want, _ := refNewTable(es)
		checkAgainstOld(t, fmt.Sprintf("NewTable round %d", round), NewTable(syms), want)
	}
}

// TestWithExtrasMatchesOld merges random absolute symbols into random
// relocated ones at random biases, as readSymbols does, and compares the
// result with the table the old implementation built from all of them:
// extras among, between, at and beyond base addresses, extras that
// duplicate a base symbol, and sizes that the extras shorten or fill.
func TestWithExtrasMatchesOld(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"a", "_a", "b", "c", "__c"}
	for round := range 1000 {
		bias := []uint64{0, 0x1000, rng.Uint64(), ^uint64(0) - 0x800}[rng.IntN(4)]
		rel, abs := &tableBuilder{bias: bias}, &tableBuilder{}
		rel.module("m")
		abs.module("m")
		var es []refEntry
		span := uint64(0x4000)
		if rng.IntN(4) == 0 {
			span = 3 * maxFill
		}
		for range 1 + rng.IntN(60) {
			name, addr := names[rng.IntN(len(names))], rng.Uint64N(span)&^0xf
			size := uint64(0)
			if rng.IntN(3) == 0 {
				size = rng.Uint64N(0x100)
			}
			rank := rng.IntN(8)
			rel.add(addr, size, size, rel.nb.ref(name), rank, 0, 0)
			es = append(es, refEntry{Sym: Sym{Name: name, Addr: addr + bias, Size: size, ELFSize: size, Module: "m"}, rank: rank})
		}
		for range rng.IntN(16) {
			name := names[rng.IntN(len(names))]
			var addr uint64
			if rng.IntN(2) == 0 && len(es) > 0 {
				addr = es[rng.IntN(len(es))].Addr + []uint64{0, 0, 4, 8, 12, ^uint64(7)}[rng.IntN(6)]
			} else {
				addr = bias + rng.Uint64N(span+0x100) - 0x80
			}
			rank := 8 + rng.IntN(8)
			abs.add(addr, 0, 0, abs.nb.ref(name), rank, 0, 0)
			es = append(es, refEntry{Sym: Sym{Name: name, Addr: addr, Module: "m"}, rank: rank})
		}
		want, _ := refNewTable(es)
		checkAgainstOld(t, fmt.Sprintf("round %d (bias %#x)", round, bias), rel.build(true).withExtras(abs.build(false).syms()), want)
	}
}

// TestSymbolValue checks that SymbolValue gives every uniquely named
// symbol of the table as .symtab has it, absolute ones included, at a
// KASLR bias.
func TestSymbolValue(t *testing.T) {
	path := "testdata/prog"
	if dir, err := corpus.Find("kernel"); err == nil {
		path = filepath.Join(dir, "fp", "vmlinux")
	}
	f, err := Open(path, 0x1e000000)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	count := map[string]int{}
	for s := range f.ELFSymbols() {
		count[s.Name]++
	}
	checked, abs := 0, 0
	for s := range f.ELFSymbols() {
		if count[s.Name] != 1 {
			continue
		}
		if _, ok := f.Syms.ByName(s.Name); !ok {
			continue
		}
		v, size, ok := f.SymbolValue(s.Name)
		if !ok || v != s.Value || size != s.Size {
			t.Errorf("SymbolValue(%s) = %#x %#x %v, want %#x %#x", s.Name, v, size, ok, s.Value, s.Size)
		}
		checked++
		if s.Section == elf.SHN_ABS {
			abs++
		}
	}
	if checked == 0 || path != "testdata/prog" && abs == 0 {
		t.Errorf("%d symbols checked, %d absolute", checked, abs)
	}
}
