package dump

import (
	"bytes"
	"io"
	"math/rand"
	"testing"
)

type countingReader struct {
	r     io.ReaderAt
	reads int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}

// The page cache returns exactly what the file holds (short reads and
// io.EOF at its end included) and reads each page of a word-by-word walk
// once.
func TestPageCache(t *testing.T) {
	data := make([]byte, 5*cachePage+123)
	rand.New(rand.NewSource(1)).Read(data)
	cr := &countingReader{r: bytes.NewReader(data)}
	c := newPageCache(cr)
	var w [8]byte
	for off := 0; off+8 <= 3*cachePage; off += 8 {
		if n, err := c.ReadAt(w[:], int64(off)); n != 8 || err != nil || !bytes.Equal(w[:], data[off:off+8]) {
			t.Fatalf("word at %#x: %d, %v", off, n, err)
		}
	}
	if cr.reads != 3 {
		t.Errorf("%d reads of the file for 3 pages", cr.reads)
	}
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 2000; i++ {
		off := rng.Intn(len(data) + 100)
		p := make([]byte, rng.Intn(3*cachePage))
		want := make([]byte, len(p))
		wn, werr := bytes.NewReader(data).ReadAt(want, int64(off))
		n, err := c.ReadAt(p, int64(off))
		if n != wn || !bytes.Equal(p[:n], want[:wn]) || (err == nil) != (werr == nil) {
			t.Fatalf("ReadAt(%d bytes at %#x) = %d, %v; the file gives %d, %v", len(p), off, n, err, wn, werr)
		}
	}
}
