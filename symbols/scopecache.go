package symbols

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// A function's scopes (cuInfo.scopeOf: its name and the inlined
// subroutines and their call sites nested in it, names resolved through
// abstract origins) are kept in the debug cache once read, as the entry
// "scope-<DIE offset>" of a pack (packcache.go), so that a later run finds the
// inlined frames of a pc without decoding the function's DIEs, the DIEs
// their names come from, or the unit's abbreviation table. As for the
// unit detail, an entry is used only when the key of the DWARF sections
// and its own CRC match; anything else is ignored and the scopes read
// from the DIEs again.

// scopesMagic starts a cached function's scopes (format version 1).
const scopesMagic = "UWSCOPE1"

// maxScopesFile bounds a cached function's scopes read back.
const maxScopesFile = 4 << 20

// scopesName is the name in the debug cache of the scopes of the function
// whose DIE is at off.
func scopesName(off dwarf.Offset) string { return fmt.Sprintf("scope-%x", uint32(off)) }

// encodeScopes serializes the scopes of function s, read, made from the
// sections key names: s and every scope nested in it in preorder, each
// with its DIE offset, name, kind, call site and its level of nested
// scopes as readScopes sorted it (indexes of those scopes with ranges).
func encodeScopes(s *scope, key []byte) []byte {
	index := map[*scope]int{s: 0}
	order := []*scope{s}
	for i := 0; i < len(order); i++ {
		for _, r := range order[i].children {
			if _, ok := index[r.s]; !ok {
				index[r.s] = len(order)
				order = append(order, r.s)
			}
		}
	}
	b := []byte(scopesMagic)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(s.off))
	b = binary.AppendUvarint(b, uint64(len(order)))
	for _, sc := range order {
		b = binary.AppendUvarint(b, uint64(sc.off))
		b = binary.AppendUvarint(b, uint64(len(sc.name)))
		b = append(b, sc.name...)
		inl := byte(0)
		if sc.inlined {
			inl = 1
		}
		b = append(b, inl)
		b = binary.AppendVarint(b, int64(sc.callFile))
		b = binary.AppendVarint(b, int64(sc.callLine))
		b = binary.AppendUvarint(b, uint64(len(sc.children)))
		for _, r := range sc.children {
			b = binary.AppendUvarint(b, uint64(index[r.s]))
			b = binary.AppendUvarint(b, r.lo)
			b = binary.AppendUvarint(b, r.hi)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeScopes reads into s, a function of unit u not yet read, the
// scopes encodeScopes wrote for the sections key names; it returns false,
// s unchanged, when b is not that (another function's, another file's,
// another version's, cut short or corrupt). A scope is nested only in one
// that comes before it, so the levels make a tree.
func decodeScopes(b, key []byte, u *cuInfo, s *scope) bool {
	r, ok := openEntry(b, scopesMagic, key)
	if !ok {
		return false
	}
	if r.uvarint() != uint64(s.off) || r.bad {
		return false
	}
	n, ok := r.count(6)
	if !ok || n == 0 {
		return false
	}
	all := make([]*scope, n)
	for i := range all {
		all[i] = &scope{}
	}
	for i, sc := range all {
		off := r.uvarint()
		sc.off = dwarf.Offset(off)
		ln, ok := r.count(1)
		if !ok || uint64(sc.off) != off || off < uint64(u.off) || off >= uint64(u.end) {
			return false
		}
		sc.name = string(r.p[:ln])
		r.p = r.p[ln:]
		inl := r.byte()
		sc.inlined = inl == 1
		sc.callFile, sc.callLine = r.varint(), r.varint()
		nk, ok := r.count(3)
		if !ok || inl > 1 || i == 0 && sc.off != s.off {
			return false
		}
		sc.children = make(scopeLevel, nk)
		for j := range sc.children {
			c := r.uvarint()
			lo, hi := r.uvarint(), r.uvarint()
			if r.bad || c <= uint64(i) || c >= uint64(n) || lo >= hi {
				return false
			}
			sc.children[j] = scopeRange{lo: lo, hi: hi, s: all[c]}
		}
	}
	if r.bad || len(r.p) != 0 {
		return false
	}
	for _, sc := range all[1:] {
		sc.loaded.Store(true)
	}
	top := all[0]
	s.name, s.inlined, s.callFile, s.callLine, s.children = top.name, top.inlined, top.callFile, top.callLine, top.children
	s.ref, s.kids, s.die = 0, false, false
	return true
}

// loadScopes reads function s's scopes from the debug cache, if there.
func (x *dwarfIndex) loadScopes(u *cuInfo, s *scope) bool {
	if x.packs == nil || x.key == nil {
		return false
	}
	b := x.packs.load(scopesName(s.off), maxScopesFile)
	return b != nil && decodeScopes(b, x.key, u, s)
}

// storeScopes caches function s's scopes, just read.
func (x *dwarfIndex) storeScopes(s *scope) {
	if x.packs == nil || x.key == nil {
		return
	}
	x.packs.store(scopesName(s.off), encodeScopes(s, x.key))
}
