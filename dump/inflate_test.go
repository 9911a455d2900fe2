package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"math/rand"
	"os"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
	"github.com/unwind-dev/unwind/internal/corpus"
)

// stdInflate is what the standard library's zlib reader makes of in, when
// it is a whole zlib stream of exactly n bytes.
func stdInflate(in []byte, n int) ([]byte, bool) {
	zr, err := zlib.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(zr, int64(n)+1))
	if err != nil || len(b) != n {
		return nil, false
	}
	// The checksum is checked at the end of the stream.
	if _, err := zr.Read(make([]byte, 1)); err != io.EOF {
		return nil, false
	}
	return b, true
}

// testZlibPages returns pages of test data compressed at every level, with
// stored, fixed and dynamic blocks.
func testZlibPages(t testing.TB) [][]byte {
	rng := rand.New(rand.NewSource(1))
	var pages [][]byte
	for i := range 12 {
		p := make([]byte, 4096)
		switch i % 4 {
		case 0: // text-like
			for j := range p {
				p[j] = "abcdefgh  \n"[rng.Intn(11)]
			}
		case 1: // random: stored blocks
			rng.Read(p)
		case 2: // runs and structures
			for j := 0; j < len(p); j += 8 {
				p[j] = byte(j / 64)
				p[j+7] = 0xff
			}
		case 3: // zeros with a few words
			for range 20 {
				p[rng.Intn(len(p))] = byte(rng.Intn(256))
			}
		}
		for _, level := range []int{zlib.NoCompression, zlib.BestSpeed, zlib.DefaultCompression, zlib.BestCompression, zlib.HuffmanOnly} {
			var b bytes.Buffer
			w, _ := zlib.NewWriterLevel(&b, level)
			w.Write(p)
			w.Close()
			pages = append(pages, b.Bytes())
		}
	}
	return pages
}

// inflatePage decompresses what the standard library does, and refuses a
// stream damaged anywhere (a bit flipped, cut short, another length).
func TestInflatePage(t *testing.T) {
	for i, z := range testZlibPages(t) {
		want, ok := stdInflate(z, 4096)
		if !ok {
			t.Fatalf("page %d: the standard library refuses it", i)
		}
		got := make([]byte, 4096)
		if err := inflatePage(z, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("page %d (%d bytes): %v, equal %v", i, len(z), err, bytes.Equal(got, want))
		}
		if err := inflatePage(z[:len(z)-1], got); err == nil {
			t.Errorf("page %d cut short: no error", i)
		}
		if err := inflatePage(z, make([]byte, 4095)); err == nil {
			t.Errorf("page %d into 4095 bytes: no error", i)
		}
		if err := inflatePage(z, make([]byte, 4097)); err == nil {
			t.Errorf("page %d into 4097 bytes: no error", i)
		}
		for bit := i % 31; bit < 8*len(z); bit += 31 {
			bad := bytes.Clone(z)
			bad[bit/8] ^= 1 << (bit % 8)
			want, ok := stdInflate(bad, 4096)
			err := inflatePage(bad, got)
			if (err == nil) != ok || ok && !bytes.Equal(got, want) {
				t.Fatalf("page %d, bit %d flipped: %v, the standard library's ok %v", i, bit, err, ok)
			}
		}
	}
}

// FuzzInflatePage: a zlib stream read as a page of n bytes decompresses
// as the standard library's zlib reader decompresses it, or is refused
// exactly when that reader refuses it (or it holds another length).
func FuzzInflatePage(f *testing.F) {
	for _, z := range testZlibPages(f)[:10] {
		f.Add(z, uint16(4096))
	}
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01}, uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, n uint16) {
		n %= 8193
		want, ok := stdInflate(in, int(n))
		got := make([]byte, n)
		err := inflatePage(in, got)
		if (err == nil) != ok {
			t.Fatalf("inflatePage: %v, the standard library's ok %v", err, ok)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatal("inflatePage decompresses differently")
		}
	})
}

// BenchmarkInflatePage decompresses zlib pages with inflatePage, and
// for comparison with the zlib readers of klauspost/compress (which
// kdump pages went through before) and of the standard library, each
// reset for the next page and read with io.ReadFull into the page: the
// zlib pages among the pages BenchmarkKdumpPages reads from the ~300-task
// dump when it was made (QEMU's kdump-zlib), else the test pages here.
func BenchmarkInflatePage(b *testing.B) {
	pages := taskDumpZlibPages(b)
	if pages == nil {
		pages = testZlibPages(b)
	}
	out := make([]byte, 4096)
	run := func(name string, inflate func(z []byte) error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, z := range pages {
					if err := inflate(z); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(pages))/b.Elapsed().Seconds(), "pages/s")
		})
	}
	run("inflatePage", func(z []byte) error { return inflatePage(z, out) })
	var src bytes.Reader
	var kz, sz io.ReadCloser
	run("klauspost", func(z []byte) error {
		src.Reset(z)
		var err error
		if kz == nil {
			kz, err = kzlib.NewReader(&src)
		} else {
			err = kz.(kzlib.Resetter).Reset(&src, nil)
		}
		if err == nil {
			_, err = io.ReadFull(kz, out)
		}
		return err
	})
	run("stdlib", func(z []byte) error {
		src.Reset(z)
		var err error
		if sz == nil {
			sz, err = zlib.NewReader(&src)
		} else {
			err = sz.(zlib.Resetter).Reset(&src, nil)
		}
		if err == nil {
			_, err = io.ReadFull(sz, out)
		}
		return err
	})
}

// taskDumpZlibPages returns the stored bytes of the zlib pages among the
// pages benchKdumpPages reads from the ~300-task dump, nil when it is not
// there or not a zlib kdump.
func taskDumpZlibPages(tb testing.TB) [][]byte {
	path, _, err := corpus.FindTaskDump()
	if err != nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	d, err := NewFile(f, fi.Size())
	if err != nil {
		return nil
	}
	m, ok := d.PhysMemory().(*kdumpMemory)
	if !ok {
		return nil
	}
	var pages [][]byte
	for _, pfn := range benchPFNs(m) {
		idx, _ := m.present(pfn)
		db, err := m.descriptor(idx)
		if err != nil {
			tb.Fatal(err)
		}
		off, sz, flags := binary.LittleEndian.Uint64(db[:]), binary.LittleEndian.Uint32(db[8:]), binary.LittleEndian.Uint32(db[12:])
		if flags != dumpZlib {
			continue
		}
		z := make([]byte, sz)
		if _, err := f.ReadAt(z, int64(off)); err != nil {
			tb.Fatal(err)
		}
		pages = append(pages, z)
	}
	return pages
}
