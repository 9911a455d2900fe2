package dump

import "testing"

func TestLZO1XHandMade(t *testing.T) {
	// "abcabcabcabc": literal "abc" then a match of 9 at distance 3
	// (M2 form 0x60|... cannot encode 9, so use the 32..63 form: 001LLLLL
	// with L = 9-2 = 7, then le16 (dist-1)<<2), then the end marker.
	in := []byte{17 + 3, 'a', 'b', 'c', 32 | 7, (3 - 1) << 2, 0, 0x11, 0, 0}
	got, err := lzo1xDecompress(in, 4096)
	if err != nil || string(got) != "abcabcabcabc" {
		t.Fatalf("got %q, %v", got, err)
	}
	for i := range in {
		if _, err := lzo1xDecompress(in[:i], 4096); err == nil && i < len(in) {
			t.Errorf("truncated at %d: no error", i)
		}
	}
}

func FuzzLZO1X(f *testing.F) {
	f.Add([]byte{17 + 3, 'a', 'b', 'c', 32 | 7, (3 - 1) << 2, 0, 0x11, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := lzo1xDecompress(b, 4096)
		if err == nil && len(out) > 4096 {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}
