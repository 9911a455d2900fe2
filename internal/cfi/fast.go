package cfi

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// parseFast reads the CIEs and FDEs of a section whose framing
// checkFraming accepted, as delve's frame.Parse would read them, but in
// place: no allocation per FDE (a vmlinux's .debug_frame has tens of
// thousands). It handles the entries compilers and linkers write; on
// anything else (a CIE referenced before it appears, an augmentation,
// pointer encoding or LEB128 number out of the ordinary, a field that runs
// past its entry) it reports !ok and Parse uses delve's parser, which gives
// such sections their result or error. TestParseFastMatchesDelve and
// FuzzParseFast hold the two to the same tables.
func parseFast(data []byte, kind SectionKind, ehAddr, bias uint64) (*Table, bool) {
	eh := kind == EHFrame
	le := binary.LittleEndian
	cies := map[int]fastCIE{}
	t := &Table{kind: kind, bias: bias, fdes: make([]fde, 0, len(data)/48)}
	for off := 0; off < len(data); {
		n := int(le.Uint32(data[off:]))
		if n == 0 {
			off += 4
			continue
		}
		start := off
		id := le.Uint32(data[off+4:])
		body := data[off+8 : off+4+n]
		off += 4 + n
		if (eh && id == 0) || (!eh && id == 0xffffffff) {
			ci, ok := parseCIEFast(body, eh)
			if !ok {
				return nil, false
			}
			cies[start] = ci
			continue
		}
		key := int(id)
		if eh {
			key = int(uint32(start - int(id) + 4))
		}
		ci, ok := cies[key]
		if !ok {
			return nil, false
		}
		begin, size, instr, ok := ci.fdeBody(body, eh, ehAddr+uint64(start+8))
		if !ok {
			return nil, false
		}
		if end := begin + size; end > begin {
			t.fdes = append(t.fdes, fde{start: begin + bias, end: end + bias, cie: ci.c, instr: instr})
		}
	}
	return t, true
}

// fdeBody reads an FDE's body (after its CIE pointer) under its CIE: the
// initial location (pc-relative to at, the body's address, where the
// encoding says so), the range's size and the instructions, past an
// .eh_frame FDE's augmentation data.
func (ci fastCIE) fdeBody(body []byte, eh bool, at uint64) (begin, size uint64, instr []byte, ok bool) {
	p := 0
	if begin, ok = readPtrFast(body, &p, ci.enc, at); !ok {
		return 0, 0, nil, false
	}
	if size, ok = readPtrFast(body, &p, ci.enc&0x0f, 0); !ok {
		return 0, 0, nil, false
	}
	if eh && ci.hasAug {
		n, ok := ulebFast(body, &p)
		if !ok || n > uint64(len(body)-p) {
			return 0, 0, nil, false
		}
		p += int(n)
	}
	return begin, size, body[p:], true
}

// fastCIE is a CIE as parseFast keeps it.
type fastCIE struct {
	c      *cie
	enc    byte // FDE pointer encoding ('R'), 0 (absolute) when none
	hasAug bool // a non-empty augmentation string: .eh_frame FDEs have augmentation data
}

// parseCIEFast reads a CIE's body (after its id) as delve's parseCIE does.
func parseCIEFast(body []byte, eh bool) (fastCIE, bool) {
	if len(body) < 1 {
		return fastCIE{}, false
	}
	version := body[0]
	p := 1
	nul := bytes.IndexByte(body[p:], 0)
	if nul < 0 {
		return fastCIE{}, false
	}
	aug := string(body[p : p+nul])
	p += nul + 1
	if eh && len(aug) > 0 && (aug[0] != 'z' || aug == "eh") {
		return fastCIE{}, false
	}
	c := &cie{signal: strings.IndexByte(aug, 'S') >= 0}
	var ok bool
	if c.codeAlign, ok = ulebFast(body, &p); !ok {
		return fastCIE{}, false
	}
	if c.dataAlign, ok = slebFast(body, &p); !ok {
		return fastCIE{}, false
	}
	if eh && version == 1 {
		if p >= len(body) {
			return fastCIE{}, false
		}
		c.raReg = uint64(body[p])
		p++
	} else if c.raReg, ok = ulebFast(body, &p); !ok {
		return fastCIE{}, false
	}
	var enc byte
	if eh && len(aug) > 0 {
		if _, ok := ulebFast(body, &p); !ok { // the augmentation data's length, unused (as delve does)
			return fastCIE{}, false
		}
		for i := 1; i < len(aug); i++ {
			switch aug[i] {
			case 'L':
				if p >= len(body) {
					return fastCIE{}, false
				}
				p++
			case 'R':
				if p >= len(body) || !plainEncoding(body[p]) {
					return fastCIE{}, false
				}
				enc = body[p]
				p++
			case 'S':
			case 'P':
				if p >= len(body) {
					return fastCIE{}, false
				}
				e := body[p] &^ 0x80 // indirect: the pointer is read all the same
				p++
				if !plainEncoding(e) {
					return fastCIE{}, false
				}
				if _, ok := readPtrFast(body, &p, e, 0); !ok {
					return fastCIE{}, false
				}
			default:
				return fastCIE{}, false
			}
		}
	}
	c.initial = body[p:]
	return fastCIE{c: c, enc: enc, hasAug: len(aug) > 0}, true
}

// plainEncoding reports whether parseFast reads pointers of encoding e
// itself: absolute or pc-relative, of 2, 4 or 8 bytes (signed or not).
func plainEncoding(e byte) bool {
	if e&0xf0 != 0 && e&0xf0 != 0x10 {
		return false
	}
	switch e & 0x0f {
	case 0x00, 0x02, 0x03, 0x04, 0x08, 0x0a, 0x0b, 0x0c:
		return true
	}
	return false
}

// readPtrFast reads a pointer of encoding enc at body[*p] as delve's
// readEncodedPtr does (pointer-sized is 8 bytes); addr is where the
// pointer lies at run time, for pc-relative ones.
func readPtrFast(body []byte, p *int, enc byte, addr uint64) (uint64, bool) {
	if !plainEncoding(enc) {
		return 0, false
	}
	var size int
	switch enc & 0x0f {
	case 0x02, 0x0a:
		size = 2
	case 0x03, 0x0b:
		size = 4
	default:
		size = 8
	}
	if size > len(body)-*p {
		return 0, false
	}
	b := body[*p : *p+size]
	*p += size
	var v uint64
	switch enc & 0x0f {
	case 0x02:
		v = uint64(binary.LittleEndian.Uint16(b))
	case 0x0a:
		v = uint64(int16(binary.LittleEndian.Uint16(b)))
	case 0x03:
		v = uint64(binary.LittleEndian.Uint32(b))
	case 0x0b:
		v = uint64(int32(binary.LittleEndian.Uint32(b)))
	default:
		v = binary.LittleEndian.Uint64(b)
	}
	if enc&0xf0 == 0x10 {
		v += addr
	}
	return v, true
}

// ulebFast reads an unsigned LEB128 number of at most 9 bytes (63 bits).
func ulebFast(b []byte, p *int) (uint64, bool) {
	var v uint64
	for i := 0; i < 9 && *p < len(b); i++ {
		c := b[*p]
		*p++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, true
		}
	}
	return 0, false
}

// slebFast reads a signed LEB128 number of at most 9 bytes.
func slebFast(b []byte, p *int) (int64, bool) {
	var v int64
	for i := 0; i < 9 && *p < len(b); i++ {
		c := b[*p]
		*p++
		v |= int64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c&0x40 != 0 {
				v |= -1 << (7 * (i + 1))
			}
			return v, true
		}
	}
	return 0, false
}
