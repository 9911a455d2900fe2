package symbols

import (
	"path/filepath"
	"strings"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// ReadCache returns the contents of the entry name in f's folder of the
// debug cache (DebugCacheDir: the folder of f's build id, else of its
// path, size and time), or nil when the cache is off, the entry is absent,
// not a regular file, or larger than limit bytes. For a caller that keeps
// what it derived from f between runs (package linux keeps the kernel's
// structure layouts there): the cache is outside input, so the caller
// must check what it reads (a format version, a key naming the file's
// sections it was made from, a checksum) and ignore an entry that does
// not pass. name is a plain file name that does not start with "." or
// "units" (the cache's own decompressed sections and unit index).
func (f *File) ReadCache(name string, limit int64) []byte {
	c := f.cacheEntry(name)
	if c == "" {
		return nil
	}
	fh, err := fileio.OpenRegular(c)
	if err != nil {
		return nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil || fi.Size() > limit {
		return nil
	}
	b := make([]byte, fi.Size())
	if n, _ := fh.ReadAt(b, 0); int64(n) != fi.Size() {
		return nil
	}
	return b
}

// WriteCache stores b as the entry name in f's folder of the debug cache,
// atomically (a reader sees the old entry or the new one, never part of
// one); failing to is no error, as the cache only saves time. name is as
// for ReadCache.
func (f *File) WriteCache(name string, b []byte) {
	if f.cacheEntry(name) == "" {
		return
	}
	debugCacheFor(f.ef, f.Path).store(name, b)
}

// cacheEntry returns the path of the cache entry name of f, or "".
func (f *File) cacheEntry(name string) string {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "units") || strings.ContainsAny(name, `/\`) {
		return ""
	}
	c := debugCacheFor(f.ef, f.Path)
	if c == "" {
		return ""
	}
	return filepath.Join(string(c), name)
}
