package symbols

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"math"
)

// x86-64 relocation types the Linux module loader applies
// (arch/x86/kernel/module.c, apply_relocate_add); any other type in a
// section we relocate is an error, as it is for the kernel.
const (
	rNone  = uint32(elf.R_X86_64_NONE)
	r64    = uint32(elf.R_X86_64_64)
	rPC32  = uint32(elf.R_X86_64_PC32)
	rPLT32 = uint32(elf.R_X86_64_PLT32)
	r32    = uint32(elf.R_X86_64_32)
	r32S   = uint32(elf.R_X86_64_32S)
	rPC64  = uint32(elf.R_X86_64_PC64)
)

// relaSize is the size of an Elf64_Rela.
const relaSize = 24

// maxRelocSection caps the bytes of one section (or its relocation
// section) read for relocation.
const maxRelocSection = 1 << 30

// relocator applies the RELA relocations of an ET_REL file (a kernel
// module) with its allocated sections placed at run-time addresses, as the
// kernel's module loader does, so that code, DWARF, .debug_frame and ORC
// tables read from the file hold run-time addresses. Sections that are not
// allocated (.debug_*) sit at address 0: relocations into them resolve to
// offsets, as DWARF wants.
type relocator struct {
	path    string
	ef      *elf.File
	secAddr []uint64 // run-time address per section index (0: not placed or not allocated)
	placed  []bool   // section index → placed by the caller
	syms    []elf.Symbol
	symsErr error
	resolve func(name string) (uint64, bool)
	rela    []int // section index → index of its SHT_RELA section, -1 if none
}

func newRelocator(ef *elf.File, path string, secAddr []uint64, placed []bool, resolve func(string) (uint64, bool)) *relocator {
	r := &relocator{path: path, ef: ef, secAddr: secAddr, placed: placed, resolve: resolve}
	r.rela = make([]int, len(ef.Sections))
	for i := range r.rela {
		r.rela[i] = -1
	}
	for i, s := range ef.Sections {
		if s.Type == elf.SHT_RELA && s.Info > 0 && int(s.Info) < len(ef.Sections) && r.rela[s.Info] < 0 {
			r.rela[s.Info] = i
		}
	}
	r.syms, r.symsErr = ef.Symbols()
	return r
}

// relocError describes a relocation that could not be applied; the first
// one of a section is returned, the others counted.
type relocError struct {
	path, section string
	index         int    // relocation number in the RELA section
	off           uint64 // offset in the target section
	msg           string
	more          int
}

func (e *relocError) Error() string {
	s := fmt.Sprintf("symbols: %s: relocating %s: relocation %d at offset %#x: %s", e.path, e.section, e.index, e.off, e.msg)
	if e.more > 0 {
		s += fmt.Sprintf(" (and %d more)", e.more)
	}
	return s
}

// section returns the bytes of section i with its relocations applied. The
// data is a fresh copy. Relocations against symbols that cannot be resolved
// (an undefined symbol the resolver does not know, a symbol in a section
// that was not placed) leave the file's bytes; they are counted in
// unresolved. A malformed relocation section or a relocation the kernel
// would refuse is reported in err, together with the data relocated as far
// as possible.
func (r *relocator) section(i int) (data []byte, unresolved int, err error) {
	return r.sectionFunc(i, nil)
}

// sectionFunc is section calling onUnresolved with the offset of every
// relocation it leaves unresolved.
func (r *relocator) sectionFunc(i int, onUnresolved func(off uint64)) (data []byte, unresolved int, err error) {
	if i <= 0 || i >= len(r.ef.Sections) {
		return nil, 0, fmt.Errorf("symbols: %s: no section %d", r.path, i)
	}
	s := r.ef.Sections[i]
	if s.Type == elf.SHT_NOBITS {
		return nil, 0, fmt.Errorf("symbols: %s: section %s has no data (SHT_NOBITS)", r.path, s.Name)
	}
	if s.Size > maxRelocSection {
		return nil, 0, fmt.Errorf("symbols: %s: section %s: size %d too large", r.path, s.Name, s.Size)
	}
	data, err = s.Data()
	if err != nil {
		return nil, 0, fmt.Errorf("symbols: %s: section %s: %w", r.path, s.Name, err)
	}
	ri := r.rela[i]
	if ri < 0 {
		return data, 0, nil
	}
	rs := r.ef.Sections[ri]
	if rs.Size > maxRelocSection || rs.Size%relaSize != 0 {
		return data, 0, fmt.Errorf("symbols: %s: %s: size %d is not a multiple of %d", r.path, rs.Name, rs.Size, relaSize)
	}
	if l := int(rs.Link); l <= 0 || l >= len(r.ef.Sections) || r.ef.Sections[l].Type != elf.SHT_SYMTAB {
		return data, 0, fmt.Errorf("symbols: %s: %s: sh_link %d is not the symbol table", r.path, rs.Name, rs.Link)
	}
	if r.symsErr != nil {
		return data, 0, fmt.Errorf("symbols: %s: %s: symbol table: %w", r.path, rs.Name, r.symsErr)
	}
	rels, err := rs.Data()
	if err != nil {
		return data, 0, fmt.Errorf("symbols: %s: %s: %w", r.path, rs.Name, err)
	}
	unresolved, rerr := r.apply(data, r.secAddr[i], rels, s.Name, onUnresolved)
	if rerr != nil {
		return data, unresolved, rerr
	}
	return data, unresolved, nil
}

// apply applies the Elf64_Rela entries in rels to data, a section placed at
// base. It returns the number of relocations left unresolved and a
// *relocError for the ones that are malformed or would not fit.
func (r *relocator) apply(data []byte, base uint64, rels []byte, name string, onUnresolved func(uint64)) (unresolved int, err error) {
	var first *relocError
	fail := func(n int, off uint64, format string, args ...any) {
		if first == nil {
			first = &relocError{path: r.path, section: name, index: n, off: off, msg: fmt.Sprintf(format, args...)}
		} else {
			first.more++
		}
	}
	for n := 0; len(rels) >= relaSize; n++ {
		off := binary.LittleEndian.Uint64(rels)
		info := binary.LittleEndian.Uint64(rels[8:])
		addend := int64(binary.LittleEndian.Uint64(rels[16:]))
		rels = rels[relaSize:]
		typ := uint32(info)
		symIdx := info >> 32
		size := uint64(0)
		switch typ {
		case rNone:
			continue
		case r64, rPC64:
			size = 8
		case rPC32, rPLT32, r32, r32S:
			size = 4
		default:
			fail(n, off, "unsupported relocation type %v", elf.R_X86_64(typ))
			continue
		}
		if off > uint64(len(data)) || size > uint64(len(data))-off {
			fail(n, off, "%v of %d bytes outside the section's %d bytes", elf.R_X86_64(typ), size, len(data))
			continue
		}
		sym, ok, serr := r.symbol(symIdx)
		if serr != "" {
			fail(n, off, "%s", serr)
			continue
		}
		if !ok {
			unresolved++
			if onUnresolved != nil {
				onUnresolved(off)
			}
			continue
		}
		v := sym + uint64(addend)
		p := base + off
		switch typ {
		case r64:
			binary.LittleEndian.PutUint64(data[off:], v)
		case rPC64:
			binary.LittleEndian.PutUint64(data[off:], v-p)
		case r32:
			if v > math.MaxUint32 {
				fail(n, off, "R_X86_64_32 value %#x does not fit in 32 bits", v)
				continue
			}
			binary.LittleEndian.PutUint32(data[off:], uint32(v))
		case r32S:
			if int64(v) != int64(int32(v)) {
				fail(n, off, "R_X86_64_32S value %#x does not fit in 32 signed bits", v)
				continue
			}
			binary.LittleEndian.PutUint32(data[off:], uint32(v))
		case rPC32, rPLT32:
			d := v - p
			if int64(d) != int64(int32(d)) {
				fail(n, off, "%v displacement %#x from %#x to %#x does not fit in 32 signed bits", elf.R_X86_64(typ), int64(d), p, v)
				continue
			}
			binary.LittleEndian.PutUint32(data[off:], uint32(d))
		}
	}
	if len(rels) != 0 {
		fail(-1, 0, "trailing %d bytes in the relocation section", len(rels))
	}
	if first != nil {
		return unresolved, first
	}
	return unresolved, nil
}

// symbol returns the run-time value of symbol number idx of .symtab: its
// section's address plus st_value, st_value for an absolute symbol, the
// resolver's answer for an undefined one. ok is false when the value is
// unknown (undefined and unresolved, or in a section not placed); msg is
// set when the index or section is invalid.
func (r *relocator) symbol(idx uint64) (v uint64, ok bool, msg string) {
	if idx == 0 {
		return 0, true, ""
	}
	if idx > uint64(len(r.syms)) {
		return 0, false, fmt.Sprintf("symbol index %d beyond the %d symbols", idx, len(r.syms)+1)
	}
	s := &r.syms[idx-1]
	switch sec := s.Section; {
	case sec == elf.SHN_UNDEF:
		if r.resolve != nil && s.Name != "" {
			if a, ok := r.resolve(s.Name); ok {
				return a, true, ""
			}
		}
		return 0, false, ""
	case sec == elf.SHN_ABS:
		return s.Value, true, ""
	case sec >= elf.SHN_LORESERVE:
		return 0, false, "" // SHN_COMMON and friends: nothing a module loader places
	case int(sec) >= len(r.ef.Sections):
		return 0, false, fmt.Sprintf("symbol %q in section %d beyond the %d sections", s.Name, sec, len(r.ef.Sections))
	default:
		if r.ef.Sections[sec].Flags&elf.SHF_ALLOC != 0 && !r.placed[sec] {
			return 0, false, ""
		}
		return r.secAddr[sec] + s.Value, true, ""
	}
}
