package symbols

import (
	"cmp"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Table is an immutable, address-sorted symbol table. Build one with
// NewTable, ParseSystemMap, ParseKallsyms or Open; a nil *Table is an empty
// table. A Table is safe for concurrent use.
//
// It keeps a symbol in a few words (its address, sizes and a reference to
// its name in a string table, for a vmlinux the ELF file's own .strtab)
// and makes the Sym when asked, so that a table of 100k+ symbols costs a
// few MiB and can be mapped from the debug cache as it is (symcache.go).
type Table struct {
	// The base run: symbols sorted by run-time address addr[i]+bias, one
	// per (Name, Module, Addr).
	addr    []uint64 // link-time (or, with bias 0, run-time) addresses
	size    []uint64
	elfSize []uint64 // nil when every ELFSize is 0
	name    []uint64 // a nameRef per symbol
	zero    []uint64 // bit i: symbol i had no size of its own (newTable filled it or left it 0)
	bias    uint64   // added to addr (not to the extras' addresses)
	names   tableNames
	mods    []string
	mod     []uint32 // index in mods per symbol; nil when every symbol has mods[0] ("" when mods is empty)
	types   []byte   // nm type letter per symbol (System.map, kallsyms); nil when unknown

	// A few symbols merged into the base run by address: an ELF file's
	// absolute symbols, which its bias does not move (withExtras). fix
	// holds the sizes they shorten, sorted by base index.
	x     []extraSym
	xaddr []uint64 // the extras' addresses
	fix   []sizeFix
	fixed []uint64 // bit i: base symbol i has a sizeFix

	nameOnce sync.Once
	seed     uint64
	byName   []uint32 // open-addressed hash of names (strHash): 1 + the base index of the first symbol with each name, 0 for empty
}

// tableNames holds the names a table's nameRefs point into.
type tableNames struct {
	strs  string   // blob 0: for an ELF file, its .symtab's string table
	strs2 string   // blob 1: names copied from anywhere else
	long  []string // names no blob reference can hold
}

// A nameRef is where a symbol's name is: its blob (2 bits: 0 strs,
// 1 strs2, 2 long), offset (38 bits; the index in long) and length
// (24 bits).
const (
	refLenBits = 24
	refOffBits = 38
	refLenMask = 1<<refLenBits - 1
	refOffMask = 1<<refOffBits - 1
)

func makeRef(blob, off, n uint64) (uint64, bool) {
	if off > refOffMask || n > refLenMask {
		return 0, false
	}
	return blob<<(refOffBits+refLenBits) | off<<refLenBits | n, true
}

func (ns *tableNames) at(r uint64) string {
	off, n := r>>refLenBits&refOffMask, r&refLenMask
	switch r >> (refOffBits + refLenBits) {
	case 0:
		return ns.strs[off : off+n]
	case 1:
		return ns.strs2[off : off+n]
	}
	return ns.long[off]
}

// nameBuilder collects the names of a table being built: names already in
// blob 0 are referred to where they are, others are copied into blob 1.
type nameBuilder struct {
	strs  string
	strs2 []byte
	long  []string
}

// ref0 refers to strs[off:off+n].
func (nb *nameBuilder) ref0(off, n uint64) uint64 {
	if r, ok := makeRef(0, off, n); ok {
		return r
	}
	return nb.ref(nb.strs[off : off+n])
}

// ref copies name into blob 1 (or keeps it aside when it is too long).
func (nb *nameBuilder) ref(name string) uint64 {
	if r, ok := makeRef(1, uint64(len(nb.strs2)), uint64(len(name))); ok {
		nb.strs2 = append(nb.strs2, name...)
		return r
	}
	r, _ := makeRef(2, uint64(len(nb.long)), 0)
	nb.long = append(nb.long, name)
	return r
}

// names returns the names collected, without copying blob 1: nothing
// may be added to nb after.
func (nb *nameBuilder) names() tableNames {
	return tableNames{strs: nb.strs, strs2: unsafe.String(unsafe.SliceData(nb.strs2), len(nb.strs2)), long: nb.long}
}

// extraSym is one symbol merged into the base run at index pos of the
// table.
type extraSym struct {
	pos int
	sym Sym
}

// sizeFix is the size of base symbol i when extras shorten it.
type sizeFix struct {
	i    int
	size uint64
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
	var b tableBuilder
	for _, s := range syms {
		b.add(s.Addr, s.Size, s.ELFSize, b.nb.ref(s.Name), 0, 0, b.module(s.Module))
	}
	return b.build(true)
}

// newTable builds a table from entries (see NewTable; rank orders aliases
// before the alphabet does).
func newTable(es []entry) *Table {
	var b tableBuilder
	for i := range es {
		e := &es[i]
		b.add(e.Addr, e.Size, e.ELFSize, b.nb.ref(e.Name), e.rank, e.typ, b.module(e.Module))
	}
	return b.build(true)
}

// tableBuilder collects the symbols of a table, one column per field, for
// build.
type tableBuilder struct {
	addr, size, elfSize, name []uint64
	rank                      []int32
	typ                       []byte   // nil until a symbol has a type letter
	mod                       []uint32 // nil until a symbol's module is not mods[0]
	mods                      []string
	modIx                     map[string]uint32
	nb                        nameBuilder
	bias                      uint64 // the run-time address is addr+bias

	// The low 32 bits of strHash(seed, name) of each symbol, when its
	// adder took them (nil otherwise): buildIn then makes the name index
	// of a table it places.
	hash []uint32
	seed uint64

	// Memory build may use as scratch, for as many uint64s as symbols
	// (nil: it makes its own).
	scratch []uint64
}

// grow makes room for n more symbols.
func (b *tableBuilder) grow(n int) {
	b.addr = slices.Grow(b.addr, n)
	b.size = slices.Grow(b.size, n)
	b.name = slices.Grow(b.name, n)
	b.rank = slices.Grow(b.rank, n)
}

// module returns the index of module m in b.mods.
func (b *tableBuilder) module(m string) uint32 {
	if len(b.mods) > 0 && b.mods[len(b.mods)-1] == m {
		return uint32(len(b.mods) - 1)
	}
	if i, ok := b.modIx[m]; ok {
		return i
	}
	if b.modIx == nil {
		b.modIx = map[string]uint32{}
	}
	i := uint32(len(b.mods))
	b.modIx[m] = i
	b.mods = append(b.mods, m)
	return i
}

// add adds a symbol at addr (plus b.bias) named by the nameRef ref.
func (b *tableBuilder) add(addr, size, elfSize, ref uint64, rank int, typ byte, mod uint32) {
	n := len(b.addr)
	b.addr = append(b.addr, addr)
	b.size = append(b.size, size)
	b.name = append(b.name, ref)
	b.rank = append(b.rank, int32(min(max(rank, -1<<31), 1<<31-1)))
	if elfSize != 0 && b.elfSize == nil {
		b.elfSize = make([]uint64, n, cap(b.addr))
	}
	if b.elfSize != nil {
		b.elfSize = append(b.elfSize, elfSize)
	}
	if typ != 0 && b.typ == nil {
		b.typ = make([]byte, n, cap(b.addr))
	}
	if b.typ != nil {
		b.typ = append(b.typ, typ)
	}
	if mod != 0 && b.mod == nil {
		b.mod = make([]uint32, n, cap(b.addr))
	}
	if b.mod != nil {
		b.mod = append(b.mod, mod)
	}
}

func underscores(name string) int {
	return len(name) - len(strings.TrimLeft(name, "_"))
}

// tableKey is what build sorts: a symbol's run-time address and its index
// in the builder, whose rank and aliasOrder break ties.
type tableKey struct {
	addr uint64
	i    int
}

// aliasOrder orders two symbols of b at one address and rank: the one with
// a size, then the name with fewer leading underscores, the alphabetically
// first name, the larger size, and the one given first.
func (b *tableBuilder) aliasOrder(ai, bi int, names *tableNames) int {
	as, bs := b.size[ai], b.size[bi]
	if (as == 0) != (bs == 0) {
		if as != 0 {
			return -1
		}
		return 1
	}
	an, bn := names.at(b.name[ai]), names.at(b.name[bi])
	if c := cmp.Compare(underscores(an), underscores(bn)); c != 0 {
		return c
	}
	if c := strings.Compare(an, bn); c != 0 {
		return c
	}
	if c := cmp.Compare(bs, as); c != 0 {
		return c
	}
	return cmp.Compare(ai, bi)
}

// build makes the table (b must not be added to after): the symbols
// sorted by run-time address, then rank, then aliasOrder; exact
// duplicates (name, module and address) dropped; and, when fill is set,
// every size of 0 filled from the next higher address (up to maxFill).
func (b *tableBuilder) build(fill bool) *Table { return b.buildIn(fill, nil) }

// tableColumns are arrays of a table built in place (buildIn): its
// addresses, sizes, ELF sizes, nameRefs and zero bits, and its name
// index (nameSlots of its size), zeroed.
type tableColumns struct {
	addr, size, elfSize, name, zero []uint64
	byName                          []uint32

	// The builder's columns lie in the same memory, each starting no
	// later than the table's (newSymtabBuffer, layoutSymtab): buildIn
	// gathers them through scratch memory, then clears zero and byName.
	overlap bool

	// Memory in the entry that nothing uses until the columns are
	// filled, for the builder's scratch (newSymtabBuffer).
	scratch []uint64
}

// buildIn is build with the table's columns in the arrays place gives
// for its n symbols (a debug cache entry being made: symtabWriter), or
// fresh ones when place is nil or returns nil. place is used only with
// fill, and only for a table without type letters and modules (an ELF
// file's).
func (b *tableBuilder) buildIn(fill bool, place func(n int) *tableColumns) *Table {
	names := b.nb.names()
	order, spare := b.sortedOrder(func(x, y int) int {
		if c := cmp.Compare(b.rank[x], b.rank[y]); c != 0 {
			return c
		}
		return b.aliasOrder(x, y, &names)
	})
	// Drop duplicates: the same name and module at one address (one
	// link-time address is one run-time address). order is compacted in
	// place.
	kept := order[:0]
	groupStart := 0
	prev := uint64(0)
	for k, v := range order {
		i := int(v)
		if a := b.addr[i]; k == 0 || a != prev {
			groupStart, prev = len(kept), a
		}
		ref, mod := b.name[i], b.modAt(i)
		dup := false
		for j := len(kept) - 1; j >= groupStart; j-- {
			r := b.name[kept[j]]
			if (r == ref || names.at(r) == names.at(ref)) && b.modAt(int(kept[j])) == mod {
				dup = true
				break
			}
		}
		if !dup {
			kept = append(kept, v)
		}
	}
	n := len(kept)
	t := &Table{bias: b.bias, names: names, mods: b.mods}
	var cols *tableColumns
	if place != nil && fill && b.typ == nil && b.mod == nil {
		cols = place(n)
	}
	gather := kept // what the loop below gathers into t's columns
	switch {
	case cols != nil && cols.overlap:
		// The builder's columns lie in the entry under the table's:
		// each gathered into scratch memory first, in the order in
		// which each one's place is past those gathered before.
		if len(spare) < n {
			spare = make([]uint64, n)
		}
		tmp := spare[:n]
		for _, c := range [...]struct{ dst, src []uint64 }{
			{cols.addr, b.addr}, {cols.size, b.size}, {cols.elfSize, b.elfSize}, {cols.name, b.name},
		} {
			if c.src == nil {
				clear(c.dst[:n]) // every ELFSize 0
				continue
			}
			for k, v := range kept {
				tmp[k] = c.src[v]
			}
			copy(c.dst[:n], tmp)
		}
		clear(cols.zero)
		clear(cols.byName)
		t.addr, t.size, t.elfSize, t.name, t.zero = cols.addr[:n], cols.size[:n], cols.elfSize[:n], cols.name[:n], cols.zero
		gather = nil
	case cols != nil:
		t.addr, t.size, t.elfSize, t.name, t.zero = cols.addr[:n], cols.size[:n], cols.elfSize[:n], cols.name[:n], cols.zero
	default:
		t.addr, t.size, t.name = make([]uint64, n), make([]uint64, n), make([]uint64, n)
		if b.elfSize != nil {
			t.elfSize = make([]uint64, n)
		}
		if b.typ != nil {
			t.types = make([]byte, n)
		}
		if b.mod != nil {
			t.mod = make([]uint32, n)
		}
	}
	for k, v := range gather {
		i := int(v)
		t.addr[k], t.size[k], t.name[k] = b.addr[i], b.size[i], b.name[i]
		if b.elfSize != nil {
			t.elfSize[k] = b.elfSize[i]
		}
		if t.types != nil {
			t.types[k] = b.typ[i]
		}
		if t.mod != nil {
			t.mod[k] = b.mod[i]
		}
	}
	if fill {
		t.fillSizes()
	}
	if cols != nil && b.hash != nil && len(cols.byName) == nameSlots(n) && len(b.addr) <= 1<<32 {
		// indexNames with the hashes the builder took, each kept beside
		// its symbol's index (in kept) for the names met in the index.
		t.seed, t.byName = b.seed, cols.byName
		mask := uint64(len(t.byName) - 1)
		for k, v := range kept {
			h := b.hash[v]
			kept[k] = uint64(h)<<32 | v
			for s := uint64(h) & mask; ; s = (s + 1) & mask {
				j := t.byName[s]
				if j == 0 {
					t.byName[s] = uint32(k + 1)
					break
				}
				if uint32(kept[j-1]>>32) == h && t.nameAt(int(j-1)) == t.nameAt(k) {
					break
				}
			}
		}
	}
	return t
}

func (b *tableBuilder) modAt(i int) uint32 {
	if b.mod == nil {
		return 0
	}
	return b.mod[i]
}

// fillSizes gives every symbol whose size is 0 the distance to the next
// higher address when that is at most maxFill, and marks them in t.zero
// (made here unless buildIn placed it, zeroed).
func (t *Table) fillSizes() {
	n := len(t.addr)
	if t.zero == nil {
		t.zero = make([]uint64, (n+63)/64)
	}
	next := n
	for i := n - 1; i >= 0; i-- {
		if i+1 < n && t.addr[i+1] != t.addr[i] {
			next = i + 1
		}
		if t.size[i] != 0 {
			continue
		}
		t.zero[i/64] |= 1 << (i % 64)
		if next < n {
			if gap := t.addr[next] - t.addr[i]; gap <= maxFill {
				t.size[i] = gap
			}
		}
	}
}

// sortedOrder returns the indices of b's symbols sorted by run-time
// address, then by tie (which compares builder indices). A table has
// 100k+ symbols and few aliases: the addresses are sorted packed with
// their indices into single words (packedOrder), or, when they do not
// pack, with sortKeys; then each run of one address with tie.
func (b *tableBuilder) sortedOrder(tie func(x, y int) int) (order, spare []uint64) {
	n := len(b.addr)
	keys, idxBits, spare := b.packedOrder()
	if keys == nil {
		tk := make([]tableKey, n)
		for i, a := range b.addr {
			tk[i] = tableKey{a + b.bias, i}
		}
		sortKeys(tk, tie)
		order := make([]uint64, n)
		for k := range tk {
			order[k] = uint64(tk[k].i)
		}
		return order, nil
	}
	mask := uint64(1)<<idxBits - 1
	for i := 0; i < n; {
		j := i + 1
		for j < n && keys[j]>>idxBits == keys[i]>>idxBits {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(keys[i:j], func(x, y uint64) int { return tie(int(x&mask), int(y&mask)) })
		}
		i = j
	}
	for k := range keys {
		keys[k] &= mask
	}
	return keys, spare
}

// granuleBits is the size of the address granules packedOrder ranks: 16
// MiB, so that a vmlinux's symbols (per-cpu ones near 0, the kernel's
// from 0xffffffff81000000) lie in a handful.
const granuleBits = 24

// maxGranules bounds how many granules packedOrder ranks.
const maxGranules = 1 << 12

// packedOrder sorts b's symbols by run-time address, equal addresses in
// index order, as words that hold, from the top, the rank of the
// address's granule among those the symbols lie in, the address's offset
// in its granule, and the symbol's index (the low idxBits). It returns
// nil when they do not fit in 64 bits (more than maxGranules granules,
// or too many symbols).
func (b *tableBuilder) packedOrder() (keys []uint64, idxBits int, spare []uint64) {
	n := len(b.addr)
	idxBits = bits.Len(uint(max(n-1, 1)))
	room := 64 - granuleBits - idxBits
	if room <= 0 {
		return nil, 0, nil
	}
	// The granules, sorted; symbols in a row mostly share one.
	var gs []uint64
	last := uint64(0)
	for i, a := range b.addr {
		g := (a + b.bias) >> granuleBits
		if i > 0 && g == last {
			continue
		}
		last = g
		if j, found := granuleRank(gs, g); !found {
			if len(gs) == min(maxGranules, 1<<room) {
				return nil, 0, nil
			}
			gs = slices.Insert(gs, j, g)
		}
	}
	keys = make([]uint64, n)
	rank := 0
	for i, a := range b.addr {
		a += b.bias
		if g := a >> granuleBits; i == 0 || g != last {
			last = g
			rank, _ = granuleRank(gs, g)
		}
		keys[i] = uint64(rank)<<(granuleBits+idxBits) | (a&(1<<granuleBits-1))<<idxBits | uint64(i)
	}
	if n < minRadixKeys {
		// The low idxBits are each key's index, so sorting whole keys
		// is the stable sort by address radixSort makes.
		slices.Sort(keys)
		return keys, idxBits, nil
	}
	spare = radixSort(keys, idxBits, granuleBits+bits.Len(uint(len(gs)-1)), b.scratch)
	return keys, idxBits, spare
}

// minRadixKeys is the fewest keys packedOrder radix-sorts: below it a
// comparison sort is faster than clearing radixSort's histograms (48 KB),
// which the small tables made on every run (ld.so's 700 symbols: 24 µs
// and 55 KB against 8.7 µs and nothing, 2,000 keys: 35 µs against 58).
const minRadixKeys = 1024

// granuleRank is slices.BinarySearch(gs, g), by a plain scan when gs
// holds a few granules (a vmlinux's symbols lie in a handful).
func granuleRank(gs []uint64, g uint64) (int, bool) {
	if len(gs) > 16 {
		return slices.BinarySearch(gs, g)
	}
	i := 0
	for i < len(gs) && gs[i] < g {
		i++
	}
	return i, i < len(gs) && gs[i] == g
}

// radixSort sorts keys by their bits [lo, lo+width) (those above are 0),
// stably: least significant digit first, 11-bit digits (a vmlinux's
// addresses take three), skipping a digit every key shares. It returns
// the scratch memory it used (as long as keys: scratch's when that is
// long enough), or nil.
func radixSort(keys []uint64, lo, width int, scratch []uint64) (spare []uint64) {
	const digit = 11
	const size = 1 << digit
	n := len(keys)
	if n < 2 || width <= 0 {
		return nil
	}
	passes := (width + digit - 1) / digit
	counts := make([][size]int, passes)
	if passes <= 3 {
		// Every digit's histogram in one pass, the shifts constant.
		var c [3][size]int
		for _, k := range keys {
			k >>= lo
			c[0][k&(size-1)]++
			c[1][k>>digit&(size-1)]++
			c[2][k>>(2*digit)&(size-1)]++
		}
		copy(counts, c[:passes])
	} else {
		for _, k := range keys {
			k >>= lo
			for p := range counts {
				counts[p][k>>(p*digit)&(size-1)]++
			}
		}
	}
	if len(scratch) < n {
		scratch = make([]uint64, n)
	}
	src, dst := keys, scratch[:n]
	for p := range counts {
		c := &counts[p]
		shift := lo + p*digit
		if c[keys[0]>>shift&(size-1)] == n {
			continue // every key has this digit
		}
		sum := 0
		for d := range c {
			c[d], sum = sum, sum+c[d]
		}
		for _, k := range src {
			d := k >> shift & (size - 1)
			dst[c[d]] = k
			c[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
		return src
	}
	return dst
}

// sortKeys sorts keys by address, then by tie (which compares builder
// indices). A table has 100k+ symbols and few aliases, so it sorts by
// address with a radix sort (stable, least significant byte first,
// skipping the bytes every address shares) and then each run of one
// address with the whole comparison.
func sortKeys(keys []tableKey, tie func(x, y int) int) {
	byAll := func(a, b tableKey) int {
		if a.addr != b.addr {
			return cmp.Compare(a.addr, b.addr)
		}
		return tie(a.i, b.i)
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

// withExtras merges into t (an ELF file's relocated symbols, built with
// fill) the symbols xs (its absolute ones, built without fill, in their
// table's order): each goes after t's symbols at its address unless one
// of them has its name and module, and the sizes of 0 on either side are
// filled from the merged addresses as build would have. t must have no
// extras yet; it is changed in place and returned.
func (t *Table) withExtras(xs []Sym) *Table {
	if len(xs) == 0 {
		return t
	}
	n := len(t.addr)
	for _, s := range xs {
		b := t.baseUpper(s.Addr)
		dup := false
		for i := b - 1; i >= 0 && t.addr[i]+t.bias == s.Addr; i-- {
			if t.nameAt(i) == s.Name && t.moduleAt(i) == s.Module {
				dup = true
				break
			}
		}
		if !dup {
			t.x = append(t.x, extraSym{pos: b + len(t.x), sym: s})
			t.xaddr = append(t.xaddr, s.Addr)
		}
	}
	// Sizes: an extra's from the next merged address above it; a base
	// symbol's that had none from the first extra between it and the next
	// base address.
	for j := range t.x {
		e := &t.x[j]
		if e.sym.Size != 0 {
			continue
		}
		next, ok := uint64(0), false
		if b := t.baseUpper(e.sym.Addr); b < n {
			next, ok = t.addr[b]+t.bias, true
		}
		for k := j + 1; k < len(t.x); k++ {
			if a := t.x[k].sym.Addr; a != e.sym.Addr {
				if !ok || a < next {
					next, ok = a, true
				}
				break
			}
		}
		if ok && next-e.sym.Addr <= maxFill {
			e.sym.Size = next - e.sym.Addr
		}
	}
	for j := range t.x {
		a := t.x[j].sym.Addr
		b := t.baseUpper(a)
		if b == 0 || t.addr[b-1]+t.bias == a {
			continue // no base symbol below, or a base symbol at a
		}
		lo := t.addr[b-1] + t.bias
		if j > 0 && t.x[j-1].sym.Addr > lo {
			continue // an earlier extra lies between base symbol b-1 and a
		}
		for i := b - 1; i >= 0 && t.addr[i]+t.bias == lo; i-- {
			if i/64 >= len(t.zero) || t.zero[i/64]&(1<<(i%64)) == 0 {
				continue
			}
			size := uint64(0)
			if a-lo <= maxFill {
				size = a - lo
			}
			if size != t.size[i] {
				t.fix = append(t.fix, sizeFix{i, size})
			}
		}
	}
	slices.SortFunc(t.fix, func(a, b sizeFix) int { return cmp.Compare(a.i, b.i) })
	if len(t.fix) > 0 {
		t.fixed = make([]uint64, (n+63)/64)
		for _, f := range t.fix {
			t.fixed[f.i/64] |= 1 << (f.i % 64)
		}
	}
	return t
}

// baseUpper returns the number of base symbols at or below the run-time
// address a.
func (t *Table) baseUpper(a uint64) int {
	s, bias := t.addr, t.bias
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m]+bias <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// extrasUpper returns the number of extras at or below the address a.
func (t *Table) extrasUpper(a uint64) int {
	s := t.xaddr
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m] <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// syms returns the symbols of t in order.
func (t *Table) syms() []Sym {
	s := make([]Sym, t.Len())
	for i := range s {
		s[i] = t.symAt(i)
	}
	return s
}

// A cursor stands between two symbols of the table: b base symbols and x
// extras come before it. Lookups walk it down from an address.
type cursor struct{ b, x int }

// cursorAt returns the cursor after every symbol at or below a.
func (t *Table) cursorAt(a uint64) cursor { return cursor{t.baseUpper(a), t.extrasUpper(a)} }

// popGroup moves c before every symbol at the address of the symbol
// before it, and returns the first of them (the preferred alias): a base
// index, or the index of an extra (x ≥ 0). c must not be at the start.
func (t *Table) popGroup(c *cursor) (base, x int) {
	a := t.addrBefore(*c)
	for c.b+c.x > 0 {
		if c.x > 0 && t.x[c.x-1].pos == c.b+c.x-1 {
			if t.x[c.x-1].sym.Addr != a {
				break
			}
			c.x--
			base, x = -1, c.x
		} else {
			if t.addr[c.b-1]+t.bias != a {
				break
			}
			c.b--
			base, x = c.b, -1
		}
	}
	return base, x
}

// addrBefore returns the address of the symbol before c.
func (t *Table) addrBefore(c cursor) uint64 {
	if c.x > 0 && t.x[c.x-1].pos == c.b+c.x-1 {
		return t.x[c.x-1].sym.Addr
	}
	return t.addr[c.b-1] + t.bias
}

// locate returns, for the i-th symbol of the table, its base index, or
// the index of the extra it is (x ≥ 0).
func (t *Table) locate(i int) (base, x int) {
	if len(t.x) == 0 {
		return i, -1
	}
	j, found := slices.BinarySearchFunc(t.x, i, func(e extraSym, i int) int { return cmp.Compare(e.pos, i) })
	if found {
		return -1, j
	}
	return i - j, -1
}

func (t *Table) baseSize(b int) uint64 {
	if len(t.fixed) > 0 && t.fixed[b/64]&(1<<(b%64)) != 0 {
		if j, ok := slices.BinarySearchFunc(t.fix, b, func(f sizeFix, b int) int { return cmp.Compare(f.i, b) }); ok {
			return t.fix[j].size
		}
	}
	return t.size[b]
}

func (t *Table) nameAt(b int) string { return t.names.at(t.name[b]) }

func (t *Table) modIndex(b int) uint32 {
	if t.mod == nil {
		return 0
	}
	return t.mod[b]
}

func (t *Table) moduleAt(b int) string {
	if len(t.mods) == 0 {
		return ""
	}
	return t.mods[t.modIndex(b)]
}

// symAt returns the i-th symbol.
func (t *Table) symAt(i int) Sym {
	b, x := t.locate(i)
	return t.sym(b, x)
}

// sym returns base symbol b, or extra x when x ≥ 0.
func (t *Table) sym(b, x int) Sym {
	if x >= 0 {
		return t.x[x].sym
	}
	s := Sym{Name: t.nameAt(b), Addr: t.addr[b] + t.bias, Size: t.baseSize(b), Module: t.moduleAt(b)}
	if t.elfSize != nil {
		s.ELFSize = t.elfSize[b]
	}
	return s
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
	// Each step goes to the first (preferred) alias of the next lower
	// address. Base symbols above the highest extra at or below addr
	// follow each other with no extra between: a plain walk down the
	// base run, with the cursor's walk for what lies below.
	b, xi := t.baseUpper(addr), t.extrasUpper(addr)
	floor, hasFloor := uint64(0), xi > 0
	if hasFloor {
		floor = t.x[xi-1].sym.Addr
	}
	s, bias := t.addr, t.bias
	i, n := b-1, 0
	for ; i >= 0 && n < maxBack && (!hasFloor || s[i]+bias > floor); n++ {
		for i > 0 && s[i-1] == s[i] {
			i--
		}
		size := t.size[i]
		if len(t.fixed) > 0 && t.fixed[i/64]&(1<<(i%64)) != 0 {
			size = t.baseSize(i)
		}
		if contains(s[i]+bias, size, addr) {
			return t.sym(i, -1), true
		}
		i--
	}
	c := cursor{i + 1, xi}
	for ; c.b+c.x > 0 && n < maxBack; n++ {
		b, x := t.popGroup(&c)
		if x >= 0 {
			if e := &t.x[x]; contains(e.sym.Addr, e.sym.Size, addr) {
				return e.sym, true
			}
		} else if contains(t.addr[b]+t.bias, t.baseSize(b), addr) {
			return t.sym(b, -1), true
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
	// A table with type letters has no extras.
	c := t.cursorAt(addr)
	for n := 0; c.b > 0 && n < maxBack; n++ {
		end := c.b
		b, _ := t.popGroup(&c)
		// The aliases at one address, text ones first (typeRank).
		for j := b; j < end; j++ {
			if IsTextType(t.types[j]) && contains(t.addr[j]+t.bias, t.baseSize(j), addr) {
				return t.sym(j, -1), true
			}
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
	c := t.cursorAt(addr)
	if c.b+c.x == 0 {
		return Sym{}, false
	}
	return t.sym(t.popGroup(&c)), true
}

func contains(start, size, addr uint64) bool {
	if size == 0 {
		return addr == start
	}
	return addr-start < size
}

// ByName returns the symbol named name (the lowest-addressed one when
// several share the name) and whether there is one.
func (t *Table) ByName(name string) (Sym, bool) {
	s, _, ok := t.lookupName(name)
	return s, ok
}

// lookupName is ByName, which also tells whether the symbol is an extra (an
// ELF file's absolute symbol).
func (t *Table) lookupName(name string) (s Sym, extra, found bool) {
	if t == nil {
		return Sym{}, false, false
	}
	t.nameOnce.Do(t.hashNames)
	if len(t.byName) > 0 {
		mask := uint64(len(t.byName) - 1)
		h := strHash(t.seed, name) & mask
		for range len(t.byName) {
			j := t.byName[h]
			if j == 0 {
				break
			}
			if b := int(j - 1); b < len(t.addr) && t.nameAt(b) == name {
				s, found = t.symAt(b+t.extrasBefore(b)), true
				break
			}
			h = (h + 1) & mask
		}
	}
	// Extras come after base symbols at one address.
	for j := range t.x {
		if e := &t.x[j]; e.sym.Name == name {
			if !found || e.sym.Addr < s.Addr {
				return e.sym, true, true
			}
			break
		}
	}
	return s, false, found
}

// extrasBefore returns how many extras come before base symbol b.
func (t *Table) extrasBefore(b int) int {
	n := 0
	for n < len(t.x) && t.x[n].pos <= b+n {
		n++
	}
	return n
}

// hashNames makes the name index ByName probes, on first use when the
// table has none: most tables (a vmlinux's 100k+ symbols) are looked up by
// name a few times at most, so the index is a hash of each name, not a
// sorted list.
func (t *Table) hashNames() {
	if t.byName != nil || len(t.addr) == 0 {
		return
	}
	t.indexNames(make([]uint32, nameSlots(len(t.addr))), rand.Uint64())
}

// nameSlots is the size of the name index of n > 0 symbols: at most half
// full.
func nameSlots(n int) int { return 1 << bits.Len(uint(2*n-1)) }

// indexNames makes the name index in slots (nameSlots of the table's
// size, zeroed) with hash seed seed. Symbols are inserted in address
// order, so each name's slot holds its lowest-addressed symbol.
func (t *Table) indexNames(slots []uint32, seed uint64) {
	t.seed, t.byName = seed, slots
	mask := uint64(len(t.byName) - 1)
	for i := range t.addr {
		name := t.nameAt(i)
		for h := strHash(t.seed, name) & mask; ; h = (h + 1) & mask {
			j := t.byName[h]
			if j == 0 {
				t.byName[h] = uint32(i + 1)
				break
			}
			if t.nameAt(int(j-1)) == name {
				break
			}
		}
	}
}

// strHash is a seeded hash of s (wyhash's mixing; with a random seed, as
// Go's own maps use when the CPU has no AES): the name index of a table is
// stored in the debug cache with its seed, which maphash cannot give.
func strHash(seed uint64, s string) uint64 {
	const k0, k1, k2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3
	h := mix(seed^k0, uint64(len(s))^k1)
	var w uint64
	if n := len(s); n >= 8 {
		// The last len%8 bytes: the top of the last eight, shifted
		// down (0 when there are none).
		w = le64(s[n-8:]) >> (64 - 8*(n%8))
		for len(s) >= 8 {
			h = mix(h^le64(s), k1)
			s = s[8:]
		}
	} else {
		for i := len(s) - 1; i >= 0; i-- {
			w = w<<8 | uint64(s[i])
		}
	}
	return mix(h^w^k2, k0)
}

// le64 is the little-endian word at the start of s (at least 8 bytes),
// which the compiler loads at once.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// Len returns the number of symbols in the table after deduplication.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.addr) + len(t.x)
}

// At returns the i-th symbol in address order (0 ≤ i < Len), for callers
// that enumerate a table.
func (t *Table) At(i int) Sym {
	if t == nil || i < 0 || i >= t.Len() {
		return Sym{}
	}
	return t.symAt(i)
}

// span returns the lowest address and the end of the highest symbol.
func (t *Table) span() (lo, hi uint64) {
	n := t.Len()
	if n == 0 {
		return 0, 0
	}
	last := t.symAt(n - 1)
	return t.symAt(0).Addr, last.Addr + max(last.Size, 1)
}
