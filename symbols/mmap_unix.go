//go:build unix

package symbols

import (
	"os"
	"syscall"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// mapFile maps path read-only, or returns nil and an error. Small or empty
// files are not mapped.
func mapFile(path string) ([]byte, error) {
	if path == "" {
		return nil, os.ErrInvalid
	}
	f, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size < 1<<16 || size > 1<<34 || !fi.Mode().IsRegular() {
		return nil, os.ErrInvalid
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}
