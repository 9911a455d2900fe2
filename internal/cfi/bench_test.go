package cfi

import (
	"debug/elf"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
)

// benchSection returns the kernel's .debug_frame when the corpus is there,
// else the committed test binary's .eh_frame.
func benchSection(b *testing.B) *Table {
	var t testing.T
	if dir, err := corpus.Find("kernel"); err == nil {
		if data, _, ok := sectionOf(&t, filepath.Join(dir, "fp", "vmlinux"), ".debug_frame"); ok {
			tab, err := Parse(data, DebugFrame, 0, 0)
			if err == nil {
				return tab
			}
		}
	}
	data, addr, ok := sectionOf(&t, "../../symbols/testdata/prog", ".eh_frame")
	if !ok {
		b.Skip("no CFI")
	}
	tab, err := Parse(data, EHFrame, addr, 0)
	if err != nil {
		b.Fatal(err)
	}
	return tab
}

func benchPCs(tab *Table) []uint64 {
	pcs := make([]uint64, 0, 4096)
	for i := 0; len(pcs) < cap(pcs); i++ {
		s, e := tab.Range(i % tab.Len())
		pcs = append(pcs, s+uint64(i*13)%(e-s))
	}
	return pcs
}

// BenchmarkFind measures warm-cache row lookups.
func BenchmarkFind(b *testing.B) {
	tab := benchSection(b)
	pcs := benchPCs(tab)
	var row Row
	for _, pc := range pcs { // warm the cache
		tab.Find(pc, &row)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tab.Find(pcs[n&4095], &row)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(tab.Len()), "FDEs")
}

// BenchmarkStep measures Find plus Step of a typical row.
func BenchmarkStep(b *testing.B) {
	tab := benchSection(b)
	pcs := benchPCs(tab)
	var row Row
	var regs ptregs.Regs
	for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
		regs.Set(r, 0x7000)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if tab.Find(pcs[n&4095], &row) == nil {
			row.Step(&regs, zeroMemory{})
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "steps/s")
}

// BenchmarkParseVmlinux parses the production vmlinux's .debug_frame
// (46k FDEs), as the first CFI lookup of every kernel run does.
func BenchmarkParseVmlinux(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	f, err := elf.Open(filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"))
	if err != nil {
		b.Fatal(err)
	}
	data, err := f.Section(".debug_frame").Data()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		t, err := Parse(data, DebugFrame, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		n = t.Len()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "FDEs/s")
}

// BenchmarkParseLibcEH parses the user corpus's libc .eh_frame (3k+ FDEs,
// not in address order), as the first CFI lookup in libc of every user
// core run does.
func BenchmarkParseLibcEH(b *testing.B) {
	dir, err := corpus.Find("user")
	if err != nil {
		b.Skip(err)
	}
	f, err := elf.Open(filepath.Join(dir, "lib", "libc.so.6"))
	if err != nil {
		b.Fatal(err)
	}
	s := f.Section(".eh_frame")
	data, err := s.Data()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		t, err := Parse(data, EHFrame, s.Addr, 0)
		if err != nil {
			b.Fatal(err)
		}
		n = t.Len()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "FDEs/s")
}
