package dump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/internal/fileio"
)

// readZst reads a zstd-compressed file of the repository.
func readZst(t *testing.T, path string) []byte {
	t.Helper()
	z, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestThreadsErrTruncatedNotes: a dump cut short inside its notes, before
// any NT_PRSTATUS, opens, has no threads, and ThreadsErr says so: where
// the notes end and why, as a *FormatError wrapping ErrNoRegisters.
func TestThreadsErrTruncatedNotes(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"user core", readZst(t, filepath.Join("..", "fixtures", "usercores", "O2cfi", "abort.core.zst"))},
		{"makedumpfile ELF vmcore", makedumpfileFixture(t, "nmibt-d31.elf")},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := openBytes(t, c.b)
			if len(d.Threads()) == 0 || d.ThreadsErr() != nil {
				t.Fatalf("whole dump: %d threads, %v", len(d.Threads()), d.ThreadsErr())
			}
			var note Segment
			for _, s := range d.Segments() {
				if s.Type == ptNote {
					note = s
				}
			}
			// Cut inside the first note's descriptor (an NT_PRSTATUS).
			cut := int64(note.Off) + 100
			d = openBytes(t, c.b[:cut])
			if n := len(d.Threads()); n != 0 {
				t.Fatalf("%d threads", n)
			}
			err := d.ThreadsErr()
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrNoRegisters) || fe.Off != int64(note.Off) {
				t.Fatalf("ThreadsErr %T %v, want a *FormatError at the first note %#x", err, err, note.Off)
			}
			want := fmt.Sprintf("note segment at %#x is cut short: the file ends at offset %#x", note.Off, cut)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
			t.Log(err)
		})
	}
}

// TestRecordedPathRefused: the paths a core's NT_FILE note records are
// not read under /proc or /sys, nor through ".." out of the sysroot;
// a device there is not a regular file.
func TestRecordedPathRefused(t *testing.T) {
	for _, p := range []string{"/proc/self/exe", "/proc/1/root/bin/sh", "/sys/kernel/notes", "/../proc/self/mem"} {
		if _, err := recordedPath(p, ""); err == nil || !strings.HasSuffix(err.Error(), ": refused") {
			t.Errorf("%s: %v", p, err)
		}
	}
	root := t.TempDir()
	if _, err := recordedPath("/lib/../../../etc/shadow", root); err == nil || !strings.Contains(err.Error(), "leads out of the sysroot") {
		t.Errorf("dot-dot out of the sysroot: %v", err)
	}
	if p, err := recordedPath("/lib/../etc/x", root); err != nil || p != filepath.Join(root, "etc/x") {
		t.Errorf("dot-dot inside the sysroot: %q %v", p, err)
	}
	if _, _, _, err := openELF("/dev/null"); !errors.Is(err, fileio.ErrNotRegular) || !strings.Contains(err.Error(), "it is a device") {
		t.Errorf("device: %v", err)
	}
}
