package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/unwind"
)

// seedKdumpCodecs builds a small diskdump file of 4 KiB pages at dump
// level 31 from real pages of the makedumpfile LZO fixture: pfn 0 zlib,
// 1 excluded (in the first bitmap only), 2 LZO (makedumpfile's own bytes),
// 3 snappy, 4 zstd, 5 raw, 6 no RAM, 7 zlib damaged.
func seedKdumpCodecs(t testing.TB) []byte {
	src := openBytes(t, makedumpfileFixture(t, "nmibt-d31.kdump-lzo"))
	m := src.PhysMemory().(*kdumpMemory)
	raw := src.r.(*bytes.Reader)
	// The smallest LZO page that is not all zeros, with its contents.
	var lzoData, page []byte
	for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
		idx, ok := m.present(pfn)
		if !ok {
			continue
		}
		var db [pageDescSize]byte
		raw.ReadAt(db[:], int64(m.descOff+idx*pageDescSize))
		off, sz, fl := binary.LittleEndian.Uint64(db[:]), binary.LittleEndian.Uint32(db[8:]), binary.LittleEndian.Uint32(db[12:])
		if fl != dumpLZO || sz < 64 || (lzoData != nil && int(sz) >= len(lzoData)) {
			continue
		}
		lzoData = make([]byte, sz)
		raw.ReadAt(lzoData, int64(off))
		page, _ = m.page(pfn)
	}
	const blk = 4096
	le := binary.LittleEndian
	f := make([]byte, 4*blk) // header, sub-header, 2 bitmap blocks
	copy(f, kdumpSignature)
	le.PutUint32(f[8:], 6)
	le.PutUint32(f[424:], dumpLZO)
	le.PutUint32(f[428:], blk)
	le.PutUint32(f[432:], 1)
	le.PutUint32(f[436:], 2)
	le.PutUint32(f[440:], 8)
	le.PutUint32(f[460:], 1)
	le.PutUint32(f[blk+8:], 31) // dump_level
	f[2*blk] = 0xbf             // first bitmap: all but pfn 6
	f[3*blk] = 0xbd             // second: not 1, not 6
	dumped := []uint64{0, 2, 3, 4, 5, 7}
	desc := len(f)
	f = append(f, make([]byte, len(dumped)*pageDescSize)...)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	for i, pfn := range dumped {
		var c []byte
		flags := uint32(dumpZlib)
		switch pfn {
		case 0, 7:
			var zb bytes.Buffer
			zw := zlib.NewWriter(&zb)
			zw.Write(page)
			zw.Close()
			c = zb.Bytes()
			if pfn == 7 {
				c[len(c)/2] ^= 0xff
			}
		case 2:
			c, flags = lzoData, dumpLZO
		case 3:
			c, flags = snappy.Encode(nil, page), dumpSnappy
		case 4:
			c, flags = enc.EncodeAll(page, nil), dumpZstd
		case 5:
			c, flags = page, 0
		}
		d := f[desc+i*pageDescSize:]
		le.PutUint64(d, uint64(len(f)))
		le.PutUint32(d[8:], uint32(len(c)))
		le.PutUint32(d[12:], flags)
		f = append(f, c...)
	}
	return f
}

func TestSeedKdumpCodecs(t *testing.T) {
	b := seedKdumpCodecs(t)
	d := openBytes(t, b)
	m := d.PhysMemory().(*kdumpMemory)
	var first []byte
	for pfn := uint64(0); pfn < 8; pfn++ {
		pg, err := m.page(pfn)
		switch pfn {
		case 1:
			checkExcluded(t, err, 4096, 1, 31)
		case 6:
			if _, ok := err.(*unwind.MemoryError); !ok {
				t.Errorf("pfn 6: %v", err)
			}
		case 7:
			if _, ok := err.(*FormatError); !ok {
				t.Errorf("pfn 7: %v", err)
			}
		default:
			if err != nil {
				t.Fatalf("pfn %d: %v", pfn, err)
			}
			if first == nil {
				first = pg
			} else if !bytes.Equal(pg, first) {
				t.Errorf("pfn %d reads differently", pfn)
			}
		}
	}
}

// FuzzKdumpPages: a diskdump file's header, bitmaps, descriptors and
// pages in every codec. Opening fails with a *FormatError at an offset in
// the file, or each page reads, or fails as what it is: a hole (no RAM),
// a page the dump level excluded (pfn and level as the file says), or
// damaged file contents (a *FormatError at an offset in the file).
func FuzzKdumpPages(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			checkOpenError(t, err, len(b))
			return
		}
		h, ok := d.Kdump()
		m, isKdump := d.PhysMemory().(*kdumpMemory)
		if !ok || !isKdump {
			return
		}
		buf := make([]byte, 64)
		for pfn := uint64(0); pfn < min(m.maxMapNr, 16); pfn++ {
			_, dumped := m.present(pfn)
			ram := m.ram[pfn/64]&(1<<(pfn%64)) != 0
			n, err := m.ReadAt(buf, pfn*m.blk+8)
			switch e := err.(type) {
			case nil:
				if !dumped {
					t.Fatalf("pfn %d reads but is not dumped", pfn)
				}
			case *unwind.MemoryError:
				if dumped || ram {
					t.Fatalf("pfn %d: %v, dumped %v ram %v", pfn, err, dumped, ram)
				}
			case *ExcludedPageError:
				if dumped || !ram || e.PFN != pfn || e.Level != h.DumpLevel || n != 0 {
					t.Fatalf("pfn %d: %+v, dumped %v ram %v level %d", pfn, *e, dumped, ram, h.DumpLevel)
				}
			case *FormatError:
				if !dumped || e.Off < 0 || e.Off > int64(len(b)) {
					t.Fatalf("pfn %d: %v, dumped %v, file of %d bytes", pfn, err, dumped, len(b))
				}
			default:
				t.Fatalf("pfn %d: error %T %v", pfn, err, err)
			}
		}
	})
}

// FuzzELFExcluded: a kernel ELF dump's PT_LOADs whose file data ends
// before p_memsz (makedumpfile's excluded pages). A read just past the
// file data fails with an *ExcludedPageError for that page, or a
// *FormatError when the file is cut short, and succeeds only where another
// segment's file data holds the address: never zeros.
func FuzzELFExcluded(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			checkOpenError(t, err, len(b))
			return
		}
		if d.Kind() != KindVmcore || d.elf == nil {
			return
		}
		segs := d.Segments()
		buf := make([]byte, 8)
		for i, s := range segs {
			if i == 16 {
				break
			}
			if s.Type != ptLoad || s.Filesz >= s.Memsz || s.Memsz-s.Filesz < 8 || s.Paddr+s.Memsz < s.Paddr {
				continue
			}
			a := s.Paddr + s.Filesz
			_, err := d.PhysMemory().ReadAt(buf, a)
			switch e := err.(type) {
			case nil:
				held := false
				for _, o := range segs {
					held = held || (o.Type == ptLoad && o.Paddr <= a && a+8 <= o.Paddr+o.Filesz && o.Paddr+o.Filesz >= o.Paddr)
				}
				if !held {
					t.Fatalf("excluded %#x of segment %+v reads %x", a, s, buf)
				}
			case *ExcludedPageError:
				lo := a / pageSize
				if lo > 0 {
					lo--
				}
				if e.PFN > (a+7)/pageSize || e.PFN < lo || e.Level != -1 {
					t.Fatalf("read at %#x: %+v", a, *e)
				}
			case *FormatError, *unwind.MemoryError:
				// cut short by the file, or a segment an earlier one covers
			default:
				t.Fatalf("read at %#x: %T %v", a, err, err)
			}
		}
	})
}

// seedELFExcluded is a kernel ELF dump (the kernel seed core's notes and
// page tables) with a PT_LOAD whose file data ends before its memory, as
// makedumpfile writes one before a run of excluded pages.
func seedELFExcluded() []byte {
	kern := seedCores()[1]
	d, _ := NewFile(bytes.NewReader(kern), int64(len(kern)))
	var notes []synthNote
	for _, n := range d.Notes() {
		notes = append(notes, synthNote{n.Name, n.Type, n.Desc})
	}
	pt := kern[len(kern)-0x2008:]
	data := bytes.Repeat([]byte{0xcc}, 0x1000)
	return buildCore(notes, []synthLoad{{paddr: 0, data: pt}, {paddr: 0x10000, data: data, memsz: 0x3000}, {paddr: 0x13000, data: data}})
}

func TestSeedELFExcluded(t *testing.T) {
	b := seedELFExcluded()
	d := openBytes(t, b)
	buf := make([]byte, 8)
	if _, err := d.PhysMemory().ReadAt(buf, 0x10ff8); err != nil || buf[0] != 0xcc {
		t.Errorf("file data: %v %x", err, buf)
	}
	_, err := d.PhysMemory().ReadAt(buf, 0x11000)
	checkExcluded(t, err, 0x11000, 0x11, -1)
	// Through the seed's 1 GiB identity page.
	_, err = d.CPUMemory(0).ReadAt(buf, 0x12ff8)
	checkExcluded(t, err, 0x12ff8, 0x12, -1)
	if _, err := d.PhysMemory().ReadAt(buf, 0x13000); err != nil || buf[0] != 0xcc {
		t.Errorf("next segment: %v %x", err, buf)
	}
	// Cut inside the segment's file data: a FormatError, not zeros.
	_, err = openBytes(t, b[:len(b)-0x1800]).PhysMemory().ReadAt(buf, 0x10900)
	if _, ok := err.(*FormatError); !ok {
		t.Errorf("truncated: %T %v", err, err)
	}
}
