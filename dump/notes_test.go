package dump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
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
