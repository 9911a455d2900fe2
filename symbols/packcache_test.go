package symbols

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// packEntries returns the entries the packs in dir hold, as a new reader
// finds them.
func packEntries(t testing.TB, dir debugCache) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, n := range packFiles(string(dir)) {
		parsePack(readPackFile(filepath.Join(string(dir), n)), m)
	}
	return m
}

// setPackEntry replaces the packs in dir by one holding their entries
// with name set to b (removed when b is nil), as a damaged or foreign
// entry would be found by the next run.
func setPackEntry(t testing.TB, dir debugCache, name string, b []byte) {
	t.Helper()
	m := packEntries(t, dir)
	if b == nil {
		delete(m, name)
	} else {
		m[name] = b
	}
	old := packFiles(string(dir))
	if !writePack(string(dir), m) {
		t.Fatalf("%s: writing a pack failed", dir)
	}
	for _, n := range old {
		if err := os.Remove(filepath.Join(string(dir), n)); err != nil {
			t.Fatal(err)
		}
	}
}

// Entries stored by one process are found by the next, the last of a
// name winning; a pack cut anywhere gives the whole records before the
// cut and nothing wrong.
func TestPackCache(t *testing.T) {
	dir := debugCache(filepath.Join(t.TempDir(), "id-x"))
	p := newPackCache(dir)
	if p.load("a", 100) != nil {
		t.Fatal("entry found in an empty cache")
	}
	p.store("a", []byte("first"))
	p.store("b", []byte("bee"))
	p.store("a", []byte("second"))
	if got := p.load("a", 100); string(got) != "second" {
		t.Errorf("same process: a = %q, want second", got)
	}
	p.close()
	p.store("c", []byte("after close")) // a second pack
	p.close()
	if n := len(packFiles(string(dir))); n != 2 {
		t.Errorf("%d packs, want 2", n)
	}

	q := newPackCache(dir)
	for name, want := range map[string]string{"a": "second", "b": "bee", "c": "after close"} {
		if got := q.load(name, 100); string(got) != want {
			t.Errorf("next process: %s = %q, want %q", name, got, want)
		}
	}
	if got := q.load("a", 5); got != nil {
		t.Errorf("entry larger than max returned: %q", got)
	}
	if newPackCache("") != nil {
		t.Error("a pack cache with no folder")
	}
	var none *packCache
	none.store("a", []byte("x"))
	if none.load("a", 100) != nil {
		t.Error("a nil pack cache found an entry")
	}

	// Cut: every prefix parses to the records wholly inside it.
	whole := []byte(packMagic)
	var ends []int
	for i, e := range []string{"one", "", "three"} {
		whole = appendPackRecord(whole, fmt.Sprint("n", i), []byte(e))
		ends = append(ends, len(whole))
	}
	for cut := 0; cut <= len(whole); cut++ {
		m := map[string][]byte{}
		parsePack(whole[:cut], m)
		want := 0
		for _, e := range ends {
			if e <= cut {
				want++
			}
		}
		if len(m) != want {
			t.Errorf("pack cut to %d bytes: %d records, want %d", cut, len(m), want)
		}
	}
	m := map[string][]byte{}
	parsePack(append([]byte("UWPACK00"), whole[len(packMagic):]...), m)
	if len(m) != 0 {
		t.Error("records read from a file of another format")
	}
}

// The files that held one entry each before packs are removed by the
// next reader; other entries stay.
func TestPackCacheRemovesOldEntries(t *testing.T) {
	dir := debugCache(t.TempDir())
	old := []string{"unit-c", "scope-2d60b21", "unit-1b9293a.tmp123"}
	keep := []string{"symtab", "unithdrs", "units", "info.prefix", "pack-x.tmp"}
	for _, n := range append(append([]string{}, old...), keep...) {
		if err := os.WriteFile(filepath.Join(string(dir), n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	newPackCache(dir).load("unit-c", 100)
	for _, n := range old {
		if _, err := os.Stat(filepath.Join(string(dir), n)); err == nil {
			t.Errorf("%s: kept", n)
		}
	}
	for _, n := range keep {
		if _, err := os.Stat(filepath.Join(string(dir), n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// More than packsAtMost packs are packed into one by the next reader,
// with every entry kept.
func TestPackCacheCompacts(t *testing.T) {
	dir := debugCache(t.TempDir())
	for i := 0; i <= packsAtMost; i++ {
		p := newPackCache(dir)
		p.store(fmt.Sprint("e", i), []byte{byte(i)})
		p.close()
	}
	if n := len(packFiles(string(dir))); n != packsAtMost+1 {
		t.Fatalf("%d packs, want %d", n, packsAtMost+1)
	}
	p := newPackCache(dir)
	if got := p.load("e3", 10); !bytes.Equal(got, []byte{3}) {
		t.Errorf("e3 = %v", got)
	}
	if n := len(packFiles(string(dir))); n != 1 {
		t.Errorf("%d packs after a reader found %d, want 1", n, packsAtMost+1)
	}
	m := packEntries(t, dir)
	for i := 0; i <= packsAtMost; i++ {
		if got := m[fmt.Sprint("e", i)]; !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("after packing: e%d = %v", i, got)
		}
	}
}

// Stores and loads from many goroutines: every entry lands whole.
func TestPackCacheConcurrent(t *testing.T) {
	dir := debugCache(t.TempDir())
	p := newPackCache(dir)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				name := fmt.Sprintf("g%d-%d", g, i)
				p.store(name, bytes.Repeat([]byte{byte(g)}, i))
				p.load(name, 100)
			}
		}()
	}
	wg.Wait()
	p.close()
	m := packEntries(t, dir)
	if len(m) != 400 {
		t.Fatalf("%d entries, want 400", len(m))
	}
	for g := 0; g < 8; g++ {
		for i := 0; i < 50; i++ {
			if got := m[fmt.Sprintf("g%d-%d", g, i)]; !bytes.Equal(got, bytes.Repeat([]byte{byte(g)}, i)) {
				t.Errorf("g%d-%d = %v", g, i, got)
			}
		}
	}
}

// FuzzParsePack reads packs: records within the bytes, never a panic.
func FuzzParsePack(f *testing.F) {
	b := []byte(packMagic)
	b = appendPackRecord(b, "unit-c", []byte("detail"))
	b = appendPackRecord(b, "scope-2d", nil)
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte(packMagic + "\xff\xff\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := map[string][]byte{}
		parsePack(b, m)
		for name, e := range m {
			if !bytes.Contains(b, []byte(name)) || !bytes.Contains(b, e) || len(e) > maxPackEntry {
				t.Fatalf("record %q (%d bytes) not from the pack", name, len(e))
			}
		}
	})
}
