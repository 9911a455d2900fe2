package symbols

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// A lookup inflates .debug_info only as far as it reads; Close keeps that
// prefix in the debug cache (never under the whole section's name), and a
// later run maps it and inflates past it only for a lookup further on.
func TestStreamedPrefixCache(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, "lib", "libc.so.6.debug")
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	info, err := ef.Section(".debug_info").Data()
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(len(info))
	_, _, full := streamedDWARF(t, path)
	if full, err = buildDWARFIndex(full.d); err != nil {
		t.Fatal(err)
	}
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir()) // not the one full filled
	prefix := 0
	for _, fn := range []string{"abort", "__pthread_kill_implementation"} { // units at 0x5f8ea and 0x1f054d
		f, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		s, ok := f.Syms.ByName(fn)
		if !ok {
			t.Fatalf("no %s", fn)
		}
		got := f.Lines(s.Addr+s.Size/2, nil)
		if want := full.lines(s.Addr+s.Size/2, nil); len(got) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: lines %v, want %v", fn, got, want)
		}
		c := debugCacheFor(f.ef, path)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if c.load("info", size) != nil {
			t.Fatal("a prefix of .debug_info was cached as the whole section")
		}
		pre := c.loadPrefix("info", size)
		if len(pre) <= prefix || len(pre) >= len(info)/2 || !bytes.Equal(pre, info[:len(pre)]) {
			t.Fatalf("%s: cached prefix of %d bytes (of %d; %d before)", fn, len(pre), len(info), prefix)
		}
		prefix = len(pre)
	}
}

// A run that reads a section past its cached prefix to the end caches it
// whole and drops the prefix; a damaged prefix is not used.
func TestStreamedPrefixWhole(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("UNWIND_DEBUG_CACHE", dir)
	plain, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := linesEverywhere(t, plain)
	info, err := plain.ef.Section(".debug_info").Data()
	if err != nil {
		t.Fatal(err)
	}
	size := uint64(len(info))
	path := compressedCopies(t)["zlib"]
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := debugCacheFor(f.ef, path)
	c.storePrefix("info", info[:100], size)
	if c.loadPrefix("info", size) == nil || c.loadPrefix("info", size+1) != nil || c.load("info", size) != nil {
		t.Fatal("the prefix was not read back as such")
	}
	_, key, _, err := readDWARF(f.ef, f.r, f.Path, f.mapped)
	if err != nil {
		t.Fatal(err)
	}
	if got := linesEverywhere(t, f); !reflect.DeepEqual(got, want) {
		t.Error("lines read past a cached prefix differ from the uncompressed file's")
	}
	f.Close()
	// The sections' key (of the unit index and units' details) is the
	// same once they are cached whole.
	g, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, key2, st, err := readDWARF(g.ef, g.r, g.Path, g.mapped); err != nil || st != nil || !bytes.Equal(key, key2) {
		t.Errorf("key %x, then %x (streams %v, %v)", key, key2, st, err)
	}
	if b := c.load("info", size); !bytes.Equal(b, info) {
		t.Error("the whole section was not cached once read to its end")
	}
	if _, err := os.Stat(filepath.Join(string(c), "info"+prefixSuffix)); err == nil {
		t.Error("the prefix stayed beside the whole section")
	}

	// A prefix whose trailer is damaged or cut, or of the old format
	// (UWPREFX1, with a CRC), is ignored. (Its bytes are not checked, as
	// a whole section's are not: see prefixMagic.)
	c.storePrefix("line", []byte("0123456789"), 100)
	if b := c.loadPrefix("line", 100); string(b) != "0123456789" {
		t.Fatalf("prefix read back as %q", b)
	}
	p := filepath.Join(string(c), "line"+prefixSuffix)
	good, _ := os.ReadFile(p)
	old := append([]byte("0123456789UWPREFX1"), 100, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4)
	for name, b := range map[string][]byte{
		"magic":     append(append([]byte(nil), good[:12]...), append([]byte{good[12] ^ 1}, good[13:]...)...),
		"size":      append(append([]byte(nil), good[:len(good)-8]...), 101, 0, 0, 0, 0, 0, 0, 0),
		"cut":       good[:len(good)-3],
		"format 1":  old,
		"too large": append(make([]byte, 100), good[len(good)-prefixTrailer:]...),
	} {
		os.WriteFile(p, b, 0o600)
		if got := c.loadPrefix("line", 100); got != nil {
			t.Errorf("%s: a damaged prefix was used (%q)", name, got)
		}
	}
}

// streamOf returns a streamSection over a compressed stream (zstd when
// zst) claiming size bytes.
func streamOf(stream []byte, zst bool, size uint64) *streamSection {
	sec := &elf.Section{SectionHeader: elf.SectionHeader{Name: ".debug_info", FileSize: uint64(len(stream))}}
	return &streamSection{p: packedSection{name: "info", sec: sec, zstd: zst, data: stream}, path: "fuzz.debug", raw: bytes.NewReader(stream), size: size}
}

func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// A section inflated in steps gives its bytes; a corrupt or short stream
// gives an error naming the file and the section, every time it is asked
// again.
func TestStreamSection(t *testing.T) {
	defer func(n int) { streamStep = n }(streamStep)
	streamStep = 100
	plain := bytes.Repeat([]byte("unwind streams .debug_info "), 1000)
	for _, zst := range []bool{false, true} {
		stream := zlibBytes(plain)
		if zst {
			stream = zstdBytes(plain)
		}
		unmapped := streamOf(stream, zst, uint64(len(plain)))
		unmapped.p.data = nil // read through the file's ReaderAt
		for _, s := range []*streamSection{streamOf(stream, zst, uint64(len(plain))), unmapped} {
			for _, n := range []int{1, 50, 1000, 999, 20000, len(plain) + 5} {
				b, err := s.Prefix(n)
				if err != nil || len(b) < min(n, len(plain)) || !bytes.Equal(b, plain[:len(b)]) {
					t.Fatalf("zstd %v: Prefix(%d): %d bytes, %v", zst, n, len(b), err)
				}
			}
		}
		for _, bad := range []*streamSection{
			streamOf(stream[:len(stream)/2], zst, uint64(len(plain))),                 // cut short
			streamOf(stream, zst, uint64(len(plain))+10),                              // claims more
			streamOf(append([]byte{1, 2, 3}, stream[3:]...), zst, uint64(len(plain))), // damaged
		} {
			for range 2 {
				_, err := bad.Prefix(len(plain) + 1)
				if err == nil || !strings.HasPrefix(err.Error(), "section .debug_info: decompressing: ") {
					t.Fatalf("zstd %v: a bad stream gave %v", zst, err)
				}
			}
		}
	}
}

// FuzzStreamSection inflates random streams (seeded with zlib and zstd
// ones) a prefix at a time: each prefix extends the last, and a stream
// that ends early or is damaged gives an error, never a panic or more
// memory than the claimed size.
func FuzzStreamSection(f *testing.F) {
	plain := bytes.Repeat([]byte("prefix "), 3000)
	f.Add(zlibBytes(plain), false, uint32(len(plain)), uint16(10), uint16(5000))
	f.Add(zstdBytes(plain), true, uint32(len(plain)), uint16(100), uint16(30000))
	f.Add(zlibBytes(plain)[:40], false, uint32(len(plain)), uint16(1), uint16(9000))
	if b, err := os.ReadFile("testdata/prog"); err == nil {
		f.Add(zlibBytes(b), false, uint32(len(b)), uint16(64), uint16(4096))
	}
	f.Fuzz(func(t *testing.T, stream []byte, zst bool, size uint32, step, n uint16) {
		defer func(n int) { streamStep = n }(streamStep)
		streamStep = int(step) + 1
		s := streamOf(stream, zst, uint64(size%(1<<20)))
		var last []byte
		for _, m := range []int{int(n), int(n) * 2, int(n) + 1<<16, 1 << 21} {
			b, err := s.Prefix(m)
			if err != nil {
				if !strings.Contains(err.Error(), "section .debug_info") {
					t.Fatalf("error without the section: %v", err)
				}
				return
			}
			if uint64(len(b)) < min(uint64(m), s.size) || uint64(len(b)) > s.size || !bytes.HasPrefix(b, last) {
				t.Fatalf("Prefix(%d): %d bytes of %d", m, len(b), s.size)
			}
			last = b
		}
	})
}

// A debug section read on its own (.debug_loclists for variables) is
// inflated once and then read from the debug cache.
func TestCachedSectionBytes(t *testing.T) {
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	plain, err := elf.Open("testdata/prog")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	want, err := plain.Section(".debug_loclists").Data()
	if err != nil || len(want) == 0 {
		t.Fatal(err)
	}
	f, err := Open(compressedCopies(t)["zstd"], 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.ef.Section(".debug_loclists")
	c := debugCacheFor(f.ef, f.Path)
	for _, run := range []string{"first", "cached"} {
		got, err := cachedSectionBytes(s, f.r, f.mapped, c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v", run, len(got), err)
		}
		if cached := c.load("loclists", uint64(len(want))); cached == nil {
			t.Fatalf("%s: not in the cache", run)
		}
	}
}

// A compressed .debug_info cut short (its section header's size halved):
// lookups in the units before the cut work, none panics, and DebugInfoErr
// names the file and the section once.
func TestStreamedDamaged(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	b, err := os.ReadFile(filepath.Join(dir, "lib", "libc.so.6.debug"))
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	idx := -1
	for i, sec := range ef.Sections {
		if sec.Name == ".debug_info" {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatal("no .debug_info")
	}
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	size := b[shoff+uint64(idx)*64+0x20:]
	binary.LittleEndian.PutUint64(size, binary.LittleEndian.Uint64(size)/2)
	path := filepath.Join(t.TempDir(), "libc.debug")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	abort, _ := f.Syms.ByName("abort") // its unit is at 0x5f8ea of 5.8 MB
	if len(f.Lines(abort.Addr+4, nil)) == 0 {
		t.Error("no lines before the damage")
	}
	if err := f.DebugInfoErr(); err != nil {
		t.Fatalf("an error before the damage was read: %v", err)
	}
	for i := 0; i < f.Syms.Len(); i += 3 {
		sym := f.Syms.At(i)
		f.Lines(sym.Addr, nil)
	}
	err = f.DebugInfoErr()
	want := "symbols: " + path + ": section .debug_info: decompressing: "
	if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("DebugInfoErr: %v, want it to say %q", err, want)
	}
}
