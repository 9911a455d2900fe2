package leb128

import "testing"

// The examples of DWARF 5 §7.6 (Figures 22 and 23), and cut-short input.
func TestDWARFExamples(t *testing.T) {
	for _, c := range []struct {
		b []byte
		u uint64
	}{{[]byte{2}, 2}, {[]byte{127}, 127}, {[]byte{0x80, 1}, 128}, {[]byte{0x81, 1}, 129}, {[]byte{0x82, 1}, 130}, {[]byte{0xb9, 0x64}, 12857}} {
		if v, n := Unsigned(c.b); v != c.u || n != len(c.b) {
			t.Errorf("Unsigned(% x) = %d, %d; want %d, %d", c.b, v, n, c.u, len(c.b))
		}
	}
	for _, c := range []struct {
		b []byte
		s int64
	}{{[]byte{2}, 2}, {[]byte{0x7e}, -2}, {[]byte{0xff, 0}, 127}, {[]byte{0x81, 0x7f}, -127}, {[]byte{0x80, 1}, 128}, {[]byte{0x80, 0x7f}, -128}, {[]byte{0x81, 1}, 129}, {[]byte{0xff, 0x7e}, -129}} {
		if v, n := Signed(c.b); v != c.s || n != len(c.b) {
			t.Errorf("Signed(% x) = %d, %d; want %d, %d", c.b, v, n, c.s, len(c.b))
		}
	}
	if _, n := Unsigned([]byte{0x80, 0x80}); n != 0 {
		t.Errorf("Unsigned of a cut-short number: length %d, want 0", n)
	}
	if _, n := Signed(nil); n != 0 {
		t.Errorf("Signed(nil): length %d, want 0", n)
	}
}
