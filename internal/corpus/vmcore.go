package corpus

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// Vmcore returns the path of the decompressed kernel corpus dump
// fp/SCENARIO/NAME.vmcore.zst, decompressing it once (sparse) into the user's
// cache directory. It skips or fails tb as Dir does.
func Vmcore(tb testing.TB, scenario, name string) string {
	tb.Helper()
	p, err := FindVmcore(scenario, name)
	if err != nil {
		Unavailable(tb, fmt.Sprintf("vmcore %s/%s", scenario, name), err)
	}
	track(tb)
	return p
}

// FindVmcore is Vmcore without a testing.TB.
func FindVmcore(scenario, name string) (string, error) {
	dir, err := Find("kernel")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "fp", scenario, name+".vmcore.zst")
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "unwind-corpus", "vmcores", fmt.Sprintf("%s-%d.vmcore", name, fi.Size()))
	mu.Lock()
	defer mu.Unlock()
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(out + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out, nil // another process made it while we waited
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	zr, err := zstd.NewReader(in)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), "tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := copySparse(tmp, zr); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return out, os.Rename(tmp.Name(), out)
}

// copySparse copies r to f, seeking over all-zero 64 KiB blocks so the
// mostly empty vmcores stay sparse on disk.
func copySparse(f *os.File, r io.Reader) error {
	buf := make([]byte, 64<<10)
	var size int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if allZero(buf[:n]) {
				if _, err := f.Seek(int64(n), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return f.Truncate(size)
		}
		if err != nil {
			return err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
