package symbols

import (
	"encoding/binary"
	"testing"

	"github.com/unwind-dev/unwind/internal/dwarf"
	"github.com/unwind-dev/unwind/ptregs"
)

// fuzzMem is 64 KiB of readable memory at 0x7000_0000.
type fuzzMem struct{ b []byte }

func (m fuzzMem) ReadAt(p []byte, a uint64) (int, error) {
	const base = 0x7000_0000
	if a < base || a-base >= uint64(len(m.b)) {
		return 0, errFuzzUnmapped
	}
	return copy(p, m.b[a-base:]), nil
}

var errFuzzUnmapped = ErrNoFDE // any error

// FuzzLocation evaluates arbitrary DWARF location expressions and
// location lists (as .debug_loc and .debug_loclists) of a variable: an
// error or a NotRecovered/OptimizedOut value, never a panic, a hang or an
// unbounded allocation.
func FuzzLocation(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0x55},                               // DW_OP_reg5 (rdi)
		{0, 0x91, 0x6c},                         // DW_OP_fbreg -20
		{0, 0x73, 0x01, 0x9f},                   // DW_OP_breg3 1; DW_OP_stack_value
		{0, 0xa3, 0x01, 0x55, 0x9f},             // DW_OP_entry_value(reg5); stack_value
		{0, 0x50, 0x93, 0x08, 0x51, 0x93, 0x08}, // rax piece 8, rdx piece 8
		{0, 0x93, 0x04, 0x53, 0x93, 0x04},       // an optimized-out piece, then rbx
		{0, 0x9e, 0x04, 1, 2, 3, 4},             // implicit_value
		{0, 0x03, 0, 0, 0, 0x70, 0, 0, 0, 0},    // DW_OP_addr 0x70000000
		{0, 0x9c, 0x23, 0x08, 0x06},             // cfa; plus_uconst 8; deref
		{0, 0x23, 0x08},                         // plus_uconst on an empty stack
		{1, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{2, 0x0c, 0, 0, 0, 0x05, 0, 0x08, 0, 0, 0, 0, 0, 0x04, 0x10, 0x20, 0x01, 0x55, 0x00},
	} {
		f.Add(seed)
	}
	mem := fuzzMem{b: make([]byte, 1<<16)}
	for i := range mem.b {
		mem.b[i] = byte(i * 7)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 4096 {
			return
		}
		var regs ptregs.Regs
		for r := ptregs.Reg(0); r < ptregs.NumRegs; r += 2 {
			regs.Set(r, 0x7000_0100+uint64(r)*8)
		}
		caller := &VarFrame{PC: 0x1000, LookupPC: 0xfff, Regs: &regs}
		ev := &evaluator{s: &Set{}, f: &File{}, x: &dwarfIndex{}, u: &cuInfo{entry: &dwarf.Entry{}},
			fr: &VarFrame{PC: 0x2000, LookupPC: 0x2000, Regs: &regs, Caller: caller}, mem: mem, cfa: 0x7000_0800, link: 0x2000}
		var expr []byte
		switch in[0] % 3 {
		case 0:
			expr = in[1:]
		case 1: // a DWARF 4 location list at offset 0
			ev.x.vars = varState{secOnce: true, loc: in[1:]}
			ev.link = 0x18
			e, err := ev.listEntry(0, dwarf.ClassLocListPtr)
			if err != nil {
				return
			}
			expr = e
		case 2: // a DWARF 5 location list after the section header
			ev.x.vars = varState{secOnce: true, lists: in[1:]}
			ev.x.vars.units = map[*cuInfo]*unitVars{ev.u: {version: 5}}
			ev.link = 0x18
			off := int64(12)
			if len(in) > 13 {
				off = int64(binary.LittleEndian.Uint16(in[1:]) % uint16(len(in)))
			}
			e, err := ev.listEntry(off, dwarf.ClassLocListPtr)
			if err != nil {
				return
			}
			expr = e
		}
		for _, size := range []int{1, 4, 8, 16} {
			p := ev.location(expr, size)
			if p.rec.Known() && len(p.b) != size {
				t.Fatalf("%x: %d bytes for a %d-byte value", expr, len(p.b), size)
			}
		}
	})
}
