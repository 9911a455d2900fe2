package symbols

import (
	"cmp"
	"slices"
	"strings"
)

// Table is an immutable, address-sorted symbol table. Build one with
// NewTable, ParseSystemMap, ParseKallsyms or Open; a nil *Table is an empty
// table. A Table is safe for concurrent use.
type Table struct {
	syms   []Sym   // sorted by Addr; one symbol per (Name, Addr)
	byName []int32 // indices into syms sorted by Name
	types  []byte  // nm type letter per symbol (System.map, kallsyms); nil when unknown
}

// entry is a symbol with a preference rank used to choose among aliases at
// the same address (lower is better).
type entry struct {
	Sym
	rank int
	typ  byte // nm type letter, 0 when unknown
}

// NewTable builds a table from syms: it sorts them by address, drops exact
// duplicates (same name and address), and gives every symbol whose Size is 0
// the distance to the next higher symbol address (up to 16 MiB). The last
// symbol, and one followed by a larger gap, keep Size 0 and then match only
// their own address. Among aliases at one address,
// Lookup returns the one with a size, then a name with fewer leading
// underscores, then the alphabetically first.
func NewTable(syms []Sym) *Table {
	es := make([]entry, len(syms))
	for i, s := range syms {
		es[i] = entry{Sym: s}
	}
	return newTable(es)
}

func underscores(name string) int {
	return len(name) - len(strings.TrimLeft(name, "_"))
}

func newTable(es []entry) *Table {
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.Addr, b.Addr); c != 0 {
			return c
		}
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if (a.Size == 0) != (b.Size == 0) {
			if a.Size != 0 {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(underscores(a.Name), underscores(b.Name)); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(b.Size, a.Size)
	})
	t := &Table{syms: make([]Sym, 0, len(es))}
	typed := false
	for i := range es {
		if es[i].typ != 0 {
			typed = true
			t.types = make([]byte, 0, len(es))
			break
		}
	}
	for _, e := range es {
		dup := false
		for j := len(t.syms) - 1; j >= 0 && t.syms[j].Addr == e.Addr; j-- {
			if t.syms[j].Name == e.Name && t.syms[j].Module == e.Module {
				dup = true
				break
			}
		}
		if !dup {
			t.syms = append(t.syms, e.Sym)
			if typed {
				t.types = append(t.types, e.typ)
			}
		}
	}
	// Fill unknown sizes from the next higher address.
	next := len(t.syms)
	for i := len(t.syms) - 1; i >= 0; i-- {
		if i+1 < len(t.syms) && t.syms[i+1].Addr != t.syms[i].Addr {
			next = i + 1
		}
		if t.syms[i].Size == 0 && next < len(t.syms) {
			if gap := t.syms[next].Addr - t.syms[i].Addr; gap <= maxFill {
				t.syms[i].Size = gap
			}
		}
	}
	t.byName = make([]int32, len(t.syms))
	for i := range t.byName {
		t.byName[i] = int32(i)
	}
	slices.SortStableFunc(t.byName, func(a, b int32) int { return strings.Compare(t.syms[a].Name, t.syms[b].Name) })
	return t
}

// maxFill is the largest size NewTable derives from the next symbol: a
// bigger gap (the last per-cpu symbol at 0x2a000 before _text at
// 0xffffffff81000000, say) is not one symbol, so the size stays unknown.
const maxFill = 16 << 20

// maxBack bounds how far Lookup looks back past smaller symbols for one that
// encloses the address (a function containing a local label, say).
const maxBack = 16

// Lookup returns the symbol containing addr: the nearest symbol at or below
// addr whose [Addr, Addr+Size) holds addr (Size 0 matches only Addr itself).
// It reports false on a miss. It is O(log n) and does not allocate, so an
// unwinder can call it for every frame.
func (t *Table) Lookup(addr uint64) (Sym, bool) {
	if t == nil {
		return Sym{}, false
	}
	s := t.syms
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
	// Go to the first (preferred) alias at this address.
	for i > 0 && s[i-1].Addr == s[i].Addr {
		i--
	}
	for n := 0; i >= 0 && n < maxBack; n++ {
		if contains(&s[i], addr) {
			return s[i], true
		}
		// Step to the first alias of the previous address.
		i--
		for i > 0 && s[i-1].Addr == s[i].Addr {
			i--
		}
	}
	return Sym{}, false
}

// LookupText is Lookup restricted to code: only symbols whose nm type
// letter is a text type (t, T, w, W) match, so a data or per-cpu symbol
// (fixed_percpu_data at address 0 in a System.map) never names a PC. A
// table without type letters (NewTable, ELF symbols) treats every symbol as
// text.
func (t *Table) LookupText(addr uint64) (Sym, bool) {
	if t == nil {
		return Sym{}, false
	}
	if t.types == nil {
		return t.Lookup(addr)
	}
	s := t.syms
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
		// The aliases at one address, text ones first (typeRank).
		for j := i; j < len(s) && s[j].Addr == s[i].Addr; j++ {
			if IsTextType(t.types[j]) && contains(&s[j], addr) {
				return s[j], true
			}
		}
		i--
		for i > 0 && s[i-1].Addr == s[i].Addr {
			i--
		}
	}
	return Sym{}, false
}

// IsTextType reports whether an nm / kallsyms type letter denotes code:
// t or T (text), w or W (weak symbols, which in System.map and kallsyms
// are weak functions; weak objects are v or V).
func IsTextType(c byte) bool {
	switch c {
	case 't', 'T', 'w', 'W':
		return true
	}
	return false
}

// Type returns the nm type letter of the i-th symbol in address order, or 0
// when the table has none (NewTable, ELF symbols).
func (t *Table) Type(i int) byte {
	if t == nil || i < 0 || i >= len(t.types) {
		return 0
	}
	return t.types[i]
}

// nearest returns the preferred symbol at the greatest address at or below
// addr, ignoring sizes (what addr2line names when DWARF has no function).
func (t *Table) nearest(addr uint64) (Sym, bool) {
	if t == nil {
		return Sym{}, false
	}
	s := t.syms
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
	return s[i], true
}

func contains(s *Sym, addr uint64) bool {
	if s.Size == 0 {
		return addr == s.Addr
	}
	return addr-s.Addr < s.Size
}

// ByName returns the symbol named name (the lowest-addressed one when
// several share the name) and whether there is one.
func (t *Table) ByName(name string) (Sym, bool) {
	if t == nil {
		return Sym{}, false
	}
	lo, hi := 0, len(t.byName)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.syms[t.byName[m]].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t.byName) && t.syms[t.byName[lo]].Name == name {
		return t.syms[t.byName[lo]], true
	}
	return Sym{}, false
}

// Len returns the number of symbols in the table after deduplication.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.syms)
}

// At returns the i-th symbol in address order (0 ≤ i < Len), for callers
// that enumerate a table.
func (t *Table) At(i int) Sym {
	if t == nil || i < 0 || i >= len(t.syms) {
		return Sym{}
	}
	return t.syms[i]
}

// span returns the lowest address and the end of the highest symbol.
func (t *Table) span() (lo, hi uint64) {
	if t.Len() == 0 {
		return 0, 0
	}
	lo = t.syms[0].Addr
	last := t.syms[len(t.syms)-1]
	hi = last.Addr + max(last.Size, 1)
	return lo, hi
}
