package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestBtTruncatedNotes: a core cut short inside its notes, before any
// registers, fails (exit 1) saying there are no registers and where the
// notes end, not that no thread matched a selection.
func TestBtTruncatedNotes(t *testing.T) {
	z, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "usercores", "O2cfi", "abort.core.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cut.core")
	if err := os.WriteFile(p, b[:0x5b8+200], 0o644); err != nil { // the notes start at 0x5b8
		t.Fatal(err)
	}
	_, stderr, code := run(t, "bt", p)
	want := "unwind: dump: 0 notes, none an NT_PRSTATUS; the notes end where they are damaged (the 5040-byte note segment at 0x5b8 is cut short: the file ends at offset 0x680) at offset 0x5b8: no registers for any thread or CPU\n"
	if code != ExitFailure || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
	// A selection that matches nothing says what there is.
	full := filepath.Join(t.TempDir(), "abort.core")
	if err := os.WriteFile(full, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, "bt", full, "--thread", "99999")
	if code != ExitFailure || !strings.Contains(stderr, "no thread or CPU matches the selection (the dump has 1: thread ") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
