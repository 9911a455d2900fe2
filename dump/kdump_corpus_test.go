package dump

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
)

// pagecheckPages reads the physical addresses of NAME.pagecheck.txt: the
// pages crash read from each kdump file and found equal to the ELF dump.
func pagecheckPages(t *testing.T, path string) []uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "pages: "); ok {
			var pages []uint64
			for _, f := range strings.Fields(rest) {
				v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
				if err != nil {
					t.Fatalf("%s: %q", path, f)
				}
				pages = append(pages, v)
			}
			return pages
		}
	}
	t.Fatalf("%s: no pages: line", path)
	return nil
}

// kernelFrames renders what every CPU's trace reads from d: its registers
// and the 16 KiB of virtual memory from its stack pointer's page up, read
// through the CPU's page tables (the traces themselves are package
// linux's: TestKdumpTracesEqualELF there).
func kernelFrames(t *testing.T, d *Dump) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 16<<10)
	for _, th := range d.Threads() {
		sp, _ := th.Regs.SP()
		pc, _ := th.Regs.PC()
		n, err := d.CPUMemory(th.CPU).ReadAt(buf, sp&^0xfff)
		if n == 0 {
			t.Fatalf("cpu%d: stack at %#x: %v", th.CPU, sp, err)
		}
		out = append(out, fmt.Sprintf("cpu%d pc %#x sp %#x regs %v stack %x", th.CPU, pc, sp, th.Regs, sha256.Sum256(buf[:n])))
	}
	return out
}

// TestKdumpEqualsELF checks that every compressed kdump of a capture
// (zlib, LZO and snappy as QEMU wrote them, and zstd made from them) holds
// the same registers and physical memory as the ELF dump taken at the
// same stop, the 21 pages crash checked (NAME.pagecheck.txt) included,
// and gives the same trace on every CPU.
func TestKdumpEqualsELF(t *testing.T) {
	dir := corpus.Dir(t, "kdump")
	for _, sc := range []string{"idle", "nmibt"} {
		base := filepath.Join(dir, "fp", sc, sc)
		elfDump, err := Open(base + ".vmcore")
		if err != nil {
			t.Fatal(err)
		}
		defer elfDump.Close()
		wantFrames := kernelFrames(t, elfDump)
		if len(wantFrames) < 2 {
			t.Fatalf("%s: ELF dump unwinds to %v", sc, wantFrames)
		}
		pages := pagecheckPages(t, base+".pagecheck.txt")
		if len(pages) != 21 {
			t.Fatalf("%s: %d pagecheck pages", sc, len(pages))
		}
		zstdPath := filepath.Join(t.TempDir(), sc+".kdump-zstd")
		recompressZstd(t, base+".kdump-zlib", zstdPath)
		for _, format := range []string{"zlib", "lzo", "snappy", "zstd"} {
			t.Run(sc+"/"+format, func(t *testing.T) {
				path := base + ".kdump-" + format
				if format == "zstd" {
					path = zstdPath
				}
				d, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				if h, ok := d.Kdump(); !ok || h.Version != 6 || h.Compression() != format {
					t.Errorf("header %+v (compression %s)", h, h.Compression())
				}
				if d.Kind() != KindVmcore || d.Release() != elfDump.Release() {
					t.Errorf("kind %q release %q, ELF %q", d.Kind(), d.Release(), elfDump.Release())
				}
				a, b := elfDump.Threads(), d.Threads()
				if len(a) != len(b) {
					t.Fatalf("%d CPUs, ELF has %d", len(b), len(a))
				}
				for i := range a {
					for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
						x, _ := a[i].Regs.Get(r)
						y, _ := b[i].Regs.Get(r)
						if x != y {
							t.Errorf("cpu %d %s: kdump %#x, ELF %#x", i, r, y, x)
						}
					}
				}
				pa, pb := make([]byte, 4096), make([]byte, 4096)
				nonZero := 0
				for _, phys := range pages {
					_, errA := elfDump.PhysMemory().ReadAt(pa, phys)
					_, errB := d.PhysMemory().ReadAt(pb, phys)
					if errA != nil || errB != nil || !bytes.Equal(pa, pb) {
						t.Errorf("pagecheck page %#x: ELF %v, kdump %v, equal %v", phys, errA, errB, bytes.Equal(pa, pb))
					}
					if !allZero(pb) {
						nonZero++
					}
				}
				if nonZero < 16 {
					t.Errorf("only %d of the pagecheck pages are non-zero", nonZero)
				}
				compared := 0
				for phys := uint64(0); phys < 128<<20; phys += 4096 * 7 {
					_, errA := elfDump.PhysMemory().ReadAt(pa, phys)
					_, errB := d.PhysMemory().ReadAt(pb, phys)
					if (errA == nil) != (errB == nil) {
						t.Fatalf("phys %#x: ELF err %v, kdump err %v", phys, errA, errB)
					}
					if errA == nil && !bytes.Equal(pa, pb) {
						t.Fatalf("phys %#x differs", phys)
					}
					compared++
				}
				if got := kernelFrames(t, d); !slices.Equal(got, wantFrames) {
					t.Errorf("traces differ from the ELF dump's:\n%s", cmp.Diff(wantFrames, got))
				}
				t.Logf("%d pages compared, %d frames", compared, len(wantFrames))
			})
		}
	}
}

// recompressZstd writes a copy of the diskdump file src to dst with every
// page compressed with zstd (DUMP_DH_COMPRESSED_ZSTD, makedumpfile -z),
// stored raw where zstd does not shrink it, as makedumpfile does. The
// header, sub-header, notes and bitmaps are copied as they are, pages that
// shared a descriptor's data (the zero page) still share it. The corpus
// has no zstd dump (QEMU 7.2 cannot write one), so this makes one from
// the real dump of the same stop.
func recompressZstd(t *testing.T, src, dst string) {
	t.Helper()
	d, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	m := d.kern.phys.(*kdumpMemory)
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(0)
	for _, w := range m.bitmap {
		n += uint64(bits.OnesCount64(w))
	}
	le := binary.LittleEndian
	out := append([]byte(nil), raw[:m.descOff+n*pageDescSize]...)
	le.PutUint32(out[424:], le.Uint32(out[424:])&^(dumpZlib|dumpLZO|dumpSnappy)|dumpZstd)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	type newDesc struct {
		off   uint64
		size  int
		flags uint32
	}
	moved := map[uint64]newDesc{} // by the page data's old offset
	zpages := 0
	for i := uint64(0); i < n; i++ {
		desc := out[m.descOff+i*pageDescSize:]
		off, sz, flags := le.Uint64(desc), le.Uint32(desc[8:]), le.Uint32(desc[12:])
		nd, ok := moved[off]
		if !ok {
			page, err := m.decompress(raw[off:off+uint64(sz)], flags)
			if err != nil || uint64(len(page)) != m.blk {
				t.Fatalf("page descriptor %d: %v", i, err)
			}
			c := enc.EncodeAll(page, nil)
			nd = newDesc{uint64(len(out)), len(c), dumpZstd}
			if uint64(len(c)) >= m.blk {
				c, nd.size, nd.flags = page, len(page), 0
			}
			out = append(out, c...)
			moved[off] = nd
			if nd.flags == dumpZstd {
				zpages++
			}
		}
		desc = out[m.descOff+i*pageDescSize:] // out may have moved
		le.PutUint64(desc, nd.off)
		le.PutUint32(desc[8:], uint32(nd.size))
		le.PutUint32(desc[12:], nd.flags)
	}
	if zpages < len(moved)/2 {
		t.Fatalf("only %d of %d pages compressed with zstd", zpages, len(moved))
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// flatten writes b in makedumpfile's flattened format: records of
// varying sizes in file order, then the first block again (as a writer
// that fills the header in last does), then the end record.
func flatten(b []byte) []byte {
	be := binary.BigEndian
	out := make([]byte, flatHeaderSize)
	copy(out, flatSignature)
	be.PutUint64(out[16:], flatType)
	be.PutUint64(out[24:], 1)
	rec := func(off int, data []byte) {
		var h [flatRecordHdr]byte
		be.PutUint64(h[:], uint64(off))
		be.PutUint64(h[8:], uint64(len(data)))
		out = append(append(out, h[:]...), data...)
	}
	first := min(len(b), 4096)
	rec(0, make([]byte, first)) // a placeholder header, rewritten below
	for off, n := first, 1; off < len(b); n = n*7%65521 + 1 {
		end := min(len(b), off+n)
		rec(off, b[off:end])
		off = end
	}
	rec(0, b[:first])
	var h [flatRecordHdr]byte
	be.PutUint64(h[:], ^uint64(0))
	be.PutUint64(h[8:], ^uint64(0))
	return append(out, h[:]...)
}

// TestKdumpFlattened reads a corpus kdump file laid out in the flattened
// format QEMU writes (the corpus files were re-laid out by makedumpfile -R)
// and finds the same memory and traces as in the seekable file.
func TestKdumpFlattened(t *testing.T) {
	dir := corpus.Dir(t, "kdump")
	src := filepath.Join(dir, "fp", "nmibt", "nmibt.kdump-lzo")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	flat := filepath.Join(t.TempDir(), "nmibt.kdump-lzo.flat")
	if err := os.WriteFile(flat, flatten(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(flat)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Info().Flattened || a.Info().Flattened || b.Info().Compression != "lzo" {
		t.Errorf("flattened: %v %v", b.Info().Flattened, a.Info().Flattened)
	}
	fr := b.kern.phys.(*kdumpMemory).r.(*flatReader)
	if fr.size != int64(len(raw)) {
		t.Errorf("flattened file stands for %d bytes, want %d", fr.size, len(raw))
	}
	got := make([]byte, len(raw))
	if n, err := fr.ReadAt(got, 0); n != len(raw) || err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("the flattened stream reads back differently: %d %v", n, err)
	}
	if fa, fb := kernelFrames(t, a), kernelFrames(t, b); !slices.Equal(fa, fb) {
		t.Errorf("traces differ:\n%s", cmp.Diff(fa, fb))
	}
}

func TestFlatReaderOverlapAndHoles(t *testing.T) {
	recs := resolveFlat([]flatRecord{{0, 10, 100}, {20, 5, 200}, {5, 10, 300}})
	want := []flatRecord{{0, 5, 100}, {5, 10, 300}, {20, 5, 200}}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Errorf("resolved %v, want %v", recs, want)
	}
	b := flatten([]byte("0123456789abcdef"))
	fr, err := newFlatReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 16)
	if n, err := fr.ReadAt(p, 0); n != 16 || err != nil || string(p) != "0123456789abcdef" {
		t.Errorf("read %d %v %q", n, err, p)
	}
	if _, err := newFlatReader(bytes.NewReader(b[:len(b)-16]), int64(len(b)-16)); err == nil {
		t.Error("a stream without its end record opens")
	}
}
