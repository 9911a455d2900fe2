package cfi

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// ehFrameOf reads a file's .eh_frame and .eh_frame_hdr with their
// addresses.
func ehFrameOf(tb testing.TB, path string) (eh []byte, ehAddr uint64, hdr []byte, hdrAddr uint64) {
	tb.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer ef.Close()
	for _, name := range []string{".eh_frame", ".eh_frame_hdr"} {
		s := ef.Section(name)
		if s == nil {
			tb.Fatalf("%s: no %s", path, name)
		}
		b, err := s.Data()
		if err != nil {
			tb.Fatal(err)
		}
		if name == ".eh_frame" {
			eh, ehAddr = b, s.Addr
		} else {
			hdr, hdrAddr = b, s.Addr
		}
	}
	return eh, ehAddr, hdr, hdrAddr
}

// sameAnswers reports where ParseEH's table answers otherwise than
// Parse's: Len, Range, and Find at and around every FDE's bounds.
func sameAnswers(eh []byte, ehAddr uint64, hdr []byte, hdrAddr, bias uint64) (indexed bool, diff error) {
	want, werr := Parse(eh, EHFrame, ehAddr, bias)
	got, gerr := ParseEH(eh, ehAddr, hdr, hdrAddr, bias)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		return false, fmt.Errorf("ParseEH error %v, Parse %v", gerr, werr)
	}
	if werr != nil {
		return false, nil
	}
	indexed = got.eh != nil
	if got.Len() != want.Len() {
		return indexed, fmt.Errorf("Len %d, want %d", got.Len(), want.Len())
	}
	var pcs []uint64
	for i := range want.Len() {
		s, e := want.Range(i)
		pcs = append(pcs, s-1, s, s+(e-s)/2, e-1, e)
	}
	for _, pc := range pcs {
		var g, w Row
		gerr, werr := got.Find(pc, &g), want.Find(pc, &w)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(g, w) {
			return indexed, fmt.Errorf("Find(%#x) = %+v, %v; want %+v, %v", pc, g, gerr, w, werr)
		}
	}
	for _, i := range []int{0, want.Len() / 2, want.Len() - 1} {
		gs, ge := got.Range(i)
		ws, we := want.Range(i)
		if gs != ws || ge != we {
			return indexed, fmt.Errorf("Range(%d) = %#x-%#x, want %#x-%#x", i, gs, ge, ws, we)
		}
	}
	return indexed, nil
}

// TestParseEH holds ParseEH's tables to Parse's for the test program and,
// with the user corpus, libc and ld.so: through their headers (which must
// be used) and through damaged copies (which must not be, and must still
// give Parse's answers).
func TestParseEH(t *testing.T) {
	paths := []string{"../../symbols/testdata/prog"}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6"), filepath.Join(dir, "lib", "ld-linux-x86-64.so.2"))
	}
	for _, path := range paths {
		eh, ehAddr, hdr, hdrAddr := ehFrameOf(t, path)
		for _, bias := range []uint64{0, 0x7f1234560000} {
			indexed, err := sameAnswers(eh, ehAddr, hdr, hdrAddr, bias)
			if err != nil {
				t.Errorf("%s at %#x: %v", filepath.Base(path), bias, err)
			}
			if !indexed {
				t.Errorf("%s at %#x: the header was not used", filepath.Base(path), bias)
			}
		}
		le := binary.LittleEndian
		damage := map[string]func(h []byte) []byte{
			"version 2":        func(h []byte) []byte { h[0] = 2; return h },
			"other encoding":   func(h []byte) []byte { h[3] = 0x1b; return h },
			"other .eh_frame":  func(h []byte) []byte { le.PutUint32(h[4:], le.Uint32(h[4:])+8); return h },
			"one pair more":    func(h []byte) []byte { le.PutUint32(h[8:], le.Uint32(h[8:])+1); return h },
			"one pair less":    func(h []byte) []byte { le.PutUint32(h[8:], le.Uint32(h[8:])-1); return h[:len(h)-8] },
			"count past end":   func(h []byte) []byte { le.PutUint32(h[8:], 1<<30); return h },
			"cut short":        func(h []byte) []byte { return h[:len(h)/2] },
			"unsorted":         func(h []byte) []byte { swapPairs(h, 1, 2); return h },
			"location shifted": func(h []byte) []byte { le.PutUint32(h[12+8:], le.Uint32(h[12+8:])+1); return h },
			"points at a CIE":  func(h []byte) []byte { le.PutUint32(h[16:], uint32(int32(ehAddr)-int32(hdrAddr))); return h },
			"empty":            func([]byte) []byte { return nil },
		}
		for what, f := range damage {
			h := f(append([]byte(nil), hdr...))
			indexed, err := sameAnswers(eh, ehAddr, h, hdrAddr, 0x1000)
			if err != nil {
				t.Errorf("%s, header %s: %v", filepath.Base(path), what, err)
			}
			if indexed {
				t.Errorf("%s, header %s: used", filepath.Base(path), what)
			}
		}
	}
}

// swapPairs swaps the header table's pairs i and j.
func swapPairs(h []byte, i, j int) {
	a, b := h[12+8*i:12+8*i+8], h[12+8*j:12+8*j+8]
	var tmp [8]byte
	copy(tmp[:], a)
	copy(a, b)
	copy(b, tmp[:])
}

// FuzzParseEH reads the test program's .eh_frame through fuzzed headers
// (the real one as a seed): ParseEH must answer as Parse does, whether it
// uses the header or not, and never panic.
func FuzzParseEH(f *testing.F) {
	eh, ehAddr, hdr, hdrAddr := ehFrameOf(f, "../../symbols/testdata/prog")
	f.Add(hdr, uint64(0))
	f.Add(hdr[:len(hdr)-8], uint64(0x7f0000000000))
	f.Fuzz(func(t *testing.T, h []byte, bias uint64) {
		if _, err := sameAnswers(eh, ehAddr, h, hdrAddr, bias); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkParseEHLibc reads the user corpus's libc .eh_frame through its
// header and finds one pc's rows: what a backtrace's first lookup in libc
// costs (BenchmarkParseLibcEH parses the whole section).
func BenchmarkParseEHLibc(b *testing.B) {
	dir, err := corpus.Find("user")
	if err != nil {
		b.Skip(err)
	}
	eh, ehAddr, hdr, hdrAddr := ehFrameOf(b, filepath.Join(dir, "lib", "libc.so.6"))
	want, err := Parse(eh, EHFrame, ehAddr, 0)
	if err != nil {
		b.Fatal(err)
	}
	pc, _ := want.Range(want.Len() / 2)
	b.ReportAllocs()
	for b.Loop() {
		t, err := ParseEH(eh, ehAddr, hdr, hdrAddr, 0)
		if err != nil || t.eh == nil {
			b.Fatal("the header was not used", err)
		}
		var row Row
		if err := t.Find(pc, &row); err != nil {
			b.Fatal(err)
		}
	}
}
