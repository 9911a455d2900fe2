package symbols

import (
	"cmp"
	"hash/maphash"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// Table is an immutable, address-sorted symbol table. Build one with
// NewTable, ParseSystemMap, ParseKallsyms or Open; a nil *Table is an empty
// table. A Table is safe for concurrent use.
type Table struct {
	syms  []Sym  // sorted by Addr; one symbol per (Name, Addr)
	types []byte // nm type letter per symbol (System.map, kallsyms); nil when unknown

	nameOnce sync.Once
	seed     maphash.Seed
	byName   []int32 // open-addressed hash of names: 1 + the index of the first symbol with each name, 0 for empty; made by the first ByName
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

// tableKey is what newTable sorts: an entry's address and its index in
// the entries, whose rank and aliasOrder break ties.
type tableKey struct {
	addr uint64
	i    int
}

// aliasOrder orders two entries at one address and rank: the one with a
// size, then the name with fewer leading underscores, the alphabetically
// first name, the larger size, and the one given first.
func aliasOrder(a, b *entry, ai, bi int) int {
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
	if c := cmp.Compare(b.Size, a.Size); c != 0 {
		return c
	}
	return cmp.Compare(ai, bi)
}

func newTable(es []entry) *Table {
	keys := make([]tableKey, len(es))
	for i := range es {
		keys[i] = tableKey{es[i].Addr, i}
	}
	sortKeys(keys, es)
	t := &Table{syms: make([]Sym, 0, len(es))}
	typed := false
	for i := range es {
		if es[i].typ != 0 {
			typed = true
			t.types = make([]byte, 0, len(es))
			break
		}
	}
	for _, k := range keys {
		e := &es[k.i]
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
	return t
}

// sortKeys sorts keys in the order newTable keeps symbols: by address,
// then rank, then aliasOrder. A table has 100k+ symbols and few aliases,
// so it sorts by address with a radix sort (stable, least significant
// byte first, skipping the bytes every address shares) and then each run
// of one address with the whole comparison.
func sortKeys(keys []tableKey, es []entry) {
	byAll := func(a, b tableKey) int {
		if a.addr != b.addr {
			return cmp.Compare(a.addr, b.addr)
		}
		if c := cmp.Compare(es[a.i].rank, es[b.i].rank); c != 0 {
			return c
		}
		return aliasOrder(&es[a.i], &es[b.i], a.i, b.i)
	}
	n := len(keys)
	if n < 256 {
		slices.SortFunc(keys, byAll)
		return
	}
	var counts [8][256]int
	for _, k := range keys {
		for b := range 8 {
			counts[b][byte(k.addr>>(8*b))]++
		}
	}
	src, dst := keys, make([]tableKey, n)
	for b := range 8 {
		c := &counts[b]
		if c[byte(keys[0].addr>>(8*b))] == n {
			continue // every address has this byte
		}
		sum := 0
		for d := range c {
			c[d], sum = sum, sum+c[d]
		}
		for _, k := range src {
			d := byte(k.addr >> (8 * b))
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	copy(keys, src)
	for i := 0; i < n; {
		j := i + 1
		for j < n && keys[j].addr == keys[i].addr {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(keys[i:j], byAll)
		}
		i = j
	}
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
	t.nameOnce.Do(t.hashNames)
	if len(t.byName) == 0 {
		return Sym{}, false
	}
	mask := uint64(len(t.byName) - 1)
	for h := maphash.String(t.seed, name) & mask; ; h = (h + 1) & mask {
		j := t.byName[h]
		if j == 0 {
			return Sym{}, false
		}
		if s := &t.syms[j-1]; s.Name == name {
			return *s, true
		}
	}
}

// hashNames makes the name index ByName probes, on first use: most
// tables (a vmlinux's 100k+ symbols) are looked up by name a few times
// at most, so the index is a hash of each name, not a sorted list.
// Symbols are inserted in address order, so each name's slot holds its
// lowest-addressed symbol.
func (t *Table) hashNames() {
	if len(t.syms) == 0 {
		return
	}
	t.seed = maphash.MakeSeed()
	t.byName = make([]int32, 1<<bits.Len(uint(2*len(t.syms)-1))) // at most half full
	mask := uint64(len(t.byName) - 1)
	for i := range t.syms {
		name := t.syms[i].Name
		for h := maphash.String(t.seed, name) & mask; ; h = (h + 1) & mask {
			j := t.byName[h]
			if j == 0 {
				t.byName[h] = int32(i + 1)
				break
			}
			if t.syms[j-1].Name == name {
				break
			}
		}
	}
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
