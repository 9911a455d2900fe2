package dump

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/unwind"
)

// manyThreadsCore writes a copy of a real user core whose NT_PRSTATUS note
// is replicated until the core claims n threads (each with its own pid),
// as a hostile core may: the copies go in a new PT_NOTE segment after the
// file's end, and the program header points at it.
func manyThreadsCore(tb testing.TB, n int) string {
	tb.Helper()
	return replicatePrStatus(tb, readCore(tb), n)
}

func readCore(tb testing.TB) []byte {
	z, err := os.ReadFile(filepath.Join("..", "fixtures", "usercores", "O2cfi", "abort.core.zst"))
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// replicatePrStatus writes a copy of the ELF dump b whose first
// NT_PRSTATUS is repeated until the dump claims n threads or CPUs.
func replicatePrStatus(tb testing.TB, b []byte, n int) string {
	b = append([]byte(nil), b...) // the caller's copy stays as it was
	le := binary.LittleEndian
	phoff, phentsize, phnum := le.Uint64(b[0x20:]), uint64(le.Uint16(b[0x36:])), int(le.Uint16(b[0x38:]))
	for i := 0; i < phnum; i++ {
		ph := b[phoff+uint64(i)*phentsize:]
		if le.Uint32(ph) != ptNote {
			continue
		}
		off, size := le.Uint64(ph[8:]), le.Uint64(ph[32:])
		notes, err := ParseNotes(b[off:off+size], int64(off))
		if err != nil {
			tb.Fatal(err)
		}
		var pr []byte
		var seg []byte
		add := func(name string, typ uint32, desc []byte) {
			var h [12]byte
			le.PutUint32(h[0:], uint32(len(name)+1))
			le.PutUint32(h[4:], uint32(len(desc)))
			le.PutUint32(h[8:], typ)
			seg = append(seg, h[:]...)
			seg = append(seg, name...)
			for k := len(name); k < int(align4(uint64(len(name)+1))); k++ {
				seg = append(seg, 0)
			}
			seg = append(seg, desc...)
			for k := len(desc); k < int(align4(uint64(len(desc)))); k++ {
				seg = append(seg, 0)
			}
		}
		for _, nt := range notes {
			if nt.Type == ntPrStatus && pr == nil {
				pr = nt.Desc
			}
			add(nt.Name, nt.Type, nt.Desc)
		}
		if pr == nil {
			tb.Fatal("no NT_PRSTATUS")
		}
		for k := 1; k < n; k++ {
			d := append([]byte(nil), pr...)
			le.PutUint32(d[32:], uint32(100000+k)) // pr_pid
			add("CORE", ntPrStatus, d)
		}
		le.PutUint64(ph[8:], uint64(len(b)))
		le.PutUint64(ph[32:], uint64(len(seg)))
		b = append(b, seg...)
		path := filepath.Join(tb.TempDir(), "many.core")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	tb.Fatal("no PT_NOTE")
	return ""
}

// A core claiming 65,536 threads opens and unwinds every thread at a small
// cost per thread: allocations and bytes allocated per thread are bounded
// (whatever the count), not growing with it.
func TestManyThreadsLinear(t *testing.T) {
	perThread := func(n int) (allocs, bytes float64) {
		path := manyThreadsCore(t, n)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		allocs = testing.AllocsPerRun(1, func() {
			d, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if len(d.Threads()) != n {
				t.Fatalf("%d threads, want %d", len(d.Threads()), n)
			}
			for i := range d.Threads() {
				if _, err := d.Unwind(i, nil, unwind.Options{}); err != nil {
					t.Fatal(err)
				}
			}
		})
		runtime.ReadMemStats(&after)
		// AllocsPerRun runs the function twice (a warm-up, then the run).
		return allocs / float64(n), float64(after.TotalAlloc-before.TotalAlloc) / 2 / float64(n)
	}
	sa, sb := perThread(1000)
	la, lb := perThread(1<<16 - 64)
	t.Logf("per thread: %.1f allocations, %.0f bytes with 1,000 threads; %.1f, %.0f with 65,472", sa, sb, la, lb)
	if la > 2*sa+5 || lb > 2*sb+4096 {
		t.Errorf("the cost per thread grows with the thread count: %.1f allocations, %.0f bytes with 1,000 threads; %.1f, %.0f with 65,472", sa, sb, la, lb)
	}
}

// BenchmarkUnwindManyThreads opens a user core claiming 8,192 threads (the
// copies of one real thread) with its executable and libc, and unwinds
// every thread, as `unwind bt` does: per op the whole path, the file
// opened, its symbols found, every thread walked. The walks share the
// dump's CodeCache; ns/thread is the cost of one more thread.
func BenchmarkUnwindManyThreads(b *testing.B) {
	const n = 8192
	path := manyThreadsCore(b, n)
	exe := filepath.Join("..", "fixtures", "usercores", "O2cfi", "ucore")
	lib := filepath.Join("..", "fixtures", "usercores", "lib")
	frames := 0
	b.ReportAllocs()
	for b.Loop() {
		d, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		set, _, err := d.Symbols(SymbolOptions{Exe: exe, SearchDirs: []string{lib}})
		if err != nil {
			b.Fatal(err)
		}
		frames = 0
		for i := range d.Threads() {
			tr, err := d.Unwind(i, set, unwind.Options{})
			if err != nil {
				b.Fatal(err)
			}
			frames += len(tr.Frames)
		}
		d.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/thread")
	b.ReportMetric(float64(frames)/n, "frames/thread")
}
