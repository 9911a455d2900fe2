package symbols

import (
	"path/filepath"
	"testing"
)

// A cache entry written is read back from the file's cache folder; names
// of the cache's own files, paths, entries over the limit and a cache
// turned off give nothing.
func TestReadWriteCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("UNWIND_DEBUG_CACHE", dir)
	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteCache("entry", []byte("hello"))
	if b := f.ReadCache("entry", 5); string(b) != "hello" {
		t.Fatalf("read %q", b)
	}
	if b := f.ReadCache("entry", 4); b != nil {
		t.Errorf("entry over the limit read: %q", b)
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "*", "entry")); len(got) != 1 {
		t.Errorf("entries %q", got)
	}
	for _, name := range []string{"", "units", ".debug_info", "a/b", "../entry"} {
		f.WriteCache(name, []byte("x"))
		if b := f.ReadCache(name, 10); b != nil {
			t.Errorf("%q: read %q", name, b)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "*", "*")); len(got) != 1 {
		t.Errorf("cache files %q", got)
	}
	t.Setenv("UNWIND_DEBUG_CACHE", "off")
	if b := f.ReadCache("entry", 5); b != nil {
		t.Errorf("cache off: read %q", b)
	}
}
