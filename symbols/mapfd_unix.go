//go:build unix

package symbols

import (
	"io"
	"os"
	"syscall"
)

// mapReader maps the regular file r is, read-only, when r is an *os.File
// of at least 64 KiB (smaller files are cheaper to read); else nil. The
// mapping is never unmapped: symbol names (a Table's, from .strtab), code
// bytes (CodeAt), CFI and notes are slices of it that callers may keep
// for as long as the process runs, and the kernel reclaims its pages
// freely.
func mapReader(r io.ReaderAt) []byte {
	fh, ok := r.(*os.File)
	if !ok {
		return nil
	}
	fi, err := fh.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	size := fi.Size()
	if size < 1<<16 || size > 1<<34 {
		return nil
	}
	sc, err := fh.SyscallConn()
	if err != nil {
		return nil
	}
	var b []byte
	if cerr := sc.Control(func(fd uintptr) {
		b, err = syscall.Mmap(int(fd), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	}); cerr != nil || err != nil {
		return nil
	}
	return b
}

// unmapBytes unmaps b, a mapping of mapReader that nothing refers to (a
// debug cache entry found invalid).
func unmapBytes(b []byte) { syscall.Munmap(b) }
