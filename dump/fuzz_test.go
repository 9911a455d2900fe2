package dump

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

var update = flag.Bool("update", false, "rewrite golden files and the committed fuzz seeds")

// seedCores are small ELF cores covering the note kinds and dump kinds.
func seedCores() [][]byte {
	ntfile := make([]byte, 16+24+8)
	binary.LittleEndian.PutUint64(ntfile, 1)
	binary.LittleEndian.PutUint64(ntfile[8:], 4096)
	binary.LittleEndian.PutUint64(ntfile[16:], 0x400000)
	binary.LittleEndian.PutUint64(ntfile[24:], 0x401000)
	copy(ntfile[40:], "/bin/x\x00")
	sig := make([]byte, siginfoSize)
	sig[0] = 11
	user := buildCore([]synthNote{prstatusNote(5, 0x400010, 0x7ff0), {"CORE", ntPrPsInfo, make([]byte, prpsinfoSize)},
		{"CORE", ntSigInfo, sig}, {"CORE", ntAuxv, make([]byte, 32)}, {"CORE", ntFile, ntfile}},
		[]synthLoad{{vaddr: 0x7f00, data: make([]byte, 0x100)}})
	qemu := make([]byte, 440)
	binary.LittleEndian.PutUint64(qemu[416:], 0x1000) // CR3
	pt := make([]byte, 0x2008)
	// PML4[0] -> 0x2000, PDPT[0] -> 1 GiB page at 0.
	binary.LittleEndian.PutUint64(pt[0x1000:], 0x2003)
	binary.LittleEndian.PutUint64(pt[0x2000:], 0x83)
	kern := buildCore([]synthNote{prstatusNote(1, 0x1000, 0x3000), {"QEMU", 0, qemu},
		{"VMCOREINFO", 0, []byte("OSRELEASE=6.1.0\nPAGESIZE=4096\nNUMBER(phys_base)=0\n")}},
		[]synthLoad{{paddr: 0, data: pt}})
	return [][]byte{user, kern}
}

// seedBlk is the block (page) size of seedKdump.
const seedBlk = 512

// seedKdump is a tiny diskdump file: 4 pages, pages 0 and 2 dumped, raw
// or (compressed) zlib for page 0 and zstd for page 2 (the corpus covers
// snappy and LZO).
func seedKdump() []byte { return seedKdumpFlags(false) }

func seedKdumpFlags(compressed bool) []byte {
	const blk = seedBlk
	le := binary.LittleEndian
	f := make([]byte, blk*6+2*pageDescSize)
	copy(f, kdumpSignature)
	le.PutUint32(f[8:], 6)
	le.PutUint32(f[428:], blk)
	le.PutUint32(f[432:], 1) // sub header blocks
	le.PutUint32(f[436:], 2) // bitmap blocks
	le.PutUint32(f[440:], 4) // max_mapnr
	le.PutUint32(f[460:], 1)
	f[blk*2] = 0x5 // first bitmap
	f[blk*3] = 0x5 // second bitmap
	desc := uint64(blk * 4)
	data := desc + 2*pageDescSize
	f = append(f, make([]byte, 2*blk)...)
	if compressed {
		f = f[:data]
		for i := uint64(0); i < 2; i++ {
			page := make([]byte, blk)
			page[0] = byte(i + 1)
			var c []byte
			flags := uint32(dumpZlib)
			if i == 0 {
				var zb bytes.Buffer
				zw := zlib.NewWriter(&zb)
				zw.Write(page)
				zw.Close()
				c = zb.Bytes()
			} else {
				enc, _ := zstd.NewWriter(nil)
				c = enc.EncodeAll(page, nil)
				enc.Close()
				flags = dumpZstd
			}
			le.PutUint64(f[desc+i*pageDescSize:], uint64(len(f)))
			le.PutUint32(f[desc+i*pageDescSize+8:], uint32(len(c)))
			le.PutUint32(f[desc+i*pageDescSize+12:], flags)
			f = append(f, c...)
		}
		return f
	}
	for i := uint64(0); i < 2; i++ {
		le.PutUint64(f[desc+i*pageDescSize:], data+i*blk)
		le.PutUint32(f[desc+i*pageDescSize+8:], blk)
		f[data+i*blk] = byte(i + 1)
	}
	return f[:data+2*blk]
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz seeds")
	}
	cores := seedCores()
	write := func(target string, i int, lines ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, l := range lines {
			s += l + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q := func(b []byte) string { return fmt.Sprintf("[]byte(%q)", b) }
	for i, c := range cores {
		write("FuzzOpen", i, q(c))
		ef, _ := readELF(bytes.NewReader(c), int64(len(c)))
		p := ef.progs[0]
		write("FuzzNotes", i, q(c[p.Off:p.Off+p.Filesz]))
	}
	write("FuzzDiskdump", 0, q(seedKdump()))
	write("FuzzDiskdump", 1, q(seedKdumpFlags(true)))
	write("FuzzDiskdump", 2, q(flatten(seedKdumpFlags(true))))
	write("FuzzKdumpPages", 0, q(seedKdumpCodecs(t)))
	write("FuzzKdumpPages", 1, q(seedKdumpFlags(true)))
	write("FuzzKdumpPages", 2, q(flatten(seedKdump())))
	write("FuzzELFExcluded", 0, q(seedELFExcluded()))
	write("FuzzELFExcluded", 1, q(cores[1]))
	write("FuzzPageWalk", 0, q(cores[1][len(cores[1])-0x2008:]), "uint64(0x1000)", "uint64(0x1234)", "bool(false)")
}

func FuzzNotes(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		notes, err := ParseNotes(b, 100)
		total := 0
		for _, n := range notes {
			total += len(n.Desc)
			if n.Off < 100 || n.Off+int64(len(n.Desc)) > 100+int64(len(b)) {
				t.Fatalf("note %+v outside the input", n)
			}
		}
		if total > len(b) {
			t.Fatalf("descriptors (%d bytes) larger than the input (%d)", total, len(b))
		}
		if err != nil {
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("error %T", err)
			}
		}
	})
}

func FuzzPageWalk(f *testing.F) {
	f.Fuzz(func(t *testing.T, tables []byte, root, va uint64, five bool) {
		if len(tables) > 1<<20 {
			return
		}
		w := &PageWalker{Phys: unwind.SplicedMemory{{Addr: 0, Data: tables}}, Root: root, Levels: 4}
		if five {
			w.Levels = 5
		}
		for i := 0; i < 3; i++ {
			pa, err := w.Translate(va + uint64(i)*4096)
			if err != nil {
				if _, ok := err.(*unwind.MemoryError); !ok {
					t.Fatalf("error %T", err)
				}
				continue
			}
			_ = pa
		}
		m := &walkedMemory{w: w}
		buf := make([]byte, 64)
		m.ReadAt(buf, va)
	})
}

// checkOpenError requires a failed open to say where: a *FormatError
// with an offset inside the input.
func checkOpenError(t *testing.T, err error, size int) {
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %T %v is not a *FormatError", err, err)
	}
	if fe.Off < 0 || fe.Off > int64(max(size, 464)) {
		t.Fatalf("error offset %#x outside the %d-byte input: %v", fe.Off, size, err)
	}
}

func FuzzDiskdump(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if d != nil {
				t.Fatal("dump and error")
			}
			checkOpenError(t, err, len(b))
			return
		}
		buf := make([]byte, 4096)
		for pa := uint64(0); pa < 8*4096; pa += 4096 {
			d.PhysMemory().ReadAt(buf, pa)
		}
		_ = d.Info()
	})
}

func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := NewFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if d != nil {
				t.Fatal("dump and error")
			}
			checkOpenError(t, err, len(b))
			return
		}
		_ = d.Info()
		for i, th := range d.Threads() {
			_ = d.Stacks(i)
			if sp, ok := th.Regs.Get(ptregs.RSP); ok {
				buf := make([]byte, 256)
				d.Memory().ReadAt(buf, sp)
				checkWindow(t, d.Memory(), sp)
				checkWindow(t, d.Memory(), sp+4096)
			}
		}
		for _, m := range d.Mappings() {
			_ = memBuildID(d.Memory(), m.Start)
		}
	})
}

func TestFuzzSeedsOpen(t *testing.T) {
	for _, c := range [][]byte{seedKdump(), seedKdumpFlags(true), flatten(seedKdumpFlags(true))} {
		d, err := NewFile(bytes.NewReader(c), int64(len(c)))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, seedBlk)
		for pfn := uint64(0); pfn < 3; pfn += 2 {
			if _, err := d.PhysMemory().ReadAt(buf, pfn*seedBlk); err != nil || buf[0] != byte(pfn/2+1) {
				t.Errorf("kdump page %d: %v %x", pfn, err, buf[:4])
			}
		}
	}
	for i, c := range append(seedCores(), seedKdump()) {
		d, err := NewFile(bytes.NewReader(c), int64(len(c)))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if len(d.Threads()) == 0 && d.kdump == nil {
			t.Errorf("seed %d: no threads", i)
		}
	}
	d, _ := NewFile(bytes.NewReader(seedKdump()), int64(len(seedKdump())))
	buf := make([]byte, seedBlk)
	if _, err := d.PhysMemory().ReadAt(buf, 2*seedBlk); err != nil || buf[0] != 2 {
		t.Errorf("kdump page 2: %v %x", err, buf[:4])
	}
	if _, err := d.PhysMemory().ReadAt(buf, 1*seedBlk); err == nil {
		t.Errorf("kdump page 1 is not dumped but reads")
	}
	k, _ := NewFile(bytes.NewReader(seedCores()[1]), int64(len(seedCores()[1])))
	if v, err := unwind.ReadU64(k.CPUMemory(0), 0x2000); err != nil || v != 0x83 {
		t.Errorf("1 GiB page walk: %#x %v", v, err)
	}
}

// checkWindow holds a Memory's window at addr (unwind.MemoryWindows), if
// it has one there, to what ReadAt reads.
func checkWindow(t *testing.T, m unwind.Memory, addr uint64) {
	w, ok := m.(unwind.MemoryWindows)
	if !ok {
		return
	}
	lo, data := w.Window(addr)
	if data == nil {
		return
	}
	want := make([]byte, len(data))
	if lo != addr {
		t.Fatalf("Window(%#x) starts at %#x", addr, lo)
	}
	if n, err := m.ReadAt(want, addr); n != len(want) || err != nil || !bytes.Equal(want, data) {
		t.Fatalf("Window(%#x): %d bytes; ReadAt reads %d (%v), equal %v", addr, len(data), n, err, bytes.Equal(want[:n], data[:n]))
	}
}
