package emu

import (
	"debug/elf"
	"sort"
)

// Symbol is a kernel ELF symbol (function or object).
type Symbol struct {
	Name string
	Addr uint64
	Size uint64
}

// symTab is a small private address → symbol table read from the ELF
// .symtab with debug/elf (the symbols package is being written in parallel).
type symTab struct {
	byAddr []Symbol // sorted by Addr
	funcs  []Symbol // sized symbols, sorted by Addr
	byName map[string]Symbol
}

func newSymTab(f *elf.File) *symTab {
	t := &symTab{byName: make(map[string]Symbol)}
	syms, _ := f.Symbols()
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if s.Name == "" || s.Value == 0 || s.Section == elf.SHN_UNDEF || s.Section == elf.SHN_ABS {
			continue
		}
		if typ != elf.STT_FUNC && typ != elf.STT_OBJECT && typ != elf.STT_NOTYPE {
			continue
		}
		sym := Symbol{Name: s.Name, Addr: s.Value, Size: s.Size}
		t.byAddr = append(t.byAddr, sym)
		if old, ok := t.byName[s.Name]; !ok || (old.Size == 0 && s.Size != 0) {
			t.byName[s.Name] = sym
		}
	}
	sort.SliceStable(t.byAddr, func(i, j int) bool {
		a, b := t.byAddr[i], t.byAddr[j]
		if a.Addr != b.Addr {
			return a.Addr < b.Addr
		}
		return a.Size > b.Size // prefer the sized symbol at an address
	})
	// Drop duplicates at one address (keep the first: the sized one).
	out := t.byAddr[:0]
	for i, s := range t.byAddr {
		if i > 0 && s.Addr == t.byAddr[i-1].Addr {
			continue
		}
		out = append(out, s)
	}
	t.byAddr = out
	for _, s := range out {
		if s.Size != 0 {
			t.funcs = append(t.funcs, s)
		}
	}
	return t
}

// lookup returns the symbol containing addr: the sized symbol (function or
// object) covering it, or else the nearest preceding unsized (assembly)
// label. A global label inside a sized function (e.g. "spin" in level3)
// therefore does not hide the function.
func (t *symTab) lookup(addr uint64) (Symbol, bool) {
	if t == nil {
		return Symbol{}, false
	}
	if i := sort.Search(len(t.funcs), func(i int) bool { return t.funcs[i].Addr > addr }) - 1; i >= 0 {
		if s := t.funcs[i]; addr-s.Addr < s.Size {
			return s, true
		}
	}
	i := sort.Search(len(t.byAddr), func(i int) bool { return t.byAddr[i].Addr > addr }) - 1
	if i < 0 {
		return Symbol{}, false
	}
	s := t.byAddr[i]
	if s.Size != 0 && addr-s.Addr >= s.Size {
		return Symbol{}, false
	}
	return s, true
}

func (t *symTab) name(addr uint64) string {
	s, _ := t.lookup(addr)
	return s.Name
}
