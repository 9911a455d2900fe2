package symbols

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// benchTable returns the kernel System.map when the corpus is there, else a
// synthetic table of 100k symbols.
func benchTable(b *testing.B) (*Table, []uint64) {
	var tab *Table
	if dir, err := corpus.Find("kernel"); err == nil {
		if data, err := os.ReadFile(filepath.Join(dir, "fp", "System.map")); err == nil {
			tab, _ = ParseSystemMap(bytes.NewReader(data), 0)
		}
	}
	if tab == nil {
		syms := make([]Sym, 100000)
		for i := range syms {
			syms[i] = Sym{Name: "f", Addr: 0xffffffff81000000 + uint64(i)*64}
		}
		tab = NewTable(syms)
	}
	lo, hi := tab.At(0).Addr, tab.At(tab.Len()-1).Addr
	addrs := make([]uint64, 4096)
	x := uint64(88172645463325252)
	for i := range addrs {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		addrs[i] = lo + x%(hi-lo+1)
	}
	return tab, addrs
}

func BenchmarkLookup(b *testing.B) {
	tab, addrs := benchTable(b)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tab.Lookup(addrs[n&4095])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(tab.Len()), "symbols")
}

func BenchmarkFileFindCFI(b *testing.B) {
	f, err := Open("testdata/prog", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	leaf, _ := f.Syms.ByName("leaf")
	var row CFIRow
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := f.FindCFI(leaf.Addr+uint64(n%int(leaf.Size)), &row); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
}

func BenchmarkLines(b *testing.B) {
	f, err := Open("testdata/prog", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	leaf, _ := f.Syms.ByName("leaf")
	var buf []Line
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		buf = f.Lines(leaf.Addr+uint64(n%int(leaf.Size)), buf)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
}

// benchFileLookup measures Lookup in a File's table at random addresses of
// its text.
func benchFileLookup(b *testing.B, f *File) {
	lo, hi := ^uint64(0), uint64(0)
	for _, t := range f.text {
		lo, hi = min(lo, t.start), max(hi, t.end)
	}
	addrs := make([]uint64, 4096)
	x := uint64(88172645463325252)
	for i := range addrs {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		addrs[i] = lo + x%(hi-lo)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f.Syms.Lookup(addrs[n&4095])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(f.Syms.Len()), "symbols")
}

// BenchmarkLookupVmlinux looks up kernel text in vmlinux, whose text
// symbols have kallsyms-style sizes.
func BenchmarkLookupVmlinux(b *testing.B) {
	dir, err := corpus.Find("kernel")
	if err != nil {
		b.Skip(err)
	}
	f, err := Open(filepath.Join(dir, "fp", "vmlinux"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchFileLookup(b, f)
}

// BenchmarkLookupAttached looks up libc text with its debug file attached.
func BenchmarkLookupAttached(b *testing.B) {
	dir, err := corpus.Find("user")
	if err != nil {
		b.Skip(err)
	}
	libc := filepath.Join(dir, "lib", "libc.so.6")
	f, err := Open(libc, 0x7ffff7d80000)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.AttachDebug(libc + ".debug"); err != nil {
		b.Fatal(err)
	}
	benchFileLookup(b, f)
}

// BenchmarkFindORC looks up ORC entries at spread-out pcs of the
// production vmlinux's text (368k entries), the table read beforehand.
func BenchmarkFindORC(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	f, err := Open(filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ORC(); err != nil {
		b.Fatal(err)
	}
	t := f.textAt(0xffffffff81000000)
	var addrs [4096]uint64
	x := uint64(88172645463325252)
	for i := range addrs {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		addrs[i] = t.start + x%(t.end-t.start)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f.FindORC(addrs[n&4095])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkOpenVmlinux opens the production vmlinux (118k symbols) and
// makes its symbol table, as every kernel run of the command does, and
// looks one symbol up by name: warm, the table loaded from the debug
// cache (stored before the loop).
func BenchmarkOpenVmlinux(b *testing.B) { benchOpenVmlinux(b, false) }

// BenchmarkOpenVmlinuxFirst is BenchmarkOpenVmlinux on a first run: the
// debug cache empty, the table built and stored.
func BenchmarkOpenVmlinuxFirst(b *testing.B) { benchOpenVmlinux(b, true) }

func benchOpenVmlinux(b *testing.B, first bool) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	path := filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")
	cache := b.TempDir()
	b.Setenv("UNWIND_DEBUG_CACHE", cache)
	open := func() int {
		f, err := Open(path, 0x1e000000)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := f.Syms.ByName("schedule"); !ok {
			b.Fatal("no schedule")
		}
		n := f.Syms.Len()
		f.Close()
		return n
	}
	if !first {
		open()
	}
	hits := symtabHits.Load()
	b.ReportAllocs()
	n, ops := 0, 0
	for b.Loop() {
		if first {
			b.StopTimer()
			os.RemoveAll(cache)
			b.StartTimer()
		}
		n = open()
		ops++
	}
	want := int64(ops) // every table from the cache, or, on first runs, none
	if first {
		want = 0
	}
	if got := symtabHits.Load() - hits; got != want {
		b.Fatalf("%d tables from the cache in %d ops, want %d", got, ops, want)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "symbols/s")
}

// benchDWARFFirstLines times what the first source-line lookups in a file
// cost: the DWARF sections read (slices of the file's mapping made at open, or from the debug cache), the
// unit index read from the debug cache (made and stored before the first
// op), and the lines of a few functions' pcs found, as one `unwind bt`
// does (each unit's detail read from the debug cache after the first op).
// The ELF file and its symbols are opened once, outside
// the loop.
func benchDWARFFirstLines(b *testing.B, f *File, funcs []string) {
	ef, r, path, mapped := f.ef, f.r, f.Path, f.mapped
	if f.dbg != nil {
		ef, r, path, mapped = f.dbg, f.dbgR, f.DebugPath, f.dbgMapped
	}
	var pcs []uint64
	for _, name := range funcs {
		s, ok := f.Syms.ByName(name)
		if !ok {
			b.Fatalf("no symbol %s", name)
		}
		pcs = append(pcs, s.Addr+s.Size/2-f.Bias)
	}
	cache := debugCacheFor(ef, path)
	b.ReportAllocs()
	var buf []Line
	for b.Loop() {
		d, key, st, err := readDWARF(ef, r, path, mapped)
		if err != nil {
			b.Fatal(err)
		}
		x, err := indexDWARF(d, key, st, cache)
		if err != nil {
			b.Fatal(err)
		}
		for _, pc := range pcs {
			if buf = x.lines(pc, buf[:0]); len(buf) == 0 {
				b.Fatalf("no lines at %#x", pc)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pcs)), "ns/pc")
}

// BenchmarkDWARFFirstLinesProd: twelve functions of the production
// vmlinux (DWARF 5, 160 MiB of .debug_info) that its tasks' stacks hold.
func BenchmarkDWARFFirstLinesProd(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	f, err := Open(filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchDWARFFirstLines(b, f, []string{"__schedule", "schedule", "do_syscall_64", "sysrq_handle_crash",
		"panic", "vfs_write", "worker_thread", "kthread", "smpboot_thread_fn", "do_wait",
		"rcu_gp_kthread", "schedule_timeout"})
}

// BenchmarkDWARFFirstLinesLab: the same in the lab vmlinux (DWARF 4).
func BenchmarkDWARFFirstLinesLab(b *testing.B) {
	dir, err := corpus.Find("kernel")
	if err != nil {
		b.Skip(err)
	}
	f, err := Open(filepath.Join(dir, "fp", "vmlinux"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchDWARFFirstLines(b, f, []string{"__schedule", "schedule", "do_idle", "kthread",
		"default_idle_call", "nmi_handle", "panic", "cpu_startup_entry"})
}

// BenchmarkDWARFFirstLinesLibc: libc's separate compressed debug file
// (mapped from the debug cache after the first run).
func BenchmarkDWARFFirstLinesLibc(b *testing.B) {
	dir, err := corpus.Find("user")
	if err != nil {
		b.Skip(err)
	}
	libc := filepath.Join(dir, "lib", "libc.so.6")
	f, err := Open(libc, 0x7ffff7d80000)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.AttachDebug(libc + ".debug"); err != nil {
		b.Fatal(err)
	}
	benchDWARFFirstLines(b, f, []string{"abort", "raise", "__libc_start_main", "__libc_start_call_main"})
}

// BenchmarkReadSymbolsVmlinuxFirst builds the production vmlinux's
// symbol table as a first run does (readSymbols with an empty debug
// cache: .symtab scanned, sorted, deduplicated and sized, the name index
// made and the cache entry written), on a file opened once outside the
// loop. symbols/s counts the .symtab entries read.
func BenchmarkReadSymbolsVmlinuxFirst(b *testing.B) {
	dir, err := corpus.Find("prod")
	if err != nil {
		b.Skip(err)
	}
	cache := b.TempDir()
	b.Setenv("UNWIND_DEBUG_CACHE", "off")
	f, err := Open(filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"), 0x1e000000)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Setenv("UNWIND_DEBUG_CACHE", cache)
	want := f.Syms.Len()
	entries := 0
	for _, s := range f.ef.Sections {
		if s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_DYNSYM {
			entries += int(s.Size / elf.Sym64Size)
		}
	}
	hits := symtabHits.Load()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(cache)
		f.own, f.ownDyn = nil, false
		b.StartTimer()
		if t := f.readSymbols(); t.Len() != want {
			b.Fatalf("%d symbols, want %d", t.Len(), want)
		}
	}
	if got := symtabHits.Load() - hits; got != 0 {
		b.Fatalf("%d tables from the cache", got)
	}
	if _, err := os.Stat(filepath.Join(string(debugCacheFor(f.ef, f.Path)), "symtab")); err != nil {
		b.Fatalf("no cache entry: %v", err)
	}
	b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "symbols/s")
}

// taskdumpPCs returns the distinct lookup pcs (return address - 1) of
// the stacks the kernel printed for sysrq t in the task dump's console log
// (the frames it was sure of, not those marked "?"), as link-time
// addresses of vmlinux: about the pcs `unwind bt --tasks` looks up in it.
func taskdumpPCs(b testing.TB, f *File) []uint64 {
	log, err := os.ReadFile(filepath.Join(corpus.TaskDumpDir(), "serial.log"))
	if err != nil {
		b.Skip(err)
	}
	_, after, ok := strings.Cut(string(log), "TASKDUMP-SYSRQ-T")
	if !ok {
		b.Skip("no sysrq t print in serial.log")
	}
	seen := map[uint64]bool{}
	var pcs []uint64
	for _, ln := range strings.Split(after, "\n") {
		_, fr, ok := strings.Cut(ln, "]  ")
		if !ok || strings.HasPrefix(fr, "?") {
			continue
		}
		name, rest, ok := strings.Cut(fr, "+0x")
		off, _, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			continue
		}
		o, err := strconv.ParseUint(off, 16, 64)
		s, found := f.Syms.ByName(name)
		if err != nil || !found || o == 0 {
			continue
		}
		if pc := s.Addr + o - 1 - f.Bias; !seen[pc] {
			seen[pc] = true
			pcs = append(pcs, pc)
		}
	}
	if len(pcs) == 0 {
		b.Skip("no frames in serial.log")
	}
	return pcs
}

// BenchmarkDWARFColdLinesTasks300 times the source lines of the task
// dump's stacks (taskdumpPCs) on a first run: each op starts with an
// empty debug cache, reads the DWARF sections of the mapped vmlinux,
// makes the unit index from .debug_aranges and loads every unit the pcs
// land in (line table index, functions, inlined scopes), caching them as
// `unwind bt --tasks` does. units/op is the units loaded.
func BenchmarkDWARFColdLinesTasks300(b *testing.B) {
	_, vmlinux := corpus.TaskDump(b)
	b.Setenv("UNWIND_DEBUG_CACHE", b.TempDir())
	f, err := Open(vmlinux, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pcs := taskdumpPCs(b, f)
	ef, r, path, mapped := f.ef, f.r, f.Path, f.mapped
	cache := debugCacheFor(ef, path)
	var buf []Line
	units := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		os.RemoveAll(string(cache))
		b.StartTimer()
		d, key, st, err := readDWARF(ef, r, path, mapped)
		if err != nil {
			b.Fatal(err)
		}
		x, err := indexDWARF(d, key, st, cache)
		if err != nil || x.ar == nil {
			b.Fatalf("no aranges index: %v", err)
		}
		for _, pc := range pcs {
			buf = x.lines(pc, buf[:0])
		}
		units = 0
		for _, au := range x.ar.units {
			if au != nil && au.u != nil {
				units++
			}
		}
	}
	b.ReportMetric(float64(units), "units/op")
	b.ReportMetric(float64(len(pcs)), "pcs")
	b.ReportMetric(float64(units)*float64(b.N)/b.Elapsed().Seconds(), "units/s")
}
