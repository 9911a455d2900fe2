package dump

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Note types found in dumps (from <elf.h> and the kernel's uapi).
const (
	ntPrStatus  = 1
	ntPrFPReg   = 2
	ntPrPsInfo  = 3
	ntAuxv      = 6
	ntSigInfo   = 0x53494749
	ntFile      = 0x46494c45
	ntX86XState = 0x202
	ntGNUBuild  = 3

	maxNoteSegment = 64 << 20 // notes larger than this are refused
	maxNotes       = 1 << 16  // notes per dump
)

// Note is one ELF note: its owner name ("CORE", "LINUX", "QEMU",
// "VMCOREINFO", "UNWIND"…), type and descriptor, with the file offset of the
// descriptor for error messages.
type Note struct {
	Name string
	Type uint32
	Desc []byte
	Off  int64 // file offset of Desc
}

// ParseNotes walks a PT_NOTE segment's contents b, read from file offset
// base. Entries are 4-byte aligned as in Linux core files. A truncated or
// malformed entry stops the walk: the notes before it are returned with a
// *FormatError naming its offset.
func ParseNotes(b []byte, base int64) ([]Note, error) {
	var notes []Note
	le := binary.LittleEndian
	off := 0
	for off < len(b) {
		if len(notes) >= maxNotes {
			return notes, formatErr(base+int64(off), nil, "more than %d notes", maxNotes)
		}
		if len(b)-off < 12 {
			// Trailing padding of fewer than 12 bytes is tolerated when zero.
			if allZero(b[off:]) {
				break
			}
			return notes, formatErr(base+int64(off), nil, "truncated note header (%d bytes left)", len(b)-off)
		}
		namesz := uint64(le.Uint32(b[off:]))
		descsz := uint64(le.Uint32(b[off+4:]))
		typ := le.Uint32(b[off+8:])
		p := uint64(off) + 12
		if namesz > uint64(len(b))-p {
			return notes, formatErr(base+int64(off), nil, "note name size %d past the end of the note segment", namesz)
		}
		name := b[p : p+namesz]
		p += align4(namesz)
		if p > uint64(len(b)) || descsz > uint64(len(b))-p {
			return notes, formatErr(base+int64(off), nil, "note %q descriptor size %d past the end of the note segment", trimNUL(name), descsz)
		}
		notes = append(notes, Note{Name: trimNUL(name), Type: typ, Desc: b[p : p+descsz : p+descsz], Off: base + int64(p)})
		p += align4(descsz)
		if p >= uint64(len(b)) {
			break
		}
		off = int(p)
	}
	return notes, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func trimNUL(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// noteScan is what readNotes found: the notes, warnings, and where the
// notes end (the end of the last note read, or the offset of the damage
// that stopped the walk) with that damage, if any.
type noteScan struct {
	notes   []Note
	warns   []string
	end     int64
	problem error
}

// readNotes reads and walks every PT_NOTE segment of a dump. Problems are
// returned as warnings so a dump with one bad note still opens; a segment
// cut short by the end of the file is read as far as it goes.
func readNotes(r io.ReaderAt, size int64, progs []Segment) (noteScan, error) {
	var sc noteScan
	total := uint64(0)
	for _, p := range progs {
		if p.Type != ptNote || p.Filesz == 0 {
			continue
		}
		n := p.Filesz
		if p.Off > uint64(size) {
			e := formatErr(int64(p.Off), nil, "note segment of %d bytes starts past the end of the file (%d bytes)", p.Filesz, size)
			sc.warns = append(sc.warns, e.Error())
			sc.problem = cmp.Or(sc.problem, error(e))
			continue
		}
		if n > uint64(size)-p.Off {
			n = uint64(size) - p.Off
			e := formatErr(size, nil, "the %d-byte note segment at %#x is cut short: the file ends", p.Filesz, p.Off)
			sc.warns = append(sc.warns, e.Error())
			sc.problem = cmp.Or(sc.problem, error(e))
		}
		total += n
		if total > maxNoteSegment {
			return sc, formatErr(int64(p.Off), nil, "note segments larger than %d bytes", maxNoteSegment)
		}
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, int64(p.Off)); err != nil {
			return sc, formatErr(int64(p.Off), err, "reading note segment")
		}
		notes, err := ParseNotes(buf, int64(p.Off))
		sc.notes = append(sc.notes, notes...)
		sc.end = max(sc.end, int64(p.Off+n))
		if err != nil {
			sc.warns = append(sc.warns, err.Error())
			if fe, ok := err.(*FormatError); ok {
				sc.end = fe.Off
			}
			sc.problem = cmp.Or(sc.problem, err)
		}
	}
	return sc, nil
}

// ErrNoRegisters is wrapped by the error ThreadsErr returns for a dump
// whose notes hold no registers (NT_PRSTATUS) for any thread or CPU.
var ErrNoRegisters = errors.New("no registers for any thread or CPU")

// ThreadsErr says why Threads is empty: nil when the dump holds registers
// for some thread or CPU, else a *FormatError wrapping ErrNoRegisters that
// says where the dump's notes end and what cut them short, for a tool to
// print instead of an empty trace.
func (d *Dump) ThreadsErr() error {
	if len(d.threads) > 0 {
		return nil
	}
	if len(d.notes) == 0 && d.notesProblem == nil {
		return formatErr(d.notesEnd, ErrNoRegisters, "the dump has no notes")
	}
	msg := fmt.Sprintf("%d notes, none an NT_PRSTATUS; the notes end", len(d.notes))
	switch p := d.notesProblem.(type) {
	case nil:
	case *FormatError:
		msg = fmt.Sprintf("%s where they are damaged (%s at offset %#x)", msg, p.Msg, p.Off)
	default:
		msg = fmt.Sprintf("%s where they are damaged (%v)", msg, p)
	}
	return formatErr(d.notesEnd, ErrNoRegisters, "%s", msg)
}
