package ptregs

import "math/bits"

// Reg is an x86-64 register named by its DWARF number (System V psABI, table
// 3.36). Registers 0–15 are the general-purpose registers; 16 is the return
// address column, which the unwinder uses for RIP.
type Reg uint8

// DWARF register numbers for x86-64.
const (
	RAX Reg = 0
	RDX Reg = 1
	RCX Reg = 2
	RBX Reg = 3
	RSI Reg = 4
	RDI Reg = 5
	RBP Reg = 6
	RSP Reg = 7
	R8  Reg = 8
	R9  Reg = 9
	R10 Reg = 10
	R11 Reg = 11
	R12 Reg = 12
	R13 Reg = 13
	R14 Reg = 14
	R15 Reg = 15
	RIP Reg = 16 // the return-address column

	// NumRegs is the number of registers a Regs holds.
	NumRegs = 17
)

var regNames = [NumRegs]string{
	"rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
}

// String returns the register's lower-case name ("rax", "rip"), or "r?N" for a
// number outside 0–16.
func (r Reg) String() string {
	if int(r) < NumRegs {
		return regNames[r]
	}
	return "r?" + itoa(uint64(r))
}

// RegByName returns the register with the given lower-case name.
func RegByName(name string) (Reg, bool) {
	for i, n := range regNames {
		if n == name {
			return Reg(i), true
		}
	}
	return 0, false
}

// Regs is a register set indexed by DWARF number, with a validity bit per
// register. It is a plain value: copying a Regs copies every register, so an
// unwinder can keep one per frame without allocating. The zero value has no
// valid register.
type Regs struct {
	// valid comes first: a Regs is typically zeroed and then Set, and
	// Set's read of valid is then served by the first zeroing store.
	valid uint32
	v     [NumRegs]uint64
}

// Get returns the value of r and whether it is known. An out-of-range r is
// reported as unknown.
func (rs *Regs) Get(r Reg) (uint64, bool) {
	if int(r) >= NumRegs || rs.valid&(1<<r) == 0 {
		return 0, false
	}
	return rs.v[r], true
}

// Set records r's value and marks it known. An out-of-range r is ignored.
func (rs *Regs) Set(r Reg, val uint64) {
	if int(r) >= NumRegs {
		return
	}
	rs.v[r] = val
	rs.valid |= 1 << r
}

// Copy sets in rs the registers of mask (bit n for DWARF register n) that
// o knows, to o's values, and leaves the others alone: a CFI row's
// same-value columns in one call.
func (rs *Regs) Copy(o *Regs, mask uint32) {
	m := o.valid & mask & (1<<NumRegs - 1)
	rs.valid |= m
	for ; m != 0; m &= m - 1 {
		r := bits.TrailingZeros32(m)
		rs.v[r] = o.v[r]
	}
}

// Clear marks r unknown.
func (rs *Regs) Clear(r Reg) {
	if int(r) < NumRegs {
		rs.valid &^= 1 << r
		rs.v[r] = 0
	}
}

// Valid reports whether r's value is known.
func (rs *Regs) Valid(r Reg) bool { return int(r) < NumRegs && rs.valid&(1<<r) != 0 }

// Mask returns the validity bits, bit n for DWARF register n.
func (rs *Regs) Mask() uint32 { return rs.valid }

// PC returns RIP (column 16) and whether it is known.
func (rs *Regs) PC() (uint64, bool) { return rs.Get(RIP) }

// SP returns RSP and whether it is known.
func (rs *Regs) SP() (uint64, bool) { return rs.Get(RSP) }

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
