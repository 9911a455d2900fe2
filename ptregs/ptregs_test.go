package ptregs

import (
	"encoding/binary"
	"errors"
	"testing"
)

// distinct returns a PtRegs whose every field differs, each word naming its
// own offset (0x1000+off), so layout mistakes show up as wrong values.
func distinct() PtRegs {
	var p PtRegs
	for i, w := range p.words() {
		*w = 0x1000 + uint64(i*8)
	}
	return p
}

// TestPtRegsLayout checks the offsets of struct pt_regs given in
// arch/x86/include/asm/ptrace.h: r15 0 ... ss 160.
func TestPtRegsLayout(t *testing.T) {
	b := make([]byte, PtRegsSize)
	for off := 0; off < PtRegsSize; off += 8 {
		binary.LittleEndian.PutUint64(b[off:], 0x1000+uint64(off))
	}
	p, err := DecodePtRegs(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]uint64{
		"r15": {p.R15, 0}, "r14": {p.R14, 8}, "r13": {p.R13, 16}, "r12": {p.R12, 24},
		"bp": {p.BP, 32}, "bx": {p.BX, 40}, "r11": {p.R11, 48}, "r10": {p.R10, 56},
		"r9": {p.R9, 64}, "r8": {p.R8, 72}, "ax": {p.AX, 80}, "cx": {p.CX, 88},
		"dx": {p.DX, 96}, "si": {p.SI, 104}, "di": {p.DI, 112}, "orig_ax": {p.OrigAX, 120},
		"ip": {p.IP, 128}, "cs": {p.CS, 136}, "flags": {p.Flags, 144}, "sp": {p.SP, 152},
		"ss": {p.SS, 160},
	}
	for name, v := range want {
		if v[0] != 0x1000+v[1] {
			t.Errorf("%s decoded %#x, want the word at offset %d", name, v[0], v[1])
		}
	}
	if got := p.Encode(); string(got[:]) != string(b) {
		t.Error("Encode is not the inverse of DecodePtRegs")
	}
	f, err := DecodeIretFrame(b[PtRegsIretOffset:])
	if err != nil {
		t.Fatal(err)
	}
	if f != p.Iret() {
		t.Errorf("iret frame at offset 128 %+v != PtRegs.Iret %+v", f, p.Iret())
	}
	fb := f.Encode()
	if string(fb[:]) != string(b[PtRegsIretOffset:]) {
		t.Error("IretFrame.Encode is not the inverse of DecodeIretFrame")
	}
}

func TestDecodeShort(t *testing.T) {
	var se *ShortError
	for n := 0; n < PrStatusSize; n++ {
		b := make([]byte, n)
		if _, err := DecodePtRegs(b); (err != nil) != (n < PtRegsSize) || (err != nil && !errors.As(err, &se)) {
			t.Fatalf("DecodePtRegs(%d bytes): %v", n, err)
		}
		if _, err := DecodeIretFrame(b); (err != nil) != (n < IretFrameSize) {
			t.Fatalf("DecodeIretFrame(%d bytes): %v", n, err)
		}
		if _, err := DecodeUserRegs(b); (err != nil) != (n < UserRegsSize) {
			t.Fatalf("DecodeUserRegs(%d bytes): %v", n, err)
		}
		if _, err := DecodePrStatus(b); err == nil {
			t.Fatalf("DecodePrStatus(%d bytes) accepted", n)
		}
	}
	_, err := DecodePtRegs(make([]byte, 100))
	if !errors.As(err, &se) || se.Need != PtRegsSize || se.Have != 100 || se.What != "pt_regs" {
		t.Errorf("error %v", err)
	}
}

func TestRegsMapping(t *testing.T) {
	p := distinct()
	r := p.Regs()
	if r.Mask() != 1<<NumRegs-1 {
		t.Fatalf("mask %#x: not all 17 registers valid", r.Mask())
	}
	for reg, want := range map[Reg]uint64{
		RAX: p.AX, RDX: p.DX, RCX: p.CX, RBX: p.BX, RSI: p.SI, RDI: p.DI,
		RBP: p.BP, RSP: p.SP, R8: p.R8, R9: p.R9, R10: p.R10, R11: p.R11,
		R12: p.R12, R13: p.R13, R14: p.R14, R15: p.R15, RIP: p.IP,
	} {
		if got, _ := r.Get(reg); got != want {
			t.Errorf("%s = %#x, want %#x", reg, got, want)
		}
	}
	back := PtRegsFromRegs(&r)
	want := p
	want.OrigAX, want.CS, want.Flags, want.SS = 0, 0, 0, 0
	if back != want {
		t.Errorf("PtRegsFromRegs(Regs()) = %+v, want %+v", back, want)
	}
	var partial Regs
	partial.Set(RIP, 5)
	if q := PtRegsFromRegs(&partial); q != (PtRegs{IP: 5}) {
		t.Errorf("unknown registers not zero: %+v", q)
	}

	f := p.Iret()
	ir := f.Regs()
	if ir.Mask() != 1<<RIP|1<<RSP {
		t.Errorf("IretFrame.Regs mask %#x, want RIP and RSP only", ir.Mask())
	}
	if pc, _ := ir.PC(); pc != p.IP {
		t.Errorf("pc %#x", pc)
	}
	if sp, _ := ir.SP(); sp != p.SP {
		t.Errorf("sp %#x", sp)
	}
}

func TestAppendEncode(t *testing.T) {
	p := distinct()
	b := p.AppendEncode([]byte{0xee})
	if len(b) != 1+PtRegsSize || b[0] != 0xee {
		t.Fatalf("len %d", len(b))
	}
	q, err := DecodePtRegs(b[1:])
	if err != nil || q != p {
		t.Errorf("round trip: %+v %v", q, err)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	valid := PtRegs{IP: 0xffffffff812a755e, CS: 0x10, Flags: 0x206, SP: 0xffffc90000103e38, SS: 0x18}
	b := make([]byte, PrStatusSize)
	enc := valid.Encode()
	copy(b, enc[:])
	n := testing.AllocsPerRun(100, func() {
		p, _ := DecodePtRegs(b)
		f, _ := DecodeIretFrame(b)
		s, _ := DecodePrStatus(b)
		r := p.Regs()
		_ = f.Regs()
		_ = PtRegsFromRegs(&r)
		if p.Check(CheckOptions{}) != nil {
			t.Fatal("rejected")
		}
		_ = s
	})
	if n != 0 {
		t.Errorf("%v allocations per decode", n)
	}
}

func BenchmarkDecodeCheckPtRegs(b *testing.B) {
	p := PtRegs{IP: 0xffffffff812a755e, CS: 0x10, Flags: 0x206, SP: 0xffffc90000103e38, SS: 0x18}
	buf := p.Encode()
	b.ReportAllocs()
	for b.Loop() {
		q, _ := DecodePtRegs(buf[:])
		if q.Check(CheckOptions{}) != nil {
			b.Fatal("rejected")
		}
	}
}

func TestRegsCopy(t *testing.T) {
	var a, b Regs
	b.Set(RBX, 1)
	b.Set(RBP, 2)
	b.Set(RIP, 3)
	a.Set(RAX, 9)
	a.Set(RBP, 7)
	a.Copy(&b, 1<<RBX|1<<RBP|1<<R12)
	var want Regs
	want.Set(RAX, 9)
	want.Set(RBX, 1)
	want.Set(RBP, 2)
	if a != want {
		t.Errorf("got %+v, want %+v", a, want)
	}
}
