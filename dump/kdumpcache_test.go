package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"testing"
)

// zlibKdump builds a diskdump file of 4 KiB pages covering maxMapNr page
// frames, with the frames pfns dumped (zlib-compressed, each page filled
// with its own pfn), and returns it with the file offset where the
// pages' stored bytes begin.
func zlibKdump(t *testing.T, maxMapNr uint64, pfns []uint64) (f []byte, desc, data int64) {
	t.Helper()
	const blk = 4096
	le := binary.LittleEndian
	bmBlks := (2*((maxMapNr+7)/8) + blk - 1) / blk
	f = make([]byte, (2+2*((bmBlks+1)/2))*blk)
	bmBlks = uint64(len(f)/blk - 2)
	copy(f, kdumpSignature)
	le.PutUint32(f[8:], 6)
	le.PutUint32(f[424:], dumpZlib)
	le.PutUint32(f[428:], blk)
	le.PutUint32(f[432:], 1)
	le.PutUint32(f[436:], uint32(bmBlks))
	le.PutUint32(f[440:], uint32(maxMapNr))
	le.PutUint32(f[460:], 1)
	half := 2*blk + bmBlks*blk/2
	for _, pfn := range pfns { // pfns in increasing order
		f[2*blk+pfn/8] |= 1 << (pfn % 8)
		f[half+pfn/8] |= 1 << (pfn % 8)
	}
	desc = int64(len(f))
	f = append(f, make([]byte, len(pfns)*pageDescSize)...)
	data = int64(len(f))
	for i, pfn := range pfns {
		page := bytes.Repeat(binary.LittleEndian.AppendUint64(nil, pfn), blk/8)
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		zw.Write(page)
		zw.Close()
		d := f[desc+int64(i)*pageDescSize:]
		le.PutUint64(d, uint64(len(f)))
		le.PutUint32(d[8:], uint32(zb.Len()))
		le.PutUint32(d[12:], dumpZlib)
		f = append(f, zb.Bytes()...)
	}
	return f, desc, data
}

// pageReads counts the reads of a kdump file: of its page descriptors
// and of its pages' stored bytes.
type pageReads struct {
	r                *bytes.Reader
	desc, data       int64 // where the descriptors and the pages begin
	descReads, pages int
}

func (c *pageReads) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case off >= c.data:
		c.pages++
	case off >= c.desc:
		c.descReads++
	}
	return c.r.ReadAt(p, off)
}

// readPFN reads page frame pfn of m and checks what it holds.
func readPFN(t *testing.T, m *kdumpMemory, pfn uint64) {
	t.Helper()
	var w [8]byte
	if _, err := m.ReadAt(w[:], pfn*4096+4088); err != nil || binary.LittleEndian.Uint64(w[:]) != pfn {
		t.Fatalf("pfn %#x: %x, %v", pfn, w, err)
	}
}

// Page frames a multiple of 2048 apart (task_structs at one slab offset,
// stacks of one size) are all kept: each is decompressed once however
// the reads interleave, and their descriptors, close together in the
// file, are read in one block.
func TestKdumpCacheStrided(t *testing.T) {
	var pfns []uint64
	for i := range 2 * pageCacheWays {
		pfns = append(pfns, uint64(i)*2048)
	}
	f, desc, data := zlibKdump(t, pfns[len(pfns)-1]+1, pfns)
	c := &pageReads{r: bytes.NewReader(f), desc: desc, data: data}
	d, err := NewFile(c, int64(len(f)))
	if err != nil {
		t.Fatal(err)
	}
	m := d.PhysMemory().(*kdumpMemory)
	for range 3 {
		for _, pfn := range pfns {
			readPFN(t, m, pfn)
		}
	}
	if c.pages != len(pfns) || c.descReads != 1 {
		t.Errorf("%d reads of stored pages and %d of descriptors for %d pages, want %d and 1", c.pages, c.descReads, len(pfns), len(pfns))
	}
}

// A full set of the page cache gives up its least recently used page.
func TestKdumpCacheLRU(t *testing.T) {
	var same []uint64 // pageCacheWays+1 frames of one set
	for pfn := uint64(0); len(same) <= pageCacheWays; pfn++ {
		if pageSetOf(pfn) == pageSetOf(0) {
			same = append(same, pfn)
		}
	}
	f, desc, data := zlibKdump(t, same[len(same)-1]+1, same)
	c := &pageReads{r: bytes.NewReader(f), desc: desc, data: data}
	d, err := NewFile(c, int64(len(f)))
	if err != nil {
		t.Fatal(err)
	}
	m := d.PhysMemory().(*kdumpMemory)
	for _, pfn := range same[:pageCacheWays] {
		readPFN(t, m, pfn)
	}
	readPFN(t, m, same[0])             // a hit, now the most recently used
	readPFN(t, m, same[pageCacheWays]) // replaces same[1]
	if c.pages != pageCacheWays+1 {
		t.Fatalf("%d reads of stored pages, want %d", c.pages, pageCacheWays+1)
	}
	readPFN(t, m, same[0]) // kept
	if c.pages != pageCacheWays+1 {
		t.Errorf("the most recently used page was replaced")
	}
	readPFN(t, m, same[1]) // read again
	if c.pages != pageCacheWays+2 {
		t.Errorf("the least recently used page was kept")
	}
}
