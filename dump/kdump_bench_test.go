package dump

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// BenchmarkKdumpPages reads pages of a kdump file as a first read of
// each does: its descriptor, its stored bytes, and the decompression
// (the page cache is new each op). The pages are 64 runs of 16 present
// page frames, the runs spread evenly over the dump, each page read twice
// (the second read a cache hit), reported as pages/s of first reads. zlib is the ~300-task
// dump scripts/make-taskdump.sh makes (QEMU's kdump-zlib), lzo the prod
// corpus's makedumpfile kdump, and the makedumpfile fixtures (zlib and
// LZO, dump level 31) are read from memory.
func BenchmarkKdumpPages(b *testing.B) {
	b.Run("zlib", func(b *testing.B) {
		path, _ := corpus.TaskDump(b)
		benchKdumpFile(b, path)
	})
	b.Run("lzo", func(b *testing.B) {
		dir, err := corpus.Find("prod")
		if err != nil {
			b.Skip(err)
		}
		benchKdumpFile(b, filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"))
	})
	for _, name := range []string{"nmibt-d31.kdump-zlib", "nmibt-d31.kdump-lzo"} {
		b.Run(name, func(b *testing.B) {
			raw := makedumpfileFixture(b, name)
			benchKdumpPages(b, bytes.NewReader(raw), int64(len(raw)))
		})
	}
}

func benchKdumpFile(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	benchKdumpPages(b, f, fi.Size())
}

func benchKdumpPages(b *testing.B, r io.ReaderAt, size int64) {
	d, err := NewFile(r, size)
	if err != nil {
		b.Fatal(err)
	}
	m, ok := d.PhysMemory().(*kdumpMemory)
	if !ok {
		b.Fatalf("not a kdump file: %T", d.PhysMemory())
	}
	pfns := benchPFNs(m)
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		d, err := NewFile(r, size)
		if err != nil {
			b.Fatal(err)
		}
		m := d.PhysMemory()
		for range 2 {
			for _, pfn := range pfns {
				if _, err := m.ReadAt(buf, pfn*4096+8); err != nil {
					b.Fatalf("pfn %#x: %v", pfn, err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*len(pfns))/b.Elapsed().Seconds(), "pages/s")
}

// benchPFNs returns 64 runs of 16 consecutive present page frames of m
// (a slab of task_structs, a kernel stack), the runs spread evenly over
// the dump.
func benchPFNs(m *kdumpMemory) []uint64 {
	var present []uint64
	for pfn := uint64(0); pfn < m.maxMapNr; pfn++ {
		if _, ok := m.present(pfn); ok {
			present = append(present, pfn)
		}
	}
	var pfns []uint64
	const runs, run = 64, 16
	for i := range runs {
		start := i * max(len(present)-run, 0) / runs
		pfns = append(pfns, present[start:min(start+run, len(present))]...)
	}
	return pfns
}
