package linux

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
)

// Module is one loadable kernel module as the dump records it (the
// kernel's modules list of struct module), what lsmod and crash's mod
// show, plus what a debugger needs to name and unwind its code.
type Module struct {
	Name    string
	Address uint64 // the struct module
	State   string // "live", "coming", "going" or "unformed" (enum module_state)
	// Base and Size are the module's core memory, as lsmod and /proc/modules
	// give them: core_layout.base and .size up to 6.3; from 6.4
	// mem[MOD_TEXT].base and the sum of the core mem[] sizes.
	Base, Size uint64
	// TextEnd is where the module's core code ends (base + text_size, or
	// mem[MOD_TEXT]'s end): the kernel names no address at or above it
	// with a text symbol of the module.
	TextEnd uint64
	// InitBase, InitSize and InitTextEnd are the init memory's; 0 once the
	// kernel freed it (a live module).
	InitBase, InitSize, InitTextEnd uint64
	// Taints is mod->taints (bit i is taint flag i) and TaintLetters the
	// letters the kernel prints for them after the name ("OE" in
	// "prodcrash(OE)").
	Taints       uint64
	TaintLetters string
	// Sections are the section addresses (mod->sect_attrs, what
	// /sys/module/NAME/sections/ lists), by name.
	Sections map[string]uint64
	// Symbols is the module's own symbol table in memory (mod->kallsyms:
	// the core symbols once the module is live), in symbol-table order.
	Symbols []symbols.ModuleSymbol
	// ORC is the module's ORC table in memory (mod->arch.orc_unwind_ip,
	// orc_unwind, num_orcs), nil when the kernel has none or it could not
	// be read.
	ORC *symbols.ORCTable
	// File is the module's .ko when one was found and accepted
	// (MatchModuleSymbols), placed at the dump's addresses; "" otherwise.
	File string
}

// moduleStates are enum module_state's names, by value.
var moduleStates = [...]string{"live", "coming", "going", "unformed"}

// Limits on what is read for modules from a dump that may be corrupt.
const (
	maxModules      = 4096
	maxModSymbols   = 1 << 18
	maxModSections  = 512
	maxModStrtab    = 16 << 20
	maxORCEntries   = 1 << 20
	elfSymSize      = 24 // sizeof(Elf64_Sym)
	moduleNameLimit = 256
)

// moduleLayout holds the member offsets of struct module and its parts
// this package reads (from moduleLayouts).
type moduleLayout struct {
	list, name, nameLen, state, taints int64
	// Linux ≤ 6.3: struct module_layout core_layout, init_layout.
	core, init, lBase, lSize, lText int64
	// Linux ≥ 6.4: struct module_memory mem[MOD_MEM_NUM_TYPES].
	mem, memStride, memBase, memSize, memNum                    int64
	sectAttrs, nsections, attrs, attrStride, attrAddr, attrName int64
	kallsyms, symtab, numSymtab, strtab, typetab                int64
	orcIP, orc, numOrcs                                         int64
}

// moduleNameLen is MODULE_NAME_LEN on 64-bit kernels (64 - sizeof(long)).
const moduleNameLen = 56

// readModuleLayout reads the offsets from a Layout (the kernel's BTF, or
// vmlinux's DWARF unit of kernel/module/sysfs.c: they have struct
// module_sect_attrs, which only that file defines).
func readModuleLayout(l Layout) (*moduleLayout, error) {
	var missing []string
	get := func(st, path string) int64 {
		off, ok := l.MemberOffset(st, path)
		if !ok {
			missing = append(missing, st+"."+path)
			return -1
		}
		return off
	}
	opt := func(st, path string) int64 {
		if off, ok := l.MemberOffset(st, path); ok {
			return off
		}
		return -1
	}
	size := func(st string) int64 {
		n, ok := l.StructSize(st)
		if !ok {
			missing = append(missing, "sizeof(struct "+st+")")
		}
		return n
	}
	m := &moduleLayout{nameLen: moduleNameLen}
	m.list = get("module", "list")
	m.name = get("module", "name")
	m.state = get("module", "state")
	m.taints = get("module", "taints")
	if m.core = opt("module", "core_layout"); m.core >= 0 {
		m.init = get("module", "init_layout")
		m.lBase = get("module_layout", "base")
		m.lSize = get("module_layout", "size")
		m.lText = get("module_layout", "text_size")
	} else if m.mem = opt("module", "mem"); m.mem >= 0 {
		// 6.4+: mem[MOD_TEXT] ... mem[MOD_INIT_RODATA].
		m.memNum = 7
		m.memStride = size("module_memory")
		m.memBase = get("module_memory", "base")
		m.memSize = get("module_memory", "size")
	} else {
		missing = append(missing, "module.core_layout (≤ 6.3) or module.mem (≥ 6.4)")
	}
	// Section addresses (sect_attrs, CONFIG_SYSFS): optional, only .ko
	// placement needs them.
	m.sectAttrs = opt("module", "sect_attrs")
	m.nsections = opt("module_sect_attrs", "nsections")
	m.attrs = opt("module_sect_attrs", "attrs")
	m.attrStride, _ = l.StructSize("module_sect_attr")
	m.attrAddr = opt("module_sect_attr", "address")
	if m.attrName = opt("module_sect_attr", "battr.attr.name"); m.attrName < 0 {
		m.attrName = opt("module_sect_attr", "name") // before 5.8
	}
	m.kallsyms = get("module", "kallsyms")
	m.symtab = get("mod_kallsyms", "symtab")
	m.numSymtab = get("mod_kallsyms", "num_symtab")
	m.strtab = get("mod_kallsyms", "strtab")
	m.typetab = opt("mod_kallsyms", "typetab") // since 5.3
	m.orcIP = opt("module", "arch.orc_unwind_ip")
	m.orc = opt("module", "arch.orc_unwind")
	m.numOrcs = opt("module", "arch.num_orcs")
	if len(missing) > 0 {
		return m, fmt.Errorf("unknown: %s", strings.Join(missing, ", "))
	}
	return m, nil
}

// moduleReader reads modules from the kernel's memory.
type moduleReader struct {
	k *Kernel
	l *moduleLayout
	// What all modules together may keep, so that a corrupt dump with
	// thousands of huge "modules" cannot exhaust memory.
	symsLeft, orcsLeft int
}

// Budgets over all modules (a real kernel's modules have some 10^5
// symbols and 10^5 ORC entries in all).
const (
	maxAllModSymbols = 1 << 22
	maxAllORCEntries = 1 << 22
)

func newModuleReader(k *Kernel, l *moduleLayout) *moduleReader {
	return &moduleReader{k: k, l: l, symsLeft: maxAllModSymbols, orcsLeft: maxAllORCEntries}
}

func (r *moduleReader) u64(a uint64) (uint64, error) {
	var b [8]byte
	if n, err := r.k.mem.ReadAt(b[:], a); n != 8 {
		return 0, fmt.Errorf("reading %#x: %w", a, err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func (r *moduleReader) u32(a uint64) (uint32, error) {
	var b [4]byte
	if n, err := r.k.mem.ReadAt(b[:], a); n != 4 {
		return 0, fmt.Errorf("reading %#x: %w", a, err)
	}
	return binary.LittleEndian.Uint32(b[:]), nil
}

func (r *moduleReader) str(a uint64, max int) (string, error) {
	b := make([]byte, max)
	n, err := r.k.mem.ReadAt(b, a)
	if i := slices.Index(b[:n], 0); i >= 0 {
		return string(b[:i]), nil
	}
	if err == nil {
		err = errors.New("no NUL")
	}
	return "", fmt.Errorf("string at %#x: %w", a, err)
}

// list returns the addresses of the struct modules on the list at head.
func (r *moduleReader) list(head uint64) ([]uint64, error) {
	var out []uint64
	seen := map[uint64]bool{head: true}
	p, err := r.u64(head)
	if err != nil {
		return nil, fmt.Errorf("modules list head: %w", err)
	}
	for p != head {
		if len(out) >= maxModules {
			return out, fmt.Errorf("modules list: more than %d entries", maxModules)
		}
		if seen[p] || p < uint64(r.l.list) {
			return out, fmt.Errorf("modules list: entry %#x loops or is no pointer", p)
		}
		seen[p] = true
		out = append(out, p-uint64(r.l.list))
		if p, err = r.u64(p); err != nil {
			return out, fmt.Errorf("modules list after %d modules: %w", len(out), err)
		}
	}
	return out, nil
}

// read reads the struct module at a; a module whose name or layout cannot
// be read is an error, its symbols, sections or ORC a warning.
func (r *moduleReader) read(a uint64) (Module, []string, error) {
	l := r.l
	m := Module{Address: a}
	var warns []string
	name, err := r.str(a+uint64(l.name), int(l.nameLen))
	if err != nil {
		return m, nil, fmt.Errorf("module at %#x: name: %w", a, err)
	}
	m.Name = name
	st, err := r.u32(a + uint64(l.state))
	if err != nil {
		return m, nil, fmt.Errorf("module %s: state: %w", name, err)
	}
	if int(st) < len(moduleStates) {
		m.State = moduleStates[st]
	} else {
		m.State = fmt.Sprintf("state %d", st)
	}
	if m.Taints, err = r.u64(a + uint64(l.taints)); err != nil {
		warns = append(warns, fmt.Sprintf("module %s: taints: %v", name, err))
	}
	m.TaintLetters = r.k.moduleTaintLetters(m.Taints)
	if err := r.layout(a, &m); err != nil {
		return m, warns, fmt.Errorf("module %s: %w", name, err)
	}
	if err := r.sections(a, &m); err != nil {
		warns = append(warns, fmt.Sprintf("module %s: sections: %v", name, err))
	}
	if err := r.symbols(a, &m); err != nil {
		warns = append(warns, fmt.Sprintf("module %s: symbols: %v", name, err))
	}
	if err := r.orc(a, &m); err != nil {
		warns = append(warns, fmt.Sprintf("module %s: ORC: %v", name, err))
	}
	return m, warns, nil
}

// layout fills Base, Size, TextEnd and the init ones.
func (r *moduleReader) layout(a uint64, m *Module) error {
	l := r.l
	if l.core >= 0 {
		rd := func(lay int64) (base, size, text uint64, err error) {
			p := a + uint64(lay)
			if base, err = r.u64(p + uint64(l.lBase)); err != nil {
				return
			}
			var s, t uint32
			if s, err = r.u32(p + uint64(l.lSize)); err != nil {
				return
			}
			if t, err = r.u32(p + uint64(l.lText)); err != nil {
				return
			}
			return base, uint64(s), uint64(t), nil
		}
		b, s, t, err := rd(l.core)
		if err != nil {
			return fmt.Errorf("core_layout: %w", err)
		}
		m.Base, m.Size, m.TextEnd = b, s, b+t
		if b, s, t, err = rd(l.init); err == nil && b != 0 {
			m.InitBase, m.InitSize, m.InitTextEnd = b, s, b+t
		}
		return nil
	}
	// 6.4+: MOD_TEXT 0, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT, then
	// MOD_INIT_TEXT 4, MOD_INIT_DATA, MOD_INIT_RODATA.
	var base, size [7]uint64
	for i := range 7 {
		p := a + uint64(l.mem+int64(i)*l.memStride)
		var err error
		if base[i], err = r.u64(p + uint64(l.memBase)); err != nil {
			return fmt.Errorf("mem[%d]: %w", i, err)
		}
		s, err := r.u32(p + uint64(l.memSize))
		if err != nil {
			return fmt.Errorf("mem[%d]: %w", i, err)
		}
		size[i] = uint64(s)
	}
	m.Base, m.TextEnd = base[0], base[0]+size[0]
	m.Size = size[0] + size[1] + size[2] + size[3]
	if base[4] != 0 {
		m.InitBase, m.InitTextEnd = base[4], base[4]+size[4]
		m.InitSize = size[4] + size[5] + size[6]
	}
	return nil
}

// sections reads mod->sect_attrs.
func (r *moduleReader) sections(a uint64, m *Module) error {
	l := r.l
	if l.sectAttrs < 0 || l.nsections < 0 || l.attrs < 0 || l.attrStride <= 0 || l.attrAddr < 0 || l.attrName < 0 {
		return errors.New("the structure layouts lack struct module_sect_attrs (vmlinux's DWARF units read have none; the kernel's BTF has it)")
	}
	sa, err := r.u64(a + uint64(l.sectAttrs))
	if err != nil || sa == 0 {
		return fmt.Errorf("sect_attrs %#x: %v", sa, err)
	}
	n, err := r.u32(sa + uint64(l.nsections))
	if err != nil {
		return err
	}
	if n > maxModSections {
		return fmt.Errorf("%d sections (more than %d)", n, maxModSections)
	}
	m.Sections = make(map[string]uint64, n)
	for i := range uint64(n) {
		e := sa + uint64(l.attrs) + i*uint64(l.attrStride)
		np, err := r.u64(e + uint64(l.attrName))
		if err != nil {
			return err
		}
		name, err := r.str(np, 128)
		if err != nil {
			return fmt.Errorf("section %d: %w", i, err)
		}
		addr, err := r.u64(e + uint64(l.attrAddr))
		if err != nil {
			return err
		}
		if _, dup := m.Sections[name]; !dup {
			m.Sections[name] = addr
		}
	}
	return nil
}

// symbols reads the module's kallsyms (mod->kallsyms).
func (r *moduleReader) symbols(a uint64, m *Module) error {
	l := r.l
	ks, err := r.u64(a + uint64(l.kallsyms))
	if err != nil || ks == 0 {
		return fmt.Errorf("kallsyms %#x: %v", ks, err)
	}
	symtab, err := r.u64(ks + uint64(l.symtab))
	if err != nil {
		return err
	}
	num, err := r.u32(ks + uint64(l.numSymtab))
	if err != nil {
		return err
	}
	strtab, err := r.u64(ks + uint64(l.strtab))
	if err != nil {
		return err
	}
	if num > maxModSymbols || int(num) > r.symsLeft {
		return fmt.Errorf("%d symbols (more than %d, or than the %d left for all modules)", num, maxModSymbols, r.symsLeft)
	}
	r.symsLeft -= int(num)
	b := make([]byte, uint64(num)*elfSymSize)
	if n, err := r.k.mem.ReadAt(b, symtab); n != len(b) {
		return fmt.Errorf("symtab at %#x (%d symbols): %w", symtab, num, err)
	}
	var types []byte
	if l.typetab >= 0 {
		if tt, err := r.u64(ks + uint64(l.typetab)); err == nil && tt != 0 {
			types = make([]byte, num)
			if n, _ := r.k.mem.ReadAt(types, tt); n != len(types) {
				types = nil
			}
		}
	}
	// The string table: up to the end of the last name.
	var maxName uint64
	for i := range uint64(num) {
		maxName = max(maxName, uint64(binary.LittleEndian.Uint32(b[i*elfSymSize:])))
	}
	if maxName > maxModStrtab {
		return fmt.Errorf("symbol name offset %#x beyond %d bytes", maxName, maxModStrtab)
	}
	strs := make([]byte, maxName+256)
	n, _ := r.k.mem.ReadAt(strs, strtab)
	strs = strs[:n]
	m.Symbols = make([]symbols.ModuleSymbol, 0, num)
	for i := range uint64(num) {
		e := b[i*elfSymSize:]
		off := uint64(binary.LittleEndian.Uint32(e))
		name := ""
		if off < uint64(len(strs)) {
			if j := slices.Index(strs[off:], 0); j >= 0 {
				name = string(strs[off : off+uint64(j)])
			}
		}
		s := symbols.ModuleSymbol{
			Name:    name,
			Section: binary.LittleEndian.Uint16(e[6:]),
			Value:   binary.LittleEndian.Uint64(e[8:]),
			Size:    binary.LittleEndian.Uint64(e[16:]),
		}
		if types != nil {
			s.Type = types[i]
		}
		m.Symbols = append(m.Symbols, s)
	}
	return nil
}

// orc reads the module's ORC table from memory.
func (r *moduleReader) orc(a uint64, m *Module) error {
	l := r.l
	if l.orcIP < 0 || l.orc < 0 || l.numOrcs < 0 {
		return nil // no CONFIG_UNWINDER_ORC
	}
	ipAddr, err := r.u64(a + uint64(l.orcIP))
	if err != nil {
		return err
	}
	orcAddr, err := r.u64(a + uint64(l.orc))
	if err != nil {
		return err
	}
	n, err := r.u32(a + uint64(l.numOrcs))
	if err != nil {
		return err
	}
	if n == 0 || ipAddr == 0 || orcAddr == 0 {
		return nil
	}
	if n > maxORCEntries || int(n) > r.orcsLeft {
		return fmt.Errorf("%d entries (more than %d, or than the %d left for all modules)", n, maxORCEntries, r.orcsLeft)
	}
	r.orcsLeft -= int(n)
	ip := make([]byte, 4*uint64(n))
	if got, err := r.k.mem.ReadAt(ip, ipAddr); got != len(ip) {
		return fmt.Errorf("orc_unwind_ip at %#x: %w", ipAddr, err)
	}
	orc := make([]byte, symbols.ORCEntrySize*uint64(n))
	if got, err := r.k.mem.ReadAt(orc, orcAddr); got != len(orc) {
		return fmt.Errorf("orc_unwind at %#x: %w", orcAddr, err)
	}
	release := ""
	if uts, ok := r.k.UTSName(); ok {
		release = uts.Release
	}
	layout, err := symbols.ORCLayoutOf(nil, release)
	if err != nil {
		return err
	}
	t, err := symbols.NewORCTable(ip, ipAddr, orc, layout)
	if err != nil {
		return err
	}
	m.ORC = t
	return nil
}

// moduleTaintLetters formats a module's taints as module_flags_taint
// does: the c_true letter of every set flag whose taint_flags entry is
// marked module.
func (k *Kernel) moduleTaintLetters(mask uint64) string {
	if mask == 0 {
		return ""
	}
	a, ok := k.kernelSym("taint_flags")
	if !ok {
		return ""
	}
	var buf [maxTaintFlags * 16]byte
	n, _ := k.mem.ReadAt(buf[:], a)
	for _, es := range []int{3, 16} {
		if n < 2*es || buf[0] != 'P' || buf[1] != 'G' || buf[es] != 'F' {
			continue
		}
		var s strings.Builder
		for i := 0; i < 64 && (i+1)*es <= n; i++ {
			e := buf[i*es:]
			if e[0] < 'A' || e[0] > 'Z' {
				break
			}
			if mask&(1<<i) != 0 && e[2] != 0 {
				s.WriteByte(e[0])
			}
		}
		return s.String()
	}
	return ""
}

// Modules returns the loaded modules, in the order of the kernel's modules
// list (most recently loaded first, as lsmod shows them). Open reads them;
// the error says why the list could not be read (no layouts: neither
// vmlinux's nor the dump's BTF).
func (k *Kernel) Modules() ([]Module, error) {
	return slices.Clone(k.modules), k.modErr
}

// loadModules reads the modules list, adds each module's symbols (its .ko
// when found and accepted, else its in-memory symbol table) and ORC to the
// kernel's symbol set, and returns warnings.
func (k *Kernel) loadModules(opts dump.SymbolOptions) []string {
	var warns []string
	head, ok := k.modulesHead()
	if !ok {
		// No symbols given (Open already warns about that), or a kernel
		// built without module support, which has none to list.
		if _, known := k.set.ByName("_stext"); !known {
			k.modErr = errors.New("modules: no kernel symbols to find the modules list with")
		}
		return nil
	}
	if next, err := (&moduleReader{k: k}).u64(head); err == nil && next == head {
		return nil // no module is loaded
	}
	l, err := k.moduleLayouts(opts)
	if err != nil {
		if k.layout == nil {
			k.modErr = fmt.Errorf("modules: no structure layouts: %w", err)
			return []string{k.modErr.Error()}
		}
		l = k.layout // vmlinux's DWARF, as the kernel model reads it
		if k.lc != nil {
			k.lc.dwarfModules = true
		}
	}
	ml, err := readModuleLayout(l)
	if err != nil {
		k.modErr = fmt.Errorf("modules: struct module layout: %w", err)
		return []string{k.modErr.Error()}
	}
	r := newModuleReader(k, ml)
	addrs, err := r.list(head)
	if err != nil {
		k.modErr = err
		warns = append(warns, err.Error())
	}
	files := newKoIndex(opts)
	for _, a := range addrs {
		m, w, err := r.read(a)
		warns = append(warns, w...)
		if err != nil {
			warns = append(warns, err.Error())
			continue
		}
		warns = append(warns, k.addModule(&m, files)...)
		k.modules = append(k.modules, m)
	}
	return warns
}

// modulesHead returns the address of the kernel's modules list head.
func (k *Kernel) modulesHead() (uint64, bool) {
	if s, ok := k.set.ByName("modules"); ok && s.Module == "" {
		return s.Addr, true
	}
	return k.kernelSym("modules")
}

// moduleLayouts returns the structure layouts modules are read with:
// the DWARF unit of vmlinux that defines struct module_sect_attrs when
// the kernel model reads vmlinux's DWARF (moduleUnitLayout), else the
// kernel's BTF, from a vmlinux given or else from the dump's memory
// (vmlinux's DWARF as the kernel model reads it lacks struct
// module_sect_attrs). A kernel model without layouts (System.map only)
// takes the BTF's for its tasks too.
func (k *Kernel) moduleLayouts(opts dump.SymbolOptions) (Layout, error) {
	var errs []error
	for _, f := range opts.Files {
		if isModuleFile(f) {
			continue
		}
		sf := k.symFiles[f]
		if c := k.lc; c != nil && f == c.path {
			if c.hit != nil && c.hit.btf.present {
				return &answerLayout{answers: c.hit.btf.answers, load: func() Layout {
					if l, err := btfFromFile(f, sf); err == nil {
						return l
					}
					return nil
				}}, nil
			}
			if c.btf != nil {
				return c.btf, nil
			}
		}
		if k.layout != nil && sf != nil {
			// The kernel model has vmlinux's DWARF: the one unit that
			// defines struct module_sect_attrs gives the rest, where the
			// BTF would be parsed whole. (Its answers are cached as the
			// BTF's: only modules ask them, the kernel model asking its
			// DWARF's, from the cache too.)
			if l, err := moduleUnitLayout(f, sf); err == nil {
				if c := k.lc; c != nil && f == c.path {
					c.btf, c.madeBTF = l, true
				}
				return l, nil
			}
		}
		l, err := btfFromFile(f, sf)
		if err == nil {
			if c := k.lc; c != nil && f == c.path {
				c.btf, c.madeBTF = l, true
			}
			return l, nil
		}
		errs = append(errs, err)
	}
	start, ok1 := k.set.ByName("__start_BTF")
	stop, ok2 := k.set.ByName("__stop_BTF")
	if ok1 && ok2 {
		l, err := btfFromMemory(k.mem, start.Addr, stop.Addr)
		if err == nil {
			if k.layout == nil {
				k.layout = l
			}
			return l, nil
		}
		errs = append(errs, err)
	} else {
		errs = append(errs, errors.New("no __start_BTF/__stop_BTF symbols to find the kernel's BTF in memory"))
	}
	return nil, errors.Join(errs...)
}

// placement returns where m's sections are: every section sect_attrs
// lists that lies in the module's core memory, or in its init memory
// while that still exists (a live module's init sections keep addresses
// the kernel freed and reused).
func (m *Module) placement() symbols.Placement {
	p := symbols.Placement{Sections: map[string]uint64{}, TextEnds: m.textEnds()}
	for name, a := range m.Sections {
		if a >= m.Base && a < m.Base+m.Size || m.InitBase != 0 && a >= m.InitBase && a < m.InitBase+m.InitSize {
			p.Sections[name] = a
		}
	}
	return p
}

// textEnds are the ends of m's code regions.
func (m *Module) textEnds() []uint64 {
	if m.InitTextEnd != 0 {
		return []uint64{m.TextEnd, m.InitTextEnd}
	}
	return []uint64{m.TextEnd}
}

// addModule adds m's symbols and ORC to the kernel's set: its .ko when
// found and its symbols match the in-memory ones, else the in-memory
// symbol table (named and sized as the kernel's kallsyms does).
func (k *Kernel) addModule(m *Module, files *koIndex) []string {
	var warns []string
	if m.ORC != nil {
		k.set.AddORC(m.ORC, m.Base, m.TextEnd)
		if m.InitTextEnd != 0 {
			k.set.AddORC(m.ORC, m.InitBase, m.InitTextEnd)
		}
	}
	path, ok := files.find(m.Name)
	if !ok && files.searched() {
		warns = append(warns, fmt.Sprintf("module %s: no %s.ko in %s: its frames are named from the kernel's symbol table in memory, without source lines",
			m.Name, m.Name, strings.Join(files.dirs, ", ")))
	}
	if ok {
		f, err := symbols.OpenModule(path, m.placement())
		if err == nil {
			err = f.MatchModuleSymbols(m.Name, m.Symbols)
			if err != nil {
				f.Close()
			}
		}
		if err == nil {
			k.set.Add(f)
			k.modFiles = append(k.modFiles, f)
			m.File = path
		} else {
			warns = append(warns, fmt.Sprintf("module %s: %s refused, using the symbols in memory: %v", m.Name, path, err))
		}
	}
	if t := symbols.NewModuleTable(m.Name, m.Symbols, m.textEnds()); t.Len() > 0 {
		k.set.AddTable(t, m.Name)
	}
	return warns
}

// isModuleFile reports whether path is a kernel module (a .ko, or any
// relocatable ELF object), not a vmlinux.
func isModuleFile(path string) bool {
	if _, ok := koName(path); ok {
		return true
	}
	if fileio.CheckRegular(path) != nil {
		return false
	}
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Type == elf.ET_REL
}

// koIndex finds module files by module name.
type koIndex struct {
	files map[string]string // module name → path
	dirs  []string          // where they were looked for
}

// searched reports whether the user said where module files are.
func (x *koIndex) searched() bool { return len(x.dirs) > 0 }

// Search limits, so that a --sym directory like / does not walk forever.
const (
	maxKoWalk  = 200000
	maxKoDepth = 12
)

// newKoIndex indexes the .ko files given in opts.Files and found under
// opts.SearchDirs (recursively, as /usr/lib/debug/lib/modules/RELEASE/
// holds them in subdirectories), by module name ('-' as '_', as the
// kernel names modules). A file given explicitly wins over one found.
func newKoIndex(opts dump.SymbolOptions) *koIndex {
	x := &koIndex{files: map[string]string{}, dirs: slices.Clone(opts.SearchDirs)}
	for _, dir := range opts.SearchDirs {
		seen := 0
		base := strings.Count(filepath.Clean(dir), string(filepath.Separator))
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if seen++; seen > maxKoWalk {
				return filepath.SkipAll
			}
			if d.IsDir() {
				if strings.Count(filepath.Clean(p), string(filepath.Separator))-base > maxKoDepth {
					return filepath.SkipDir
				}
				return nil
			}
			if name, ok := koName(p); ok {
				if _, dup := x.files[name]; !dup {
					x.files[name] = p
				}
			}
			return nil
		})
	}
	for _, f := range opts.Files {
		if isModuleFile(f) {
			name, ok := koName(f)
			if !ok {
				name = moduleFileName(f)
			}
			x.files[name] = f
			x.dirs = append(x.dirs, f)
		}
	}
	return x
}

// koName returns the module name a .ko file name stands for.
func koName(p string) (string, bool) {
	b := filepath.Base(p)
	for _, ext := range []string{".ko.debug", ".ko"} {
		if n, ok := strings.CutSuffix(b, ext); ok && n != "" {
			return strings.ReplaceAll(n, "-", "_"), true
		}
	}
	return "", false
}

func (x *koIndex) find(name string) (string, bool) {
	p, ok := x.files[name]
	if !ok {
		return "", false
	}
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return p, true
}

// moduleFileName returns the module name a relocatable object gives in
// its .modinfo, else its file name.
func moduleFileName(path string) string {
	if f, err := symbols.OpenModule(path, symbols.Placement{Sections: map[string]uint64{".text": 1 << 63}}); err == nil {
		defer f.Close()
		return f.ModuleName()
	}
	return strings.ReplaceAll(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), "-", "_")
}

// taintingModules returns "name(LETTERS)" for every module with taint
// letters, in the modules list's order, as the kernel's "Modules linked
// in:" line writes them.
func (k *Kernel) taintingModules() []string {
	var out []string
	for _, m := range k.modules {
		if m.TaintLetters != "" {
			out = append(out, fmt.Sprintf("%s(%s)", m.Name, m.TaintLetters))
		}
	}
	return out
}
