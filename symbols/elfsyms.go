package symbols

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"iter"
	"os"
	"strings"
	"unsafe"
)

// elfSym is one ELF symbol as readSymbols uses it.
type elfSym struct {
	Name    string
	NameOff uint32 // st_name: where Name is in the string table (raw sources only)
	Info    byte
	Other   byte
	Section elf.SectionIndex
	Value   uint64
	Size    uint64
}

// symSource is one symbol table of an ELF file, read either raw (the
// .symtab of a vmlinux holds 100k+ symbols: debug/elf's Symbols allocates
// a string and a 100-byte Symbol for each) or through debug/elf (.dynsym,
// whose symbol versions debug/elf checks). At gives the symbols in the
// order debug/elf's Symbols gives them, the null symbol left out.
type symSource struct {
	ef   *elf.File
	raw  []byte // Elf64_Sym entries after the null one; the caller must not modify it
	strs string // the linked string table
	le   bool   // raw is little-endian (read without ByteOrder's indirect calls)
	syms []elf.Symbol
}

func (s *symSource) Len() int {
	if s.syms != nil {
		return len(s.syms)
	}
	return len(s.raw) / elf.Sym64Size
}

func (s *symSource) At(i int) elfSym {
	if s.syms != nil {
		e := &s.syms[i]
		return elfSym{Name: e.Name, Info: e.Info, Other: e.Other, Section: e.Section, Value: e.Value, Size: e.Size}
	}
	return s.rawAt(i)
}

// rawAt is At for a raw source.
func (s *symSource) rawAt(i int) elfSym {
	b := s.raw[i*elf.Sym64Size : (i+1)*elf.Sym64Size : (i+1)*elf.Sym64Size]
	var off uint32
	var sec uint16
	var value, size uint64
	if s.le {
		off, sec = binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[6:8])
		value, size = binary.LittleEndian.Uint64(b[8:16]), binary.LittleEndian.Uint64(b[16:24])
	} else {
		bo := s.ef.ByteOrder
		off, sec, value, size = bo.Uint32(b[0:4]), bo.Uint16(b[6:8]), bo.Uint64(b[8:16]), bo.Uint64(b[16:24])
	}
	return elfSym{
		Name:    stringAt(s.strs, off),
		NameOff: off,
		Info:    b[4],
		Other:   b[5],
		Section: elf.SectionIndex(sec),
		Value:   value,
		Size:    size,
	}
}

// definesName reports whether symbol i is named name (not "") and defined
// in a section: At(i)'s test, without finding the name's end for every
// symbol.
func (s *symSource) definesName(i int, name string) bool {
	if s.syms != nil {
		return s.syms[i].Name == name && s.syms[i].Section != elf.SHN_UNDEF
	}
	b := s.raw[i*elf.Sym64Size : (i+1)*elf.Sym64Size]
	off := uint64(s.ef.ByteOrder.Uint32(b[0:4]))
	if off+uint64(len(name)) >= uint64(len(s.strs)) || s.strs[off+uint64(len(name))] != 0 ||
		s.strs[off:off+uint64(len(name))] != name {
		return false
	}
	return elf.SectionIndex(s.ef.ByteOrder.Uint16(b[6:8])) != elf.SHN_UNDEF
}

// stringAt is debug/elf's getString on a string table kept as one string:
// the NUL-terminated name at off, "" when off is out of range or the name
// has no NUL. The name shares the table's memory.
func stringAt(strs string, off uint32) string {
	if uint64(off) >= uint64(len(strs)) {
		return ""
	}
	rest := strs[off:]
	n := strings.IndexByte(rest, 0)
	if n < 0 {
		return ""
	}
	return rest[:n]
}

// symtabSource reads ef's first SHT_SYMTAB section and its string table
// from r (or mapped, the file's read-only mapping, nil when there is none),
// with the checks debug/elf's Symbols makes: an error where Symbols would
// fail (no section, an empty one, a size that is no multiple of 24, a bad
// string table link, a section that cannot be read).
func symtabSource(ef *elf.File, r io.ReaderAt, mapped []byte) (symSource, error) {
	if ef.Class != elf.ELFCLASS64 {
		syms, err := ef.Symbols()
		return symSource{ef: ef, syms: syms}, err
	}
	sec := ef.SectionByType(elf.SHT_SYMTAB)
	if sec == nil {
		return symSource{}, elf.ErrNoSymbols
	}
	data, err := sectionBytes(sec, r, mapped)
	if err != nil {
		return symSource{}, err
	}
	if len(data) == 0 {
		return symSource{}, elf.ErrNoSymbols
	}
	if len(data)%elf.Sym64Size != 0 {
		return symSource{}, errors.New("length of symbol section is not a multiple of Sym64Size")
	}
	if sec.Link <= 0 || sec.Link >= uint32(len(ef.Sections)) {
		return symSource{}, errors.New("section has invalid string table link")
	}
	strs, err := sectionBytes(ef.Sections[sec.Link], r, mapped)
	if err != nil {
		return symSource{}, err
	}
	// The names stay in strs: sectionBytes gives a slice of the file's
	// read-only mapping, which is never unmapped, or a fresh read.
	return symSource{ef: ef, raw: data[elf.Sym64Size:], strs: unsafe.String(unsafe.SliceData(strs), len(strs)),
		le: ef.ByteOrder == binary.LittleEndian}, nil
}

// dynsymSource reads ef's .dynsym through debug/elf (it is small, and
// debug/elf refuses one whose version sections are damaged).
func dynsymSource(ef *elf.File) (symSource, error) {
	syms, err := ef.DynamicSymbols()
	if err == nil && syms == nil {
		syms = []elf.Symbol{}
	}
	return symSource{ef: ef, syms: syms}, err
}

// sectionBytes returns the contents of section s without debug/elf's
// growing-buffer copy: a slice of mapped (the whole file mapped read-only,
// nil when it is not) when the section lies in it, else one exact-size read
// from r when r's size shows the section lies in the file, or, when r is
// nil or does not tell its size, from s itself for a section of at most
// maxUnsizedRead bytes. Compressed and SHT_NOBITS sections and the rest go
// through s.Data, which reads in bounded steps. The result must not be
// modified.
func sectionBytes(s *elf.Section, r io.ReaderAt, mapped []byte) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 {
		return s.Data()
	}
	if mapped != nil {
		if s.Offset <= uint64(len(mapped)) && s.Size <= uint64(len(mapped))-s.Offset {
			return mapped[s.Offset : s.Offset+s.Size : s.Offset+s.Size], nil
		}
		return s.Data()
	}
	var b []byte
	if size, ok := readerSize(r); ok {
		if s.Offset > uint64(size) || s.Size > uint64(size)-s.Offset {
			return s.Data()
		}
		b = make([]byte, s.Size)
		if n, err := r.ReadAt(b, int64(s.Offset)); uint64(n) != s.Size {
			return nil, shortRead(err)
		}
		return b, nil
	}
	if s.Size > maxUnsizedRead {
		return s.Data()
	}
	b = make([]byte, s.Size)
	if n, err := s.ReadAt(b, 0); uint64(n) != s.Size {
		return nil, shortRead(err)
	}
	return b, nil
}

// maxUnsizedRead is the largest section sectionBytes reads at once from a
// reader whose size it does not know (a vmlinux's .symtab is a few MiB);
// a larger one goes through debug/elf, which reads in bounded steps, so
// that a damaged section header cannot make it allocate gigabytes.
const maxUnsizedRead = 64 << 20

func shortRead(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ELFSymbols returns the symbols of ef's .symtab in table order, as
// ef.Symbols() gives them (without Version and Library) but with no
// allocation per symbol: for a caller that scans a vmlinux's 100k+
// symbols for a few names. It yields nothing when ef has no readable
// symbol table (where Symbols fails).
//
//	for s := range symbols.ELFSymbols(ef) {
//		if s.Name == "linux_banner" { ... }
//	}
func ELFSymbols(ef *elf.File) iter.Seq[elf.Symbol] {
	return func(yield func(elf.Symbol) bool) {
		src, err := symtabSource(ef, nil, nil)
		if err != nil {
			return
		}
		for i := range src.Len() {
			s := src.At(i)
			if !yield(elf.Symbol{Name: s.Name, Info: s.Info, Other: s.Other, Section: s.Section, Value: s.Value, Size: s.Size}) {
				return
			}
		}
	}
}

// readerSize returns the size of r when r can tell it (a file, a
// bytes.Reader, an io.SectionReader).
func readerSize(r io.ReaderAt) (int64, bool) {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size(), true
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size(), true
		}
	}
	return 0, false
}

// ELFSymbols is the package function ELFSymbols for the file f was opened
// from, from the .symtab f read when it was opened instead of a second
// read: for a caller that has both open (linux.Open scans a vmlinux for
// the few symbols it reads itself).
func (f *File) ELFSymbols() iter.Seq[elf.Symbol] {
	return func(yield func(elf.Symbol) bool) {
		var src symSource
		if len(f.own) > 0 && f.own[0].syms == nil && f.own[0].raw != nil {
			src = f.own[0] // readSymbols put the raw .symtab first
		} else {
			var err error
			if src, err = symtabSource(f.ef, f.r, f.mapped); err != nil {
				return
			}
		}
		for i := range src.Len() {
			s := src.At(i)
			if !yield(elf.Symbol{Name: s.Name, Info: s.Info, Other: s.Other, Section: s.Section, Value: s.Value, Size: s.Size}) {
				return
			}
		}
	}
}

// SectionBytes returns the contents of f's first section named name
// (decompressed when it is compressed) as sectionBytes reads them: a slice
// of the file's read-only mapping when there is one, else one exact-size
// read. It returns nil for a section that is absent, SHT_NOBITS, larger
// than limit bytes, or unreadable. The bytes must not be modified; they
// stay valid while the process runs. For a caller that reads a few
// sections of a large file (a vmlinux's DWARF) without copying them.
func (f *File) SectionBytes(name string, limit uint64) []byte {
	sec := f.ef.Section(name)
	if sec == nil || sec.Type == elf.SHT_NOBITS || sec.Size > limit {
		return nil
	}
	b, err := sectionBytes(sec, f.r, f.mapped)
	if err != nil {
		return nil
	}
	return b
}

// ELFSymbolsNamed returns, in table order, the symbols of f's .symtab
// (those File.ELFSymbols gives) whose names are keys of names: for a
// caller that wants a few names out of a vmlinux's 100k+. A name's first
// two bytes rule most symbols out before its end is found and looked up.
func (f *File) ELFSymbolsNamed(names map[string]bool) []elf.Symbol {
	var src symSource
	if len(f.own) > 0 && f.own[0].syms == nil && f.own[0].raw != nil {
		src = f.own[0]
	} else {
		var err error
		if src, err = symtabSource(f.ef, f.r, f.mapped); err != nil {
			return nil
		}
	}
	var out []elf.Symbol
	if src.syms != nil || len(names) == 0 {
		for i := range src.Len() {
			if s := src.At(i); names[s.Name] {
				out = append(out, elf.Symbol{Name: s.Name, Info: s.Info, Other: s.Other, Section: s.Section, Value: s.Value, Size: s.Size})
			}
		}
		return out
	}
	// Which first two bytes (a one-byte name's NUL included) a wanted name
	// can start with; "" is looked up whatever the table holds there.
	var first [1 << 16]bool
	anyEmpty := false
	for n := range names {
		switch len(n) {
		case 0:
			anyEmpty = true
		case 1:
			first[uint16(n[0])<<8] = true
		default:
			first[uint16(n[0])<<8|uint16(n[1])] = true
		}
	}
	bo := src.ef.ByteOrder
	for i := range src.Len() {
		b := src.raw[i*elf.Sym64Size : (i+1)*elf.Sym64Size]
		off := uint64(bo.Uint32(b[0:4]))
		if !anyEmpty && off+1 < uint64(len(src.strs)) && !first[uint16(src.strs[off])<<8|uint16(src.strs[off+1])] {
			continue
		}
		if s := src.At(i); names[s.Name] {
			out = append(out, elf.Symbol{Name: s.Name, Info: s.Info, Other: s.Other, Section: s.Section, Value: s.Value, Size: s.Size})
		}
	}
	return out
}
