package unwind

import (
	"encoding/binary"
	"sort"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// fakeFunc is one function of a fake text section, with CFI rows given as
// (offset, CFA rule) steps.
type fakeFunc struct {
	name string
	addr uint64
	code []byte
	rows []fakeRow // sorted by off; nil = no MethodCFI
}

type fakeRow struct {
	off      uint64
	cfaReg   ptregs.Reg
	cfaOff   int64
	rbpSaved bool // rbp saved at CFA-16
	raUndef  bool
}

// fakeCode implements Code over fakeFuncs laid out in one text section.
type fakeCode struct {
	funcs []*fakeFunc
	text  []byte
	base  uint64
	lines map[string][]symbols.Line // by function name
}

func newFakeCode(base uint64, funcs ...*fakeFunc) *fakeCode {
	c := &fakeCode{base: base}
	addr := base
	for _, f := range funcs {
		f.addr = addr
		c.text = append(c.text, f.code...)
		addr += uint64(len(f.code))
		for addr%16 != 0 {
			c.text = append(c.text, 0xcc)
			addr++
		}
	}
	c.funcs = funcs
	return c
}

// fix patches every "call name" placeholder: rel32 after an e8 at the
// given offsets is set to the named function.
func (c *fakeCode) callAt(caller string, off uint64, callee string) uint64 {
	f, g := c.fn(caller), c.fn(callee)
	at := f.addr + off
	rel := int32(int64(g.addr) - int64(at+5))
	binary.LittleEndian.PutUint32(c.text[at-c.base+1:], uint32(rel))
	copy(f.code, c.text[f.addr-c.base:])
	return at + 5
}

func (c *fakeCode) fn(name string) *fakeFunc {
	for _, f := range c.funcs {
		if f.name == name {
			return f
		}
	}
	panic("no function " + name)
}

func (c *fakeCode) find(pc uint64) *fakeFunc {
	i := sort.Search(len(c.funcs), func(i int) bool { return c.funcs[i].addr > pc }) - 1
	if i < 0 {
		return nil
	}
	f := c.funcs[i]
	if pc >= f.addr+uint64(len(f.code)) {
		return nil
	}
	return f
}

func (c *fakeCode) Symbol(pc uint64) (symbols.Sym, bool) {
	f := c.find(pc)
	if f == nil {
		return symbols.Sym{}, false
	}
	return symbols.Sym{Name: f.name, Addr: f.addr, Size: uint64(len(f.code))}, true
}

func (c *fakeCode) FindCFI(pc uint64, row *symbols.CFIRow) error {
	f := c.find(pc)
	if f == nil || f.rows == nil {
		return cfi.ErrNoFDE
	}
	off := pc - f.addr
	var r fakeRow
	end := f.addr + uint64(len(f.code))
	for i, x := range f.rows {
		if x.off <= off {
			r = x
			if i+1 < len(f.rows) {
				end = f.addr + f.rows[i+1].off
			} else {
				end = f.addr + uint64(len(f.code))
			}
		}
	}
	*row = symbols.CFIRow{Start: f.addr + r.off, End: end, RetAddrReg: uint8(ptregs.RIP)}
	row.CFA = cfi.Rule{Kind: cfi.RuleCFA, Reg: uint8(r.cfaReg), Offset: r.cfaOff}
	for _, reg := range []ptregs.Reg{ptregs.RBX, ptregs.RBP, ptregs.R12, ptregs.R13, ptregs.R14, ptregs.R15} {
		row.Regs[reg] = cfi.Rule{Kind: cfi.RuleSameValue}
	}
	if r.rbpSaved {
		row.Regs[ptregs.RBP] = cfi.Rule{Kind: cfi.RuleOffset, Offset: -16}
	}
	row.Regs[ptregs.RIP] = cfi.Rule{Kind: cfi.RuleOffset, Offset: -8}
	if r.raUndef {
		row.Regs[ptregs.RIP] = cfi.Rule{Kind: cfi.RuleUndefined}
	}
	return nil
}

func (c *fakeCode) IsText(pc uint64) bool {
	return pc >= c.base && pc < c.base+uint64(len(c.text))
}

func (c *fakeCode) CodeAt(pc uint64) []byte {
	if !c.IsText(pc) {
		return nil
	}
	return c.text[pc-c.base:]
}

// fakeLines adds LineSource to a fakeCode.
type fakeLines struct{ *fakeCode }

func (c fakeLines) Lines(pc uint64, buf []symbols.Line) []symbols.Line {
	f := c.find(pc)
	if f == nil {
		return buf[:0]
	}
	return append(buf[:0], c.lines[f.name]...)
}

// Machine code shapes.
var (
	// push %rbp; mov %rsp,%rbp; call X; pop %rbp; ret   (call at 4, ret addr 9)
	fpCaller = []byte{0x55, 0x48, 0x89, 0xe5, 0xe8, 0, 0, 0, 0, 0x5d, 0xc3}
	fpRows   = []fakeRow{{0, ptregs.RSP, 8, false, false}, {1, ptregs.RSP, 16, true, false}, {4, ptregs.RBP, 16, true, false}, {10, ptregs.RSP, 8, false, false}}
	// sub $8,%rsp; call X; add $8,%rsp; ret   (call at 4, ret addr 9)
	nofpCaller = []byte{0x48, 0x83, 0xec, 0x08, 0xe8, 0, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3}
	nofpRows   = []fakeRow{{0, ptregs.RSP, 8, false, false}, {4, ptregs.RSP, 16, false, false}, {13, ptregs.RSP, 8, false, false}}
	// push %rbp; mov %rsp,%rbp; call *%rax; pop %rbp; ret (call at 4, ret addr 6)
	fpIndirect = []byte{0x55, 0x48, 0x89, 0xe5, 0xff, 0xd0, 0x5d, 0xc3}
	fpIndRows  = []fakeRow{{0, ptregs.RSP, 8, false, false}, {1, ptregs.RSP, 16, true, false}, {4, ptregs.RBP, 16, true, false}, {7, ptregs.RSP, 8, false, false}}
	// push %rbp; mov %rsp,%rbp; nop; nop; pop %rbp; ret (a leaf)
	fpLeaf     = []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0x90, 0x5d, 0xc3}
	fpLeafRows = []fakeRow{{0, ptregs.RSP, 8, false, false}, {1, ptregs.RSP, 16, true, false}, {4, ptregs.RBP, 16, true, false}, {7, ptregs.RSP, 8, false, false}}
	// nop; nop; ret (a frameless leaf)
	leafNoFrame = []byte{0x90, 0x90, 0xc3}
	leafRows    = []fakeRow{{0, ptregs.RSP, 8, false, false}}
)

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// stackSim builds a stack downward from hi, like a CPU running calls.
type stackSim struct {
	lo, hi uint64
	mem    []byte
	sp     uint64
}

func newStack(lo, size uint64) *stackSim {
	return &stackSim{lo: lo, hi: lo + size, mem: make([]byte, size), sp: lo + size}
}

func (s *stackSim) push(v uint64) uint64 {
	s.sp -= 8
	binary.LittleEndian.PutUint64(s.mem[s.sp-s.lo:], v)
	return s.sp
}

func (s *stackSim) put(addr, v uint64) { binary.LittleEndian.PutUint64(s.mem[addr-s.lo:], v) }

func (s *stackSim) get(addr uint64) uint64 { return binary.LittleEndian.Uint64(s.mem[addr-s.lo:]) }

func (s *stackSim) region() Region { return Region{Addr: s.lo, Data: s.mem} }

func regsOf(rip, rsp, rbp uint64) ptregs.Regs {
	var r ptregs.Regs
	r.Set(ptregs.RIP, rip)
	r.Set(ptregs.RSP, rsp)
	r.Set(ptregs.RBP, rbp)
	return r
}

func names(fs []Frame) []string {
	var out []string
	for _, f := range fs {
		n := f.Function
		if n == "" {
			n = "?"
		}
		if f.Kind == KindScan {
			n = "? " + n
		}
		out = append(out, n)
	}
	return out
}
