package ptregs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// FuzzDecodePtRegs feeds arbitrary bytes to the pt_regs and iret decoders,
// Check and the formatters: none may panic, an error comes exactly with
// short input, and PtRegs → bytes → PtRegs is the identity.
func FuzzDecodePtRegs(f *testing.F) {
	for _, p := range []PtRegs{
		{IP: 0xffffffff812a755e, CS: 0x10, Flags: 0x206, SP: 0xffffc90000103e38, SS: 0x18, OrigAX: ^uint64(0)},
		{IP: 0x47b6fd, CS: 0x33, Flags: 0x246, SP: 0x7ffc27f00e08, SS: 0x2b, AX: 0xffffffffffffffda},
	} {
		b := p.Encode()
		f.Add(b[:])
	}
	f.Add([]byte{})
	f.Add(make([]byte, IretFrameSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePtRegs(b)
		if (err != nil) != (len(b) < PtRegsSize) {
			t.Fatalf("len %d: err %v", len(b), err)
		}
		fr, ierr := DecodeIretFrame(b)
		if (ierr != nil) != (len(b) < IretFrameSize) {
			t.Fatalf("len %d: iret err %v", len(b), ierr)
		}
		opt := CheckOptions{IsText: func(uint64) bool { return true }, OnStack: func(uint64) bool { return true }}
		ferr := fr.Check(opt)
		if fr.Plausible(opt) != (ferr == nil) {
			t.Fatalf("Plausible %v, Check %v", fr.Plausible(opt), ferr)
		}
		var ce *CheckError
		if ferr != nil && !errors.As(ferr, &ce) {
			t.Fatalf("Check returned %T", ferr)
		}
		_ = FormatIretCode(io.Discard, &fr, testSyms, func(a uint64, c []byte) bool { return a&1 == 0 })
		if err != nil {
			return
		}
		perr := p.Check(CheckOptions{LA57: true, LDT: true})
		if perr != nil && !errors.As(perr, &ce) {
			t.Fatalf("Check returned %T", perr)
		}
		var out bytes.Buffer
		if err := FormatPtRegs(&out, &p, testSyms); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(out.Bytes(), []byte("\n")); n != 7 {
			t.Fatalf("%d lines:\n%s", n, out.String())
		}
		enc := p.Encode()
		if !bytes.Equal(enc[:], b[:PtRegsSize]) {
			t.Fatal("Encode(Decode(b)) != b")
		}
		r := p.Regs()
		q := PtRegsFromRegs(&r)
		q.OrigAX, q.CS, q.Flags, q.SS = p.OrigAX, p.CS, p.Flags, p.SS
		if q != p {
			t.Fatalf("PtRegsFromRegs(Regs()) = %+v, want %+v", q, p)
		}
	})
}

// FuzzDecodePrStatus feeds arbitrary bytes to DecodePrStatus: no panic, an
// error exactly with short input, and PrStatus → bytes → PrStatus is the
// identity.
func FuzzDecodePrStatus(f *testing.F) {
	if seed, err := os.ReadFile("testdata/prstatus/a_deepchain-O0fp.bin"); err == nil {
		f.Add(seed)
	}
	f.Add(make([]byte, PrStatusSize))
	f.Add(make([]byte, PrStatusSize-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodePrStatus(b)
		if (err != nil) != (len(b) < PrStatusSize) {
			t.Fatalf("len %d: err %v", len(b), err)
		}
		if err != nil {
			return
		}
		_ = s.Regs.Check(CheckOptions{})
		enc := s.Encode()
		s2, err := DecodePrStatus(enc[:])
		if err != nil || s2 != s {
			t.Fatalf("round trip: %+v != %+v (%v)", s2, s, err)
		}
	})
}
