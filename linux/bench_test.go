package linux

import (
	"debug/elf"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/symbols"
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

// benchProdWalk unwinds CPU 0 of the production kdump (Debian 6.1, ORC,
// KASLR; panic from a write(2) syscall) over and over with one Unwinder:
// warm, the dump, vmlinux and the Unwinder's caches made once; cold, a new
// Unwinder per walk. methods 0 is ORC first; without ORC the same walk
// goes by CFI (.debug_frame) and the other strategies.
func benchProdWalk(b *testing.B, methods unwind.Method, cold bool) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	d, err := dump.Open(filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	k, err := Open(d, dump.SymbolOptions{Files: []string{filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)}})
	if err != nil {
		b.Fatal(err)
	}
	th := k.CPUs()[0]
	mem := d.CPUMemory(th.CPU)
	opts := &unwind.Options{Code: Code{k.Symbols(), mem}, Stacks: k.Stacks(0), Kernel: true, Methods: methods}
	u := unwind.New(mem, th.Regs, opts)
	for u.Next() {
	}
	if u.Err() != nil {
		b.Fatal(u.Err())
	}
	frames := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if cold {
			u = unwind.New(mem, th.Regs, opts)
		} else {
			u.Reset(mem, th.Regs)
		}
		for u.Next() {
			frames++
		}
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
}

// ORC and CFI on the same real stack (the frames include the inlined ones
// vmlinux's DWARF names).
func BenchmarkProdWalkORC(b *testing.B)     { benchProdWalk(b, 0, false) }
func BenchmarkProdWalkORCCold(b *testing.B) { benchProdWalk(b, 0, true) }
func BenchmarkProdWalkCFI(b *testing.B) {
	benchProdWalk(b, unwind.MethodCFI|unwind.MethodFP|unwind.MethodPtRegs|unwind.MethodScan, false)
}
func BenchmarkProdWalkCFICold(b *testing.B) {
	benchProdWalk(b, unwind.MethodCFI|unwind.MethodFP|unwind.MethodPtRegs|unwind.MethodScan, true)
}

// BenchmarkOpenProd opens the production kdump with its vmlinux: the
// KASLR and build-id checks, vmlinux's symbols and structure layouts,
// ORC, the modules list and each module's symbols and ORC, as every
// run of the command does before it unwinds anything.
func BenchmarkOpenProd(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	path := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	opts := dump.SymbolOptions{Files: []string{filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)}}
	b.ReportAllocs()
	mods := 0
	for b.Loop() {
		d, err := dump.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		k, err := Open(d, opts)
		if err != nil {
			b.Fatal(err)
		}
		ms, err := k.Modules()
		if err != nil {
			b.Fatal(err)
		}
		mods = len(ms)
		d.Close()
	}
	b.ReportMetric(float64(mods), "modules")
}

// BenchmarkUnwindTasksProd lists and unwinds every task of the prod kdump
// (the dump opened and vmlinux loaded once, outside the loop; the
// task list read per op).
func BenchmarkUnwindTasksProd(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	benchUnwindTasks(b, filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"), filepath.Join(dir, "kernel", "vmlinux-"+prodRelease))
}

// BenchmarkUnwindTasks300 is BenchmarkUnwindTasksProd on the ~300-task
// dump of the same kernel that scripts/make-taskdump.sh makes (skipped,
// naming the folder, when it was not made).
func BenchmarkUnwindTasks300(b *testing.B) {
	path, vmlinux := corpus.TaskDump(b)
	benchUnwindTasks(b, path, vmlinux)
}

// benchUnwindTasks lists and unwinds every task of a dump, the dump opened
// and vmlinux loaded once, outside the loop; the task list read per op.
func benchUnwindTasks(b *testing.B, path, vmlinux string) {
	d, err := dump.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	k, err := Open(d, dump.SymbolOptions{Files: []string{vmlinux}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	tasks, frames := 0, 0
	for b.Loop() {
		ts, err := k.readTasks() // Tasks without its cache
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range ts {
			tr, err := k.UnwindTask(t, unwind.Options{})
			if err != nil {
				b.Fatal(err)
			}
			frames += len(tr.Frames)
		}
		tasks += len(ts)
	}
	b.ReportMetric(float64(tasks)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkDWARFLayout answers the kernel model's layout questions for
// tasks (recordLayout, taskOffsetsOf) from the prod vmlinux's DWARF, as a
// first run does before the layouts are cached: each op reads the first
// units' DWARF (the other sections are read once, outside the loop) and
// makes a new Layout.
func BenchmarkDWARFLayout(b *testing.B) {
	f := prodVmlinuxELF(b)
	secs := &dwarfSections{f: f}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		dw, err := firstUnitsDWARF(secs)
		if err != nil {
			b.Fatal(err)
		}
		n = len(recordLayout(NewDWARFLayout(dw), false).answers)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "answers/s")
}

// BenchmarkModuleLayouts reads the structure layouts modules are read
// with from the prod vmlinux, as a first run does, and the offsets
// readModuleLayout asks of them: "read" from its .BTF (5 MB) read into a
// new buffer, "mapped" from the .BTF in the read-only mapping of the
// symbols.File Open made, "unit" from the one DWARF unit that defines
// struct module_sect_attrs (moduleUnitLayout). The symbols.File is
// opened once, outside the loop: its pages are mapped after the first
// op, where a first run faults them in.
func BenchmarkModuleLayouts(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	path := filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)
	sf, err := symbols.Open(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer sf.Close()
	for _, c := range []struct {
		name string
		load func() (Layout, error)
	}{
		{"read", func() (Layout, error) { return btfFromFile(path, nil) }},
		{"mapped", func() (Layout, error) { return btfFromFile(path, sf) }},
		{"unit", func() (Layout, error) { return moduleUnitLayout(path, sf) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l, err := c.load()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := readModuleLayout(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTkCoreXtimeSec finds tk_core.timekeeper.xtime_sec in the prod
// vmlinux's DWARF as a first run does (the unit of timekeeping.c found by
// .debug_aranges, read and searched): the other DWARF sections are read
// once, outside the loop.
func BenchmarkTkCoreXtimeSec(b *testing.B) {
	f := prodVmlinuxELF(b)
	tk := elfSymbolValue(b, f, "ktime_get_real_seconds")
	secs := &dwarfSections{f: f}
	var off int64
	var err error
	for b.Loop() {
		if off, err = tkCoreXtimeSec(secs, tk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(off), "offset")
}

// prodVmlinuxELF opens the prod corpus's vmlinux for the rest of tb, or
// skips tb without the corpus.
func prodVmlinuxELF(tb testing.TB) *elf.File {
	dir, err := corpus.Find("prod")
	if err != nil {
		tb.Skip(err)
	}
	f, err := elf.Open(filepath.Join(dir, "kernel", "vmlinux-"+prodRelease))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// elfSymbolValue returns the value of the .symtab symbol name of f.
func elfSymbolValue(tb testing.TB, f *elf.File, name string) uint64 {
	syms, err := f.Symbols()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == name {
			return s.Value
		}
	}
	tb.Fatalf("no symbol %s", name)
	return 0
}
