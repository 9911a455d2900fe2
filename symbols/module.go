package symbols

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// Placement says where a loadable kernel module's sections lie in a
// running (or dumped) kernel, as the module loader placed them: what
// /sys/module/NAME/sections/ lists, or the dump's struct module
// sect_attrs.
type Placement struct {
	// Sections maps an allocated section's name (".text", ".rodata",
	// ".orc_unwind_ip", ...) to its run-time address. Sections not listed
	// are not placed: their symbols are left out and relocations against
	// them are not applied (pass the init sections only while the module
	// is still initializing; once the kernel has freed them their
	// addresses belong to other code). Names that are not allocated
	// sections of the file are ignored. When several sections share a
	// name, the first one is placed.
	Sections map[string]uint64

	// Resolve, when not nil, gives the run-time address of a symbol the
	// module uses but does not define (a kernel export such as printk,
	// or a symbol of another module), for relocating the module's code
	// and data. Without it such references keep the file's bytes; DWARF,
	// CFI and ORC tables never need it.
	Resolve func(name string) (uint64, bool)

	// TextEnds, when known, are the ends of the module's text regions as
	// the kernel records them: core_layout.base+core_layout.text_size
	// (and init_layout's while the module initializes) up to 6.3,
	// mem[MOD_TEXT].base+size (and MOD_INIT_TEXT's) since 6.4. A text
	// symbol's size then stops there as in the kernel's own
	// "func+0x1c/0x80 [mod]" (find_kallsyms_symbol): the last function's
	// size runs to the end of the text pages, not to the next data symbol.
	// Without them a text symbol's size is the distance to the module's
	// next symbol.
	TextEnds []uint64
}

// OpenModule opens the kernel module (.ko, ET_REL) at path with its
// sections at the run-time addresses p gives, and applies its x86-64
// relocations (R_X86_64_64, 32, 32S, PC32, PLT32, PC64) as the kernel's
// module loader does. The File then answers exactly as a vmlinux File does
// at the module's addresses: symbols (Sym.Module is the module name, text
// symbols sized the way kallsyms prints them), source lines and inlined
// frames from DWARF, CFI from .debug_frame, code bytes from CodeAt, and the
// relocated bytes of any placed section from SectionData (the ORC tables
// .orc_unwind_ip and .orc_unwind, say). Add it to a Set beside vmlinux:
//
//	mod, err := symbols.OpenModule("prodcrash.ko", symbols.Placement{Sections: map[string]uint64{
//		".text": 0xffffffffc05ac000, ".exit.text": 0xffffffffc05ac253, ".rodata": 0xffffffffc05ad0e0, // ...
//	}})
//	set.Add(mod)
//
// Close releases the file.
func OpenModule(path string, p Placement) (*File, error) {
	return openWith(path, func(r io.ReaderAt) (*File, error) { return NewModuleFile(r, path, p) })
}

// NewModuleFile is OpenModule for a module read from r; path names it in
// errors and, when the module has no .modinfo name, gives Sym.Module. r
// must stay readable while the File is used.
func NewModuleFile(r io.ReaderAt, path string, p Placement) (f *File, err error) {
	defer func() {
		if pn := recover(); pn != nil {
			f, err = nil, fmt.Errorf("symbols: %s: malformed ELF: %v", path, pn)
		}
	}()
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, elfOpenError(path, r, err)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("symbols: %s: not an x86-64 ELF (%v %v)", path, ef.Class, ef.Machine)
	}
	if ef.Type != elf.ET_REL {
		return nil, fmt.Errorf("symbols: %s: a kernel module is a relocatable object (ET_REL), this is %v", path, ef.Type)
	}
	f = &File{Path: path, r: r, ef: ef, kind: kindKernelModule, module: moduleName(ef, path)}
	f.secAddr = make([]uint64, len(ef.Sections))
	f.placed = make([]bool, len(ef.Sections))
	seen := map[string]bool{}
	texts := 0
	for i, s := range ef.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || seen[s.Name] {
			continue
		}
		a, ok := p.Sections[s.Name]
		if !ok {
			continue
		}
		seen[s.Name] = true
		if a+s.Size < a {
			return nil, fmt.Errorf("symbols: %s: section %s placed at %#x: its %d bytes wrap around", path, s.Name, a, s.Size)
		}
		f.secAddr[i], f.placed[i] = a, true
		if s.Size == 0 {
			continue
		}
		f.spans = append(f.spans, span{a, a + s.Size})
		if s.Flags&elf.SHF_EXECINSTR != 0 && s.Type == elf.SHT_PROGBITS {
			texts++
			idx := i
			f.text = append(f.text, textSection{name: s.Name, start: a, end: a + s.Size,
				sec: s, once: new(sync.Once), data: new([]byte),
				load: func() ([]byte, error) { b, _, err := f.reloc.section(idx); return b, err }})
		}
	}
	if texts == 0 {
		return nil, fmt.Errorf("symbols: %s: the placement puts none of the module's code sections (.text...) anywhere", path)
	}
	slices.SortFunc(f.spans, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	slices.SortFunc(f.text, func(a, b textSection) int { return cmp.Compare(a.start, b.start) })
	f.lo, f.hi = f.spans[0].lo, 0
	for _, s := range f.spans {
		f.hi = max(f.hi, s.hi)
	}
	f.reloc = newRelocator(ef, path, f.secAddr, f.placed, p.Resolve)
	f.textEnds = slices.Sorted(slices.Values(p.TextEnds))
	f.Syms = f.readSymbols()
	f.buildID = readBuildID(ef)
	return f, nil
}

// capTextSizes ends every text symbol at the first of the module's text
// region ends above it, as find_kallsyms_symbol does (Placement.TextEnds).
func (f *File) capTextSizes(t *Table) {
	if len(f.textEnds) == 0 {
		return
	}
	for i := range t.addr { // a module's table has no extras, bias 0
		addr, size := t.addr[i], &t.size[i]
		if f.textAt(addr) == nil {
			continue
		}
		j, _ := slices.BinarySearch(f.textEnds, addr+1)
		if j == len(f.textEnds) {
			continue
		}
		if end := f.textEnds[j]; *size == 0 || end-addr < *size {
			*size = end - addr
		}
	}
}

// span is a run-time address range [lo, hi).
type span struct{ lo, hi uint64 }

// SectionData returns the run-time address and the bytes of the allocated
// section name as the module loader leaves them: for a module opened with
// OpenModule, relocated for its placement (.orc_unwind_ip then holds
// offsets to the placed code, in the file's order: the kernel sorts the
// table after loading); for other files, the section's bytes at its address
// plus the bias. A section that is absent, not placed or not allocated is
// an error. The data is the caller's to keep.
func (f *File) SectionData(name string) (addr uint64, data []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			addr, data, err = 0, nil, fmt.Errorf("symbols: %s: malformed ELF: %v", f.Path, p)
		}
	}()
	for i, s := range f.ef.Sections {
		if s.Name != name || s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		if f.reloc == nil {
			if s.Size > maxRelocSection {
				return 0, nil, fmt.Errorf("symbols: %s: section %s: size %d too large", f.Path, name, s.Size)
			}
			b, err := s.Data()
			if err != nil {
				return 0, nil, fmt.Errorf("symbols: %s: section %s: %w", f.Path, name, err)
			}
			return s.Addr + f.Bias, b, nil
		}
		if !f.placed[i] {
			continue
		}
		b, _, err := f.reloc.section(i)
		if err != nil {
			return 0, nil, err
		}
		return f.secAddr[i], b, nil
	}
	return 0, nil, fmt.Errorf("symbols: %s: no placed allocated section %s", f.Path, name)
}

// ModuleName returns the kernel module's name as the kernel prints it in
// "[name]" (its .modinfo name= tag, or the file name), or "" when f is not
// a kernel module.
func (f *File) ModuleName() string {
	if f.kind != kindKernelModule {
		return ""
	}
	return f.module
}

// moduleCFI parses the module's relocated .debug_frame and, if it has one,
// .eh_frame.
func (f *File) moduleCFI() {
	var errs []error
	for i, s := range f.ef.Sections {
		kind := cfi.DebugFrame
		switch {
		case s.Name == ".debug_frame":
		case s.Name == ".eh_frame" && f.placed[i]:
			kind = cfi.EHFrame
		default:
			continue
		}
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		b, _, err := f.reloc.section(i)
		if err != nil {
			errs = append(errs, err)
			if b == nil {
				continue
			}
		}
		if kind == cfi.DebugFrame {
			if f.debugCFI == nil {
				f.debugCFI, err = cfi.Parse(b, kind, 0, 0)
			}
		} else if f.ehCFI == nil {
			f.ehCFI, err = cfi.Parse(b, kind, f.secAddr[i], 0)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("symbols: %s: %s: %w", f.Path, s.Name, err))
		}
	}
	f.cfiErr = errors.Join(errs...)
}

// moduleDWARF reads the module's DWARF sections with their relocations
// applied, so that addresses in .debug_info, .debug_line, .debug_rnglists
// and the rest are run-time addresses. (debug/elf's own DWARF method, for
// an ET_REL file, applies only R_X86_64_64 and R_X86_64_32 with every
// section at address 0: all code sections then overlap at 0.)
func (f *File) moduleDWARF() (*dwarf.Data, error) {
	sec := map[string][]byte{}
	var errs []error
	for i, s := range f.ef.Sections {
		if !strings.HasPrefix(s.Name, ".debug_") || s.Name == ".debug_frame" || s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		if s.Size > maxDebugSection {
			return nil, fmt.Errorf("section %s: size %d too large", s.Name, s.Size)
		}
		b, _, err := f.reloc.section(i)
		if err != nil {
			if b == nil {
				return nil, err
			}
			errs = append(errs, err) // relocated as far as possible; still usable
		}
		sec[s.Name[len(".debug_"):]] = b
	}
	delete(sec, "frame") // the module's CFI is read on its own, relocated
	d, err := newDWARF(sec)
	if err != nil {
		return nil, err
	}
	return d, errors.Join(errs...)
}

// DebugInfoErr loads the file's CFI and DWARF (if not loaded yet) and
// returns what went wrong reading them, or nil. Lookups work without
// calling it; a debugger calls it to tell a user why lines or CFI are
// missing or partial (a corrupt section, a relocation that does not fit
// the module's placement).
func (f *File) DebugInfoErr() error {
	f.cfiOnce.Do(f.loadCFI)
	f.dwarfOnce.Do(f.loadDWARF)
	return errors.Join(f.cfiErr, f.dwErr, f.streamErr())
}

// ModuleSymbol is one symbol of a loaded module as the kernel keeps it in
// memory (struct module's kallsyms: an Elf64_Sym and its name), which a
// kernel-dump reader passes to MatchModuleSymbols.
type ModuleSymbol struct {
	Name    string
	Value   uint64 // run-time address: st_value after loading
	Size    uint64 // st_size
	Section uint16 // st_shndx: the section's index in the .ko
	Type    byte   // the kallsyms type letter (mod_kallsyms typetab: 't', 'd', ...), 0 when unknown
}

// NewModuleTable makes the symbol table of a loaded module from the
// symbols the kernel keeps for it in memory (mod->kallsyms), so that a
// module's addresses are named with no file at all, exactly as the
// kernel's own "func+0x1c/0x80 [mod]" (find_kallsyms_symbol): among
// symbols at one address the first in table order; a text symbol's size
// the distance to the module's next symbol, at most to the end of its
// code region (textEnds: core and, while it exists, init text ends; see
// Placement.TextEnds). Local labels (.L*) and mapping symbols are left
// out, as the kernel skips them; Sym.Module is module. Add it to a Set
// with AddTable.
func NewModuleTable(module string, syms []ModuleSymbol, textEnds []uint64) *Table {
	ends := slices.Sorted(slices.Values(textEnds))
	var vals []uint64
	for _, s := range syms {
		if s.Name != "" && s.Section != uint16(elf.SHN_UNDEF) && !moduleKallsymsIgnored(s.Name) {
			vals = append(vals, s.Value)
		}
	}
	slices.Sort(vals)
	vals = slices.Compact(vals)
	es := make([]entry, 0, len(vals))
	for i, s := range syms {
		if s.Name == "" || s.Section == uint16(elf.SHN_UNDEF) || moduleKallsymsIgnored(s.Name) {
			continue
		}
		size := s.Size
		text := IsTextType(s.Type)
		if s.Type == 0 {
			// No type letters: a symbol in a code region counts as text.
			j, _ := slices.BinarySearch(ends, s.Value+1)
			text = j < len(ends)
		}
		if text {
			end := uint64(0)
			if j, _ := slices.BinarySearch(ends, s.Value+1); j < len(ends) {
				end = ends[j]
			}
			if j, _ := slices.BinarySearch(vals, s.Value+1); j < len(vals) && (end == 0 || vals[j] < end) {
				end = vals[j]
			}
			if end > s.Value {
				size = end - s.Value
			}
		}
		es = append(es, entry{Sym: Sym{Name: s.Name, Addr: s.Value, Size: size, ELFSize: s.Size, Module: module}, rank: i, typ: s.Type})
	}
	return newTable(es)
}

// MatchModuleSymbols checks that f, opened with OpenModule and placed where
// the kernel loaded the module name, is the file the module was loaded
// from, for modules without a build id (Debian's 6.1 has none): f must be
// module name (its .modinfo name), and every named,
// defined symbol the kernel keeps (mem) must be in f's symbol table with
// the same name, section index and st_size, at the same run-time address;
// and every function in f's placed code must be among mem. It returns nil
// on a match and otherwise an error naming the first differences, which a
// debugger reports as it reports a wrong vmlinux.
func (f *File) MatchModuleSymbols(name string, mem []ModuleSymbol) error {
	if f.reloc == nil {
		return fmt.Errorf("symbols: %s: not a module opened with OpenModule", f.Path)
	}
	if f.module != name {
		return fmt.Errorf("symbols: %s is module %s, not the loaded module %s", f.Path, f.module, name)
	}
	syms, err := f.ef.Symbols()
	if err != nil {
		return fmt.Errorf("symbols: %s: symbol table: %w", f.Path, err)
	}
	type key struct {
		name string
		sec  uint16
	}
	byKey := map[key][]*elf.Symbol{}
	for i := range syms {
		s := &syms[i]
		if s.Name != "" && s.Section != elf.SHN_UNDEF {
			k := key{s.Name, uint16(s.Section)}
			byKey[k] = append(byKey[k], s)
		}
	}
	var diffs []string
	differ, checked := 0, 0
	note := func(format string, args ...any) {
		if differ++; len(diffs) < 4 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	inMem := map[key]bool{}
	for _, m := range mem {
		if m.Name == "" || m.Section == uint16(elf.SHN_UNDEF) {
			continue
		}
		checked++
		k := key{m.Name, m.Section}
		inMem[k] = true
		cands := byKey[k]
		if len(cands) == 0 {
			note("%s (section %d) is not in the file", m.Name, m.Section)
			continue
		}
		ok := false
		for _, s := range cands {
			addr := s.Value
			if int(s.Section) < len(f.placed) {
				if !f.placed[s.Section] {
					ok = s.Size == m.Size // a section the caller did not place: sizes only
					if ok {
						break
					}
					continue
				}
				addr += f.secAddr[s.Section]
			}
			if s.Size == m.Size && addr == m.Value {
				ok = true
				break
			}
		}
		if !ok {
			s := cands[0]
			addr := s.Value
			if int(s.Section) < len(f.placed) {
				addr += f.secAddr[s.Section]
			}
			note("%s: %#x size %#x in memory, %#x size %#x in the file", m.Name, m.Value, m.Size, addr, s.Size)
		}
	}
	for i := range syms {
		s := &syms[i]
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Name == "" || s.Section >= elf.SHN_LORESERVE ||
			int(s.Section) >= len(f.placed) || !f.placed[s.Section] || moduleKallsymsIgnored(s.Name) {
			continue
		}
		if !inMem[key{s.Name, uint16(s.Section)}] {
			note("function %s is in the file, not in the loaded module", s.Name)
		}
	}
	if checked == 0 {
		return fmt.Errorf("symbols: %s: the loaded module %s has no symbols to compare with", f.Path, name)
	}
	if differ > 0 {
		return fmt.Errorf("symbols: %s is not the file module %s was loaded from: %d differences in %d symbols: %s",
			f.Path, name, differ, checked, strings.Join(diffs, "; "))
	}
	return nil
}

// ORCEntrySize is the size of one struct orc_entry in .orc_unwind.
const ORCEntrySize = 6

// ModuleORC returns a placed module's ORC tables as the kernel's module
// loader would have built them: ips[i] is the run-time address that entry
// i of entries (ORCEntrySize bytes each, struct orc_entry as in
// .orc_unwind) starts to describe, in the file's order (unsorted; the
// kernel sorts them at load). Entries for code in sections that are not
// placed (freed init code) are left out. An ORC unwinder reads the same
// tables from a dump's memory (mod->arch.orc_unwind_ip, orc_unwind,
// num_orcs); this is the file's copy for when memory lacks them.
func (f *File) ModuleORC() (ips []uint64, entries []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			ips, entries, err = nil, nil, fmt.Errorf("symbols: %s: malformed ELF: %v", f.Path, p)
		}
	}()
	if f.reloc == nil {
		return nil, nil, fmt.Errorf("symbols: %s: not a module opened with OpenModule", f.Path)
	}
	ipIdx, orcIdx := -1, -1
	for i, s := range f.ef.Sections {
		switch {
		case s.Name == ".orc_unwind_ip" && f.placed[i] && ipIdx < 0:
			ipIdx = i
		case s.Name == ".orc_unwind" && orcIdx < 0:
			orcIdx = i
		}
	}
	if ipIdx < 0 || orcIdx < 0 {
		return nil, nil, fmt.Errorf("symbols: %s: no placed .orc_unwind_ip and .orc_unwind", f.Path)
	}
	skip := map[uint64]bool{}
	ipb, _, err := f.reloc.sectionFunc(ipIdx, func(off uint64) { skip[off] = true })
	if err != nil {
		return nil, nil, err
	}
	os := f.ef.Sections[orcIdx]
	if os.Type == elf.SHT_NOBITS || os.Size > maxRelocSection {
		return nil, nil, fmt.Errorf("symbols: %s: .orc_unwind has no usable data", f.Path)
	}
	orc, err := os.Data()
	if err != nil {
		return nil, nil, fmt.Errorf("symbols: %s: .orc_unwind: %w", f.Path, err)
	}
	n := len(ipb) / 4
	if len(ipb)%4 != 0 || len(orc) != n*ORCEntrySize {
		return nil, nil, fmt.Errorf("symbols: %s: .orc_unwind_ip has %d bytes and .orc_unwind %d: not %d-byte ips for %d-byte entries",
			f.Path, len(ipb), len(orc), 4, ORCEntrySize)
	}
	base := f.secAddr[ipIdx]
	ips = make([]uint64, 0, n)
	entries = make([]byte, 0, len(orc))
	for i := range n {
		off := uint64(4 * i)
		if skip[off] {
			continue
		}
		rel := int64(int32(binary.LittleEndian.Uint32(ipb[off:])))
		ips = append(ips, base+off+uint64(rel))
		entries = append(entries, orc[i*ORCEntrySize:(i+1)*ORCEntrySize]...)
	}
	return ips, entries, nil
}

// loadModuleORC builds a placed module's ORC table from its relocated
// .orc_unwind_ip and .orc_unwind (ModuleORC), in the layout its
// .orc_header names or, without one, the layout of the kernel release its
// .modinfo vermagic names.
func (f *File) loadModuleORC() {
	ips, entries, err := f.ModuleORC()
	if err != nil {
		f.orcErr = fmt.Errorf("%w (%w)", err, ErrNoORC)
		return
	}
	if len(ips) == 0 {
		f.orcErr = fmt.Errorf("symbols: %s: no ORC entries for the placed code: %w", f.Path, ErrNoORC)
		return
	}
	var header []byte
	if h := f.ef.Section(".orc_header"); h != nil && h.Type == elf.SHT_PROGBITS && h.Size <= 64 {
		if header, err = h.Data(); err != nil {
			f.orcErr = fmt.Errorf("symbols: %s: .orc_header: %w", f.Path, err)
			return
		}
	}
	release, _, _ := strings.Cut(modinfo(f.ef, "vermagic"), " ")
	layout, err := ORCLayoutOf(header, release)
	if err != nil {
		f.orcErr = fmt.Errorf("symbols: %s: %w", f.Path, err)
		return
	}
	// Re-encode the kept entries relative to their new slots, so that the
	// table is what the loader leaves in memory, less the freed sections.
	ipAddr, _, err := f.SectionData(".orc_unwind_ip")
	if err != nil {
		f.orcErr = err
		return
	}
	ipb := make([]byte, 4*len(ips))
	for j, ip := range ips {
		rel := int64(ip - (ipAddr + 4*uint64(j)))
		if rel != int64(int32(rel)) {
			f.orcErr = fmt.Errorf("symbols: %s: ORC entry for %#x out of reach of .orc_unwind_ip at %#x", f.Path, ip, ipAddr)
			return
		}
		binary.LittleEndian.PutUint32(ipb[4*j:], uint32(rel))
	}
	t, err := NewORCTable(ipb, ipAddr, entries, layout)
	if err != nil {
		f.orcErr = fmt.Errorf("symbols: %s: %w", f.Path, err)
		return
	}
	f.orc = t
}
