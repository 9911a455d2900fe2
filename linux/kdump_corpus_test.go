package linux

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

// kernelFrames unwinds every CPU of k and renders the frames compactly.
func kernelFrames(t *testing.T, k *Kernel) []string {
	t.Helper()
	var out []string
	for i, th := range k.CPUs() {
		tr, err := k.UnwindCPU(i, unwind.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tr.Frames {
			out = append(out, fmt.Sprintf("cpu%d %#x %#x %s %s %s %s %v", th.CPU, f.PC, f.SP, f.Sym.Name, f.Kind, f.Entry, f.Stack.Kind, f.Reliable))
		}
		out = append(out, fmt.Sprintf("cpu%d pid %d %s: %s reliable=%v", th.CPU, th.TID, th.Comm, tr.StopReason, tr.Reliable))
	}
	return out
}

// TestKdumpTracesEqualELF: every compressed kdump of a capture (zlib, LZO
// and snappy as QEMU wrote them) gives the same trace on every CPU as the
// ELF dump taken at the same stop (package dump checks their memory).
func TestKdumpTracesEqualELF(t *testing.T) {
	dir := corpus.Dir(t, "kdump")
	opts := dump.SymbolOptions{Files: []string{filepath.Join(kernelDir(t), "vmlinux")}}
	for _, sc := range []string{"idle", "nmibt"} {
		base := filepath.Join(dir, "fp", sc, sc)
		want := kernelFrames(t, openWith(t, base+".vmcore", opts))
		if len(want) < 10 {
			t.Fatalf("%s: ELF dump unwinds to %v", sc, want)
		}
		for _, format := range []string{"zlib", "lzo", "snappy"} {
			t.Run(sc+"/"+format, func(t *testing.T) {
				got := kernelFrames(t, openWith(t, base+".kdump-"+format, opts))
				if !slices.Equal(got, want) {
					t.Errorf("traces differ from the ELF dump's:\n%s", cmp.Diff(want, got))
				}
			})
		}
	}
}
