package dump

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/unwind"
)

// A stack deeper than deepStack is recorded compactly past its first
// deepStack frames, then gathered into a slice of its length: the trace is
// the one a plain collection of every frame gives, frame for frame, for the
// 100,000-frame core of fixtures/deepcore; so is Dump.Record's, whose
// recursion frames repeat each other (one symbolization).
func TestWalkDeepRecordedSameFrames(t *testing.T) {
	z, err := os.ReadFile(filepath.Join("..", "fixtures", "deepcore", "deep.core.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "deep.core")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	set, _, err := d.Symbols(SymbolOptions{Exe: filepath.Join("..", "fixtures", "deepcore", "deep")})
	if err != nil {
		t.Fatal(err)
	}
	walk := func(limit int) Trace {
		defer func(old int) { deepStack = old }(deepStack)
		deepStack = limit
		tr, err := d.Unwind(0, set, unwind.Options{MaxFrames: -1})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	once, twice := walk(1<<30), walk(4096)
	r, err := d.Record(0, set, unwind.Options{MaxFrames: -1}, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != len(once.Frames) || r.Reliable() != once.Reliable || r.StopReason() != once.StopReason || r.Truncated() != once.Truncated {
		t.Fatalf("Record: %d frames, %v %q; Unwind: %d, %v %q", r.Len(), r.Reliable(), r.StopReason(), len(once.Frames), once.Reliable, once.StopReason)
	}
	repeats := 0
	for i := range once.Frames {
		if f := r.Frame(i); !reflect.DeepEqual(f, once.Frames[i]) {
			t.Fatalf("Record: frame %d differs:\n%+v\n%+v", i, f, once.Frames[i])
		}
		if i > 0 && r.Repeats(i-1, i) {
			repeats++
		}
	}
	if repeats != 99997 {
		t.Errorf("%d frames repeat the one before, want 99,997 (frames 2 to 99,998)", repeats)
	}
	if len(once.Frames) != 100000 {
		t.Fatalf("%d frames, want 100,000", len(once.Frames))
	}
	once.Mem, twice.Mem = nil, nil
	if !reflect.DeepEqual(once, twice) {
		t.Errorf("recorded, the trace differs from one collection's: %d frames, %v %q; once %d, %v %q",
			len(twice.Frames), twice.Reliable, twice.StopReason, len(once.Frames), once.Reliable, once.StopReason)
	}
}
