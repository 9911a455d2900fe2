package linux

import (
	"github.com/unwind-dev/unwind/dump"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/unwind"
)

// benchOpen opens the 128 MiB idle vmcore, reads every CPU's registers and
// 4 KiB of each CPU's stack, and finds its stack bounds.
func benchOpen(b *testing.B, withSymbols bool) {
	path := vmcore(b, "idle", "idle")
	var opts dump.SymbolOptions
	if withSymbols {
		dir := kernelDirTB(b)
		opts = dump.SymbolOptions{Files: []string{filepath.Join(dir, "vmlinux")}, SystemMap: filepath.Join(dir, "System.map")}
	}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	cpus := 0
	for b.Loop() {
		d, err := dump.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		k, err := Open(d, opts)
		if err != nil {
			b.Fatal(err)
		}
		for i, th := range k.CPUs() {
			sp, _ := th.Regs.SP()
			if _, err := d.Memory().ReadAt(buf, sp&^0xfff); err != nil {
				b.Fatal(err)
			}
			if len(k.Stacks(i)) == 0 {
				b.Fatal("no stacks")
			}
			cpus++
		}
		d.Close()
	}
	b.ReportMetric(float64(cpus)/float64(b.N), "cpus/op")
}

func BenchmarkOpenVmcore(b *testing.B)            { benchOpen(b, false) }
func BenchmarkOpenVmcoreWithSymbols(b *testing.B) { benchOpen(b, true) }

// BenchmarkOpenAndUnwindVmcore is `unwind bt VMCORE --sym vmlinux` without
// the printing: open the 128 MiB nmibt vmcore, load vmlinux, unwind every
// CPU through its NMI, IRQ and syscall pt_regs.
func BenchmarkOpenAndUnwindVmcore(b *testing.B) {
	path := vmcore(b, "nmibt", "nmibt")
	vmlinux := filepath.Join(kernelDirTB(b), "vmlinux")
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		d, err := dump.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		k, err := Open(d, dump.SymbolOptions{Files: []string{vmlinux}})
		if err != nil {
			b.Fatal(err)
		}
		set := k.Symbols()
		for i := range k.CPUs() {
			tr, err := k.UnwindCPU(i, unwind.Options{})
			if err != nil {
				b.Fatal(err)
			}
			frames += len(tr.Frames)
			if tr.Err != nil {
				b.Fatal(tr.Err)
			}
		}
		d.Close()
		for _, f := range set.Modules() {
			f.Close()
		}
	}
	b.ReportMetric(float64(frames)/float64(b.N), "frames/op")
}
