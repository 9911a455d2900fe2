package symbols

import (
	"debug/elf"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// The symbol table of a large ELF file (a vmlinux: 100k+ symbols, tens
// of milliseconds to sort and index) is kept in the debug cache
// (DebugCacheDir), beside the DWARF unit index, in a file named
// "symtab": the relocated symbols sorted, deduplicated and sized, with
// their name index, at link-time addresses, so that one entry serves the
// file at every bias (KASLR gives each dump another); the absolute
// symbols, which the bias does not move, are kept apart and merged in at
// load (Table.withExtras). Names are not copied: they are offsets into the
// file's .strtab. A later run maps the entry and uses its arrays in
// place. The entry is used only when its key (the ELF section headers,
// and the sizes and sampled bytes of the symbol and string tables) and
// its own CRC match and every offset in it lies in its strings; anything
// else is ignored and the table built again and stored (atomically).
// Relocatable files (kernel modules) are not cached. A file with its
// separate debug file attached keeps the table of both in its own entry,
// "symtab-debug", whose key is both files' keys.

// symtabMagic starts a cached symbol table (format version 1).
const symtabMagic = "UWSYMS01"

// Bounds of a cached table: a vmlinux has about 120k symbols and a few
// dozen absolute ones.
const (
	maxCachedSyms = 1 << 24
	maxExtras     = 1024
	maxSymtabFile = 1 << 30
)

// minCachedSyms is the fewest symbols (in the file's tables) worth a cache
// entry: a smaller table is built in well under a millisecond. libc with
// its debug file (13k symbols) takes 1-2 ms to build and about 0.1 ms to
// load.
var minCachedSyms = 1 << 12

// littleEndianHost tells whether the host stores a uint64 as the cache
// does, so that the cache's arrays can be used in place.
var littleEndianHost = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// symtabKey identifies what the table of ELF file ef (read from r, or
// mapped, its mapping) is made from: the ELF type and section headers,
// and the size and sampled bytes (the first and last 4 KiB and 14 runs of
// 256 bytes between) of each symbol, string and version section. It
// returns nil when a section cannot be read.
func symtabKey(ef *elf.File, r io.ReaderAt, mapped []byte) []byte {
	key := binary.LittleEndian.AppendUint16(nil, uint16(ef.Type))
	key = binary.LittleEndian.AppendUint32(key, uint32(len(ef.Sections)))
	hdr := crc32.New(castagnoli)
	var buf []byte
	for _, s := range ef.Sections {
		buf = append(buf[:0], s.Name...)
		for _, v := range []uint64{uint64(s.Type), uint64(s.Flags), s.Addr, s.Offset, s.Size, uint64(s.Link), uint64(s.Info), s.Entsize} {
			buf = binary.LittleEndian.AppendUint64(buf, v)
		}
		hdr.Write(buf)
	}
	key = binary.LittleEndian.AppendUint32(key, hdr.Sum32())
	for _, s := range ef.Sections {
		switch s.Type {
		case elf.SHT_SYMTAB, elf.SHT_DYNSYM, elf.SHT_STRTAB, elf.SHT_GNU_VERSYM, elf.SHT_GNU_VERDEF, elf.SHT_GNU_VERNEED:
		default:
			continue
		}
		b, err := sectionBytes(s, r, mapped)
		if err != nil {
			return nil
		}
		key = binary.LittleEndian.AppendUint64(key, uint64(len(b)))
		key = binary.LittleEndian.AppendUint32(key, sampledCRC(b))
	}
	return key
}

// sampledCRC is a CRC of b's first and last 4 KiB and of 14 runs of 256
// bytes spread between them.
func sampledCRC(b []byte) uint32 {
	crc := crc32.Checksum(b[:min(len(b), 4096)], castagnoli)
	crc = crc32.Update(crc, castagnoli, b[max(0, len(b)-4096):])
	if len(b) > 8192 {
		step := (len(b) - 8192) / 15
		for i := 1; i <= 14; i++ {
			off := 4096 + i*step
			crc = crc32.Update(crc, castagnoli, b[off:min(off+256, len(b))])
		}
	}
	return crc
}

// The layout of a cached table (little-endian; every array 8-aligned):
//
//	magic [8]byte, key length u32, flags u32 (bit 0: a kernel image), key, padding to 8
//	n, extras, name index slots, name seed, blob-1 length, extra-name length: u64 each
//	addr, size, elfSize, name: [n]u64 each; zero: [(n+63)/64]u64
//	byName: [slots]u32, padding to 8
//	extras: [extras]{addr, size, elfSize, name offset<<32 | length}u64
//	blob 1 (names that are not in .strtab), padding to 8; extras' names, padding to 8
//	CRC-32C of everything before: u32
const symtabFlagKernel = 1

// symtabHeader is the fixed part of a cached table after its key.
type symtabHeader struct {
	n, nx, slots, seed, strs2, xnames uint64
}

// cachedSymtab is a table and the absolute symbols to merge into it, as
// an entry holds them.
type cachedSymtab struct {
	t      *Table // the relocated symbols, with their name index
	extras []Sym  // the absolute ones, sorted and deduplicated, sizes not filled
	kernel bool
}

// symtabWriter is a cache entry being made, in place: the table's
// columns and name index are arrays in the entry (buildIn builds the
// table there, indexNames hashes its names there), so that the first
// run neither copies nor encodes them.
type symtabWriter struct {
	b      []byte // the entry, 8-aligned
	hdr    int    // offset of the fixed header
	cols   tableColumns
	tail   int // offset of the extras, after the name index
	extras []Sym
	strs2  []byte
	reused bool // b was newSymtabBuffer's, the builder's columns in it
}

// symtabSize is the size of an entry for a key of keyLen bytes and a
// table of n symbols, with nx extras, blob 1 of strs2 bytes and extra
// names of xnames bytes; it also returns where the columns start.
func symtabSize(keyLen, n, nx, strs2, xnames int) (size, cols int) {
	cols = (16+keyLen+7)&^7 + 48
	return cols + 8*(4*n+(n+63)/64) + (4*nameSlots(max(n, 1))+7)&^7 + 32*nx + (strs2+7)&^7 + (xnames+7)&^7 + 4, cols
}

// newSymtabBuffer returns zeroed 8-aligned memory for the entry of a
// table of at most n symbols (a key of keyLen bytes, up to maxExtras
// extras and a few KiB of names besides), and the builder columns that
// lie in it: symbolRuns collects the symbols there, and buildIn sorts
// them into their place (symtabWriter.reuse), so that a first run makes
// one large array instead of two. nil when n is out of bounds.
func newSymtabBuffer(keyLen, n int) ([]byte, *tableColumns) {
	if n == 0 || n > maxCachedSyms {
		return nil, nil
	}
	size, cols := symtabSize(keyLen, n, maxExtras, 4096, 4096)
	words := make([]uint64, (size+7)/8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), size)
	col := func(i int) []uint64 { return u64s(b[cols+8*n*i : cols+8*n*(i+1)]) }
	// The name index's place (8n bytes at least) is the sort's scratch:
	// it is laid out and cleared after the columns are filled.
	index := cols + 8*(4*n+(n+63)/64)
	return b, &tableColumns{addr: col(0)[:0], size: col(1)[:0], elfSize: col(2)[:0], name: col(3)[:0],
		scratch: u64s(b[index : index+8*n])}
}

// newSymtabWriter lays out the entry of a table of n symbols for the file
// whose key is key, with blob 1 strs2 and the absolute symbols extras
// written, in new memory; nil when such a table cannot be stored (too
// many symbols or extras, an extra's name too long).
func newSymtabWriter(key []byte, kernel bool, n int, strs2 []byte, extras []Sym) *symtabWriter {
	return layoutSymtab(nil, key, kernel, n, strs2, extras)
}

// layoutSymtab is newSymtabWriter in buf (from newSymtabBuffer, its
// columns holding what buildIn sorts into the entry's) when it is large
// enough: the columns are then marked to be filled through scratch
// memory and what follows them cleared after (tableColumns.overlap), and
// the extras and names are written when the entry is sealed.
func layoutSymtab(buf []byte, key []byte, kernel bool, n int, strs2 []byte, extras []Sym) *symtabWriter {
	if n == 0 || n > maxCachedSyms || len(extras) > maxExtras {
		return nil
	}
	xnames := 0
	for _, s := range extras {
		if len(s.Name) > 1<<20 {
			return nil
		}
		xnames += len(s.Name)
	}
	slots := nameSlots(n)
	size, cols := symtabSize(len(key), n, len(extras), len(strs2), xnames)
	if uint64(size) > maxSymtabFile {
		return nil
	}
	var b []byte
	if size <= len(buf) {
		b = buf[:size:size]
		clear(b[:cols]) // the header's padding
	} else {
		buf = nil
		words := make([]uint64, (size+7)/8)
		b = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), size)
	}
	hdr := cols - 48
	copy(b, symtabMagic)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(key)))
	if kernel {
		binary.LittleEndian.PutUint32(b[12:], symtabFlagKernel)
	}
	copy(b[16:], key)
	for i, v := range []int{n, len(extras), slots, 0, len(strs2), xnames} { // the seed when finished
		binary.LittleEndian.PutUint64(b[hdr+8*i:], uint64(v))
	}
	w := &symtabWriter{b: b, hdr: hdr, extras: extras, strs2: strs2, reused: buf != nil}
	off := cols
	take := func(m int) []byte {
		p := b[off : off+m : off+m]
		off += (m + 7) &^ 7
		return p
	}
	w.cols = tableColumns{addr: u64s(take(8 * n)), size: u64s(take(8 * n)), elfSize: u64s(take(8 * n)),
		name: u64s(take(8 * n)), zero: u64s(take(8 * ((n + 63) / 64))), overlap: buf != nil}
	w.cols.byName = unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(take(4*slots)))), slots)
	w.tail = off
	return w
}

// writeTail writes the extras, blob 1 and the extras' names after the
// name index, clearing that part first when the memory was reused.
func (w *symtabWriter) writeTail() {
	b := w.b[w.tail : len(w.b)-4]
	if w.reused {
		clear(b)
	}
	xs, xo := b[:32*len(w.extras)], 0
	for i, s := range w.extras {
		x := xs[32*i:]
		binary.LittleEndian.PutUint64(x, s.Addr)
		binary.LittleEndian.PutUint64(x[8:], s.Size)
		binary.LittleEndian.PutUint64(x[16:], s.ELFSize)
		binary.LittleEndian.PutUint64(x[24:], uint64(xo)<<32|uint64(len(s.Name)))
		xo += len(s.Name)
	}
	b = b[len(xs):]
	b = b[(copy(b, w.strs2)+7)&^7:]
	for _, s := range w.extras {
		b = b[copy(b, s.Name):]
	}
}

// finish returns the entry of t (built in w's columns by buildIn), its
// names indexed there unless buildIn did, or nil when t cannot be stored
// (its names are not all in .strtab and blob 1, or the bias wrapped its
// addresses around 2^64, so that link-time order is not run-time order).
func (w *symtabWriter) finish(t *Table) []byte {
	n := len(t.addr)
	if n == 0 || &t.addr[0] != &w.cols.addr[0] || len(t.names.long) > 0 || len(t.x) > 0 || len(t.fix) > 0 ||
		t.addr[0] > t.addr[n-1] {
		return nil
	}
	if t.byName == nil {
		t.indexNames(w.cols.byName, rand.Uint64())
	}
	return w.seal(t.seed)
}

// seal writes what follows the name index, the index's seed and the
// CRC, and returns the entry.
func (w *symtabWriter) seal(seed uint64) []byte {
	w.writeTail()
	binary.LittleEndian.PutUint64(w.b[w.hdr+24:], seed)
	body := w.b[:len(w.b)-4]
	binary.LittleEndian.PutUint32(w.b[len(w.b)-4:], crc32.Checksum(body, castagnoli))
	return w.b
}

// symtabPrefix checks the magic and key at the start of a cached table
// and returns its header, the offset of its arrays and its flags, and the
// size the whole entry must have.
func symtabPrefix(b, key []byte) (h symtabHeader, arrays int, flags uint32, size uint64, ok bool) {
	if len(b) < 16 || string(b[:8]) != symtabMagic {
		return h, 0, 0, 0, false
	}
	kl := uint64(binary.LittleEndian.Uint32(b[8:]))
	flags = binary.LittleEndian.Uint32(b[12:])
	hdrEnd := (16+kl+7)&^7 + 48
	if kl != uint64(len(key)) || hdrEnd > uint64(len(b)) || string(b[16:16+kl]) != string(key) {
		return h, 0, 0, 0, false
	}
	p := b[hdrEnd-48:]
	h = symtabHeader{
		n: binary.LittleEndian.Uint64(p), nx: binary.LittleEndian.Uint64(p[8:]),
		slots: binary.LittleEndian.Uint64(p[16:]), seed: binary.LittleEndian.Uint64(p[24:]),
		strs2: binary.LittleEndian.Uint64(p[32:]), xnames: binary.LittleEndian.Uint64(p[40:]),
	}
	if h.n == 0 || h.n > maxCachedSyms || h.nx > maxExtras || h.slots < 2*h.n || h.slots > 4*maxCachedSyms ||
		h.slots&(h.slots-1) != 0 || h.strs2 > maxSymtabFile || h.xnames > maxSymtabFile {
		return h, 0, 0, 0, false
	}
	size = hdrEnd + 8*(4*h.n+(h.n+63)/64) + (4*h.slots+7)&^7 + 32*h.nx + (h.strs2+7)&^7 + (h.xnames+7)&^7 + 4
	return h, int(hdrEnd), flags, size, size <= maxSymtabFile
}

// decodeSymtab makes the table a cached entry b holds for the file whose
// key is key and whose .strtab is strs, at bias, with module as every
// symbol's Module unless the file is a kernel image; ok is false when b is not such an entry (another
// file's or version's, cut short, corrupt, or inconsistent). The table
// uses b's memory, which must be 8-aligned and stay untouched.
func decodeSymtab(b, key []byte, strs string, bias uint64, module string) (c cachedSymtab, ok bool) {
	h, off, flags, size, ok := symtabPrefix(b, key)
	if !ok || size != uint64(len(b)) || !littleEndianHost || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
		return c, false
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return c, false
	}
	take := func(n uint64) []byte {
		p := b[off : off+int(n) : off+int(n)]
		off += int((n + 7) &^ 7)
		return p
	}
	if flags&symtabFlagKernel != 0 {
		module = "" // see Sym.Module
	}
	n := int(h.n)
	u64 := func() []uint64 { return u64s(take(8 * h.n)) }
	t := &Table{addr: u64(), size: u64(), elfSize: u64(), name: u64(), bias: bias, mods: []string{module}}
	t.zero = u64s(take(8 * ((h.n + 63) / 64)))
	slots := take(4 * h.slots)
	t.byName = unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(slots))), h.slots)
	t.seed = h.seed
	xs := u64s(take(32 * h.nx))
	strs2 := take(h.strs2)
	xnames := take(h.xnames)
	t.names = tableNames{strs: strs, strs2: unsafe.String(unsafe.SliceData(strs2), len(strs2))}
	// Every array is what build makes: addresses sorted (and not
	// wrapped around by this bias), names in their blobs, the index
	// pointing at symbols.
	if t.addr[0]+bias > t.addr[n-1]+bias {
		return c, false
	}
	for i := 1; i < n; i++ {
		if t.addr[i] < t.addr[i-1] {
			return c, false
		}
	}
	for _, r := range t.name {
		off, l := r>>refLenBits&refOffMask, r&refLenMask
		switch r >> (refOffBits + refLenBits) {
		case 0:
			if off+l > uint64(len(strs)) {
				return c, false
			}
		case 1:
			if off+l > h.strs2 {
				return c, false
			}
		default:
			return c, false
		}
	}
	for _, v := range t.byName {
		if uint64(v) > h.n {
			return c, false
		}
	}
	for i := range int(h.nx) {
		x := xs[4*i : 4*i+4]
		o, l := x[3]>>32, x[3]&(1<<32-1)
		if o+l > h.xnames || i > 0 && x[0] < c.extras[i-1].Addr {
			return c, false
		}
		c.extras = append(c.extras, Sym{Name: unsafe.String(unsafe.SliceData(xnames[o:]), l), Addr: x[0], Size: x[1], ELFSize: x[2], Module: module})
	}
	c.t, c.kernel = t, flags&symtabFlagKernel != 0
	return c, true
}

// u64s views b (8-aligned, a multiple of 8 bytes long) as uint64s.
func u64s(b []byte) []uint64 {
	if len(b) == 0 {
		return []uint64{}
	}
	return unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/8)
}

// loadSymtab returns the table cached in entry ("symtab", or
// "symtab-debug" for a file with its debug file attached) of the file
// whose key is key (see decodeSymtab), mapping the entry.
func (c debugCache) loadSymtab(entry string, key []byte, strs string, bias uint64, module string) (cachedSymtab, bool) {
	if c == "" || key == nil || !littleEndianHost {
		return cachedSymtab{}, false
	}
	fh, err := fileio.OpenRegular(filepath.Join(string(c), entry))
	if err != nil {
		return cachedSymtab{}, false
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return cachedSymtab{}, false
	}
	// The key first, so that another file's entry is never mapped.
	head := make([]byte, min(fi.Size(), 16+int64(len(key))+56))
	if _, err := fh.ReadAt(head, 0); err != nil {
		return cachedSymtab{}, false
	}
	if _, _, _, size, ok := symtabPrefix(head, key); !ok || size != uint64(fi.Size()) {
		return cachedSymtab{}, false
	}
	b := mapReader(fh)
	mapped := b != nil
	if !mapped {
		w := make([]uint64, (fi.Size()+7)/8) // 8-aligned
		b = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), fi.Size())
		if _, err := io.ReadFull(io.NewSectionReader(fh, 0, fi.Size()), b); err != nil {
			return cachedSymtab{}, false
		}
	}
	ct, ok := decodeSymtab(b, key, strs, bias, module)
	if ok {
		symtabHits.Add(1)
	} else if mapped {
		unmapBytes(b) // nothing refers to a rejected entry
	}
	return ct, ok
}

// symtabHits counts the tables loaded from the cache (for tests).
var symtabHits atomic.Int64
