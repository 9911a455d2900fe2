package dump

import (
	"path/filepath"
	"testing"
)

// benchOpen opens the 128 MiB idle vmcore, reads every CPU's registers and
// 4 KiB of each CPU's stack, and finds its stack bounds.
func benchOpen(b *testing.B, withSymbols bool) {
	path := vmcore(b, "idle", "idle")
	var opts SymbolOptions
	if withSymbols {
		dir := kernelDirTB(b)
		opts = SymbolOptions{Files: []string{filepath.Join(dir, "vmlinux")}, SystemMap: filepath.Join(dir, "System.map")}
	}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	cpus := 0
	for b.Loop() {
		d, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if withSymbols {
			if _, _, err := d.Symbols(opts); err != nil {
				b.Fatal(err)
			}
		}
		for i, th := range d.Threads() {
			sp, _ := th.Regs.SP()
			if _, err := d.Memory().ReadAt(buf, sp&^0xfff); err != nil {
				b.Fatal(err)
			}
			if len(d.Stacks(i)) == 0 {
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
