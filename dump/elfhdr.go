package dump

import (
	"encoding/binary"
	"io"
)

// ELF constants used by core files (from <elf.h>).
const (
	etCore   = 4
	emX86_64 = 62
	ptLoad   = 1
	ptNote   = 4
	pfW      = 2 // p_flags: writable
	pnXNum   = 0xffff

	elfHeaderSize = 64
	progHdrSize   = 56
	sectHdrSize   = 64
	maxProgs      = 1 << 20 // program headers accepted (56 MiB of headers)
)

// Segment is one ELF program header of a dump: a PT_LOAD gives memory at Vaddr
// (user cores, virtual vmcores) or Paddr (physical vmcores), read from the
// file at Off; bytes past Filesz up to Memsz read as zeros.
type Segment struct {
	Type   uint32
	Flags  uint32
	Off    uint64 // file offset
	Vaddr  uint64
	Paddr  uint64
	Filesz uint64
	Memsz  uint64
}

type elfFile struct {
	typ   uint16
	progs []Segment
}

// readELF reads the ELF64 little-endian header and program headers of r.
func readELF(r io.ReaderAt, size int64) (*elfFile, error) {
	var h [elfHeaderSize]byte
	if size < elfHeaderSize {
		return nil, formatErr(0, ErrNotCore, "file too short for an ELF header (%d bytes)", size)
	}
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, formatErr(0, err, "reading ELF header")
	}
	if string(h[:4]) != "\x7fELF" {
		return nil, formatErr(0, ErrNotCore, "no ELF magic")
	}
	if h[4] != 2 || h[5] != 1 {
		return nil, formatErr(4, ErrNotCore, "not a 64-bit little-endian ELF file (class %d, data %d)", h[4], h[5])
	}
	le := binary.LittleEndian
	f := &elfFile{typ: le.Uint16(h[16:])}
	if m := le.Uint16(h[18:]); m != emX86_64 {
		return nil, formatErr(18, ErrUnsupported, "machine %d is not x86-64", m)
	}
	phoff := le.Uint64(h[32:])
	shoff := le.Uint64(h[40:])
	phentsize := le.Uint16(h[54:])
	phnum := uint64(le.Uint16(h[56:]))
	if phnum == pnXNum {
		// The real count is in section header 0's sh_info.
		if shoff == 0 || shoff > uint64(size) || uint64(size)-shoff < sectHdrSize {
			return nil, formatErr(40, nil, "PN_XNUM program header count without a section header 0 (e_shoff %#x)", shoff)
		}
		var sh [sectHdrSize]byte
		if _, err := r.ReadAt(sh[:], int64(shoff)); err != nil {
			return nil, formatErr(int64(shoff), err, "reading section header 0")
		}
		phnum = uint64(le.Uint32(sh[44:]))
	}
	if phnum == 0 {
		return f, nil
	}
	if phnum > maxProgs {
		return nil, formatErr(56, nil, "%d program headers (at most %d accepted)", phnum, maxProgs)
	}
	if phentsize != progHdrSize {
		return nil, formatErr(54, nil, "program header size %d, want %d", phentsize, progHdrSize)
	}
	if phoff > uint64(size) || phnum > (uint64(size)-phoff)/progHdrSize {
		return nil, formatErr(32, nil, "%d program headers at %#x do not fit in the file (%d bytes)", phnum, phoff, size)
	}
	buf := make([]byte, phnum*progHdrSize)
	if _, err := r.ReadAt(buf, int64(phoff)); err != nil {
		return nil, formatErr(int64(phoff), err, "reading program headers")
	}
	f.progs = make([]Segment, phnum)
	for i := range f.progs {
		b := buf[i*progHdrSize:]
		f.progs[i] = Segment{
			Type:   le.Uint32(b[0:]),
			Flags:  le.Uint32(b[4:]),
			Off:    le.Uint64(b[8:]),
			Vaddr:  le.Uint64(b[16:]),
			Paddr:  le.Uint64(b[24:]),
			Filesz: le.Uint64(b[32:]),
			Memsz:  le.Uint64(b[40:]),
		}
	}
	return f, nil
}
