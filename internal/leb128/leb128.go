// Package leb128 decodes DWARF's LEB128 variable-length numbers from byte
// slices, for the CFI and location-expression readers.
package leb128

// Unsigned decodes an unsigned LEB128 number at the start of b and returns
// it with its length in bytes; n is 0 when b ends first. Bits beyond 64
// are dropped.
func Unsigned(b []byte) (v uint64, n int) {
	var shift uint
	for i, c := range b {
		if shift < 64 {
			v |= uint64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// Signed decodes a signed LEB128 number at the start of b and returns it
// with its length in bytes; n is 0 when b ends first.
func Signed(b []byte) (v int64, n int) {
	var shift uint
	for i, c := range b {
		if shift < 64 {
			v |= int64(c&0x7f) << shift
		}
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1
		}
	}
	return 0, 0
}
