//go:build unix

package fileio

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestOpenRegularRefusesFIFO: a named pipe with no writer would block
// os.Open forever; OpenRegular refuses it at once, and a directory too.
func TestOpenRegularRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(fifo, link)
	reg := filepath.Join(dir, "reg")
	os.WriteFile(reg, []byte("abc"), 0o644)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range []string{fifo, link, dir} {
			f, err := OpenRegular(p)
			if f != nil || !errors.Is(err, ErrNotRegular) {
				t.Errorf("%s: %v, want ErrNotRegular", p, err)
			}
			if _, err := ReadRegular(p); !errors.Is(err, ErrNotRegular) {
				t.Errorf("ReadRegular %s: %v", p, err)
			}
		}
		if err := CheckRegular(fifo); err == nil || err.Error() != "open "+fifo+": not a regular file: it is a named pipe" {
			t.Errorf("message %v", err)
		}
		if b, err := ReadRegular(reg); err != nil || string(b) != "abc" {
			t.Errorf("regular file: %q %v", b, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked on a named pipe")
	}
}
