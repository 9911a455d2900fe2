package emu

// RFLAGS bits.
const (
	FlagCF = 1 << 0
	FlagPF = 1 << 2
	FlagAF = 1 << 4
	FlagZF = 1 << 6
	FlagSF = 1 << 7
	FlagTF = 1 << 8
	FlagIF = 1 << 9
	FlagDF = 1 << 10
	FlagOF = 1 << 11
	FlagNT = 1 << 14
	FlagRF = 1 << 16
	FlagVM = 1 << 17

	arithFlags = FlagCF | FlagPF | FlagAF | FlagZF | FlagSF | FlagOF
)

var parityTable [256]uint64

func init() {
	for i := range parityTable {
		n := 0
		for b := i; b != 0; b >>= 1 {
			n += b & 1
		}
		if n%2 == 0 {
			parityTable[i] = FlagPF
		}
	}
}

var (
	masks    = [16]uint64{0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0, 0, 0, ^uint64(0)}
	signBits = [16]uint64{0, 0x80, 0x8000, 0x800000, 0x80000000, 0, 0, 0, 1 << 63}
)

func sizeMask(size uint8) uint64 { return masks[size&15] }

func signBit(size uint8) uint64 { return signBits[size&15] }

func signExtend(v uint64, size uint8) uint64 {
	switch size {
	case 1:
		return uint64(int64(int8(v)))
	case 2:
		return uint64(int64(int16(v)))
	case 4:
		return uint64(int64(int32(v)))
	}
	return v
}

// szp returns SF, ZF and PF for result r of the given size.
func szp(r uint64, size uint8) uint64 {
	r &= sizeMask(size)
	f := parityTable[r&0xff]
	if r == 0 {
		f |= FlagZF
	}
	if r&signBit(size) != 0 {
		f |= FlagSF
	}
	return f
}

// addFlags computes a + b + carry and its flags.
func addFlags(a, b, carry uint64, size uint8) (uint64, uint64) {
	m := sizeMask(size)
	a, b = a&m, b&m
	r := (a + b + carry) & m
	f := szp(r, size) | (a^b^r)&FlagAF
	if size == 8 {
		if r < a || (carry != 0 && r == a) {
			f |= FlagCF
		}
	} else if a+b+carry > m {
		f |= FlagCF
	}
	if (^(a ^ b))&(a^r)&signBit(size) != 0 {
		f |= FlagOF
	}
	return r, f
}

// subFlags computes a - b - borrow and its flags.
func subFlags(a, b, borrow uint64, size uint8) (uint64, uint64) {
	m := sizeMask(size)
	a, b = a&m, b&m
	r := (a - b - borrow) & m
	f := szp(r, size) | (a^b^r)&FlagAF
	if a < b || (borrow != 0 && a == b) {
		f |= FlagCF
	}
	if (a^b)&(a^r)&signBit(size) != 0 {
		f |= FlagOF
	}
	return r, f
}

// cond evaluates condition code cc (encoding order) against flags f.
func cond(cc uint8, f uint64) bool {
	var r bool
	switch cc >> 1 {
	case 0:
		r = f&FlagOF != 0
	case 1:
		r = f&FlagCF != 0
	case 2:
		r = f&FlagZF != 0
	case 3:
		r = f&(FlagCF|FlagZF) != 0
	case 4:
		r = f&FlagSF != 0
	case 5:
		r = f&FlagPF != 0
	case 6:
		r = (f&FlagSF != 0) != (f&FlagOF != 0)
	case 7:
		r = f&FlagZF != 0 || (f&FlagSF != 0) != (f&FlagOF != 0)
	}
	return r != (cc&1 != 0)
}
