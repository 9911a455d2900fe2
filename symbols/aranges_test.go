package symbols

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// streamedDWARF opens path (compressed debug sections) with an empty debug
// cache and returns its DWARF read lazily, with its .debug_aranges.
func streamedDWARF(t *testing.T, path string) (*File, *dwarfStreams, *dwarfIndex) {
	t.Helper()
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	d, _, st, err := readDWARF(f.ef, f.r, f.Path, f.mapped)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil || st.sec["info"] == nil || st.aranges == nil {
		t.Fatalf("%s: .debug_info not streamed or no .debug_aranges", path)
	}
	return f, st, &dwarfIndex{d: d}
}

// rewriteAranges returns a copy of .debug_aranges (32-bit sets) with each
// set's unit offset replaced by remap's.
func rewriteAranges(t *testing.T, b []byte, remap func(i int, off uint32) uint32) []byte {
	t.Helper()
	b = append([]byte(nil), b...)
	for i, p := 0, 0; p < len(b); i++ {
		n := int(binary.LittleEndian.Uint32(b[p:]))
		if n == 0xffffffff || p+4+n > len(b) {
			t.Fatal("not a 32-bit .debug_aranges")
		}
		binary.LittleEndian.PutUint32(b[p+6:], remap(i, binary.LittleEndian.Uint32(b[p+6:])))
		p += 4 + n
	}
	return b
}

// Where .debug_aranges is wrong (every range given to the next set's unit)
// or empty (no ranges), lookups give what the index of every unit gives:
// a unit found by .debug_aranges is used only where its entry holds the pc.
func TestArangesIndexChecked(t *testing.T) {
	paths := []string{compressedCopies(t)["zlib"]}
	if dir, err := corpus.Find("user"); err == nil {
		paths = append(paths, filepath.Join(dir, "lib", "libc.so.6.debug"))
	}
	for _, path := range paths {
		f, st, _ := streamedDWARF(t, path)
		var pcs []uint64
		for i := range f.Syms.Len() {
			s := f.Syms.At(i)
			if s.Size > 0 {
				pcs = append(pcs, s.Addr, s.Addr+s.Size/2, s.Addr+s.Size-1)
			}
		}
		_, _, full := streamedDWARF(t, path)
		full, err := buildDWARFIndex(full.d)
		if err != nil {
			t.Fatal(err)
		}
		var sets []uint32
		rewriteAranges(t, st.aranges, func(_ int, off uint32) uint32 { sets = append(sets, off); return off })
		for name, fake := range map[string][]byte{
			"real": st.aranges,
			"shifted": rewriteAranges(t, st.aranges, func(i int, off uint32) uint32 {
				return sets[(i+1)%len(sets)]
			}),
			"empty": {28, 0, 0, 0, 2, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		} {
			_, _, x := streamedDWARF(t, path)
			if x.ar = parseAranges(fake); x.ar == nil {
				t.Fatalf("%s: %s .debug_aranges not read", path, name)
			}
			n, lines := 0, 0
			for _, pc := range pcs {
				got, want := x.lines(pc, nil), full.lines(pc, nil)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, %s .debug_aranges: %#x: %v, want %v", path, name, pc, got, want)
				}
				n++
				lines += len(want)
			}
			if lines == 0 {
				t.Fatalf("%s: no lines at %d pcs", path, n)
			}
			if name == "real" && x.ar.full.Load() != nil && len(pcs) > 0 {
				t.Logf("%s: the real .debug_aranges left some pc to the index of every unit", path)
			}
		}
	}
}

// Lookups on many goroutines at once in a file whose DWARF is streamed
// (run with -race) give what one goroutine gets.
func TestStreamedConcurrent(t *testing.T) {
	dir, err := corpus.Find("user")
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, "lib", "libc.so.6.debug")
	one, _, _ := streamedDWARF(t, path)
	f, _, _ := streamedDWARF(t, path) // a new, empty cache
	var pcs []uint64
	for i := 0; i < f.Syms.Len(); i += 7 {
		if s := f.Syms.At(i); s.Size > 0 {
			pcs = append(pcs, s.Addr+s.Size/2)
		}
	}
	want := make([][]Line, len(pcs))
	for i, pc := range pcs {
		want[i] = one.Lines(pc, nil)
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for i := range pcs {
				i = (i*(g+1) + g*101) % len(pcs) // each goroutine its own order
				if got := f.Lines(pcs[i], nil); !reflect.DeepEqual(got, want[i]) {
					done <- fmt.Errorf("%#x: %v, want %v", pcs[i], got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// FuzzAranges reads random .debug_aranges sections (seeded with
// testdata/prog's): no panic, and an index only of well-formed ranges,
// each naming a unit header it read.
func FuzzAranges(f *testing.F) {
	ef, err := elf.Open("testdata/prog")
	if err != nil {
		f.Fatal(err)
	}
	b, err := ef.Section(".debug_aranges").Data()
	ef.Close()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add([]byte{28, 0, 0, 0, 2, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		x, ref := parseAranges(data), parseArangesRef(data)
		if (x == nil) != (ref == nil) {
			t.Fatalf("index %v, the plain reading's %v", x != nil, ref != nil)
		}
		if x == nil {
			return
		}
		if !slices.Equal(x.hdrs, ref.hdrs) || !slices.Equal(x.ranges, ref.ranges) {
			t.Fatalf("units %v ranges %v; the plain reading gives %v, %v", x.hdrs, x.ranges, ref.hdrs, ref.ranges)
		}
		if len(x.hdrs) == 0 || len(x.units) != len(x.hdrs) {
			t.Fatalf("%d units for %d headers", len(x.units), len(x.hdrs))
		}
		for i, r := range x.ranges {
			if r.lo == 0 || r.lo >= r.hi || r.unit < 0 || r.unit >= len(x.hdrs) || i > 0 && r.lo < x.ranges[i-1].lo {
				t.Fatalf("range %d: %+v", i, r)
			}
		}
	})
}

// An uncompressed file with .debug_aranges (a vmlinux) finds its units by
// it too, on a first run, and answers as the index of every unit does;
// where a lookup has to fall back to that index, the index is kept in
// the debug cache, and the next run takes it from there.
func TestArangesUncompressed(t *testing.T) {
	path := filepath.Join(corpus.Dir(t, "kernel"), "fp", "vmlinux")
	cache := t.TempDir()
	t.Setenv("UNWIND_DEBUG_CACHE", cache)
	open := func() *File {
		f, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		f.dwarfOnce.Do(f.loadDWARF)
		if f.dw == nil {
			t.Fatalf("%s: no DWARF: %v", path, f.dwErr)
		}
		return f
	}
	f := open()
	if f.dw.ar == nil {
		t.Fatalf("%s: units not found by .debug_aranges", path)
	}
	full, err := buildDWARFIndex(f.dw.d)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for i := 0; i < f.Syms.Len(); i += 7 {
		s := f.Syms.At(i)
		if s.Size == 0 {
			continue
		}
		for _, pc := range []uint64{s.Addr, s.Addr + s.Size/2} {
			got, want := f.dw.lines(pc, nil), full.lines(pc, nil)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%#x (%s): %v, want %v", pc, s.Name, got, want)
			}
			lines += len(want)
		}
	}
	if lines < 1000 {
		t.Fatalf("only %d lines", lines)
	}
	units := filepath.Join(string(debugCacheFor(f.ef, path)), "units")
	if f.dw.ar.full.Load() == nil {
		if _, err := os.Stat(units); err == nil {
			t.Fatalf("a unit index was cached with no lookup falling back")
		}
		// Make a lookup fall back: an .debug_aranges that places no pc.
		f.dw.ar = parseAranges([]byte{28, 0, 0, 0, 2, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		pc := f.Syms.At(f.Syms.Len() / 2).Addr
		if got, want := f.dw.lines(pc, nil), full.lines(pc, nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("%#x after falling back: %v, want %v", pc, got, want)
		}
	}
	if _, err := os.Stat(units); err != nil {
		t.Fatalf("the index a lookup fell back to was not cached: %v", err)
	}
	if g := open(); g.dw.ar != nil || g.dw.tab.numRanges() == 0 {
		t.Errorf("the next run did not take the cached unit index (aranges %v, %d ranges)", g.dw.ar != nil, g.dw.tab.numRanges())
	}
}
