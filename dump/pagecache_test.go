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

// A segMemory's windows (unwind.MemoryWindows) hold what ReadAt reads at
// every address they cover, from the dump file and from a user core's
// backing file, and keep those bytes after the pages they came from were
// evicted and their slots read again (a walk may still hold them).
func TestSegMemoryWindows(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	file := make([]byte, 300*cachePage+77)
	rng.Read(file)
	exe := make([]byte, 40*cachePage)
	rng.Read(exe)
	progs := []Segment{
		{Type: ptLoad, Flags: 5, Off: 0x1000, Vaddr: 0x400000, Filesz: 0, Memsz: 0x20000},                         // text: from the exe
		{Type: ptLoad, Flags: 6, Off: 0x3123, Vaddr: 0x600000, Filesz: 0x9000, Memsz: 0xa000},                     // data, then a hole
		{Type: ptLoad, Flags: 6, Off: 0x10000, Vaddr: 0x1000000, Filesz: 290 * cachePage, Memsz: 290 * cachePage}, // reaches past the file's end
		{Type: ptLoad, Flags: 0, Off: 0, Vaddr: 0x900000, Filesz: 0, Memsz: 0x1000},                               // guard page
	}
	m := newSegMemory(bytes.NewReader(file), int64(len(file)), progs, false)
	m.strict = true
	m.addBacking(0x400000, 0x420000, 0x3000, bytes.NewReader(exe))
	type lent struct {
		lo   uint64
		data []byte
		want []byte
	}
	var kept []lent
	addrs := []uint64{0x400000, 0x41ffff, 0x600000, 0x608fff, 0x609000, 0x1000000, 0x1000000 + 290*cachePage - 1, 0x900000, 0x3ff000}
	for i := 0; i < 5000; i++ {
		s := progs[rng.Intn(len(progs))]
		addrs = append(addrs, s.Vaddr+uint64(rng.Int63n(int64(s.Memsz)+64)))
	}
	for _, a := range addrs {
		lo, data := m.Window(a)
		if data == nil {
			continue
		}
		if lo != a || len(data) == 0 {
			t.Fatalf("Window(%#x) = %#x, %d bytes", a, lo, len(data))
		}
		want := make([]byte, len(data))
		if n, err := m.ReadAt(want, a); n != len(want) || err != nil {
			t.Fatalf("Window(%#x) gives %d bytes; ReadAt reads %d: %v", a, len(data), n, err)
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("Window(%#x) differs from ReadAt", a)
		}
		if len(kept) < 200 {
			kept = append(kept, lent{lo, data, want})
		}
	}
	for _, a := range []uint64{0x609000, 0x900000, 0x3ff000, 0x1000000 + 300*cachePage} {
		if _, data := m.Window(a); data != nil {
			t.Errorf("Window(%#x): %d bytes where ReadAt fails", a, len(data))
		}
	}
	if _, data := m.Window(0x1000000 + 290*cachePage - 1); data != nil {
		t.Errorf("a window past the end of the file")
	}
	for _, k := range kept {
		if !bytes.Equal(k.data, k.want) {
			t.Fatalf("the window at %#x changed after later reads", k.lo)
		}
	}
}
