package dump

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/unwind"
)

// The makedumpfile "diskdump" format (makedumpfile's diskdump_mod.h).
const (
	kdumpSignature   = "KDUMP   "
	kdumpMaxVersion  = 6
	kdumpHeaderSize  = 464 // struct disk_dump_header up to tasks[]
	kdumpSubHdrSize  = 104 // struct kdump_sub_header, version 6
	pageDescSize     = 24
	kdumpMaxNoteSize = 16 << 20

	dumpZlib       = 0x1
	dumpLZO        = 0x2
	dumpSnappy     = 0x4
	dumpIncomplete = 0x8
	dumpZstd       = 0x20

	// Decompressed pages kept: pageCacheSets sets of pageCacheWays
	// pages each, a page frame in the set a hash of its number picks
	// (pageSetOf), the least recently used page of a full set replaced
	// (2048 pages, 8 MiB of 4 KiB pages at most). The ~300-task dump's
	// task walk reads 951 distinct pages; a direct-mapped cache of 2048
	// slots decompressed 66 of them twice, where task_structs and stacks
	// a multiple of 2048 frames apart took turns in a slot.
	pageCacheSetBits = 8
	pageCacheSets    = 1 << pageCacheSetBits
	pageCacheWays    = 8

	// Page descriptors are read descBlock at a time (4080 bytes) and the
	// last descSlots blocks kept (direct mapped): the pages a walk reads
	// lie close together in the file (the task walk's 951 pages have
	// their descriptors in 71 such blocks), so most descriptors cost no
	// read of their own.
	descBlock = 170
	descSlots = 64
)

// KdumpHeader is the decoded header of a diskdump file.
type KdumpHeader struct {
	Version    int
	BlockSize  int
	SubHdrSize int    // in blocks
	BitmapBlks uint32 // both bitmaps, in blocks
	MaxMapNr   uint64 // number of page frames covered
	NrCPUs     int
	PhysBase   uint64
	Timestamp  int64  // seconds since the epoch
	Status     uint32 // DUMP_DH_* flags: the compression, incomplete
	// DumpLevel is makedumpfile's -d (a bit mask: 1 zero pages, 2 cache,
	// 4 private cache, 8 user pages, 16 free pages excluded); -1 when
	// the file has no sub-header to say.
	DumpLevel int
}

// Compression names the page compression the header announces: "zlib",
// "lzo", "snappy", "zstd", or "none". (Each page descriptor says how that
// page is stored; pages that do not shrink are stored raw.)
func (h KdumpHeader) Compression() string {
	switch {
	case h.Status&dumpZlib != 0:
		return "zlib"
	case h.Status&dumpLZO != 0:
		return "lzo"
	case h.Status&dumpSnappy != 0:
		return "snappy"
	case h.Status&dumpZstd != 0:
		return "zstd"
	}
	return "none"
}

// kdumpMemory is the physical memory of a diskdump file: page frame n is
// present when bit n of the second bitmap is set, and its descriptor is the
// rank of that bit among the set bits.
type kdumpMemory struct {
	r        io.ReaderAt
	size     int64
	blk      uint64
	bitmap   []uint64 // second (dumpable) bitmap
	ram      []uint64 // first bitmap: the pages the machine had
	rank     []uint32 // set bits before each 512-bit chunk
	descOff  uint64
	maxMapNr uint64
	level    int    // makedumpfile's dump level, -1 unknown
	ndesc    uint64 // page descriptors: the set bits of bitmap

	mu    sync.Mutex
	cache [pageCacheSets]pageSet
	tick  uint64 // the clock of pageSet.used
	descs [descSlots]*descBlockData
	zstd  *zstd.Decoder
}

// pageSet is one set of the page cache.
type pageSet struct {
	pfn  [pageCacheWays]uint64 // pfn+1; 0 = empty
	used [pageCacheWays]uint64 // kdumpMemory.tick at the last use
	data [pageCacheWays][]byte
}

// descBlockData is one block of page descriptors read from the file.
type descBlockData struct {
	block uint64 // descriptor index / descBlock
	b     []byte // whole descriptors only, fewer in the last block
}

// parseKdumpHeader decodes the header block and the sub-header.
func parseKdumpHeader(r io.ReaderAt, size int64) (*KdumpHeader, []byte, error) {
	var b [kdumpHeaderSize]byte
	if size < kdumpHeaderSize {
		return nil, nil, formatErr(0, ErrNotCore, "kdump file too short (%d bytes)", size)
	}
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, nil, formatErr(0, err, "reading kdump header")
	}
	le := binary.LittleEndian
	h := &KdumpHeader{
		Version:    int(int32(le.Uint32(b[8:]))),
		Timestamp:  int64(le.Uint64(b[408:])),
		Status:     le.Uint32(b[424:]),
		BlockSize:  int(int32(le.Uint32(b[428:]))),
		SubHdrSize: int(int32(le.Uint32(b[432:]))),
		BitmapBlks: le.Uint32(b[436:]),
		MaxMapNr:   uint64(le.Uint32(b[440:])),
		NrCPUs:     int(int32(le.Uint32(b[460:]))),
		DumpLevel:  -1,
	}
	if h.Version < 1 || h.Version > kdumpMaxVersion {
		return nil, nil, formatErr(8, ErrUnsupported, "kdump header version %d (1–%d understood)", h.Version, kdumpMaxVersion)
	}
	if h.BlockSize < 512 || h.BlockSize > 1<<20 || h.BlockSize&(h.BlockSize-1) != 0 {
		return nil, nil, formatErr(428, nil, "kdump block size %d", h.BlockSize)
	}
	if h.SubHdrSize < 0 || uint64(h.SubHdrSize) > uint64(size)/uint64(h.BlockSize) {
		return nil, nil, formatErr(432, nil, "kdump sub-header of %d blocks", h.SubHdrSize)
	}
	var sub []byte
	if h.SubHdrSize > 0 {
		sub = make([]byte, kdumpSubHdrSize)
		n, _ := r.ReadAt(sub, int64(h.BlockSize))
		sub = sub[:n]
		if n >= 8 {
			h.PhysBase = le.Uint64(sub)
		}
		if n >= 12 {
			h.DumpLevel = int(int32(le.Uint32(sub[8:])))
		}
		if h.Version >= 6 && n >= 104 {
			if m := le.Uint64(sub[96:]); m != 0 {
				h.MaxMapNr = m
			}
		}
	}
	return h, sub, nil
}

func newKdump(r io.ReaderAt, size int64) (*Dump, error) {
	h, sub, err := parseKdumpHeader(r, size)
	if err != nil {
		return nil, err
	}
	blk := uint64(h.BlockSize)
	bmOff := blk * (1 + uint64(h.SubHdrSize))
	bmLen := uint64(h.BitmapBlks) * blk
	if bmOff > uint64(size) || bmLen > uint64(size)-bmOff || bmLen == 0 {
		return nil, formatErr(436, nil, "kdump bitmaps (%d blocks at %#x) do not fit in the file", h.BitmapBlks, bmOff)
	}
	half := bmLen / 2
	if h.MaxMapNr > half*8 {
		return nil, formatErr(440, nil, "kdump max_mapnr %d larger than the bitmap (%d bits)", h.MaxMapNr, half*8)
	}
	m := &kdumpMemory{r: r, size: size, blk: blk, maxMapNr: h.MaxMapNr, descOff: bmOff + bmLen, level: h.DumpLevel}
	if m.ram, err = readBitmap(r, bmOff, h.MaxMapNr); err != nil {
		return nil, err
	}
	if m.bitmap, err = readBitmap(r, bmOff+half, h.MaxMapNr); err != nil {
		return nil, err
	}
	m.rank = make([]uint32, len(m.bitmap)/8+1)
	n := uint32(0)
	for i, w := range m.bitmap {
		if i%8 == 0 {
			m.rank[i/8] = n
		}
		n += uint32(bits.OnesCount64(w))
	}
	if uint64(n) > (uint64(size)-min(m.descOff, uint64(size)))/pageDescSize {
		return nil, formatErr(int64(m.descOff), nil, "%d page descriptors do not fit in the file", n)
	}
	m.ndesc = uint64(n)

	d := &Dump{r: r, size: size, kind: KindVmcore}
	le := binary.LittleEndian
	if h.Version >= 4 && len(sub) >= 64 {
		off, sz := le.Uint64(sub[48:]), le.Uint64(sub[56:])
		if sz > 0 {
			switch {
			case sz > kdumpMaxNoteSize || off > uint64(size):
				e := formatErr(56, nil, "kdump notes (%d bytes at %#x) do not fit in the file", sz, off)
				d.warnings = append(d.warnings, e.Error())
				d.notesEnd, d.notesProblem = 48, e
				sz = 0
			case sz > uint64(size)-off:
				e := formatErr(size, nil, "the %d bytes of kdump notes at %#x are cut short: the file ends", sz, off)
				d.warnings = append(d.warnings, e.Error())
				d.notesProblem = e
				sz = uint64(size) - off
			}
			if sz > 0 {
				b := make([]byte, sz)
				if _, err := r.ReadAt(b, int64(off)); err != nil {
					return nil, formatErr(int64(off), err, "reading kdump notes")
				}
				notes, err := ParseNotes(b, int64(off))
				d.notes = notes
				d.notesEnd = int64(off + sz)
				if err != nil {
					d.warnings = append(d.warnings, err.Error())
					if fe, ok := err.(*FormatError); ok {
						d.notesEnd = fe.Off
					}
					d.notesProblem = cmp.Or(d.notesProblem, err)
				}
			}
		}
	}
	hasInfo := false
	for _, n := range d.notes {
		hasInfo = hasInfo || n.Name == "VMCOREINFO"
	}
	if !hasInfo && h.Version >= 3 && len(sub) >= 48 {
		off, sz := le.Uint64(sub[32:]), le.Uint64(sub[40:])
		if sz > 0 && sz <= kdumpMaxNoteSize && off <= uint64(size) && sz <= uint64(size)-off {
			b := make([]byte, sz)
			if _, err := r.ReadAt(b, int64(off)); err == nil {
				d.notes = append(d.notes, Note{Name: "VMCOREINFO", Desc: b, Off: int64(off)})
			}
		}
	}
	d.kdump = h
	d.initKernelFrom(m, nil)
	return d, nil
}

// readBitmap reads a bitmap of n bits at file offset off.
func readBitmap(r io.ReaderAt, off, n uint64) ([]uint64, error) {
	raw := make([]byte, (n+7)/8)
	if _, err := r.ReadAt(raw, int64(off)); err != nil {
		return nil, formatErr(int64(off), err, "reading the kdump bitmap")
	}
	bm := make([]uint64, (len(raw)+7)/8)
	for i := range bm {
		var w [8]byte
		copy(w[:], raw[i*8:])
		bm[i] = binary.LittleEndian.Uint64(w[:])
	}
	if n%64 != 0 && len(bm) > 0 {
		bm[len(bm)-1] &= 1<<(n%64) - 1
	}
	return bm, nil
}

// present reports whether page frame pfn is in the dump and its
// descriptor index.
func (m *kdumpMemory) present(pfn uint64) (uint64, bool) {
	if pfn >= m.maxMapNr {
		return 0, false
	}
	w := pfn / 64
	if m.bitmap[w]&(1<<(pfn%64)) == 0 {
		return 0, false
	}
	n := uint64(m.rank[w/8])
	for i := w &^ 7; i < w; i++ {
		n += uint64(bits.OnesCount64(m.bitmap[i]))
	}
	n += uint64(bits.OnesCount64(m.bitmap[w] & (1<<(pfn%64) - 1)))
	return n, true
}

// page returns the decompressed contents of page frame pfn.
func (m *kdumpMemory) page(pfn uint64) ([]byte, error) {
	if p := m.cached(pfn); p != nil {
		return p, nil
	}
	idx, ok := m.present(pfn)
	if !ok {
		if pfn < m.maxMapNr && m.ram[pfn/64]&(1<<(pfn%64)) != 0 {
			// In the first bitmap (memory the machine had), not in the
			// second (what was dumped): makedumpfile left it out.
			return nil, &ExcludedPageError{Addr: pfn * m.blk, PFN: pfn, Level: m.level}
		}
		return nil, &unwind.MemoryError{Addr: pfn * m.blk, Len: int(m.blk)}
	}
	doff := int64(m.descOff + idx*pageDescSize)
	db, err := m.descriptor(idx)
	if err != nil {
		return nil, formatErr(doff, err, "reading page descriptor %d", idx)
	}
	le := binary.LittleEndian
	off, sz, flags := le.Uint64(db[:]), uint64(le.Uint32(db[8:])), le.Uint32(db[12:])
	if sz > 2*m.blk || off > uint64(m.size) || sz > uint64(m.size)-off {
		return nil, formatErr(doff, nil, "page descriptor for pfn %#x: %d bytes at %#x", pfn, sz, off)
	}
	codec := pageCodec(flags)
	if codec == "" {
		return nil, formatErr(doff, ErrUnsupported, "page descriptor for pfn %#x: unknown compression flags %#x", pfn, flags)
	}
	var buf []byte
	var scratch *[]byte
	if flags == 0 {
		buf = make([]byte, sz) // a raw page is kept as read
	} else {
		// A compressed page's bytes are read into a buffer the
		// decompressors do not keep, used again for the next page.
		scratch = getScratch(int(sz))
		buf = (*scratch)[:sz]
	}
	_, err = m.r.ReadAt(buf, int64(off))
	var out []byte
	if err == nil {
		out, err = m.decompress(buf, flags)
		if err != nil {
			err = formatErr(int64(off), err, "corrupt %s page: pfn %#x, %d bytes (descriptor at %#x)", codec, pfn, sz, doff)
		}
	} else {
		err = formatErr(int64(off), err, "reading page %#x", pfn)
	}
	if scratch != nil {
		scratchBufs.Put(scratch)
	}
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) != m.blk {
		return nil, formatErr(int64(off), nil, "corrupt %s page: pfn %#x, %d bytes (descriptor at %#x) decompress to %d bytes, want %d",
			codec, pfn, sz, doff, len(out), m.blk)
	}
	return m.keep(pfn, out), nil
}

// pageSetOf returns the page cache set of page frame pfn: a
// multiplicative hash, so that frames a power of two apart (the same
// slab offset, stacks of one size) spread over the sets.
func pageSetOf(pfn uint64) uint64 {
	return (pfn * 0x9e3779b97f4a7c15) >> (64 - pageCacheSetBits)
}

// cached returns page frame pfn from the page cache, or nil.
func (m *kdumpMemory) cached(pfn uint64) []byte {
	set := &m.cache[pageSetOf(pfn)]
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range set.pfn {
		if p == pfn+1 {
			m.tick++
			set.used[i] = m.tick
			return set.data[i]
		}
	}
	return nil
}

// keep puts page frame pfn's contents in the page cache, in place of the
// least recently used page of its set, and returns what the cache holds
// for pfn (another reader's copy when one came first).
func (m *kdumpMemory) keep(pfn uint64, data []byte) []byte {
	set := &m.cache[pageSetOf(pfn)]
	m.mu.Lock()
	defer m.mu.Unlock()
	old := 0
	for i, p := range set.pfn {
		if p == pfn+1 {
			return set.data[i]
		}
		if set.used[i] < set.used[old] {
			old = i
		}
	}
	m.tick++
	set.pfn[old], set.used[old], set.data[old] = pfn+1, m.tick, data
	return data
}

// descriptor returns page descriptor idx (idx < m.ndesc), reading its
// block of descriptors on a miss.
func (m *kdumpMemory) descriptor(idx uint64) ([pageDescSize]byte, error) {
	var db [pageDescSize]byte
	blk := idx / descBlock
	slot := &m.descs[blk%descSlots]
	m.mu.Lock()
	if d := *slot; d != nil && d.block == blk {
		copy(db[:], d.b[(idx%descBlock)*pageDescSize:])
		m.mu.Unlock()
		return db, nil
	}
	m.mu.Unlock()
	first := blk * descBlock
	n := min(descBlock, m.ndesc-first)
	d := &descBlockData{block: blk, b: make([]byte, n*pageDescSize)}
	if k, _ := m.r.ReadAt(d.b, int64(m.descOff+first*pageDescSize)); uint64(k) != n*pageDescSize {
		// Only the one descriptor, for the error a read of it gives.
		_, err := m.r.ReadAt(db[:], int64(m.descOff+idx*pageDescSize))
		return db, err
	}
	copy(db[:], d.b[(idx%descBlock)*pageDescSize:])
	m.mu.Lock()
	*slot = d
	m.mu.Unlock()
	return db, nil
}

// scratchBufs holds buffers for pages' stored bytes (*[]byte).
var scratchBufs sync.Pool

// getScratch returns a buffer of at least n bytes from scratchBufs.
func getScratch(n int) *[]byte {
	p, _ := scratchBufs.Get().(*[]byte)
	if p == nil || cap(*p) < n {
		b := make([]byte, max(n, 8192))
		p = &b
	}
	return p
}

// pageCodec names the compression of a page from its descriptor's flags:
// "raw" for a page stored as is, "" for flags this package does not know.
func pageCodec(flags uint32) string {
	switch flags {
	case 0:
		return "raw"
	case dumpZlib:
		return "zlib"
	case dumpLZO:
		return "lzo"
	case dumpSnappy:
		return "snappy"
	case dumpZstd:
		return "zstd"
	}
	return ""
}

func (m *kdumpMemory) decompress(b []byte, flags uint32) ([]byte, error) {
	switch {
	case flags&dumpZlib != 0:
		out := make([]byte, m.blk)
		if err := inflatePage(b, out); err != nil {
			return nil, err
		}
		return out, nil
	case flags&dumpSnappy != 0:
		n, err := snappy.DecodedLen(b)
		if err != nil {
			return nil, err
		}
		if uint64(n) != m.blk {
			return nil, fmt.Errorf("snappy: decodes to %d bytes, want %d", n, m.blk)
		}
		return snappy.Decode(nil, b)
	case flags&dumpZstd != 0:
		m.mu.Lock()
		if m.zstd == nil {
			dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<20))
			if err != nil {
				m.mu.Unlock()
				return nil, err
			}
			m.zstd = dec
		}
		dec := m.zstd
		m.mu.Unlock()
		return dec.DecodeAll(b, make([]byte, 0, m.blk))
	case flags&dumpLZO != 0:
		return lzo1xDecompress(b, int(m.blk))
	}
	return b, nil
}

// ReadAt implements unwind.Memory over physical addresses.
func (m *kdumpMemory) ReadAt(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		pg, err := m.page(a / m.blk)
		if err != nil {
			switch e := err.(type) {
			case *unwind.MemoryError:
				return done, &unwind.MemoryError{Addr: a, Len: len(p) - done}
			case *ExcludedPageError:
				return done, e.at(a)
			}
			return done, err
		}
		done += copy(p[done:], pg[a%m.blk:])
	}
	return done, nil
}

// Kdump returns the diskdump header of a compressed kdump file; ok is false
// for ELF dumps.
func (d *Dump) Kdump() (h KdumpHeader, ok bool) {
	if d.kdump == nil {
		return KdumpHeader{}, false
	}
	return *d.kdump, true
}
