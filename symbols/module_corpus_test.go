package symbols

import (
	"bufio"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// dumpModule is one loaded module as a dump records it (see
// testdata/prodmods/kdump-sysrqc.txt).
type dumpModule struct {
	name           string
	base, textSize uint64
	sections       map[string]uint64
	syms           []memSym // the module's in-memory kallsyms, symbol-table order
}

type memSym struct {
	value, size, shndx uint64
	typ                byte
	name               string
}

func parseDumpModules(t *testing.T, path string) []*dumpModule {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var mods []*dumpModule
	num := func(s string) uint64 {
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return v
	}
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "module" && len(f) == 4:
			mods = append(mods, &dumpModule{name: f[1], base: num(f[2]), textSize: num(f[3]), sections: map[string]uint64{}})
		case f[0] == "section" && len(f) == 3 && len(mods) > 0:
			mods[len(mods)-1].sections[f[1]] = num(f[2])
		case f[0] == "sym" && len(f) == 6 && len(mods) > 0:
			m := mods[len(mods)-1]
			m.syms = append(m.syms, memSym{value: num(f[1]), size: num(f[2]), shndx: num(f[3]), typ: f[4][0], name: f[5]})
		default:
			t.Fatalf("%s: bad line %q", path, sc.Text())
		}
	}
	if len(mods) == 0 {
		t.Fatalf("%s: no modules", path)
	}
	return mods
}

func (m *dumpModule) modSyms() []ModuleSymbol {
	var out []ModuleSymbol
	for _, s := range m.syms {
		out = append(out, ModuleSymbol{Name: s.name, Value: s.value, Size: s.size, Section: uint16(s.shndx)})
	}
	return out
}

// placement is the Placement the dump gives: every section sect_attrs
// lists except the init sections, which the kernel freed once the module
// was live (their addresses now belong to other modules).
func (m *dumpModule) placement() Placement {
	p := Placement{Sections: map[string]uint64{}, TextEnds: []uint64{m.base + m.textSize}}
	for k, v := range m.sections {
		if !strings.HasPrefix(k, ".init") {
			p.Sections[k] = v
		}
	}
	return p
}

// kallsymsName is the kernel's find_kallsyms_symbol over a module's
// in-memory symbol table: the symbol "func+off/size [mod]" names for addr.
func (m *dumpModule) kallsymsName(addr uint64) (memSym, uint64, bool) {
	nextval := m.base + m.textSize
	best, bestval := -1, uint64(0)
	for i, s := range m.syms {
		if s.shndx == 0 || s.name == "" || moduleKallsymsIgnored(s.name) {
			continue
		}
		if s.value <= addr && s.value > bestval {
			best, bestval = i, s.value
		}
		if s.value > addr && s.value < nextval {
			nextval = s.value
		}
	}
	if best < 0 {
		return memSym{}, 0, false
	}
	return m.syms[best], nextval - bestval, true
}

func openProdModules(t *testing.T) (string, []*dumpModule) {
	dir := filepath.Join(corpus.Dir(t, "prod"), "kernel", "modules")
	return dir, parseDumpModules(t, "testdata/prodmods/kdump-sysrqc.txt")
}

// TestModuleProdKallsyms places each of the production corpus's modules
// where the kdump says the kernel loaded it and checks that every byte of
// its code is named exactly as the kernel's own kallsyms names it
// ("func+0x1c/0x80 [mod]"), and that the .ko's symbols are the module's
// in-memory symbols (names, addresses, sizes): the check that accepts a
// .ko for a module without a build id.
func TestModuleProdKallsyms(t *testing.T) {
	dir, mods := openProdModules(t)
	if len(mods) != 8 {
		t.Errorf("%d modules, the capture has 8", len(mods))
	}
	for _, m := range mods {
		t.Run(m.name, func(t *testing.T) {
			f, err := OpenModule(filepath.Join(dir, m.name+".ko"), m.placement())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.ModuleName() != m.name {
				t.Errorf("ModuleName %q", f.ModuleName())
			}
			// The .ko's symbols are the in-memory ones: names, sections,
			// sizes and placed addresses.
			if err := f.MatchModuleSymbols(m.name, m.modSyms()); err != nil {
				t.Error(err)
			}
			// Every code byte named as the kernel names it.
			n := 0
			for _, ts := range f.text {
				for pc := ts.start; pc < ts.end; pc++ {
					want, size, ok := m.kallsymsName(pc)
					got, gok := f.Syms.Lookup(pc)
					n++
					if ok != gok || got.Name != want.name || got.Addr != want.value || got.Size != size || got.Module != m.name {
						t.Fatalf("%#x: %s+%#x/%#x [%s] %v, kernel %s+%#x/%#x [%s] %v", pc,
							got.Name, pc-got.Addr, got.Size, got.Module, gok, want.name, pc-want.value, size, m.name, ok)
					}
				}
			}
			corpus.Checked(t, n)
			if n < 256 {
				t.Errorf("only %d code bytes", n)
			}
		})
	}
}

// TestModuleProdFrames checks the module frames the kernel printed in the
// kdump capture (truth-dev.json, CPU 1 and the prodsleep kthread): names
// as printed, source lines as addr2line gives them, and a CFI row.
func TestModuleProdFrames(t *testing.T) {
	dir, mods := openProdModules(t)
	var m *dumpModule
	for _, x := range mods {
		if x.name == "prodcrash" {
			m = x
		}
	}
	f, err := OpenModule(filepath.Join(dir, "prodcrash.ko"), m.placement())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s Set
	s.Add(f)
	for _, c := range []struct {
		pc          uint64
		interrupted bool
		printed     string
		cfa         int64
		lines       string
	}{
		{0xffffffffc05ac11d, true, "prod_spin_inner+0x4d/0x90 [prodcrash]", 48, "prod_spin_inner prodcrash.c:70"},
		{0xffffffffc05ac170, false, "prod_spin_outer+0x10/0x20 [prodcrash]", 16, "prod_spin_outer prodcrash.c:79"},
		{0xffffffffc05ac231, false, "prod_write+0xb1/0xd3 [prodcrash]", 48, "prod_write prodcrash.c:101"},
		{0xffffffffc05ac072, false, "prod_sleep_inner+0x12/0x20 [prodcrash]", 16, "prod_sleep_inner prodcrash.c:49"},
		{0xffffffffc05ac090, false, "prod_sleep_outer+0x10/0x20 [prodcrash]", 16, "prod_sleep_outer prodcrash.c:57"},
		{0xffffffffc05ac0b1, false, "prod_thread+0x11/0x30 [prodcrash]", 8, "prod_thread prodcrash.c:87"},
	} {
		sym, ok := s.Symbol(c.pc)
		if got := fmt.Sprintf("%s+%#x/%#x [%s]", sym.Name, c.pc-sym.Addr, sym.Size, sym.Module); !ok || got != c.printed {
			t.Errorf("%#x: %s, the kernel printed %s", c.pc, got, c.printed)
		}
		look := c.pc
		if !c.interrupted {
			look-- // a return address: the call's line
		}
		var parts []string
		for _, l := range s.Lines(look, nil) {
			parts = append(parts, fmt.Sprintf("%s %s:%d", l.Function, filepath.Base(l.File), l.Line))
		}
		if got := strings.Join(parts, " < "); got != c.lines {
			t.Errorf("%#x: lines %s, want %s", look, got, c.lines)
		}
		corpus.Checked(t, 1)
		var row CFIRow
		if err := s.FindCFI(look, &row); err != nil || row.CFA.Reg != 7 || row.CFA.Offset != c.cfa {
			t.Errorf("%#x: CFA r%d%+d %v, want rsp%+d", look, row.CFA.Reg, row.CFA.Offset, err, c.cfa)
		}
		if e, ok := s.FindORC(look); !ok || e.Type != ORCCall || e.SPReg != ORCRegSP || int64(e.SPOffset) != c.cfa {
			t.Errorf("%#x: ORC %+v %v, want a call frame at rsp%+d", look, e, ok, c.cfa)
		}
	}
}

// TestModuleProdLines compares the placed production modules' source lines
// and inlined frames with binutils addr2line on the .ko files, at every
// 4th code byte and every function's first and last byte.
func TestModuleProdLines(t *testing.T) {
	dir, mods := openProdModules(t)
	for _, m := range mods {
		t.Run(m.name, func(t *testing.T) {
			ko := filepath.Join(dir, m.name+".ko")
			f, err := OpenModule(ko, m.placement())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.DebugInfoErr(); err != nil {
				t.Error(err)
			}
			offs := map[string][]uint64{}
			secOf := map[string]uint64{}
			for i, s := range f.ef.Sections {
				if s.Flags&elf.SHF_EXECINSTR == 0 || !f.placed[i] || s.Size == 0 {
					continue
				}
				var os []uint64
				for o := uint64(0); o < s.Size; o += 4 {
					os = append(os, o)
				}
				syms, _ := f.ef.Symbols()
				for _, y := range syms {
					if int(y.Section) == i && elf.ST_TYPE(y.Info) == elf.STT_FUNC && y.Size > 0 {
						os = append(os, y.Value, y.Value+y.Size-1)
					}
				}
				slices.Sort(os)
				offs[s.Name] = slices.Compact(os)
				secOf[s.Name] = f.secAddr[i]
			}
			a2l := moduleAddr2line(t, filepath.Join("testdata/prodmods", m.name+".addr2line"), ko, offs)
			// binutils joins a DWARF 5 line table's relative directories
			// to directory 0 (the relative compilation directory of
			// Debian's build); debug/dwarf, and so this package for vmlinux
			// and modules alike, does not.
			for _, byOff := range a2l {
				for _, fr := range byOff {
					for i := range fr {
						fr[i].file = strings.TrimPrefix(fr[i].file, "debian/build/build_amd64_none_cloud-amd64/")
					}
				}
			}
			n, inl := 0, 0
			var buf []Line
			for sec, os := range offs {
				for _, o := range os {
					want, ok := a2l[sec][o]
					if !ok {
						t.Fatalf("%s+%#x: not in the addr2line output", sec, o)
					}
					buf = f.Lines(secOf[sec]+o, buf)
					checkAgainstAddr2line(t, secOf[sec]+o, want, buf)
					n++
					if len(buf) > 1 {
						inl++
					}
				}
			}
			t.Logf("%d addresses, %d with inlined frames", n, inl)
			corpus.Checked(t, n)
			if n < 64 {
				t.Errorf("only %d addresses", n)
			}
		})
	}
}

// orcEntry is a 6.1 struct orc_entry (arch/x86/include/asm/orc_types.h).
type orcEntry struct {
	spOffset int16
	spReg    uint8
	typ      uint8
}

// TestModuleProdCFIvsORC checks the relocated .debug_frame (gcc's CFI)
// against the relocated .orc_unwind_ip/.orc_unwind (objtool's ORC, made
// from the machine code): wherever ORC says a plain call frame with the
// CFA at rsp+N, the CFI's CFA must be rsp+N too. Both tables are only
// right together if both relocations are.
func TestModuleProdCFIvsORC(t *testing.T) {
	const orcRegSP, orcTypeCall = 5, 0 // ORC_REG_SP, ORC_TYPE_CALL (6.1)
	dir, mods := openProdModules(t)
	for _, m := range mods {
		t.Run(m.name, func(t *testing.T) {
			f, err := OpenModule(filepath.Join(dir, m.name+".ko"), m.placement())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ips, orcs, err := f.ModuleORC()
			if err != nil {
				t.Fatal(err)
			}
			type row struct {
				ip uint64
				e  orcEntry
			}
			var rows []row
			for i, ip := range ips {
				b := orcs[ORCEntrySize*i:]
				flags := binary.LittleEndian.Uint16(b[4:])
				rows = append(rows, row{ip, orcEntry{int16(binary.LittleEndian.Uint16(b)), uint8(flags & 0xf), uint8(flags >> 8 & 3)}})
				// Every ip is in placed code, or just past the end of a
				// code section (the terminator objtool adds there).
				if !f.IsText(ip) && !f.IsText(ip-1) {
					t.Errorf("ORC ip %#x is not in the module's placed code", ip)
				}
			}
			// The raw section holds the same entries plus those for the
			// freed (unplaced) init code.
			if _, raw, err := f.SectionData(".orc_unwind_ip"); err != nil || len(raw)/4 < len(ips) || len(ips) == 0 {
				t.Errorf(".orc_unwind_ip: %d entries, %d placed, %v", len(raw)/4, len(ips), err)
			}
			slices.SortStableFunc(rows, func(a, b row) int { return cmp.Compare(a.ip, b.ip) })
			agree, differ := 0, 0
			for _, ts := range f.text {
				for pc := ts.start; pc < ts.end; pc++ {
					i, found := slices.BinarySearchFunc(rows, pc, func(r row, pc uint64) int { return cmp.Compare(r.ip, pc) })
					if !found {
						i--
					}
					if i < 0 || rows[i].e.typ != orcTypeCall || rows[i].e.spReg != orcRegSP {
						continue
					}
					// The File's own ORC table (FindORC) is the same.
					if e, ok := f.FindORC(pc); !ok || e.Type != ORCCall || e.SPReg != ORCRegSP || e.SPOffset != rows[i].e.spOffset {
						t.Fatalf("%#x: FindORC %+v %v, .orc_unwind says call rsp%+d", pc, e, ok, rows[i].e.spOffset)
					}
					var cr CFIRow
					if f.FindCFI(pc, &cr) != nil {
						continue
					}
					if cr.CFA.Kind == 7 && cr.CFA.Reg == 7 && cr.CFA.Offset == int64(rows[i].e.spOffset) {
						agree++
					} else if differ++; differ <= 10 {
						sym, _ := f.Syms.Lookup(pc)
						t.Errorf("%#x %s+%#x: ORC CFA rsp%+d, CFI r%d%+d", pc, sym.Name, pc-sym.Addr, rows[i].e.spOffset, cr.CFA.Reg, cr.CFA.Offset)
					}
				}
			}
			t.Logf("%d ORC rows, CFA agrees at %d code bytes, differs at %d", len(rows), agree, differ)
			corpus.Checked(t, agree)
			if agree < 100 {
				t.Errorf("CFA compared at only %d code bytes", agree)
			}
		})
	}
}

// TestModuleProdWrongFile shows what a user gets for a .ko that is not the
// one the module was loaded from (another module's file, or a rebuilt one
// whose function sizes changed).
func TestModuleProdWrongFile(t *testing.T) {
	dir, mods := openProdModules(t)
	byName := map[string]*dumpModule{}
	for _, m := range mods {
		byName[m.name] = m
	}
	// virtio_pci_modern_dev.ko placed where virtio_pci_legacy_dev was.
	legacy := byName["virtio_pci_legacy_dev"]
	f, err := OpenModule(filepath.Join(dir, "virtio_pci_modern_dev.ko"), legacy.placement())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.MatchModuleSymbols(legacy.name, legacy.modSyms())
	if err == nil || !strings.Contains(err.Error(), "virtio_pci_modern_dev.ko is module virtio_pci_modern_dev, not the loaded module virtio_pci_legacy_dev") {
		t.Errorf("another module's file: %v", err)
	}
	// Even under the right name, its symbols give it away.
	err = f.MatchModuleSymbols("virtio_pci_modern_dev", legacy.modSyms())
	if err == nil || !strings.Contains(err.Error(), "virtio_pci_modern_dev.ko is not the file module virtio_pci_modern_dev was loaded from: 84 differences in 64 symbols: __crc_vp_legacy_probe (section 9) is not in the file") {
		t.Errorf("another module's symbols: %v", err)
	}
	// prodcrash.ko against a memory table where prod_write is one byte longer.
	pc := byName["prodcrash"]
	g, err := OpenModule(filepath.Join(dir, "prodcrash.ko"), pc.placement())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	mem := pc.modSyms()
	for i := range mem {
		if mem[i].Name == "prod_write" {
			mem[i].Size++
		}
	}
	err = g.MatchModuleSymbols("prodcrash", mem)
	if want := "1 differences in 19 symbols: prod_write: 0xffffffffc05ac180 size 0xd4 in memory, 0xffffffffc05ac180 size 0xd3 in the file"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("changed size: %v, want %q", err, want)
	}
	// The same file placed 16 bytes off.
	p := pc.placement()
	p.Sections[".text"] += 16
	h, err := OpenModule(filepath.Join(dir, "prodcrash.ko"), p)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.MatchModuleSymbols("prodcrash", pc.modSyms()); err == nil || !strings.Contains(err.Error(), "9 differences in 19 symbols") {
		t.Errorf("misplaced .text: %v", err)
	}
}
