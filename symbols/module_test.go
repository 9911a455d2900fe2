package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// relocmodPlacement places testdata/relocmod.ko the way the module loader
// would: code first, then read-only data, then data, each at its own
// address (deliberately not one bias for all).
var relocmodPlacement = map[string]uint64{
	".text":                     0xffffffffc0010000,
	".text.unlikely":            0xffffffffc0010089,
	".exit.text":                0xffffffffc00100a0,
	".rodata":                   0xffffffffc0011000,
	".data":                     0xffffffffc0012000,
	".bss":                      0xffffffffc0012040,
	".gnu.linkonce.this_module": 0xffffffffc0012080,
}

const kernelExport = 0xffffffff81234560 // where the test "kernel" exports kernel_export

func openRelocmod(t *testing.T, p Placement) *File {
	t.Helper()
	f, err := OpenModule("testdata/relocmod.ko", p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func resolveExport(name string) (uint64, bool) {
	if name == "kernel_export" {
		return kernelExport, true
	}
	return 0, false
}

// TestModuleRelocmodSymbols checks symbol addresses, the kallsyms-style
// sizes and the module name of a placed module.
func TestModuleRelocmodSymbols(t *testing.T) {
	f := openRelocmod(t, Placement{Sections: relocmodPlacement})
	if f.ModuleName() != "relocmod" {
		t.Errorf("ModuleName = %q", f.ModuleName())
	}
	text, unlikely := relocmodPlacement[".text"], relocmodPlacement[".text.unlikely"]
	for _, c := range []struct {
		pc         uint64
		name       string
		addr, size uint64
	}{
		{text, "relocmod_work", text, 0x70},                           // up to relocmod_entry: the kernel's size
		{text + 0x88, "relocmod_entry", text + 0x70, 0x19},            // to .text.unlikely's first symbol
		{unlikely + 0x3, "relocmod_slow", unlikely, 0xe},              // a second code section at its own address
		{unlikely + 0x10, "relocmod_entry.cold", unlikely + 0xe, 0x9}, // up to relocmod_exit in .exit.text
		{relocmodPlacement[".data"] + 0x8, "tablep", relocmodPlacement[".data"] + 0x8, 8},
		{relocmodPlacement[".rodata"] + 0x4, "table", relocmodPlacement[".rodata"], 16},
	} {
		var s Set
		s.Add(f)
		got, ok := f.Syms.Lookup(c.pc)
		if !ok || got.Name != c.name || got.Addr != c.addr || got.Size != c.size || got.Module != "relocmod" {
			t.Errorf("Lookup(%#x) = %+v %v, want %s at %#x size %#x [relocmod]", c.pc, got, ok, c.name, c.addr, c.size)
		}
		if sym, ok := s.Symbol(c.pc); !ok || sym != got {
			t.Errorf("Set.Symbol(%#x) = %+v %v, File %+v", c.pc, sym, ok, got)
		}
	}
	// The ELF's own file offsets are no run-time address of anything.
	if s, ok := f.Syms.Lookup(0x10); ok {
		t.Errorf("Lookup(0x10) = %+v", s)
	}
	var s Set
	s.Add(f)
	if s.IsText(relocmodPlacement[".rodata"]) || !s.IsText(text+0x20) || !s.IsText(relocmodPlacement[".exit.text"]) {
		t.Error("IsText wrong for .rodata, .text or .exit.text")
	}
	// Between sections (after .exit.text, before .rodata) is nobody's.
	if _, ok := s.Symbol(relocmodPlacement[".exit.text"] + 0x800); ok || s.IsText(relocmodPlacement[".exit.text"]+0x800) {
		t.Error("an address between the module's sections is claimed")
	}

	// TextEnds caps the last text symbol as the kernel does.
	f2 := openRelocmod(t, Placement{Sections: relocmodPlacement, TextEnds: []uint64{0xffffffffc0011000}})
	exit := relocmodPlacement[".exit.text"]
	if got, ok := f2.Syms.Lookup(exit + 4); !ok || got.Name != "relocmod_exit" || got.Size != 0xffffffffc0011000-exit {
		t.Errorf("with TextEnds: %+v %v, want relocmod_exit size %#x", got, ok, 0xffffffffc0011000-exit)
	}
	if got, _ := f.Syms.Lookup(exit + 4); got.Size != relocmodPlacement[".rodata"]-exit {
		t.Errorf("without TextEnds: relocmod_exit size %#x, want the distance to table", got.Size)
	}

	// A section left out of the placement (the kernel freed it) has no
	// symbols and its code is nobody's.
	p := map[string]uint64{}
	for k, v := range relocmodPlacement {
		if k != ".text.unlikely" {
			p[k] = v
		}
	}
	f3 := openRelocmod(t, Placement{Sections: p})
	if s, ok := f3.Syms.ByName("relocmod_slow"); ok {
		t.Errorf("relocmod_slow of an unplaced section: %+v", s)
	}
	if f3.IsText(unlikely + 1) {
		t.Error("IsText in an unplaced section")
	}
}

// disp32At returns the target of the rel32 field at off in code whose
// instruction ends at end (both offsets from the section start).
func disp32At(code []byte, base uint64, off, end int) uint64 {
	return base + uint64(end) + uint64(int64(int32(binary.LittleEndian.Uint32(code[off:]))))
}

// TestModuleRelocmodRelocations checks relocated code and data against the
// placement (offsets from objdump -dr testdata/relocmod.ko).
func TestModuleRelocmodRelocations(t *testing.T) {
	f := openRelocmod(t, Placement{Sections: relocmodPlacement, Resolve: resolveExport})
	text := relocmodPlacement[".text"]
	code := f.CodeAt(text)
	if len(code) != 0x89 {
		t.Fatalf("CodeAt(.text) gives %d bytes", len(code))
	}
	data := relocmodPlacement[".data"]
	for _, c := range []struct {
		what     string
		got, exp uint64
	}{
		// 25: mov 0x0(,%rax,4),%ebp  R_X86_64_32S .rodata
		{"R_X86_64_32S .rodata", uint64(int64(int32(binary.LittleEndian.Uint32(code[0x28:])))), relocmodPlacement[".rodata"]},
		// 31: add 0x0(%rip),%ebp  R_X86_64_PC32 counter-4
		{"R_X86_64_PC32 counter", disp32At(code, text, 0x33, 0x37), data + 0x10},
		// 3a: call kernel_export  R_X86_64_PLT32, resolved by Placement.Resolve
		{"R_X86_64_PLT32 kernel_export", disp32At(code, text, 0x3b, 0x3f), kernelExport},
		// 49: mov %r12d,0x0(%rip)  R_X86_64_PC32 .bss-4
		{"R_X86_64_PC32 .bss", disp32At(code, text, 0x4c, 0x50), relocmodPlacement[".bss"]},
		// 72: js  R_X86_64_PC32 .text.unlikely+0xa: relocmod_entry.cold
		{"R_X86_64_PC32 into .text.unlikely", disp32At(code, text, 0x74, 0x78), relocmodPlacement[".text.unlikely"] + 0xe},
		// 7c: call relocmod_work  R_X86_64_PLT32 to a defined symbol
		{"R_X86_64_PLT32 relocmod_work", disp32At(code, text, 0x7d, 0x81), text},
	} {
		if c.got != c.exp {
			t.Errorf("%s: %#x, want %#x", c.what, c.got, c.exp)
		}
	}
	addr, d, err := f.SectionData(".data")
	if err != nil || addr != data || len(d) != 0x14 {
		t.Fatalf("SectionData(.data) = %#x, %d bytes, %v", addr, len(d), err)
	}
	if got := binary.LittleEndian.Uint64(d[0:]); got != data+0x10 { // addr_of_counter = &counter: R_X86_64_64
		t.Errorf("addr_of_counter = %#x, want %#x", got, data+0x10)
	}
	if got := binary.LittleEndian.Uint64(d[8:]); got != relocmodPlacement[".rodata"] { // tablep = table
		t.Errorf("tablep = %#x, want %#x", got, relocmodPlacement[".rodata"])
	}
	// Without a resolver the call to the undefined symbol keeps the file's
	// bytes, and the rest is still relocated.
	f2 := openRelocmod(t, Placement{Sections: relocmodPlacement})
	code2 := f2.CodeAt(text)
	if got := binary.LittleEndian.Uint32(code2[0x3b:]); got != 0 {
		t.Errorf("unresolved call displacement %#x, want the file's 0", got)
	}
	if got := disp32At(code2, text, 0x33, 0x37); got != data+0x10 {
		t.Errorf("without resolver, counter reference %#x", got)
	}
	if _, _, err := f.SectionData(".debug_info"); err == nil {
		t.Error("SectionData of a section that is not allocated: no error")
	}
}

// TestModuleRelocmodCFI checks .debug_frame at the placed addresses: an FDE
// per function, CFA rules as the prologue builds the frame.
func TestModuleRelocmodCFI(t *testing.T) {
	f := openRelocmod(t, Placement{Sections: relocmodPlacement})
	if err := f.DebugInfoErr(); err != nil {
		t.Fatal(err)
	}
	text := relocmodPlacement[".text"]
	for _, c := range []struct {
		pc  uint64
		cfa int64
	}{
		{text, 8},         // relocmod_work entry
		{text + 0x0a, 48}, // after 4 pushes and sub $8
		{text + 0x5d, 8},  // at its ret
		{text + 0x7c, 16}, // relocmod_entry after sub $8
		{relocmodPlacement[".text.unlikely"] + 1, 16}, // relocmod_slow after push
		{relocmodPlacement[".exit.text"], 8},
	} {
		var row CFIRow
		if err := f.FindCFI(c.pc, &row); err != nil {
			t.Errorf("FindCFI(%#x): %v", c.pc, err)
			continue
		}
		if row.CFA.Reg != 7 || row.CFA.Offset != c.cfa || row.Start > c.pc || row.End <= c.pc {
			t.Errorf("FindCFI(%#x): CFA r%d%+d rows [%#x,%#x), want rsp%+d", c.pc, row.CFA.Reg, row.CFA.Offset, row.Start, row.End, c.cfa)
		}
	}
	if _, err := f.ORC(); !errors.Is(err, ErrNoORC) || f.HasORC() {
		t.Errorf("ORC of a module without ORC sections: %v", err)
	}
	var row CFIRow
	if err := f.FindCFI(0x20, &row); !errors.Is(err, ErrNoFDE) {
		t.Errorf("FindCFI at a file offset: %v", err)
	}
}

// moduleAddr2line returns addr2line -f -i -a output for the offsets in each
// section of a module, saved in golden (regenerated with -update).
func moduleAddr2line(t *testing.T, golden, ko string, offs map[string][]uint64) map[string]map[uint64][]a2lFrame {
	t.Helper()
	secs := slices.Sorted(func(yield func(string) bool) {
		for k := range offs {
			if !yield(k) {
				return
			}
		}
	})
	if *update {
		var out bytes.Buffer
		for _, sec := range secs {
			b, err := exec.Command("addr2line", append([]string{"-f", "-i", "-a", "-e", ko, "-j", sec}, hexAddrs(offs[sec])...)...).Output()
			if err != nil {
				t.Fatalf("addr2line -j %s: %v", sec, err)
			}
			fmt.Fprintf(&out, "## %s\n", sec)
			out.Write(b)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	res := map[string]map[uint64][]a2lFrame{}
	for _, chunk := range strings.Split(string(b), "## ")[1:] {
		name, body, _ := strings.Cut(chunk, "\n")
		res[name] = parseAddr2line(t, []byte(body))
	}
	return res
}

// TestModuleRelocmodLines compares the placed module's lines and inlined
// frames, at every byte of its code, with binutils addr2line on the .ko
// (which applies the relocations itself, section by section).
func TestModuleRelocmodLines(t *testing.T) {
	ko := "testdata/relocmod.ko"
	f := openRelocmod(t, Placement{Sections: relocmodPlacement})
	offs := map[string][]uint64{}
	for _, s := range f.ef.Sections {
		if s.Flags&elf.SHF_EXECINSTR != 0 {
			for o := uint64(0); o < s.Size; o++ {
				offs[s.Name] = append(offs[s.Name], o)
			}
		}
	}
	a2l := moduleAddr2line(t, "testdata/relocmod.addr2line", ko, offs)
	n, inl := 0, 0
	var buf []Line
	for sec, os := range offs {
		base := relocmodPlacement[sec]
		for _, o := range os {
			want, ok := a2l[sec][o]
			if !ok {
				t.Fatalf("%s+%#x: not in the addr2line output", sec, o)
			}
			buf = f.Lines(base+o, buf)
			checkAgainstAddr2line(t, base+o, want, buf)
			n++
			if len(buf) > 1 {
				inl++
			}
		}
	}
	if n < 0x89+0x12+0xe || inl == 0 {
		t.Errorf("checked %d addresses, %d with inlined frames", n, inl)
	}
}

// TestModulePlacementErrors shows the messages for placements and files
// OpenModule cannot use.
func TestModulePlacementErrors(t *testing.T) {
	if _, err := OpenModule("testdata/relocmod.ko", Placement{Sections: map[string]uint64{".data": 0xffffffffc0000000}}); err == nil ||
		!strings.Contains(err.Error(), "none of the module's code sections") {
		t.Errorf("no code placed: %v", err)
	}
	if _, err := OpenModule("testdata/prog", Placement{Sections: relocmodPlacement}); err == nil || !strings.Contains(err.Error(), "ET_REL") {
		t.Errorf("an executable: %v", err)
	}
	if _, err := OpenModule("testdata/relocmod.ko", Placement{Sections: map[string]uint64{".text": ^uint64(0) - 0x10}}); err == nil ||
		!strings.Contains(err.Error(), "wrap") {
		t.Errorf("wrapping placement: %v", err)
	}
	// .rodata far from the code: the 32-bit sign-extended absolute
	// reference (R_X86_64_32S) cannot hold it; the kernel refuses such a
	// module, and so does SectionData, naming the relocation.
	p := map[string]uint64{}
	for k, v := range relocmodPlacement {
		p[k] = v
	}
	p[".rodata"] = 0x7fff00000000
	f := openRelocmod(t, Placement{Sections: p})
	_, _, err := f.SectionData(".text")
	if err == nil || !strings.Contains(err.Error(), "relocating .text: relocation 0 at offset 0x28: R_X86_64_32S value 0x7fff00000000 does not fit") {
		t.Errorf(".rodata out of 32S reach: %v", err)
	}
	if f.CodeAt(relocmodPlacement[".text"]) == nil {
		t.Error("CodeAt gives nothing when one relocation does not fit")
	}
}

// TestModuleMalformedRelocations corrupts relocation entries and checks
// the error names the section, entry and offset.
func TestModuleMalformedRelocations(t *testing.T) {
	orig, err := os.ReadFile("testdata/relocmod.ko")
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(orig))
	if err != nil {
		t.Fatal(err)
	}
	rela := ef.Section(".rela.debug_frame")
	for _, c := range []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"type", func(b []byte) { b[8] = byte(elf.R_X86_64_GOTPCREL) }, "relocating .debug_frame: relocation 0 at offset 0x"},
		{"offset", func(b []byte) { binary.LittleEndian.PutUint64(b, 1<<40) }, "outside the section's"},
		{"symbol", func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 9999) }, "symbol index 9999 beyond"},
	} {
		b := slices.Clone(orig)
		c.patch(b[rela.Offset:])
		f, err := NewModuleFile(bytes.NewReader(b), "bad.ko", Placement{Sections: relocmodPlacement})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		err = f.DebugInfoErr()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.ko") {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		t.Logf("%s: %v", c.name, err)
		// The rest of the table still works: one bad entry spoils one FDE.
		var row CFIRow
		if err := f.FindCFI(relocmodPlacement[".exit.text"], &row); err != nil {
			t.Errorf("%s: FindCFI elsewhere: %v", c.name, err)
		}
	}
}
