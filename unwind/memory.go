package unwind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Memory is the target's address space as the unwinder sees it: ReadAt fills
// p from virtual address addr. Addresses are uint64 because kernel addresses
// (0xffffffff81000000) do not fit io.ReaderAt's signed offset.
//
// A short read must return an error; an address with nothing behind it should
// return an error that wraps ErrUnmapped (a *MemoryError does).
type Memory interface {
	ReadAt(p []byte, addr uint64) (int, error)
}

// MemoryView is an optional interface of a Memory that holds its bytes in
// the process: View returns the n bytes at addr in place, or nil when they
// are not all mapped in one piece (ReadAt may still read them). The caller
// must not modify them. An incremental Unwinder uses it to check, without
// copying, that memory still holds what its last walk read.
type MemoryView interface {
	View(addr uint64, n int) []byte
}

// MemoryWindows is an optional interface of a Memory that holds its bytes
// in the process in pieces that never change once handed out (a dump's
// pages as read from its file, a mapped file): Window returns the piece
// that holds addr, its first address and its bytes, or nil data when addr
// is not held that way (ReadAt may still read it). An Unwinder reads stack
// words and the code before return addresses from the last pieces it got,
// without calling ReadAt, so the bytes of a piece must be what ReadAt
// reads there for as long as the Memory is in use: a live Memory whose
// bytes change (an emulator's) must not implement it.
type MemoryWindows interface {
	Window(addr uint64) (lo uint64, data []byte)
}

// WriteJournal is an optional interface of a live Memory (an emulator's)
// that logs where it is written. An incremental Unwinder uses it to skip
// comparing again the bytes its last walk read when nothing was written
// over them since it last compared them; without it, it compares them
// every walk.
type WriteJournal interface {
	// WriteSeq returns the number of writes so far: a write is any
	// change of bytes or of what is mapped.
	WriteSeq() uint64
	// WrittenSince reports whether a write made after WriteSeq returned
	// seq touched [addr, addr+n). It must report true when it cannot
	// tell (its log no longer reaches back to seq).
	WrittenSince(seq, addr uint64, n int) bool
}

// ErrUnmapped is wrapped by every error that reports a read of an address
// with no memory behind it.
var ErrUnmapped = errors.New("address not mapped")

// MemoryError reports a failed read of Len bytes at Addr. It wraps
// ErrUnmapped, so errors.Is(err, ErrUnmapped) identifies it.
type MemoryError struct {
	Addr uint64
	Len  int
}

// Error describes the failed read.
func (e *MemoryError) Error() string {
	return fmt.Sprintf("read of %d bytes at %#x: %v", e.Len, e.Addr, ErrUnmapped)
}

// Unwrap returns ErrUnmapped.
func (e *MemoryError) Unwrap() error { return ErrUnmapped }

// ReadU64 reads a little-endian 64-bit word at addr.
func ReadU64(m Memory, addr uint64) (uint64, error) {
	var b [8]byte
	n, err := m.ReadAt(b[:], addr)
	if n == 8 {
		return binary.LittleEndian.Uint64(b[:]), nil
	}
	if err == nil {
		err = &MemoryError{Addr: addr, Len: 8}
	}
	return 0, err
}

// FromReaderAt adapts an io.ReaderAt whose offset 0 holds virtual address
// base, such as a raw stack dump read from a file. Reads below base or past
// the reader's end report a *MemoryError.
func FromReaderAt(r io.ReaderAt, base uint64) Memory {
	return readerAtMemory{r: r, base: base}
}

type readerAtMemory struct {
	r    io.ReaderAt
	base uint64
}

func (m readerAtMemory) ReadAt(p []byte, addr uint64) (int, error) {
	off := addr - m.base
	if addr < m.base || off > 1<<62 {
		return 0, &MemoryError{Addr: addr, Len: len(p)}
	}
	n, err := m.r.ReadAt(p, int64(off))
	if n < len(p) {
		return n, &MemoryError{Addr: addr + uint64(n), Len: len(p) - n}
	}
	_ = err
	return n, nil
}

// Region is one contiguous piece of a SplicedMemory.
type Region struct {
	Addr uint64 // first virtual address
	Data []byte // contents; len(Data) bytes are mapped
}

// SplicedMemory is a Memory made of non-overlapping in-memory regions, sorted
// by address: the simplest way to hand the unwinder a stack plus a text
// section in a test or a tool. A read that crosses a hole fails.
type SplicedMemory []Region

// ReadAt implements Memory.
func (s SplicedMemory) ReadAt(p []byte, addr uint64) (int, error) {
	if i := s.find(addr); i >= 0 {
		if off := addr - s[i].Addr; uint64(len(p)) <= uint64(len(s[i].Data))-off {
			return copy(p, s[i].Data[off:]), nil // within one region
		}
	}
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		i := s.find(a)
		if i < 0 {
			return done, &MemoryError{Addr: a, Len: len(p) - done}
		}
		r := s[i]
		done += copy(p[done:], r.Data[a-r.Addr:])
	}
	return done, nil
}

func (s SplicedMemory) find(a uint64) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].Addr+uint64(len(s[m].Data)) <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s) && s[lo].Addr <= a && a-s[lo].Addr < uint64(len(s[lo].Data)) {
		return lo
	}
	return -1
}

// View implements MemoryView: the n bytes at addr when one region holds
// them all.
func (s SplicedMemory) View(addr uint64, n int) []byte {
	i := s.find(addr)
	if i < 0 || n < 0 {
		return nil
	}
	d := s[i].Data[addr-s[i].Addr:]
	if len(d) < n {
		return nil
	}
	return d[:n:n]
}

// NewSplicedMemory returns the regions as a SplicedMemory, sorted by
// address (a SplicedMemory built by hand must already be sorted).
func NewSplicedMemory(regions ...Region) SplicedMemory {
	s := append(SplicedMemory(nil), regions...)
	sort.Slice(s, func(i, j int) bool { return s[i].Addr < s[j].Addr })
	return s
}
