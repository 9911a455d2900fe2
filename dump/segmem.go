package dump

import (
	"io"
	"sort"
	"sync"

	"github.com/unwind-dev/unwind/unwind"
)

// span is one address range of a segMemory, backed by the file from off for
// filesz bytes and by zeros after that up to memsz.
type span struct {
	addr, memsz uint64
	off, filesz uint64
	declared    uint64 // p_filesz as the header says, before clipping to the file
	phys        uint64 // p_paddr of addr
	flags       uint32 // p_flags: 0 for PROT_NONE (guard pages)
}

// segMemory is a Memory made of PT_LOAD segments, read lazily from the
// dump file. Spans are sorted by address and do not overlap (later
// overlapping segments are trimmed).
type segMemory struct {
	r     io.ReaderAt
	spans []span

	// strict (user cores): bytes past p_filesz were not dumped (file-backed
	// text the kernel left out, PROT_NONE guard pages). They are read from
	// a registered backing file, else reported as unmapped, never as zeros.
	strict bool
	// zeroTail (emulator snapshots): bytes past p_filesz read as zeros.
	// Otherwise (kernel dumps, neither flag) they are pages makedumpfile
	// left out (its ELF output ends a PT_LOAD's file data before a run of
	// 256 or more excluded pages): reads of them fail with an
	// *ExcludedPageError, never zeros.
	zeroTail bool
	mu       sync.RWMutex
	backing  []backing // sorted by start
}

// backing is a file mapping whose contents fill the parts of a user core's
// segments that the core does not hold.
type backing struct {
	start, end, off uint64
	r               io.ReaderAt
}

// addBacking registers r as the contents of [start, end) from file offset off.
func (m *segMemory) addBacking(start, end, off uint64, r io.ReaderAt) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backing = append(m.backing, backing{start, end, off, newPageCache(r)})
	sort.Slice(m.backing, func(i, j int) bool { return m.backing[i].start < m.backing[j].start })
}

// readBacking fills q (at address a) from a backing file; ok is false when
// no file covers all of it.
func (m *segMemory) readBacking(q []byte, a uint64) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := sort.Search(len(m.backing), func(i int) bool { return m.backing[i].end > a })
	if i == len(m.backing) || m.backing[i].start > a || uint64(len(q)) > m.backing[i].end-a {
		return false
	}
	b := m.backing[i]
	n, _ := b.r.ReadAt(q, int64(b.off+(a-b.start)))
	return n == len(q)
}

// newSegMemory indexes the PT_LOADs of progs by virtual (phys == false) or
// physical address. File ranges are clipped to the file size.
func newSegMemory(r io.ReaderAt, size int64, progs []Segment, phys bool) *segMemory {
	m := &segMemory{r: newPageCache(r)}
	for _, p := range progs {
		if p.Type != ptLoad || p.Memsz == 0 {
			continue
		}
		a := p.Vaddr
		if phys {
			a = p.Paddr
		}
		s := span{addr: a, memsz: p.Memsz, off: p.Off, filesz: min(p.Filesz, p.Memsz), flags: p.Flags}
		s.declared, s.phys = s.filesz, p.Paddr
		if s.addr+s.memsz < s.addr { // wraps
			s.memsz = -s.addr
			s.filesz = min(s.filesz, s.memsz)
		}
		if s.off > uint64(size) {
			s.filesz = 0
		} else if s.filesz > uint64(size)-s.off {
			s.filesz = uint64(size) - s.off
		}
		if s.memsz == 0 {
			continue
		}
		m.spans = append(m.spans, s)
	}
	sort.SliceStable(m.spans, func(i, j int) bool { return m.spans[i].addr < m.spans[j].addr })
	// Trim overlaps so lookups can binary-search.
	out := m.spans[:0]
	for _, s := range m.spans {
		if n := len(out); n > 0 {
			prev := out[n-1]
			end := prev.addr + prev.memsz
			if s.addr < end {
				cut := end - s.addr
				if cut >= s.memsz {
					continue
				}
				s.addr += cut
				s.memsz -= cut
				s.off += cut
				if cut >= s.filesz {
					s.filesz = 0
				} else {
					s.filesz -= cut
				}
				s.declared -= min(cut, s.declared)
				s.phys += cut
			}
		}
		out = append(out, s)
	}
	m.spans = out
	return m
}

func (m *segMemory) find(a uint64) int {
	i := sort.Search(len(m.spans), func(i int) bool { return m.spans[i].addr+m.spans[i].memsz > a })
	if i < len(m.spans) && m.spans[i].addr <= a {
		return i
	}
	return -1
}

// contains reports whether address a is mapped.
func (m *segMemory) contains(a uint64) bool { return m.find(a) >= 0 }

// ReadAt implements unwind.Memory. A read that reaches a hole returns the
// bytes before it and a *unwind.MemoryError for the rest.
func (m *segMemory) ReadAt(p []byte, addr uint64) (int, error) {
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		i := m.find(a)
		if i < 0 {
			return done, &unwind.MemoryError{Addr: a, Len: len(p) - done}
		}
		s := m.spans[i]
		rel := a - s.addr
		n := min(uint64(len(p)-done), s.memsz-rel)
		q := p[done : done+int(n)]
		if rel < s.filesz {
			fn := min(n, s.filesz-rel)
			k, err := m.r.ReadAt(q[:fn], int64(s.off+rel))
			if uint64(k) < fn {
				_ = err
				return done + k, &unwind.MemoryError{Addr: a + uint64(k), Len: len(p) - done - k}
			}
			if err := m.tail(q[fn:], a+fn, s); err != nil {
				return done + int(fn), err
			}
		} else if err := m.tail(q, a, s); err != nil {
			return done, err
		}
		done += int(n)
		if a+n < a { // wrapped past the top of the address space
			break
		}
	}
	if done < len(p) {
		return done, &unwind.MemoryError{Addr: addr + uint64(done), Len: len(p) - done}
	}
	return done, nil
}

// tail fills q, at address a past the file contents of span s, or says
// why it cannot.
func (m *segMemory) tail(q []byte, a uint64, s span) error {
	if len(q) == 0 {
		return nil
	}
	if rel := a - s.addr; rel < s.declared {
		// The header says the file holds these bytes, but it ends first.
		return formatErr(int64(s.off+rel), nil, "segment data for address %#x past the end of the file (the dump is truncated)", a)
	}
	switch {
	case m.zeroTail:
		clear(q)
		return nil
	case !m.strict:
		return &ExcludedPageError{Addr: a, PFN: (s.phys + (a - s.addr)) / pageSize, Level: -1}
	case s.flags != 0 && m.readBacking(q, a):
		return nil
	}
	return &unwind.MemoryError{Addr: a, Len: len(q)}
}

// Window implements unwind.MemoryWindows: the bytes from a to the end of
// a's page of the dump file (or of the backing file that holds a user
// core's text), within a's segment; nil where ReadAt would fill zeros or
// fail.
func (m *segMemory) Window(a uint64) (uint64, []byte) {
	i := m.find(a)
	if i < 0 {
		return 0, nil
	}
	s := &m.spans[i]
	rel := a - s.addr
	if rel < s.filesz {
		pc, ok := m.r.(*pageCache)
		if !ok {
			return 0, nil
		}
		b := pc.window(int64(s.off + rel))
		return a, b[:min(uint64(len(b)), s.filesz-rel)]
	}
	if m.zeroTail || !m.strict || s.flags == 0 || rel < s.declared {
		return 0, nil
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	j := sort.Search(len(m.backing), func(j int) bool { return m.backing[j].end > a })
	if j == len(m.backing) || m.backing[j].start > a {
		return 0, nil
	}
	bk := m.backing[j]
	pc, ok := bk.r.(*pageCache)
	if !ok {
		return 0, nil
	}
	b := pc.window(int64(bk.off + (a - bk.start)))
	return a, b[:min(uint64(len(b)), bk.end-a, s.memsz-rel)]
}

// segmentOf returns the span containing a.
func (m *segMemory) segmentOf(a uint64) (span, bool) {
	if i := m.find(a); i >= 0 {
		return m.spans[i], true
	}
	return span{}, false
}
