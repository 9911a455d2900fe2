package symbols

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// prodVmlinux opens the production corpus's vmlinux (Debian 6.1, ORC).
func prodVmlinux(t testing.TB) *File {
	t.Helper()
	dir := corpus.Dir(t, "prod")
	f, err := Open(filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestORCLayoutOf(t *testing.T) {
	for _, c := range []struct {
		header  []byte
		release string
		want    ORCLayout
	}{
		{nil, "6.1.0-47-cloud-amd64", ORCLayoutV1},
		{nil, "5.15.0", ORCLayoutV1},
		{nil, "4.19.0-26-amd64", ORCLayoutV1},
		{nil, "6.3.1", ORCLayoutV2},
		{nil, "6.4.0", ORCLayoutV3},
		{nil, "6.12.8-amd64", ORCLayoutV3},
		{nil, "7.0", ORCLayoutV3},
		{orcHashV3[:], "6.1", ORCLayoutV3}, // the header wins
		{orcHashV2[:], "", ORCLayoutV2},
	} {
		got, err := ORCLayoutOf(c.header, c.release)
		if err != nil || got != c.want {
			t.Errorf("ORCLayoutOf(%x, %q) = %v, %v; want %v", c.header, c.release, got, err, c.want)
		}
	}
	for _, c := range []struct {
		header  []byte
		release string
	}{
		{nil, ""}, {nil, "linux"}, {nil, "4.9.0"}, {make([]byte, 20), "6.1"}, {[]byte{1}, "6.4"}, {[]byte{}, "6.4"},
	} {
		if got, err := ORCLayoutOf(c.header, c.release); !errors.Is(err, ErrORCLayout) {
			t.Errorf("ORCLayoutOf(%x, %q) = %v, %v; want ErrORCLayout", c.header, c.release, got, err)
		}
	}
	if _, err := NewORCTable(make([]byte, 4), 0, make([]byte, 6), ORCLayoutUnknown); !errors.Is(err, ErrORCLayout) {
		t.Errorf("NewORCTable with no layout: %v", err)
	}
}

// orcBytes encodes entries at the given addresses in layout l, the
// .orc_unwind_ip array starting at ipAddr.
func orcBytes(t *testing.T, ipAddr uint64, pcs []uint64, es []ORCEntry, l ORCLayout) (ip, orc []byte) {
	t.Helper()
	ip = make([]byte, 4*len(pcs))
	orc = make([]byte, orcEntrySize*len(es))
	for i, pc := range pcs {
		binary.LittleEndian.PutUint32(ip[4*i:], uint32(int32(int64(pc-(ipAddr+4*uint64(i))))))
		e := es[i]
		b := orc[orcEntrySize*i:]
		binary.LittleEndian.PutUint16(b, uint16(e.SPOffset))
		binary.LittleEndian.PutUint16(b[2:], uint16(e.BPOffset))
		fl := uint16(e.SPReg) | uint16(e.BPReg)<<4
		switch l {
		case ORCLayoutV3:
			fl |= uint16(e.Type) << 8
			if e.Signal {
				fl |= 0x800
			}
		default:
			endBit, sigBit := uint16(0x400), uint16(0)
			if l == ORCLayoutV2 {
				endBit, sigBit = 0x800, 0x400
			}
			switch e.Type {
			case ORCEndOfStack:
				fl = fl&^0xf | endBit
			case ORCUndefined:
				fl &^= 0xf
			default:
				fl |= uint16(e.Type-ORCCall) << 8
			}
			if e.Signal {
				fl |= sigBit
			}
		}
		binary.LittleEndian.PutUint16(b[4:], fl)
	}
	return ip, orc
}

// TestORCLayouts encodes the same entries in the three layouts and reads
// them back; the table is given unsorted and must be sorted as the kernel
// sorts it (a terminator before a real entry at the same address).
func TestORCLayouts(t *testing.T) {
	const base = 0xffffffff81000000
	call := ORCEntry{SPOffset: 8, SPReg: ORCRegSP, BPReg: ORCRegUndefined, Type: ORCCall}
	framed := ORCEntry{SPOffset: 16, SPReg: ORCRegBP, BPOffset: -16, BPReg: ORCRegPrevSP, Type: ORCCall}
	regs := ORCEntry{SPReg: ORCRegSP, Type: ORCRegs, Signal: true}
	partial := ORCEntry{SPOffset: 8, SPReg: ORCRegSP, Type: ORCRegsPartial, Signal: true}
	end := ORCEntry{Type: ORCEndOfStack}
	term := ORCEntry{Type: ORCUndefined}
	indirect := ORCEntry{SPOffset: 8, SPReg: ORCRegSPIndirect, Type: ORCCall}
	pcs := []uint64{base + 0x40, base, base + 0x10, base + 0x30, base + 0x20, base + 0x40, base + 0x50}
	es := []ORCEntry{framed, call, term, regs, partial, term, end}
	want := []struct {
		pc uint64
		e  ORCEntry
	}{{base, call}, {base + 0x10, term}, {base + 0x20, partial}, {base + 0x30, regs}, {base + 0x40, term}, {base + 0x40, framed}, {base + 0x50, end}}
	for _, l := range []ORCLayout{ORCLayoutV1, ORCLayoutV2, ORCLayoutV3} {
		ipAddr := uint64(base + 0x100000)
		ip, orc := orcBytes(t, ipAddr, pcs, es, l)
		tab, err := NewORCTable(ip, ipAddr, orc, l)
		if err != nil {
			t.Fatalf("%v: %v", l, err)
		}
		if tab.Len() != len(want) || tab.Layout() != l {
			t.Fatalf("%v: Len %d, Layout %v", l, tab.Len(), tab.Layout())
		}
		for i, w := range want {
			if pc, e := tab.At(i); pc != w.pc || e != w.e {
				t.Errorf("%v: At(%d) = %#x %+v; want %#x %+v", l, i, pc, e, w.pc, w.e)
			}
		}
		for _, c := range []struct {
			pc uint64
			e  ORCEntry
			ok bool
		}{{base - 1, ORCEntry{}, false}, {base, call, true}, {base + 0xf, call, true}, {base + 0x45, framed, true}, {base + 0x1000, end, true}} {
			if e, ok := tab.Lookup(c.pc); e != c.e || ok != c.ok {
				t.Errorf("%v: Lookup(%#x) = %+v %v; want %+v %v", l, c.pc, e, ok, c.e, c.ok)
			}
		}
		if lo, hi := tab.Span(); lo != base || hi != base+0x50 {
			t.Errorf("%v: Span = %#x %#x", l, lo, hi)
		}
	}
	// The signal bit of a call entry exists from V2 on; V1 implies it for
	// the regs types only.
	sig := call
	sig.Signal = true
	for _, l := range []ORCLayout{ORCLayoutV2, ORCLayoutV3} {
		ip, orc := orcBytes(t, base, []uint64{base, base + 8}, []ORCEntry{sig, indirect}, l)
		tab, err := NewORCTable(ip, base, orc, l)
		if err != nil {
			t.Fatal(err)
		}
		if _, e := tab.At(0); e != sig {
			t.Errorf("%v: signal call entry read back as %+v", l, e)
		}
		if _, e := tab.At(1); e != indirect {
			t.Errorf("%v: indirect entry read back as %+v", l, e)
		}
	}
}

func TestORCTableErrors(t *testing.T) {
	for _, c := range []struct {
		ip, orc int
	}{{0, 0}, {4, 0}, {3, 6}, {4, 7}, {8, 6}} {
		if _, err := NewORCTable(make([]byte, c.ip), 0, make([]byte, c.orc), ORCLayoutV1); err == nil {
			t.Errorf("NewORCTable(%d ip bytes, %d orc bytes) accepted", c.ip, c.orc)
		}
	}
	var nilTab *ORCTable
	if _, ok := nilTab.Lookup(1); ok {
		t.Error("nil table found an entry")
	}
}

// TestORCProdVmlinux reads the Debian 6.1 vmlinux's tables: every entry,
// sorted at build time (no copy made), the layout from linux_banner.
func TestORCProdVmlinux(t *testing.T) {
	f := prodVmlinux(t)
	tab, err := f.ORC()
	if err != nil {
		t.Fatal(err)
	}
	if tab.Layout() != ORCLayoutV1 {
		t.Errorf("layout %v; want V1 (Linux 6.1 has no .orc_header)", tab.Layout())
	}
	if rel := f.release(); rel != "6.1.0-47-cloud-amd64" {
		t.Errorf("release from linux_banner %q", rel)
	}
	sec := f.ef.Section(".orc_unwind_ip")
	if tab.Len() != int(sec.Size/4) {
		t.Errorf("Len %d; section holds %d", tab.Len(), sec.Size/4)
	}
	if tab.ipAddr != sec.Addr {
		t.Errorf("table at %#x; section at %#x", tab.ipAddr, sec.Addr)
	}
	if tab.copied {
		t.Error("the table sorted at build time (sorttable) was copied to be sorted")
	}
	counts := map[ORCType]int{}
	for i := 0; i < tab.Len(); i++ {
		_, e := tab.At(i)
		counts[e.Type]++
	}
	t.Logf("entries by type: %v", counts)
	corpus.Checked(t, tab.Len())
	for _, ty := range []ORCType{ORCUndefined, ORCEndOfStack, ORCCall, ORCRegs, ORCRegsPartial} {
		if counts[ty] == 0 {
			t.Errorf("no %v entry", ty)
		}
	}
	// A few entries whose meaning is known from the source.
	for _, c := range []struct {
		sym  string
		off  uint64
		want ORCEntry
	}{
		// A C function's first instruction: only the return address.
		{"schedule", 0, ORCEntry{SPOffset: 8, SPReg: ORCRegSP, Type: ORCCall}},
		// The page-fault stub's entry: the CPU's frame plus error code.
		{"asm_exc_page_fault", 0, ORCEntry{SPOffset: 8, SPReg: ORCRegSP, Type: ORCRegsPartial, Signal: true}},
	} {
		s, ok := f.Syms.ByName(c.sym)
		if !ok {
			t.Fatalf("no symbol %s", c.sym)
		}
		e, ok := f.FindORC(s.Addr + c.off)
		if !ok || e != c.want {
			t.Errorf("%s+%#x: %+v %v; want %+v", c.sym, c.off, e, ok, c.want)
		}
	}
	// A biased file moves the table with it.
	g, err := Open(f.Path, 0x36a00000)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s, _ := f.Syms.ByName("schedule")
	e1, ok1 := f.FindORC(s.Addr + 5)
	e2, ok2 := g.FindORC(s.Addr + 5 + 0x36a00000)
	if !ok1 || !ok2 || e1 != e2 {
		t.Errorf("biased lookup %+v %v; unbiased %+v %v", e2, ok2, e1, ok1)
	}
	if _, ok := f.FindORC(0xffffffff80000000); ok {
		t.Error("an entry below the kernel's text")
	}
}

func TestORCLookupAllocs(t *testing.T) {
	f := prodVmlinux(t)
	var s Set
	s.Add(f)
	if !s.HasORC() {
		t.Fatal("no ORC")
	}
	sym, _ := f.Syms.ByName("vfs_write")
	pc := sym.Addr + 0x20
	if _, ok := s.FindORC(pc); !ok {
		t.Fatal("no entry in vfs_write")
	}
	if n := testing.AllocsPerRun(1000, func() { s.FindORC(pc); pc += 7 }); n != 0 {
		t.Errorf("Set.FindORC allocates %v times per call", n)
	}
}

func TestORCNone(t *testing.T) {
	f, err := Open(filepath.Join("testdata", "prog"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ORC(); !errors.Is(err, ErrNoORC) {
		t.Errorf("ORC of a user program: %v", err)
	}
	var s Set
	s.Add(f)
	if s.HasORC() {
		t.Error("HasORC for a set without ORC")
	}
	if _, err := os.Stat(filepath.Join("testdata", "hello-mod.ko")); err == nil {
		m, err := Open(filepath.Join("testdata", "hello-mod.ko"), 0xffffffffc0000000)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.ORC(); err == nil {
			t.Error("the ORC of an unrelocated .ko was accepted")
		}
	}
}

// orcSeeds are the slices of the production vmlinux's ORC tables kept in
// testdata/orc-seeds as fuzzing seeds: the entry code (pt_regs and iret
// frame entries), a C function, and the table's end.
var orcSeeds = []struct{ name, sym string }{
	{"entry", "asm_exc_page_fault"},
	{"syscall", "entry_SYSCALL_64"},
	{"func", "vfs_write"},
	{"irqstack", "sysvec_apic_timer_interrupt"},
}

// orcSeedFile encodes a slice of n entries from entry i of tab: the run-time
// address of its .orc_unwind_ip part, the layout, then both arrays.
func orcSeedFile(tab *ORCTable, i, n int) []byte {
	n = min(n, tab.n-i)
	b := binary.LittleEndian.AppendUint64(nil, tab.ipAddr+4*uint64(i))
	b = append(b, byte(tab.layout))
	b = append(b, tab.ip[4*i:4*(i+n)]...)
	return append(b, tab.orc[orcEntrySize*i:orcEntrySize*(i+n)]...)
}

// parseORCSeed splits a seed file into NewORCTable's arguments.
func parseORCSeed(b []byte) (ip []byte, ipAddr uint64, orc []byte, l ORCLayout) {
	if len(b) < 9 {
		return nil, 0, nil, 0
	}
	ipAddr, l, b = binary.LittleEndian.Uint64(b), ORCLayout(b[8]), b[9:]
	n := len(b) / (4 + orcEntrySize)
	return b[:4*n], ipAddr, b[4*n:], l
}

// TestORCSeeds regenerates the seeds from the corpus with -update and
// checks the kept ones still match the corpus's vmlinux.
func TestORCSeeds(t *testing.T) {
	f := prodVmlinux(t)
	tab, err := f.ORC()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "orc-seeds")
	for _, s := range append(orcSeeds, struct{ name, sym string }{"end", ""}) {
		i := tab.n - 24
		if s.sym != "" {
			sym, ok := f.Syms.ByName(s.sym)
			if !ok {
				t.Fatalf("no %s", s.sym)
			}
			for i = 0; i < tab.n && tab.pc(i) < sym.Addr; i++ {
			}
			i = max(i-4, 0)
		}
		b := orcSeedFile(tab, i, 48)
		path := filepath.Join(dir, s.name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(old) != string(b) {
			t.Errorf("%s differs from the corpus's vmlinux (run with -update)", path)
		}
	}
}

// FuzzORCTable checks that any bytes make a table or an error, never a
// panic, and that a table is sorted and finds each of its own entries.
func FuzzORCTable(f *testing.F) {
	ents, _ := os.ReadDir(filepath.Join("testdata", "orc-seeds"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata", "orc-seeds", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		ip, addr, orc, l := parseORCSeed(b)
		f.Add(ip, addr, orc, byte(l))
	}
	f.Add([]byte{0, 0, 0, 0}, uint64(0), []byte{8, 0, 0, 0, 5, 2}, byte(ORCLayoutV3))
	f.Fuzz(func(t *testing.T, ip []byte, addr uint64, orc []byte, l byte) {
		tab, err := NewORCTable(ip, addr, orc, ORCLayout(l))
		if (tab == nil) == (err == nil) {
			t.Fatalf("table %v and error %v", tab != nil, err)
		}
		if err != nil {
			return
		}
		if tab.Len() != len(ip)/4 {
			t.Fatalf("Len %d for %d bytes", tab.Len(), len(ip))
		}
		for i := 0; i < tab.Len(); i++ {
			pc, e := tab.At(i)
			if e.Type > ORCRegsPartial {
				t.Fatalf("entry %d type %v", i, e.Type)
			}
			if i > 0 {
				prev, pe := tab.At(i - 1)
				if prev > pc || prev == pc && pe.Type != ORCUndefined && e.Type == ORCUndefined {
					t.Fatalf("not sorted at %d: %#x %v, %#x %v", i, prev, pe.Type, pc, e.Type)
				}
			}
			if _, ok := tab.Lookup(pc); !ok {
				t.Fatalf("entry %d at %#x not found", i, pc)
			}
		}
		if lo, _ := tab.Span(); lo > 0 {
			if _, ok := tab.Lookup(lo - 1); ok {
				t.Fatal("an entry below the first")
			}
		}
	})
}

// BenchmarkNewORCTable makes the prod vmlinux's ORC table from its
// sections' bytes (some 300k entries, sorted: checked, not copied), as
// every Open of a vmlinux with ORC does.
func BenchmarkNewORCTable(b *testing.B) {
	tab, err := prodVmlinux(b).ORC()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		t, err := NewORCTable(tab.ip, tab.ipAddr, tab.orc, tab.layout)
		if err != nil || t.copied {
			b.Fatalf("copied %v, %v", t != nil && t.copied, err)
		}
	}
	b.ReportMetric(float64(tab.Len()), "entries")
}
