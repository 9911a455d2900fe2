package dump

import (
	"bytes"
	"encoding/binary"
	"testing"
)

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

// fixtureLZOPages returns the compressed bytes of every LZO page of the
// makedumpfile fixture.
func fixtureLZOPages(tb testing.TB) [][]byte {
	src := openBytes(tb, makedumpfileFixture(tb, "nmibt-d31.kdump-lzo"))
	m := src.PhysMemory().(*kdumpMemory)
	raw := src.r.(*bytes.Reader)
	var pages [][]byte
	for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
		idx, ok := m.present(pfn)
		if !ok {
			continue
		}
		var db [pageDescSize]byte
		raw.ReadAt(db[:], int64(m.descOff+idx*pageDescSize))
		off, sz, fl := binary.LittleEndian.Uint64(db[:]), binary.LittleEndian.Uint32(db[8:]), binary.LittleEndian.Uint32(db[12:])
		if fl != dumpLZO {
			continue
		}
		b := make([]byte, sz)
		raw.ReadAt(b, int64(off))
		pages = append(pages, b)
	}
	if len(pages) == 0 {
		tb.Fatal("no LZO pages in the fixture")
	}
	return pages
}

// Every LZO page of the makedumpfile fixture, whole and cut short,
// decompresses as the reference decoder does it.
func TestLZO1XMatchesReference(t *testing.T) {
	pages := fixtureLZOPages(t)
	for i, b := range pages {
		for _, in := range [][]byte{b, b[:len(b)-1], b[:len(b)/2]} {
			got, err := lzo1xDecompress(in, 4096)
			want, werr := lzo1xReference(in, 4096)
			if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
				t.Fatalf("page %d (%d of %d bytes): %d bytes, %v; reference %d bytes, %v", i, len(in), len(b), len(got), err, len(want), werr)
			}
		}
		if got, err := lzo1xDecompress(b, 4095); err == nil {
			t.Fatalf("page %d: %d bytes into 4095", i, len(got))
		}
	}
}

// FuzzLZO1X: any input decodes as the reference decoder decodes it (the
// same bytes, or an error for both), into 4096 bytes and into as many as
// the input has, and never past that.
func FuzzLZO1X(f *testing.F) {
	f.Add([]byte{17 + 3, 'a', 'b', 'c', 32 | 7, (3 - 1) << 2, 0, 0x11, 0, 0})
	f.Add([]byte{17 + 1, 'a', 16 | 1, 0, 0, 32, 0, 3, 0, 0, 0x11, 0, 0})
	for _, b := range fixtureLZOPages(f)[:8] {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, max := range []int{4096, len(b)} {
			out, err := lzo1xDecompress(b, max)
			if err == nil && len(out) > max {
				t.Fatalf("%d bytes out, max %d", len(out), max)
			}
			want, werr := lzo1xReference(b, max)
			if !bytes.Equal(out, want) || (err == nil) != (werr == nil) {
				t.Fatalf("max %d: %d bytes, %v; reference %d bytes, %v", max, len(out), err, len(want), werr)
			}
		}
	})
}

// BenchmarkLZO1X decompresses every LZO page of the makedumpfile fixture.
func BenchmarkLZO1X(b *testing.B) {
	pages := fixtureLZOPages(b)
	n := 0
	for _, p := range pages {
		n += len(p)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pages {
			if _, err := lzo1xDecompress(p, 4096); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(pages)), "pages/op")
}

// lzo1xReference is lzo1xDecompress as it was before it was made faster
// (closures, a byte-by-byte match copy): the behaviour the fast one must
// keep. It decodes one LZO1X block (as written by lzo1x_1_compress,
// the LZO makedumpfile and QEMU use) into at most max bytes. It follows the
// Linux kernel's lzo1x_decompress_safe: every read and write is bounds
// checked, so corrupt input gives errLZO, never a panic or an overrun.
func lzo1xReference(in []byte, max int) ([]byte, error) {
	out := make([]byte, 0, max)
	ip := 0
	need := func(n int) bool { return n >= 0 && ip+n <= len(in) }
	// literal copies n bytes from the input.
	literal := func(n int) bool {
		if !need(n) || len(out)+n > max {
			return false
		}
		out = append(out, in[ip:ip+n]...)
		ip += n
		return true
	}
	// match copies n bytes from dist bytes back in the output.
	match := func(dist, n int) bool {
		if dist <= 0 || dist > len(out) || len(out)+n > max {
			return false
		}
		p := len(out) - dist
		for i := 0; i < n; i++ {
			out = append(out, out[p+i])
		}
		return true
	}
	// runLen reads the zero-extended length of a long literal or match.
	runLen := func(base int) (int, bool) {
		zeros := 0
		for need(1) && in[ip] == 0 {
			ip++
			zeros++
			if zeros > len(in) {
				return 0, false
			}
		}
		if !need(1) {
			return 0, false
		}
		n := base + 255*zeros + int(in[ip])
		ip++
		return n, true
	}
	if len(in) < 3 {
		return nil, errLZO
	}
	state := 0
	if in[0] > 17 {
		t := int(in[0]) - 17
		ip++
		if !literal(t) {
			return nil, errLZO
		}
		if t < 4 {
			state = t
		} else {
			state = 4
		}
	}
	for {
		if !need(1) {
			return nil, errLZO
		}
		t := int(in[ip])
		ip++
		var dist, n, next int
		switch {
		case t < 16:
			switch state {
			case 0:
				if t == 0 {
					v, ok := runLen(15)
					if !ok {
						return nil, errLZO
					}
					t = v
				}
				if !literal(t + 3) {
					return nil, errLZO
				}
				state = 4
				continue
			case 4:
				if !need(1) {
					return nil, errLZO
				}
				next = t & 3
				dist = 1 + 0x800 + t>>2 + int(in[ip])<<2
				ip++
				n = 3
			default:
				if !need(1) {
					return nil, errLZO
				}
				next = t & 3
				dist = 1 + t>>2 + int(in[ip])<<2
				ip++
				n = 2
			}
		case t >= 64:
			if !need(1) {
				return nil, errLZO
			}
			next = t & 3
			dist = 1 + (t>>2)&7 + int(in[ip])<<3
			ip++
			n = t>>5 + 1
		case t >= 32:
			n = t&31 + 2
			if n == 2 {
				v, ok := runLen(31)
				if !ok {
					return nil, errLZO
				}
				n = v + 2
			}
			if !need(2) {
				return nil, errLZO
			}
			le := int(in[ip]) | int(in[ip+1])<<8
			ip += 2
			dist = 1 + le>>2
			next = le & 3
		default: // 16..31
			n = t&7 + 2
			if n == 2 {
				v, ok := runLen(7)
				if !ok {
					return nil, errLZO
				}
				n = v + 2
			}
			if !need(2) {
				return nil, errLZO
			}
			le := int(in[ip]) | int(in[ip+1])<<8
			ip += 2
			dist = (t&8)<<11 + le>>2
			next = le & 3
			if dist == 0 {
				if n != 3 {
					return nil, errLZO
				}
				return out, nil // end of stream
			}
			dist += 0x4000
		}
		if !match(dist, n) || !literal(next) {
			return nil, errLZO
		}
		state = next
	}
}
