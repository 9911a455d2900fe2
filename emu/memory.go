package emu

import (
	"encoding/binary"
	"sort"

	"github.com/unwind-dev/unwind/unwind"
)

const (
	pageShift = 12
	pageSize  = 1 << pageShift
	pageMask  = pageSize - 1
)

// page is one mapped 4 KiB page and, once code has been fetched from it, the
// instructions decoded from it (indexed by offset; nil = not decoded yet).
type page struct {
	data [pageSize]byte
	code *[pageSize]*insn
}

// Mem is the machine's physical (= virtual, MACHINE.md) memory: a sparse set
// of 4 KiB pages created only for the kernel ELF's PT_LOAD segments, so its
// size is bounded by the ELF. It implements unwind.Memory; a read of an
// unmapped byte returns a *unwind.MemoryError.
type Mem struct {
	pages  map[uint64]*page // zeroPage until first written (copy on write)
	lastPN uint64           // one-entry translation cache
	last   *page
	// rd is ReadAt's own translation cache: an unwinder reads stack and
	// code pages by turns, which the one-entry cache cannot hold. Only
	// pages with their own storage are kept: a page number's page never
	// changes after its first write (zeroPage is replaced once, by own).
	rd     [4]rdEntry
	rdNext uint8
	// The write journal (unwind.WriteJournal): the last len(wlog)
	// writes, the seq-th at wlog[seq%len(wlog)].
	wseq uint64
	wlog [64]writeRec
}

// writeRec is one logged write: n bytes at a.
type writeRec struct {
	a, n uint64
}

type rdEntry struct {
	pn uint64
	p  *page
}

var (
	_ unwind.Memory       = (*Mem)(nil)
	_ unwind.MemoryView   = (*Mem)(nil)
	_ unwind.WriteJournal = (*Mem)(nil)
)

// logWrite records a write (or a change of mapping) of n bytes at a.
func (m *Mem) logWrite(a, n uint64) {
	m.wlog[m.wseq%uint64(len(m.wlog))] = writeRec{a: a, n: n}
	m.wseq++
}

// WriteSeq implements unwind.WriteJournal: the number of writes and
// mapping changes so far.
func (m *Mem) WriteSeq() uint64 { return m.wseq }

// WrittenSince implements unwind.WriteJournal: whether a write after the
// seq-th touched [addr, addr+n), true when the log no longer holds them
// all.
func (m *Mem) WrittenSince(seq, addr uint64, n int) bool {
	if seq > m.wseq || m.wseq-seq > uint64(len(m.wlog)) {
		return true
	}
	end := addr + uint64(n)
	for k := seq; k < m.wseq; k++ {
		w := &m.wlog[k%uint64(len(m.wlog))]
		if w.a < end && addr < w.a+w.n || w.a+w.n < w.a {
			return true
		}
	}
	return false
}

// zeroPage backs every mapped page that has never been written; it is
// never modified (writes and code fetches copy it first).
var zeroPage = new(page)

// own returns a private copy of the page holding a if it is still zeroPage.
func (m *Mem) own(a uint64) *page {
	pn := a >> pageShift
	p := m.pages[pn]
	if p == zeroPage {
		p = new(page)
		m.pages[pn] = p
		if m.lastPN == pn {
			m.last = p
		}
	}
	return p
}

func newMem() *Mem { return &Mem{pages: make(map[uint64]*page), lastPN: ^uint64(0)} }

// lookup returns the page holding addr, or nil if unmapped.
func (m *Mem) lookup(addr uint64) *page {
	pn := addr >> pageShift
	if pn == m.lastPN {
		return m.last
	}
	p := m.pages[pn]
	if p != nil {
		m.lastPN, m.last = pn, p
	}
	return p
}

// mapRange makes [addr, addr+n) mapped (zero-filled where new).
func (m *Mem) mapRange(addr, n uint64) {
	if n == 0 {
		return
	}
	m.logWrite(addr, n)
	for pn := addr >> pageShift; pn <= (addr+n-1)>>pageShift; pn++ {
		if m.pages[pn] == nil {
			m.pages[pn] = zeroPage
		}
	}
}

// Mapped reports whether every byte of [addr, addr+n) is mapped.
func (m *Mem) Mapped(addr, n uint64) bool {
	if n == 0 {
		return true
	}
	if addr+n-1 < addr {
		return false // wraps around the address space
	}
	for a := addr &^ pageMask; a <= addr+n-1; a += pageSize {
		if m.lookup(a) == nil {
			return false
		}
		if a+pageSize < a {
			break
		}
	}
	return true
}

// ReadAt implements unwind.Memory: it copies len(p) bytes from addr. It
// stops at the first unmapped byte and returns a *unwind.MemoryError for it.
func (m *Mem) ReadAt(p []byte, addr uint64) (int, error) {
	if off := addr & pageMask; off+uint64(len(p)) <= pageSize {
		// Within one page, the unwinder's case.
		pn := addr >> pageShift
		for i := range m.rd {
			if e := &m.rd[i]; e.p != nil && e.pn == pn {
				return copy(p, e.p.data[off:]), nil
			}
		}
		if pg := m.pages[pn]; pg != nil {
			if pg != zeroPage {
				m.rd[m.rdNext&3] = rdEntry{pn: pn, p: pg}
				m.rdNext++
			}
			return copy(p, pg.data[off:]), nil
		}
	}
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		pg := m.lookup(a)
		if pg == nil {
			return done, &unwind.MemoryError{Addr: a, Len: len(p) - done}
		}
		done += copy(p[done:], pg.data[a&pageMask:])
	}
	return done, nil
}

// View implements unwind.MemoryView: the n bytes at addr in place, when
// they lie in one mapped page (nil otherwise). Do not modify them; a later
// write to the page changes them.
func (m *Mem) View(addr uint64, n int) []byte {
	off := addr & pageMask
	if n < 0 || off+uint64(n) > pageSize {
		return nil
	}
	pn := addr >> pageShift
	for i := range m.rd {
		if e := &m.rd[i]; e.p != nil && e.pn == pn {
			return e.p.data[off : off+uint64(n) : off+uint64(n)]
		}
	}
	pg := m.pages[pn]
	if pg == nil {
		return nil
	}
	if pg != zeroPage {
		m.rd[m.rdNext&3] = rdEntry{pn: pn, p: pg}
		m.rdNext++
	}
	return pg.data[off : off+uint64(n) : off+uint64(n)]
}

// WriteAt copies p to addr, as a debugger would (it invalidates decoded
// code like a CPU write does). It fails with a *unwind.MemoryError, writing
// nothing, if any byte is unmapped.
func (m *Mem) WriteAt(p []byte, addr uint64) (int, error) {
	if !m.Mapped(addr, uint64(len(p))) {
		return 0, &unwind.MemoryError{Addr: addr, Len: len(p)}
	}
	m.logWrite(addr, uint64(len(p)))
	for i, b := range p {
		m.store8(addr+uint64(i), b)
	}
	return len(p), nil
}

func (m *Mem) store8(a uint64, b byte) {
	pg := m.lookup(a)
	if pg == zeroPage {
		pg = m.own(a)
	}
	if pg.code != nil {
		m.invalidate(a)
		pg = m.lookup(a)
	}
	pg.data[a&pageMask] = b
}

// invalidate drops decoded instructions of the page holding a and of the page
// before it (an instruction starting there may extend into a's page).
func (m *Mem) invalidate(a uint64) {
	if p := m.lookup(a); p != nil && p != zeroPage {
		p.code = nil
	}
	if p := m.pages[(a>>pageShift)-1]; p != nil && p != zeroPage {
		p.code = nil
	}
}

// read returns the little-endian value of size bytes (1, 2, 4, 8) at a.
func (m *Mem) read(a uint64, size uint8) (uint64, bool) {
	off := a & pageMask
	if off+uint64(size) <= pageSize {
		pg := m.lookup(a)
		if pg == nil {
			return 0, false
		}
		d := pg.data[off:]
		switch size {
		case 1:
			return uint64(d[0]), true
		case 2:
			return uint64(binary.LittleEndian.Uint16(d)), true
		case 4:
			return uint64(binary.LittleEndian.Uint32(d)), true
		default:
			return binary.LittleEndian.Uint64(d), true
		}
	}
	var v uint64
	for i := uint8(0); i < size; i++ {
		pg := m.lookup(a + uint64(i))
		if pg == nil {
			return 0, false
		}
		v |= uint64(pg.data[(a+uint64(i))&pageMask]) << (8 * i)
	}
	return v, true
}

// write stores size bytes of v at a; it writes nothing if any byte is unmapped.
func (m *Mem) write(a uint64, size uint8, v uint64) bool {
	off := a & pageMask
	if off+uint64(size) <= pageSize {
		pg := m.lookup(a)
		if pg == nil {
			return false
		}
		m.logWrite(a, uint64(size))
		if pg == zeroPage {
			pg = m.own(a)
		}
		if pg.code != nil {
			m.invalidate(a)
		}
		d := pg.data[off:]
		switch size {
		case 1:
			d[0] = byte(v)
		case 2:
			binary.LittleEndian.PutUint16(d, uint16(v))
		case 4:
			binary.LittleEndian.PutUint32(d, uint32(v))
		default:
			binary.LittleEndian.PutUint64(d, v)
		}
		return true
	}
	if !m.Mapped(a, uint64(size)) {
		return false
	}
	m.logWrite(a, uint64(size))
	for i := uint8(0); i < size; i++ {
		m.store8(a+uint64(i), byte(v>>(8*i)))
	}
	return true
}

// firstUnmapped returns the first unmapped address in [a, a+n), for CR2.
func (m *Mem) firstUnmapped(a uint64, n uint8) uint64 {
	for i := uint64(0); i < uint64(n); i++ {
		if m.lookup(a+i) == nil {
			return a + i
		}
	}
	return a
}

// Range is a run of mapped memory.
type Range struct {
	Addr, Size uint64
}

// Ranges returns the mapped memory as sorted, coalesced ranges; with
// skipZero, all-zero pages are left out.
func (m *Mem) Ranges(skipZero bool) []Range {
	pns := make([]uint64, 0, len(m.pages))
	for pn, p := range m.pages {
		if skipZero && (p == zeroPage || p.data == [pageSize]byte{}) {
			continue
		}
		pns = append(pns, pn)
	}
	sort.Slice(pns, func(i, j int) bool { return pns[i] < pns[j] })
	var rs []Range
	for _, pn := range pns {
		a := pn << pageShift
		if n := len(rs); n > 0 && rs[n-1].Addr+rs[n-1].Size == a {
			rs[n-1].Size += pageSize
			continue
		}
		rs = append(rs, Range{Addr: a, Size: pageSize})
	}
	return rs
}

// Pages returns the number of mapped pages.
func (m *Mem) Pages() int { return len(m.pages) }

// Resident returns the number of mapped pages that have their own storage
// (written at least once); the others share one zero page.
func (m *Mem) Resident() int {
	n := 0
	for _, p := range m.pages {
		if p != zeroPage {
			n++
		}
	}
	return n
}
