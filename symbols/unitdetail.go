package symbols

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// A unit's detail is what cuInfo.load finds by reading the whole unit:
// the sequences of its line table with their marks (lineseq.go), the
// names of the table's files (so that a later run need not read the
// table's header beyond where its program starts) and its
// functions (the top-level subprograms' address ranges and DIE offsets,
// in the order readScopes sorted them). It is kept in the debug cache
// beside the unit index, as the entry "unit-<offset>" of a pack
// (packcache.go), so that a later run loads a unit of a kernel trace by
// reading one small entry and a few line rows instead of a unit's whole
// line program and every top-level DIE. As for the unit index, an entry
// is used only when the key of the DWARF sections (dwarfKey) and its own
// CRC match; anything else is ignored and the detail made again. Scopes
// made from the cache read their name, call site and nested scopes from
// their DIE on first use (cuInfo.scopeOf).

// detailMagic starts a cached unit detail (format version 2: with the
// file names of an indexed table).
const detailMagic = "UWUDET02"

// maxDetailFile bounds a cached unit detail read back (a large kernel
// unit's is some tens of KiB).
const maxDetailFile = 16 << 20

// unitDetail is a unit's detail, made or read back.
type unitDetail struct {
	seqs  []lineSeq   // nil: the line table is not indexed (read into rows)
	files []string    // with seqs, the names of the table's files, by index
	funcs []funcRange // the unit's top scope level, sorted as readScopes sorts it
}

// funcRange is one address range of a function of a unit.
type funcRange struct {
	lo, hi uint64
	off    dwarf.Offset // the function's DIE
}

// level makes the unit's top scope level: one scope per function, with
// its name, call site and nested scopes left to read from its DIE.
func (det *unitDetail) level() scopeLevel {
	l := make(scopeLevel, len(det.funcs))
	byOff := make(map[dwarf.Offset]*scope, len(det.funcs))
	for i, f := range det.funcs {
		s := byOff[f.off]
		if s == nil {
			s = &scope{off: f.off, die: true}
			byOff[f.off] = s
		}
		l[i] = scopeRange{lo: f.lo, hi: f.hi, s: s}
	}
	return l
}

// detailName is the name of unit u's detail in the debug cache.
func detailName(u *cuInfo) string { return fmt.Sprintf("unit-%x", uint32(u.off)) }

// loadDetail returns unit u's cached detail, or nil.
func (x *dwarfIndex) loadDetail(u *cuInfo) *unitDetail {
	if x.packs == nil || x.key == nil {
		return nil
	}
	b := x.packs.load(detailName(u), maxDetailFile)
	if b == nil {
		return nil
	}
	return decodeDetail(b, x.key, u)
}

// readCapped reads the file at path if it holds at most max bytes.
func readCapped(path string, max int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, errors.New("not a cache file")
	}
	b := make([]byte, fi.Size())
	if _, err := fh.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// storeDetail caches the detail of unit u, just loaded.
func (x *dwarfIndex) storeDetail(u *cuInfo) {
	if x.packs == nil || x.key == nil {
		return
	}
	det := unitDetail{seqs: u.seqs}
	if u.seqs != nil {
		det.files = u.callFiles
	}
	for _, r := range u.top {
		det.funcs = append(det.funcs, funcRange{lo: r.lo, hi: r.hi, off: r.s.off})
	}
	x.packs.store(detailName(u), encodeDetail(&det, x.key, u.off))
}

// encodeDetail serializes the detail of the unit at off, made from the
// sections key names.
func encodeDetail(det *unitDetail, key []byte, off dwarf.Offset) []byte {
	// About its size (a mark of a 64-bit address takes some 24 bytes, a
	// function's range 25), so that a large unit's detail is not copied
	// as it grows.
	size := len(detailMagic) + 2*binary.MaxVarintLen64 + len(key) + 1 + 4
	for _, s := range det.seqs {
		size += 3*binary.MaxVarintLen64 + (len(s.marks)+1)*24
	}
	for _, f := range det.files {
		size += 2 + len(f)
	}
	size += (len(det.funcs) + 1) * 25
	b := append(make([]byte, 0, size), detailMagic...)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, uint64(off))
	if det.seqs == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(det.seqs)))
		for _, s := range det.seqs {
			b = binary.AppendUvarint(b, s.lo)
			b = binary.AppendUvarint(b, s.end)
			b = binary.AppendUvarint(b, uint64(s.ord))
			if s.stray {
				b = append(b, 1)
				b = appendMark(b, &s.after)
			} else {
				b = append(b, 0)
			}
			b = binary.AppendUvarint(b, uint64(len(s.marks)))
			for i := range s.marks {
				b = appendMark(b, &s.marks[i])
			}
		}
		b = binary.AppendUvarint(b, uint64(len(det.files)))
		for _, f := range det.files {
			b = binary.AppendUvarint(b, uint64(len(f)))
			b = append(b, f...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(det.funcs)))
	for _, f := range det.funcs {
		b = binary.AppendUvarint(b, f.lo)
		b = binary.AppendUvarint(b, f.hi)
		b = binary.AppendUvarint(b, uint64(f.off))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// appendMark appends a line-table mark to b.
func appendMark(b []byte, m *dwarf.LineMark) []byte {
	b = binary.AppendUvarint(b, uint64(m.Off))
	b = binary.AppendUvarint(b, m.Address)
	b = binary.AppendVarint(b, int64(m.OpIndex))
	b = binary.AppendVarint(b, int64(m.File))
	b = binary.AppendVarint(b, int64(m.Line))
	b = binary.AppendVarint(b, int64(m.Column))
	b = binary.AppendVarint(b, int64(m.ISA))
	stmt := byte(0)
	if m.IsStmt {
		stmt = 1
	}
	return append(b, stmt)
}

// mark reads a mark appendMark wrote.
func (r *detailReader) mark(m *dwarf.LineMark) {
	off := r.uvarint()
	m.Off = dwarf.Offset(off)
	m.Address = r.uvarint()
	m.OpIndex, m.File, m.Line, m.Column, m.ISA = r.varint(), r.varint(), r.varint(), r.varint(), r.varint()
	stmt := r.byte()
	if uint64(m.Off) != off || stmt > 1 || m.File < 0 {
		r.bad = true
	}
	m.IsStmt = stmt == 1
}

// detailReader reads the varints of a cached detail; any error sticks.
type detailReader struct {
	p   []byte
	bad bool
}

// openEntry checks a cache entry written as magic, the sections key (a
// count and its bytes), the body and a CRC-32C of all that, and returns a
// reader of the body; false when b is not such an entry for key (another
// kind's, another file's, another version's, cut short or corrupt).
func openEntry(b []byte, magic string, key []byte) (*detailReader, bool) {
	if len(b) < len(magic)+4 || string(b[:len(magic)]) != magic {
		return nil, false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, false
	}
	r := &detailReader{p: body[len(magic):]}
	n, ok := r.count(1)
	if !ok || string(r.p[:n]) != string(key) {
		return nil, false
	}
	r.p = r.p[n:]
	return r, true
}

func (r *detailReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.p)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.p = r.p[n:]
	return v
}

func (r *detailReader) varint() int {
	v, n := binary.Varint(r.p)
	if n <= 0 || int64(int(v)) != v {
		r.bad = true
		return 0
	}
	r.p = r.p[n:]
	return int(v)
}

func (r *detailReader) byte() byte {
	if len(r.p) == 0 {
		r.bad = true
		return 0
	}
	c := r.p[0]
	r.p = r.p[1:]
	return c
}

// count reads a number of records of at least size bytes each, false if
// the bytes left cannot hold them.
func (r *detailReader) count(size int) (int, bool) {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.p)/size) {
		r.bad = true
		return 0, false
	}
	return int(n), true
}

// decodeDetail reads the detail of unit u that encodeDetail wrote for the
// sections key names; it returns nil when b is not one (another unit's,
// another file's, another version's, cut short or corrupt).
func decodeDetail(b, key []byte, u *cuInfo) *unitDetail {
	r, ok := openEntry(b, detailMagic, key)
	if !ok {
		return nil
	}
	if r.uvarint() != uint64(u.off) || r.bad {
		return nil
	}
	det := &unitDetail{}
	switch r.byte() {
	case 0:
	case 1:
		nseq, ok := r.count(4)
		if !ok {
			return nil
		}
		det.seqs = make([]lineSeq, nseq)
		for i := range det.seqs {
			s := &det.seqs[i]
			s.lo, s.end = r.uvarint(), r.uvarint()
			ord := r.uvarint()
			s.ord = int(ord)
			if r.bad || s.lo >= s.end || i > 0 && s.lo < det.seqs[i-1].end || ord >= uint64(nseq) {
				return nil
			}
			switch r.byte() {
			case 0:
			case 1:
				s.stray = true
				if r.mark(&s.after); s.after.Address != s.end {
					return nil
				}
			default:
				return nil
			}
			nm, ok := r.count(8)
			if !ok || nm == 0 {
				return nil
			}
			s.marks = make([]dwarf.LineMark, nm)
			for j := range s.marks {
				m := &s.marks[j]
				if r.mark(m); r.bad {
					return nil
				}
				// Marks after rows lie in the sequence, in address order.
				if j > 0 && (m.Address < s.lo || m.Address >= s.end || j > 1 && m.Address < s.marks[j-1].Address) {
					return nil
				}
			}
		}
		nf, ok := r.count(1)
		if !ok {
			return nil
		}
		// The names are slices of one copy of the bytes left.
		rest := string(r.p)
		det.files = make([]string, nf)
		for i := range det.files {
			n, ok := r.count(1)
			if !ok {
				return nil
			}
			at := len(rest) - len(r.p)
			det.files[i] = rest[at : at+n]
			r.p = r.p[n:]
		}
	default:
		return nil
	}
	nf, ok := r.count(3)
	if !ok {
		return nil
	}
	det.funcs = make([]funcRange, nf)
	for i := range det.funcs {
		f := &det.funcs[i]
		f.lo, f.hi = r.uvarint(), r.uvarint()
		off := r.uvarint()
		f.off = dwarf.Offset(off)
		if r.bad || f.lo >= f.hi || off < uint64(u.off) || off >= uint64(u.end) || i > 0 && f.lo < det.funcs[i-1].lo {
			return nil
		}
	}
	if len(r.p) != 0 {
		return nil
	}
	return det
}
