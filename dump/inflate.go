package dump

import (
	"encoding/binary"
	"errors"
	"hash/adler32"
	"math/bits"
	"sync"
)

// inflatePage decompresses one zlib stream (RFC 1950, its DEFLATE data
// RFC 1951) that must hold exactly len(out) bytes into out: a kdump page.
// The whole stream is in memory and the output is at most a page, so the
// page itself is the window, the bit buffer is refilled eight bytes at a
// time, and nothing is copied twice; a general reader (klauspost's zlib,
// which this replaced for pages) keeps a 32 KiB window it copies out of
// and reads its input a byte at a time through io.ByteReader. Errors:
// errInflate for a stream that is not valid zlib, is cut short, holds
// more or fewer bytes than out, or fails its Adler-32 check.
func inflatePage(in, out []byte) error {
	if len(in) < 2 {
		return errInflate
	}
	cmf, flg := in[0], in[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 || flg&0x20 != 0 {
		return errInflate // not deflate, window > 32 KiB, bad check bits, or a preset dictionary
	}
	d := inflaters.Get().(*inflater)
	d.in, d.pos, d.bits, d.nbits = in, 2, 0, 0
	defer func() {
		d.in = nil // the pool keeps no page's bytes
		inflaters.Put(d)
	}()
	n, err := d.inflate(out)
	if err != nil {
		return err
	}
	if n != len(out) {
		return errInflate
	}
	// The Adler-32 of the data, big-endian, from the next byte boundary.
	d.drop(d.nbits % 8)
	var sum [4]byte
	for i := range sum {
		b, ok := d.byte()
		if !ok {
			return errInflate
		}
		sum[i] = b
	}
	if binary.BigEndian.Uint32(sum[:]) != adler32.Checksum(out) {
		return errInflate
	}
	return nil
}

var errInflate = errors.New("zlib: invalid or truncated stream")

// Huffman tables: an entry of table, indexed by the next tableBits bits
// of input (least significant first; distBits for distances, 7 for the
// code lengths' code), is
// sym<<4 | length for a code of at most that many bits, 0 for a longer
// code, which the canonical decoder (count, symbols) decodes bit by bit.
const (
	tableBits = 10 // literal/length codes (and the first table's size)
	distBits  = 8  // distance codes
)

type huffman struct {
	table   [1 << tableBits]uint16
	mask    uint64      // 1<<(the table's bits) - 1
	count   [16]uint16  // codes of each length
	symbols [288]uint16 // by code, shortest first
	empty   bool        // no codes at all
}

type inflater struct {
	in    []byte
	pos   int
	bits  uint64
	nbits uint

	lit, dist, clen huffman
	lens            [320]uint8
}

var inflaters = sync.Pool{New: func() any { return new(inflater) }}

var fixedLit, fixedDist, emptyHuffman huffman

func init() { emptyHuffman.empty = true }

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	// Literal/length symbols 286 and 287 and distances 30 and 31 complete
	// the codes; they are invalid where they are read.
	var dl [32]uint8
	for i := range dl {
		dl[i] = 5
	}
	if !fixedLit.build(l[:], tableBits) || !fixedDist.build(dl[:], distBits) {
		panic("dump: fixed Huffman codes")
	}
}

// build makes the tables of the code with lengths lens, as RFC 1951
// assigns codes, its first table of tbits (≤ tableBits) bits; false for
// lengths that over-subscribe, or leave incomplete a code of more than
// one symbol (one code of one bit is accepted, as zlib does).
func (h *huffman) build(lens []uint8, tbits int) bool {
	h.count = [16]uint16{}
	for _, l := range lens {
		h.count[l]++
	}
	h.count[0] = 0
	maxLen, used := 0, 0
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= int(h.count[l])
		if left < 0 {
			return false // over-subscribed
		}
		if h.count[l] != 0 {
			maxLen = l
			used += int(h.count[l])
		}
	}
	h.empty = used == 0
	if left > 0 && !h.empty && !(used == 1 && maxLen == 1) {
		// Incomplete: left counts the 15-bit codes unassigned.
		return false
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for s, l := range lens {
		if l != 0 {
			h.symbols[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	size := 1 << tbits
	h.mask = uint64(size - 1)
	if maxLen > tbits || left > 0 {
		clear(h.table[:size]) // entries no code of tbits bits fills
	}
	code, idx := 0, 0
	for l := 1; l <= min(maxLen, tbits); l++ {
		for range h.count[l] {
			rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
			e := h.symbols[idx]<<4 | uint16(l)
			for i := rev; i < size; i += 1 << l {
				h.table[i] = e
			}
			code++
			idx++
		}
		code <<= 1
	}
	return true
}

// refill makes nbits at least 56 while input remains.
func (d *inflater) refill() {
	if d.pos+8 <= len(d.in) {
		d.bits |= binary.LittleEndian.Uint64(d.in[d.pos:]) << d.nbits
		d.pos += int(63-d.nbits) >> 3
		d.nbits |= 56
		return
	}
	for d.nbits <= 56 && d.pos < len(d.in) {
		d.bits |= uint64(d.in[d.pos]) << d.nbits
		d.pos++
		d.nbits += 8
	}
}

// need returns the next n (≤ 32) bits without consuming them.
func (d *inflater) need(n uint) (uint32, bool) {
	if d.nbits < n {
		d.refill()
		if d.nbits < n {
			return 0, false
		}
	}
	return uint32(d.bits & (1<<n - 1)), true
}

func (d *inflater) drop(n uint) {
	d.bits >>= n
	d.nbits -= n
}

func (d *inflater) take(n uint) (uint32, bool) {
	v, ok := d.need(n)
	if ok {
		d.drop(n)
	}
	return v, ok
}

// byte returns the next whole byte of input (the bit buffer at a byte
// boundary).
func (d *inflater) byte() (byte, bool) {
	v, ok := d.take(8)
	return byte(v), ok
}

// decode reads one symbol of h.
func (d *inflater) decode(h *huffman) (int, bool) {
	if d.nbits < 15 {
		d.refill()
	}
	if e := h.table[d.bits&h.mask]; e != 0 {
		l := uint(e & 15)
		if l > d.nbits {
			return 0, false
		}
		d.drop(l)
		return int(e >> 4), true
	}
	// A code longer than tableBits: canonical decoding, bit by bit.
	code, first, idx := 0, 0, 0
	b := d.bits
	for l := uint(1); l < 16; l++ {
		if l > d.nbits {
			return 0, false
		}
		code |= int(b & 1)
		b >>= 1
		count := int(h.count[l])
		if code-first < count {
			d.drop(l)
			return int(h.symbols[idx+code-first]), true
		}
		idx += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, false
}

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clenOrder   = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// inflate decodes the DEFLATE blocks into out and returns the bytes
// written.
func (d *inflater) inflate(out []byte) (int, error) {
	op := 0
	for {
		hdr, ok := d.take(3)
		if !ok {
			return op, errInflate
		}
		var lit, dist *huffman
		switch hdr >> 1 {
		case 0: // stored
			d.drop(d.nbits % 8)
			var lh [4]byte
			for i := range lh {
				if lh[i], ok = d.byte(); !ok {
					return op, errInflate
				}
			}
			n := int(binary.LittleEndian.Uint16(lh[:]))
			if uint16(n) != ^binary.LittleEndian.Uint16(lh[2:]) || n > len(out)-op {
				return op, errInflate
			}
			// Whole bytes left in the bit buffer come first.
			for ; n > 0 && d.nbits >= 8; n-- {
				out[op], _ = d.byte()
				op++
			}
			if n > 0 {
				if n > len(d.in)-d.pos {
					return op, errInflate
				}
				op += copy(out[op:], d.in[d.pos:d.pos+n])
				d.pos += n
				// The buffer is empty; above it were bits of bytes
				// copied, not the input that follows them.
				d.bits = 0
			}
		case 1:
			lit, dist = &fixedLit, &fixedDist
		case 2:
			if err := d.dynamic(); err != nil {
				return op, err
			}
			lit, dist = &d.lit, &d.dist
		default:
			return op, errInflate
		}
		if lit != nil {
			var err error
			if op, err = d.codes(lit, dist, out, op); err != nil {
				return op, err
			}
		}
		if hdr&1 != 0 {
			return op, nil
		}
	}
}

// dynamic reads a dynamic block's code lengths and builds d.lit and
// d.dist.
func (d *inflater) dynamic() error {
	h, ok := d.take(14)
	if !ok {
		return errInflate
	}
	nlit, ndist, nclen := int(h&31)+257, int(h>>5&31)+1, int(h>>10)+4
	if nlit > 286 || ndist > 30 {
		return errInflate
	}
	var cl [19]uint8
	for i := range nclen {
		v, ok := d.take(3)
		if !ok {
			return errInflate
		}
		cl[clenOrder[i]] = uint8(v)
	}
	if !d.clen.build(cl[:], 7) || d.clen.empty {
		return errInflate
	}
	lens := d.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		sym, ok := d.decode(&d.clen)
		if !ok {
			return errInflate
		}
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				return errInflate
			}
			v, ok := d.take(2)
			if !ok {
				return errInflate
			}
			rep, val = 3+int(v), lens[i-1]
		case 17:
			v, ok := d.take(3)
			if !ok {
				return errInflate
			}
			rep = 3 + int(v)
		default:
			v, ok := d.take(7)
			if !ok {
				return errInflate
			}
			rep = 11 + int(v)
		}
		if rep > len(lens)-i {
			return errInflate
		}
		for range rep {
			lens[i] = val
			i++
		}
	}
	if lens[256] == 0 || !d.lit.build(lens[:nlit], tableBits) || !d.dist.build(lens[nlit:], distBits) {
		return errInflate
	}
	return nil
}

// codes decodes a compressed block's symbols up to its end of block.
// While the bit buffer can hold 48 bits, a symbol and, for a length, its
// distance (at most 48 bits together) are decoded from one refill, with
// no check for bits running out; near the end of the input each read
// is checked.
func (d *inflater) codes(lit, dist *huffman, out []byte, op int) (int, error) {
	if dist.empty {
		dist = nil
	}
	// The bit buffer in locals, d's fields set again before d's methods
	// are called and when the fast loop ends.
	in, pos, b, nb := d.in, d.pos, d.bits, d.nbits
	for {
		if nb < 48 {
			if pos+8 > len(in) {
				break
			}
			b |= binary.LittleEndian.Uint64(in[pos:]) << nb
			pos += int(63-nb) >> 3
			nb |= 56
		}
		var sym int
		if e := lit.table[b&(1<<tableBits-1)]; e != 0 {
			l := uint(e & 15)
			b >>= l
			nb -= l
			sym = int(e >> 4)
		} else {
			// A long code: the canonical decoder, with the bits it
			// needs in the buffer.
			d.pos, d.bits, d.nbits = pos, b, nb
			var ok bool
			if sym, ok = d.decode(lit); !ok {
				return op, errInflate
			}
			b, nb = d.bits, d.nbits
		}
		if sym < 256 {
			if op >= len(out) {
				return op, errInflate
			}
			out[op] = byte(sym)
			op++
			continue
		}
		if sym == 256 {
			d.pos, d.bits, d.nbits = pos, b, nb
			return op, nil
		}
		ls := uint(sym - 257)
		if ls >= 29 || dist == nil {
			return op, errInflate
		}
		eb := uint(lengthExtra[ls])
		n := int(lengthBase[ls]) + int(b&(1<<eb-1))
		b >>= eb
		nb -= eb
		var ds uint
		if e := dist.table[b&(1<<distBits-1)]; e != 0 {
			l := uint(e & 15)
			b >>= l
			nb -= l
			ds = uint(e >> 4)
		} else {
			// A long distance code: the canonical decoder too (the
			// length took at most 20 of the 48 bits).
			d.pos, d.bits, d.nbits = pos, b, nb
			s, ok := d.decode(dist)
			if !ok {
				return op, errInflate
			}
			b, nb, ds = d.bits, d.nbits, uint(s)
		}
		if ds >= 30 {
			return op, errInflate
		}
		eb = uint(distExtra[ds])
		back := int(distBase[ds]) + int(b&(1<<eb-1))
		b >>= eb
		nb -= eb
		if back > op || n > len(out)-op {
			return op, errInflate
		}
		copyBack(out, op, back, n)
		op += n
	}
	d.pos, d.bits, d.nbits = pos, b, nb
	if dist == nil {
		dist = &emptyHuffman
	}
	for {
		sym, ok := d.decode(lit)
		if !ok {
			return op, errInflate
		}
		if sym < 256 {
			if op >= len(out) {
				return op, errInflate
			}
			out[op] = byte(sym)
			op++
			continue
		}
		if sym == 256 {
			return op, nil
		}
		sym -= 257
		if sym >= 29 {
			return op, errInflate
		}
		v, ok := d.take(uint(lengthExtra[sym]))
		if !ok {
			return op, errInflate
		}
		n := int(lengthBase[sym]) + int(v)
		if dist.empty {
			return op, errInflate
		}
		ds, ok := d.decode(dist)
		if !ok || ds >= 30 {
			return op, errInflate
		}
		v, ok = d.take(uint(distExtra[ds]))
		if !ok {
			return op, errInflate
		}
		back := int(distBase[ds]) + int(v)
		if back > op || n > len(out)-op {
			return op, errInflate
		}
		copyBack(out, op, back, n)
		op += n
	}
}

// copyBack copies n bytes from back bytes before op to op (0 < back ≤ op,
// op+n ≤ len(out)): a copy that overlaps what it writes repeats the
// back bytes, in chunks that double.
func copyBack(out []byte, op, back, n int) {
	if back >= n {
		copy(out[op:op+n], out[op-back:])
		return
	}
	for i := op; i < op+n; {
		i += copy(out[i:op+n], out[op-back:i])
	}
}
