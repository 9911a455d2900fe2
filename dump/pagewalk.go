package dump

import (
	"encoding/binary"
	"sync"

	"github.com/unwind-dev/unwind/unwind"
)

// Page-table entry bits (x86-64).
const (
	ptePresent  = 1 << 0
	ptePageSize = 1 << 7
	pteAddrMask = 0x000ffffffffff000 // bits 12–51; NX (63) and software bits masked out

	pageSize  = 4096
	cacheSize = 512 // translation cache entries (direct mapped)
)

// PageWalker translates x86-64 virtual addresses to physical ones by walking
// 4- or 5-level page tables held in physical memory, with 1 GiB and 2 MiB
// pages. A walk reads at most five entries, so it is bounded whatever the
// tables contain. A small direct-mapped cache keeps recent translations.
type PageWalker struct {
	Phys   unwind.Memory // physical memory
	Root   uint64        // physical address of the top-level table (CR3 with flags masked)
	Levels int           // 4 or 5
	Mask   uint64        // extra physical-address bits to clear (the SME encryption mask), 0 if none

	mu    sync.Mutex
	cache [cacheSize]struct{ vpage, ppage uint64 }
}

// Translate returns the physical address of virtual address va, or a
// *unwind.MemoryError when the page is not present.
func (w *PageWalker) Translate(va uint64) (uint64, error) {
	vpage := va &^ (pageSize - 1)
	slot := &w.cache[(vpage>>12)%cacheSize]
	w.mu.Lock()
	if slot.vpage == vpage|1 {
		p := slot.ppage
		w.mu.Unlock()
		return p | va&(pageSize-1), nil
	}
	w.mu.Unlock()
	pa, err := w.walk(va)
	if err != nil {
		return 0, err
	}
	w.mu.Lock()
	slot.vpage, slot.ppage = vpage|1, pa&^(pageSize-1)
	w.mu.Unlock()
	return pa, nil
}

func (w *PageWalker) walk(va uint64) (uint64, error) {
	levels := w.Levels
	if levels != 5 {
		levels = 4
	}
	table := w.Root & pteAddrMask &^ w.Mask
	var b [8]byte
	for lvl := levels; lvl >= 1; lvl-- {
		shift := 12 + 9*uint(lvl-1)
		idx := (va >> shift) & 0x1ff
		if n, err := w.Phys.ReadAt(b[:], table+idx*8); n != 8 {
			if notable(err) {
				return 0, err // an excluded or damaged page-table page
			}
			return 0, &unwind.MemoryError{Addr: va, Len: 1}
		}
		e := binary.LittleEndian.Uint64(b[:])
		if e&ptePresent == 0 {
			return 0, &unwind.MemoryError{Addr: va, Len: 1}
		}
		addr := e & pteAddrMask &^ w.Mask
		if lvl == 1 {
			return addr | va&(pageSize-1), nil
		}
		if (lvl == 2 || lvl == 3) && e&ptePageSize != 0 {
			size := uint64(1) << shift
			return addr&^(size-1) | va&(size-1), nil
		}
		table = addr
	}
	return 0, &unwind.MemoryError{Addr: va, Len: 1}
}

// walkedMemory reads virtual memory: from virtual PT_LOADs when the dump has
// them, else (and for addresses they do not cover) through the page walker.
type walkedMemory struct {
	virt *segMemory // may be nil
	w    *PageWalker
}

// ReadAt implements unwind.Memory. A read that fails on a page the dump
// excluded, or on damaged file contents, returns that error (an
// *ExcludedPageError at the virtual address asked), not a bare
// *unwind.MemoryError.
func (m *walkedMemory) ReadAt(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		n := min(len(p)-done, int(pageSize-a%pageSize))
		q := p[done : done+n]
		ok := false
		var why error
		if m.virt != nil && m.virt.contains(a) {
			k, err := m.virt.ReadAt(q, a)
			ok = k == n
			if !ok && notable(err) {
				why = err
			}
		}
		if !ok && m.w != nil {
			pa, err := m.w.Translate(a)
			if err == nil {
				var k int
				k, err = m.w.Phys.ReadAt(q, pa)
				ok = k == n
			}
			if !ok && why == nil && notable(err) {
				why = err
			}
		}
		if !ok {
			if e, isEx := why.(*ExcludedPageError); isEx {
				return done, e.at(a)
			}
			if why != nil {
				return done, why
			}
			return done, &unwind.MemoryError{Addr: a, Len: len(p) - done}
		}
		done += n
	}
	return done, nil
}
