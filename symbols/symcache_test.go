package symbols

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// cachedFile is a file whose table the cache keeps in the tests: the
// kernel's vmlinux (absolute symbols among the relocated ones) when the
// corpus is there, else the test program (with every file cached).
func cachedFile(t testing.TB) string {
	if dir, err := corpus.Find("kernel"); err == nil {
		return filepath.Join(dir, "fp", "vmlinux")
	}
	old := minCachedSyms
	minCachedSyms = 0
	t.Cleanup(func() { minCachedSyms = old })
	return "testdata/prog"
}

// openCached opens path at bias and reports whether its table came from
// the cache; it checks the table against the old implementation.
func openCached(t *testing.T, path string, bias uint64) bool {
	t.Helper()
	hits := symtabHits.Load()
	f, err := Open(path, bias)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hit := symtabHits.Load() > hits
	checkAgainstOld(t, fmt.Sprintf("%s at %#x (from the cache: %v)", filepath.Base(path), bias, hit), f.Syms, refReadSymbols(f))
	return hit
}

func symtabEntry(t *testing.T, path string) string {
	t.Helper()
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return filepath.Join(string(debugCacheFor(f.ef, path)), "symtab")
}

// TestSymtabCacheBias stores a table at one bias and loads it at others:
// every symbol must be where the old implementation put it at that bias
// (a table cached with its bias added, or with the absolute symbols
// merged in, fails).
func TestSymtabCacheBias(t *testing.T) {
	path := cachedFile(t)
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	if openCached(t, path, 0x1e000000) {
		t.Fatal("the first open found a cached table")
	}
	for _, bias := range []uint64{0x1e000000, 0, 0x3a200000, 0x40000000} {
		if !openCached(t, path, bias) {
			t.Errorf("bias %#x: the table was not loaded from the cache", bias)
		}
	}
	// A bias that wraps some addresses around 2^64 cannot use the
	// entry: the table is built.
	if openCached(t, path, ^uint64(0)-0xfffff) && path != "testdata/prog" {
		t.Error("a wrapping bias used the cached table")
	}
}

// TestSymtabCacheDamaged damages a cached table in ways a crash, a full
// disk or another version leave it: each is ignored, the table built
// again as it should be, and stored again so that the next run loads it.
func TestSymtabCacheDamaged(t *testing.T) {
	path := cachedFile(t)
	damage := map[string]func(b []byte) []byte{
		"truncated":     func(b []byte) []byte { return b[:len(b)/2] },
		"cut by 4":      func(b []byte) []byte { return b[:len(b)-4] },
		"flipped byte":  func(b []byte) []byte { b[len(b)/3] ^= 1; return b },
		"flipped CRC":   func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"other version": func(b []byte) []byte { b[7]++; return withCRC(b) },
		"other key":     func(b []byte) []byte { b[20] ^= 0x40; return withCRC(b) },
		"name beyond .strtab": func(b []byte) []byte {
			h, off, _, _, _ := symtabPrefix(b, b[16:16+binary.LittleEndian.Uint32(b[8:])])
			name := off + int(3*8*h.n)
			binary.LittleEndian.PutUint64(b[name:], 0xffffff<<refLenBits|1)
			return withCRC(b)
		},
		"unsorted": func(b []byte) []byte {
			_, off, _, _, _ := symtabPrefix(b, b[16:16+binary.LittleEndian.Uint32(b[8:])])
			binary.LittleEndian.PutUint64(b[off:], ^uint64(0))
			return withCRC(b)
		},
		"empty": func([]byte) []byte { return nil },
	}
	for what, f := range damage {
		t.Run(what, func(t *testing.T) {
			t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
			openCached(t, path, 0)
			entry := symtabEntry(t, path)
			b, err := os.ReadFile(entry)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(entry, f(b), 0o644); err != nil {
				t.Fatal(err)
			}
			if openCached(t, path, 0x1e000000) {
				t.Fatal("the damaged table was loaded")
			}
			if !openCached(t, path, 0x1e000000) {
				t.Fatal("the table built again was not stored")
			}
		})
	}
}

func withCRC(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

// aligned copies b to 8-aligned memory, as a mapping is.
func aligned(b []byte) []byte {
	w := make([]uint64, (len(b)+7)/8)
	a := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), len(w)*8)[:len(b)]
	copy(a, b)
	return a
}

// encodeSymtab is the entry readSymbols stores for c's table (built with
// fill, its names indexed), made by copying the table into a
// symtabWriter instead of building it there; nil when the table cannot
// be stored.
func encodeSymtab(c cachedSymtab, key []byte) []byte {
	t := c.t
	n := len(t.addr)
	if len(t.names.long) > 0 || t.types != nil || t.mod != nil || len(t.x) > 0 || n == 0 || t.addr[0] > t.addr[n-1] {
		return nil
	}
	w := newSymtabWriter(key, c.kernel, n, []byte(t.names.strs2), c.extras)
	if w == nil || len(t.byName) != len(w.cols.byName) || len(t.zero) != len(w.cols.zero) {
		return nil
	}
	copy(w.cols.addr, t.addr)
	copy(w.cols.size, t.size)
	copy(w.cols.elfSize, t.elfSize) // none: every ELFSize 0
	copy(w.cols.name, t.name)
	copy(w.cols.zero, t.zero)
	copy(w.cols.byName, t.byName)
	return w.seal(t.seed)
}

// TestSymtabEntryInPlace checks the entry a first run stores, its table
// built in place, against the table built apart and copied in
// (encodeSymtab), with the stored entry's name seed.
func TestSymtabEntryInPlace(t *testing.T) {
	paths := []string{cachedFile(t)}
	if dir, err := corpus.Find("prod"); err == nil && !testing.Short() {
		paths = append(paths, filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"))
	}
	for _, path := range paths {
		t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
		f, err := Open(path, 0x1e000000)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := os.ReadFile(filepath.Join(string(debugCacheFor(f.ef, path)), "symtab"))
		if err != nil {
			t.Fatal(err)
		}
		key := symtabKey(f.ef, f.r, f.mapped)
		h, _, _, _, ok := symtabPrefix(stored, key)
		if !ok {
			t.Fatalf("%s: the stored entry has another key", path)
		}
		rel, abs := f.symbolRuns(f.ownSources(), false, nil)
		tab := rel.build(true)
		tab.indexNames(make([]uint32, nameSlots(len(tab.addr))), h.seed)
		want := encodeSymtab(cachedSymtab{t: tab, extras: abs.build(false).syms(), kernel: f.kernel}, key)
		if want == nil {
			t.Fatalf("%s: the table cannot be stored", path)
		}
		if !bytes.Equal(stored, want) {
			at := 0
			for at < min(len(stored), len(want)) && stored[at] == want[at] {
				at++
			}
			t.Errorf("%s: the stored entry (%d bytes) differs from the table copied in (%d bytes) at byte %d", path, len(stored), len(want), at)
		}
		f.Close()
	}
}

// TestSymtabEntryReused builds the test program's entry as readSymbols
// does, its symbols collected in memory left dirty (as a larger table's
// could leave it) with room for many more than it has, so that every part
// of the entry lies over the builder's columns: the entry must be the
// table built apart and copied in, byte for byte.
func TestSymtabEntryReused(t *testing.T) {
	f, err := Open("testdata/prog", 0x1000)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	key := symtabKey(f.ef, f.r, f.mapped)
	srcs := f.ownSources()
	for _, room := range []int{0, 7, 300, 5000} {
		buf, in := newSymtabBuffer(len(key), symbolCount(srcs)+room)
		for i := range buf {
			buf[i] = 0xa5
		}
		rel, abs := f.symbolRuns(srcs, true, in)
		if &rel.addr[0] != &in.addr[:1][0] {
			t.Fatal("symbolRuns did not collect the symbols in the columns given")
		}
		abs.add(0x1000, 0, 0, abs.nb.ref("abs"), 0, 0, 0) // an extra, its name padded
		xs := abs.build(false).syms()
		var w *symtabWriter
		tab := rel.buildIn(true, func(n int) *tableColumns {
			w = layoutSymtab(buf, key, f.kernel, n, rel.nb.strs2, xs)
			return &w.cols
		})
		if !w.reused || !w.cols.overlap {
			t.Fatalf("room %d: the entry was not laid out in the buffer", room)
		}
		got := w.finish(tab)
		ref, rabs := f.symbolRuns(srcs, false, nil)
		want := ref.build(true)
		want.indexNames(make([]uint32, nameSlots(len(want.addr))), tab.seed)
		rabs.add(0x1000, 0, 0, rabs.nb.ref("abs"), 0, 0, 0)
		if b := encodeSymtab(cachedSymtab{t: want, extras: rabs.build(false).syms(), kernel: f.kernel}, key); !bytes.Equal(got, b) {
			t.Errorf("room %d: the entry (%d bytes) differs from the table copied in (%d bytes)", room, len(got), len(b))
		}
	}
}

// progSymtab returns the test program's table as the cache stores it, its
// key and its .strtab.
func progSymtab(t testing.TB) ([]byte, []byte, string) {
	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rel, abs := f.symbolRuns(f.ownSources(), false, nil)
	abs.add(0x1000, 0, 0, abs.nb.ref("absolute"), 0, 0, 0) // an extra to merge
	tab := rel.build(true)
	tab.hashNames()
	key := symtabKey(f.ef, f.r, f.mapped)
	b := encodeSymtab(cachedSymtab{t: tab, extras: abs.build(false).syms()}, key)
	if b == nil {
		t.Fatal("the test program's table cannot be stored")
	}
	return b, key, f.own[0].strs
}

// FuzzSymtabCache decodes cached symbol tables (the fuzzer's bytes with a
// valid CRC, so that what follows the check is reached) and looks every
// symbol up by address and name in what comes back: never a panic.
func FuzzSymtabCache(f *testing.F) {
	b, key, strs := progSymtab(f)
	f.Add(b[:len(b)-4])
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := aligned(binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli)))
		c, ok := decodeSymtab(data, key, strs, 0x1000, "prog")
		if !ok {
			return
		}
		tab := c.t.withExtras(c.extras)
		for i := range tab.Len() {
			s := tab.At(i)
			tab.Lookup(s.Addr)
			tab.Lookup(s.Addr + s.Size)
			tab.nearest(s.Addr - 1)
			tab.ByName(s.Name)
		}
		tab.ByName("main")
	})
}

// TestSymtabCacheSeed checks that the fuzz seed decodes, with its extra.
func TestSymtabCacheSeed(t *testing.T) {
	b, key, strs := progSymtab(t)
	c, ok := decodeSymtab(aligned(b), key, strs, 0, "prog")
	if !ok || len(c.extras) != 1 || c.extras[0].Name != "absolute" {
		t.Fatalf("decodeSymtab = %v, %+v", ok, c.extras)
	}
	if s, ok := c.t.withExtras(c.extras).ByName("main"); !ok || s.Module != "prog" {
		t.Errorf("ByName(main) = %+v %v", s, ok)
	}
}

// TestSymtabCacheDebug caches the table of libc with its debug file
// attached (the user corpus's: .dynsym and the debug file's .symtab) in an
// entry of its own: the second open loads it, and opening the debug file
// alone, whose entry shares the folder (one build id), does not replace
// it. Every table is checked against the old implementation.
func TestSymtabCacheDebug(t *testing.T) {
	lib := filepath.Join(corpus.Dir(t, "user"), "lib")
	libc, dbg := filepath.Join(lib, "libc.so.6"), filepath.Join(lib, "libc.so.6.debug")
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	open := func(bias uint64) bool {
		t.Helper()
		f, err := Open(libc, bias)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		hits := symtabHits.Load()
		if err := f.AttachDebug(dbg); err != nil {
			t.Fatal(err)
		}
		hit := symtabHits.Load() > hits
		checkAgainstOld(t, fmt.Sprintf("libc with its debug file at %#x (from the cache: %v)", bias, hit), f.Syms, refReadSymbols(f))
		if _, ok := f.Syms.ByName("__libc_start_call_main"); !ok {
			t.Errorf("no __libc_start_call_main (from the cache: %v)", hit)
		}
		return hit
	}
	if open(0x7f0000000000) {
		t.Fatal("the first open found a cached table")
	}
	if !open(0x7ff000000000) {
		t.Fatal("the table with the debug file was not loaded from the cache")
	}
	if openCached(t, dbg, 0x1000) || !openCached(t, dbg, 0x1000) {
		t.Fatal("the debug file alone: not cached in its own entry")
	}
	if !open(0x7f0000000000) {
		t.Fatal("the debug file opened alone replaced the entry of libc with it")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(symtabEntry(t, libc)), "symtab-debug")); err != nil {
		t.Error(err)
	}
}
