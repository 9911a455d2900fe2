package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/unwind"
)

// makedumpfileFixture returns a decompressed file of
// fixtures/makedumpfile (see its README.md).
func makedumpfileFixture(t testing.TB, name string) []byte {
	t.Helper()
	z, err := os.ReadFile(filepath.Join("..", "fixtures", "makedumpfile", name+".zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func openBytes(t testing.TB, b []byte) *Dump {
	t.Helper()
	d, err := NewFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// excludedPFNs returns page frames a kdump file's first bitmap has and its
// second does not: the pages makedumpfile excluded.
func excludedPFNs(m *kdumpMemory) []uint64 {
	var out []uint64
	for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
		if m.ram[pfn/64]&(1<<(pfn%64)) != 0 && m.bitmap[pfn/64]&(1<<(pfn%64)) == 0 {
			out = append(out, pfn)
		}
	}
	return out
}

var excludedMsg = regexp.MustCompile(`^read at 0x[0-9a-f]+: page 0x[0-9a-f]+ was excluded by makedumpfile \((dump level 31|its ELF output records no dump level)\)$`)

// checkExcluded requires err to be the excluded-page error for pfn.
func checkExcluded(t *testing.T, err error, addr, pfn uint64, level int) {
	t.Helper()
	var ex *ExcludedPageError
	if !errors.As(err, &ex) {
		t.Fatalf("read of excluded page %#x: %T %v, want an *ExcludedPageError", pfn, err, err)
	}
	if ex.PFN != pfn || ex.Level != level || ex.Addr != addr {
		t.Errorf("excluded page error %+v, want pfn %#x level %d addr %#x", *ex, pfn, level, addr)
	}
	if !errors.Is(err, ErrExcluded) || !errors.Is(err, unwind.ErrUnmapped) {
		t.Errorf("%v: errors.Is ErrExcluded %v, ErrUnmapped %v", err, errors.Is(err, ErrExcluded), errors.Is(err, unwind.ErrUnmapped))
	}
	if !excludedMsg.MatchString(err.Error()) {
		t.Errorf("message %q", err)
	}
}

// TestMakedumpfileKdumpExcluded: in makedumpfile's compressed output at
// -d 31, a page the machine had but the dump left out reads as an error
// that says so, with the dump level from the sub-header; a page the
// machine did not have stays a plain unmapped read; dumped pages read.
func TestMakedumpfileKdumpExcluded(t *testing.T) {
	for _, c := range []struct{ name, codec string }{{"nmibt-d31.kdump-zlib", "zlib"}, {"nmibt-d31.kdump-lzo", "lzo"}} {
		t.Run(c.codec, func(t *testing.T) {
			d := openBytes(t, makedumpfileFixture(t, c.name))
			h, ok := d.Kdump()
			if !ok || h.DumpLevel != 31 || h.Compression() != c.codec {
				t.Fatalf("header %+v", h)
			}
			m := d.PhysMemory().(*kdumpMemory)
			ex := excludedPFNs(m)
			if len(ex) < 1000 {
				t.Fatalf("%d excluded pages; makedumpfile -d 31 of an idle 128 MiB guest excludes thousands", len(ex))
			}
			buf := make([]byte, 16)
			for _, pfn := range []uint64{ex[0], ex[len(ex)/2], ex[len(ex)-1]} {
				addr := pfn*4096 + 0x10
				n, err := d.PhysMemory().ReadAt(buf, addr)
				if n != 0 {
					t.Errorf("read %d bytes of excluded page %#x", n, pfn)
				}
				checkExcluded(t, err, addr, pfn, 31)
			}
			// A read that starts on a dumped page and runs into an
			// excluded one returns the dumped bytes, then the error.
			for _, pfn := range ex[1:] {
				if _, ok := m.present(pfn - 1); ok {
					n, err := d.PhysMemory().ReadAt(buf, pfn*4096-8)
					if n != 8 {
						t.Errorf("straddling read: %d bytes", n)
					}
					checkExcluded(t, err, pfn*4096, pfn, 31)
					break
				}
			}
			// Not in the first bitmap: no RAM there (the PCI hole).
			_, err := d.PhysMemory().ReadAt(buf, 0xc0000000)
			if _, plain := err.(*unwind.MemoryError); !plain {
				t.Errorf("read in the memory hole: %T %v", err, err)
			}
			// The kernel's linux_banner is dumped.
			if a, ok := d.VMCoreInfo().Symbol("init_uts_ns"); !ok || a == 0 {
				t.Fatal("no VMCOREINFO")
			}
			if got := d.Release(); got != "6.1.192" {
				t.Errorf("release %q", got)
			}
		})
	}
}

// TestMakedumpfileELFExcluded: makedumpfile's ELF output ends a PT_LOAD's
// file data before a run of excluded pages (p_filesz < p_memsz) and
// records no dump level; those pages read as an excluded-page error,
// never as zeros, through physical and virtual reads alike.
func TestMakedumpfileELFExcluded(t *testing.T) {
	d := openBytes(t, makedumpfileFixture(t, "nmibt-d31.elf"))
	if d.Kind() != KindVmcore {
		t.Fatalf("kind %v", d.Kind())
	}
	var holes []Segment
	for _, s := range d.Segments() {
		if s.Type == ptLoad && s.Filesz < s.Memsz {
			holes = append(holes, s)
		}
	}
	if len(holes) < 3 {
		t.Fatalf("%d PT_LOADs with excluded tails", len(holes))
	}
	buf := make([]byte, 16)
	for _, s := range holes {
		for _, pa := range []uint64{s.Paddr + s.Filesz, s.Paddr + s.Memsz - 16} {
			n, err := d.PhysMemory().ReadAt(buf, pa)
			if n != 0 {
				t.Errorf("read %d bytes at excluded %#x", n, pa)
			}
			checkExcluded(t, err, pa, pa/4096, -1)
		}
	}
	// The direct map reaches the same page through the page tables.
	pa := holes[0].Paddr + holes[0].Filesz
	va := 0xffff888000000000 + pa
	_, err := d.Memory().ReadAt(buf, va)
	checkExcluded(t, err, va, pa/4096, -1)
	// The last bytes before the excluded tail read.
	if n, err := d.PhysMemory().ReadAt(buf, pa-16); n != 16 || err != nil {
		t.Errorf("read before the excluded tail: %d %v", n, err)
	}
}

// TestMakedumpfileCorruptPage: a damaged compressed page is an error that
// names the codec, the page frame and the file offset of its data.
func TestMakedumpfileCorruptPage(t *testing.T) {
	for _, c := range []struct{ name, codec string }{{"nmibt-d31.kdump-zlib", "zlib"}, {"nmibt-d31.kdump-lzo", "lzo"}} {
		t.Run(c.codec, func(t *testing.T) {
			b := makedumpfileFixture(t, c.name)
			d := openBytes(t, b)
			m := d.PhysMemory().(*kdumpMemory)
			// The page of init_uts_ns (the release string), stored
			// compressed with the codec.
			va, _ := d.VMCoreInfo().Symbol("init_uts_ns")
			pb, _ := d.VMCoreInfo().Number("phys_base")
			pfn := (va - startKernelMap + uint64(pb)) / 4096
			idx, ok := m.present(pfn)
			if !ok {
				t.Fatalf("init_uts_ns (%#x) not dumped", va)
			}
			db := b[m.descOff+idx*pageDescSize:]
			off, sz := binary.LittleEndian.Uint64(db), uint64(binary.LittleEndian.Uint32(db[8:]))
			if got := pageCodec(binary.LittleEndian.Uint32(db[12:])); got != c.codec {
				t.Fatalf("init_uts_ns page stored %s", got)
			}
			buf := make([]byte, 8)
			if _, err := d.PhysMemory().ReadAt(buf, pfn*4096); err != nil {
				t.Fatalf("intact page %#x: %v", pfn, err)
			}
			bad := append([]byte(nil), b...)
			for i := off + 2; i < off+sz; i++ {
				bad[i] ^= 0x5a
			}
			d = openBytes(t, bad)
			_, err := d.PhysMemory().ReadAt(buf, pfn*4096)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Off != int64(off) {
				t.Fatalf("corrupt page: %T %v, want a *FormatError at %#x", err, err, off)
			}
			want := fmt.Sprintf("corrupt %s page: pfn %#x", c.codec, pfn)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
			// Through the page tables too, unchanged.
			_, err = d.Memory().ReadAt(buf, va)
			if !errors.As(err, &fe) || fe.Off != int64(off) {
				t.Errorf("virtual read of the corrupt page: %T %v", err, err)
			}
		})
	}
}

// recodeKdump rewrites a compressed kdump file with every dumped page
// compressed by codec (dumpSnappy, dumpZstd, dumpZlib), as makedumpfile
// built with that codec would write it: header, sub-header, notes and
// bitmaps unchanged, a page that does not shrink stored raw.
func recodeKdump(t testing.TB, b []byte, codec uint32) []byte {
	t.Helper()
	d := openBytes(t, b)
	m := d.PhysMemory().(*kdumpMemory)
	var n uint64
	for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
		if _, ok := m.present(pfn); ok {
			n++
		}
	}
	out := append([]byte(nil), b[:m.descOff+n*pageDescSize]...)
	le := binary.LittleEndian
	le.PutUint32(out[424:], codec)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
		idx, ok := m.present(pfn)
		if !ok {
			continue
		}
		pg, err := m.page(pfn)
		if err != nil {
			t.Fatalf("page %#x: %v", pfn, err)
		}
		var c []byte
		switch codec {
		case dumpSnappy:
			c = snappy.Encode(nil, pg)
		case dumpZstd:
			c = enc.EncodeAll(pg, nil)
		case dumpZlib:
			var zb bytes.Buffer
			zw := zlib.NewWriter(&zb)
			zw.Write(pg)
			zw.Close()
			c = zb.Bytes()
		}
		flags := codec
		if len(c) >= len(pg) {
			c, flags = pg, 0
		}
		db := out[m.descOff+idx*pageDescSize:]
		le.PutUint64(db, uint64(len(out)))
		le.PutUint32(db[8:], uint32(len(c)))
		le.PutUint32(db[12:], flags)
		out = append(out, c...)
	}
	return out
}

// TestKdumpSnappyZstd: Debian's makedumpfile has no snappy or zstd, so
// the makedumpfile zlib file is written again with each (every page
// recompressed); every page reads the same, excluded pages stay excluded
// with their dump level, and a damaged page names its codec.
func TestKdumpSnappyZstd(t *testing.T) {
	src := makedumpfileFixture(t, "nmibt-d31.kdump-zlib")
	ref := openBytes(t, src).PhysMemory().(*kdumpMemory)
	for _, c := range []struct {
		codec uint32
		name  string
	}{{dumpSnappy, "snappy"}, {dumpZstd, "zstd"}} {
		t.Run(c.name, func(t *testing.T) {
			b := recodeKdump(t, src, c.codec)
			d := openBytes(t, b)
			h, _ := d.Kdump()
			if h.Compression() != c.name || h.DumpLevel != 31 {
				t.Fatalf("header %+v", h)
			}
			m := d.PhysMemory().(*kdumpMemory)
			want, got := make([]byte, 4096), make([]byte, 4096)
			pages, coded := 0, 0
			for pfn := uint64(0); pfn < ref.maxMapNr; pfn++ {
				idx, ok := ref.present(pfn)
				if !ok {
					continue
				}
				ref.ReadAt(want, pfn*4096)
				if _, err := m.ReadAt(got, pfn*4096); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("page %#x: %v, differs %v", pfn, err, !bytes.Equal(got, want))
				}
				pages++
				if binary.LittleEndian.Uint32(b[m.descOff+idx*pageDescSize+12:]) == c.codec {
					coded++
				}
			}
			if coded < 100 {
				t.Fatalf("%d of %d pages stored %s", coded, pages, c.name)
			}
			ex := excludedPFNs(m)
			_, err := m.ReadAt(got[:8], ex[0]*4096)
			checkExcluded(t, err, ex[0]*4096, ex[0], 31)

			// Damage the first page stored with the codec.
			for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
				idx, ok := m.present(pfn)
				if !ok {
					continue
				}
				db := b[m.descOff+idx*pageDescSize:]
				if binary.LittleEndian.Uint32(db[12:]) != c.codec {
					continue
				}
				off, sz := binary.LittleEndian.Uint64(db), binary.LittleEndian.Uint32(db[8:])
				bad := append([]byte(nil), b...)
				for i := off + 1; i < off+uint64(sz); i += 2 {
					bad[i] ^= 0xa5
				}
				_, err := openBytes(t, bad).PhysMemory().ReadAt(got[:8], pfn*4096)
				var fe *FormatError
				if !errors.As(err, &fe) || fe.Off != int64(off) || !strings.Contains(err.Error(), fmt.Sprintf("corrupt %s page: pfn %#x", c.name, pfn)) {
					t.Errorf("damaged %s page %#x: %v", c.name, pfn, err)
				}
				t.Logf("%v", err)
				break
			}
		})
	}
}
