package cfi

import "encoding/binary"

// Helpers that build .debug_frame sections byte by byte for tests.

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
		} else {
			return append(b, c)
		}
	}
}

func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// pad appends DW_CFA_nop until len(b)%8 == want.
func pad(b []byte, want int) []byte {
	for len(b)%8 != want {
		b = append(b, cfaNop)
	}
	return b
}

// debugFrame builds a .debug_frame with one CIE (code alignment 1, data
// alignment -8, return address column 16, augmentation aug) and one FDE per
// element of fdes, each covering [start, start+size).
type fdeSpec struct {
	start, size uint64
	instr       []byte
}

func debugFrame(aug string, cieInstr []byte, fdes ...fdeSpec) []byte {
	body := cat([]byte{0xff, 0xff, 0xff, 0xff, 1}, []byte(aug), []byte{0}, uleb(1), sleb(-8), uleb(16), cieInstr)
	body = pad(body, 4)
	sec := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	sec = append(sec, body...)
	for _, f := range fdes {
		fb := binary.LittleEndian.AppendUint32(nil, 0) // CIE at offset 0
		fb = binary.LittleEndian.AppendUint64(fb, f.start)
		fb = binary.LittleEndian.AppendUint64(fb, f.size)
		fb = append(fb, f.instr...)
		fb = pad(fb, 4)
		sec = binary.LittleEndian.AppendUint32(sec, uint32(len(fb)))
		sec = append(sec, fb...)
	}
	return sec
}

// standardCIE is what gcc emits for x86-64: CFA = rsp+8, RA at CFA-8.
var standardCIE = cat([]byte{cfaDefCFA}, uleb(7), uleb(8), []byte{cfaOffset | 16}, uleb(1))

// mapMemory is a sparse little-endian word memory for tests.
type mapMemory map[uint64]uint64

func (m mapMemory) ReadAt(p []byte, addr uint64) (int, error) {
	for i := range p {
		a := addr + uint64(i)
		w, ok := m[a&^7]
		if !ok {
			return i, errUnmapped
		}
		p[i] = byte(w >> (8 * (a & 7)))
	}
	return len(p), nil
}

type unmappedError struct{}

func (unmappedError) Error() string { return "unmapped" }

var errUnmapped error = unmappedError{}
