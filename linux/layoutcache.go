package linux

import (
	"debug/elf"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
)

// The structure layouts the kernel model reads (a few dozen member
// offsets and sizes of task_struct, module, mod_kallsyms, ...) come from
// vmlinux's DWARF (its first units, read and decoded) and its BTF (4 MB,
// every type name indexed): some 25 ms of each run for a few hundred
// bytes of answers. Open keeps those answers in the debug cache
// (symbols.File.WriteCache, entry "linux-layouts") and a later Open of
// the same vmlinux reads them back instead. An entry is used only when
// its format version, its key and its checksum match: the key holds the
// vmlinux's build id and size, the header (offset, sizes, flags) and a
// CRC of the first and last 4 KiB of each section the layouts are read
// from, and the symbols that chose what was read (pcpu_hot,
// ktime_get_real_seconds); anything else is ignored and the answers are
// made again. A question the entry has no answer for (one a later version
// of this package asks) is answered by the layout itself, read then.

// layoutMagic starts a cached layout entry. The version must change
// whenever an answer would: how a Layout finds a member (findField,
// findMember), what readKernelOffsets or tkCoreXtimeSec read.
const layoutMagic = "UWLAYOUT1"

// layoutCacheName is the cache entry's name in vmlinux's cache folder.
const layoutCacheName = "linux-layouts"

// Limits of a cached entry read back (a real one is about 2 KB).
const (
	maxLayoutFile    = 1 << 20
	maxLayoutAnswers = 4096
)

// layoutSections are the sections the layouts are read from.
var layoutSections = [...]string{".BTF", ".debug_info", ".debug_abbrev", ".debug_str", ".debug_str_offsets",
	".debug_line_str", ".debug_addr", ".debug_rnglists", ".debug_aranges"}

// layoutQuery is one question asked of a Layout: the size of struct st
// (member "" and size true) or the offset of member in it.
type layoutQuery struct {
	size       bool
	st, member string
}

type layoutAnswer struct {
	v  int64
	ok bool
}

// layoutRecord is what one Layout answered; present is false when there
// was no such layout (then nothing is cached for it).
type layoutRecord struct {
	present bool
	answers map[layoutQuery]layoutAnswer
}

// layoutEntry is a cache entry: the kernel offsets loadKernelSyms read
// from the DWARF (valid when dwarf is present) and the answers of the
// DWARF and BTF layouts.
type layoutEntry struct {
	offsets    kernelOffsets
	dwarf, btf layoutRecord
}

// layoutCache is Open's use of the cache for its one vmlinux.
type layoutCache struct {
	sf   *symbols.File
	path string
	key  []byte
	hit  *layoutEntry // what the cache held, or nil

	// Made by this Open and stored at its end: the offsets and the layouts
	// themselves, nil when not made.
	offsets            kernelOffsets
	dwarf, btf         Layout
	madeDWARF, madeBTF bool
	dwarfModules       bool // modules were read with the DWARF's layout
}

// recorder is a Layout that asks l and keeps every answer.
type recorder struct {
	l       Layout
	answers map[layoutQuery]layoutAnswer
}

func (r *recorder) StructSize(name string) (int64, bool) {
	v, ok := r.l.StructSize(name)
	r.answers[layoutQuery{size: true, st: name}] = layoutAnswer{v, ok}
	return v, ok
}

func (r *recorder) MemberOffset(st, member string) (int64, bool) {
	v, ok := r.l.MemberOffset(st, member)
	r.answers[layoutQuery{st: st, member: member}] = layoutAnswer{v, ok}
	return v, ok
}

// recordLayout asks l the questions the kernel model asks a Layout it
// uses for tasks (taskOffsetsOf), and with all, for modules
// (readModuleLayout) and CPUs' current tasks (layoutOffsets) too, and
// returns the answers. The questions depend on earlier answers
// (core_layout or mem): asked again of the answers, they are the same
// questions. (The DWARF's answers for modules are asked only when the
// DWARF gave them: the first units lack module_sect_attrs, and looking
// for a structure they lack reads them all.)
func recordLayout(l Layout, all bool) layoutRecord {
	r := &recorder{l: l, answers: map[layoutQuery]layoutAnswer{}}
	_, _ = taskOffsetsOf(r)
	if all {
		_, _ = readModuleLayout(r)
		o := noOffsets()
		layoutOffsets(r, &o, true)
	}
	return layoutRecord{present: true, answers: r.answers}
}

// answerLayout answers from recorded answers; a question without one goes
// to the layout load makes (once; nil: no layout).
type answerLayout struct {
	answers map[layoutQuery]layoutAnswer
	load    func() Layout

	once sync.Once
	l    Layout
}

func (a *answerLayout) layout() Layout {
	a.once.Do(func() {
		layoutLoads.Add(1)
		a.l = a.load()
	})
	return a.l
}

// layoutLoads counts the layouts read for a question the cached answers
// lacked, for tests.
var layoutLoads atomic.Int64

// StructSize implements Layout.
func (a *answerLayout) StructSize(name string) (int64, bool) {
	if v, ok := a.answers[layoutQuery{size: true, st: name}]; ok {
		return v.v, v.ok
	}
	if l := a.layout(); l != nil {
		return l.StructSize(name)
	}
	return 0, false
}

// MemberOffset implements Layout.
func (a *answerLayout) MemberOffset(st, member string) (int64, bool) {
	if v, ok := a.answers[layoutQuery{st: st, member: member}]; ok {
		return v.v, v.ok
	}
	if l := a.layout(); l != nil {
		return l.MemberOffset(st, member)
	}
	return 0, false
}

// newLayoutCache returns the cache use for the vmlinux path (sf, read as
// the ELF file ef through fh) whose symbols say hot (pcpu_hot) and tk
// (ktime_get_real_seconds' link-time address, 0 when unknown), with what
// the cache holds for it; nil when sf has no cache folder.
func newLayoutCache(sf *symbols.File, path string, fh *os.File, ef *elf.File, hot bool, tk uint64) *layoutCache {
	if sf == nil || symbols.DebugCacheDir() == "" {
		return nil
	}
	c := &layoutCache{sf: sf, path: path, key: layoutKey(fh, ef, sf.BuildID(), hot, tk)}
	if c.key == nil {
		return nil
	}
	if b := sf.ReadCache(layoutCacheName, maxLayoutFile); b != nil {
		c.hit = decodeLayoutEntry(b, c.key)
	}
	return c
}

// layoutKey identifies what the layouts are read from (see the comment at
// the top of the file); nil when the file cannot be read.
func layoutKey(fh *os.File, ef *elf.File, buildID []byte, hot bool, tk uint64) []byte {
	fi, err := fh.Stat()
	if err != nil {
		return nil
	}
	key := binary.LittleEndian.AppendUint32(nil, uint32(len(buildID)))
	key = append(key, buildID...)
	key = binary.LittleEndian.AppendUint64(key, uint64(fi.Size()))
	if hot {
		key = append(key, 1)
	} else {
		key = append(key, 0)
	}
	key = binary.LittleEndian.AppendUint64(key, tk)
	var buf [4096]byte
	for _, name := range layoutSections {
		s := ef.Section(name)
		if s == nil {
			key = append(key, 0)
			continue
		}
		key = append(key, 1)
		key = binary.LittleEndian.AppendUint32(key, uint32(s.Type))
		key = binary.LittleEndian.AppendUint64(key, uint64(s.Flags))
		key = binary.LittleEndian.AppendUint64(key, s.Offset)
		key = binary.LittleEndian.AppendUint64(key, s.FileSize)
		key = binary.LittleEndian.AppendUint64(key, s.Size)
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		crc := uint32(0)
		n := min(s.FileSize, uint64(len(buf)))
		for _, off := range [2]uint64{s.Offset, s.Offset + s.FileSize - n} {
			if _, err := fh.ReadAt(buf[:n], int64(off)); err != nil && err != io.EOF {
				return nil
			}
			crc = crc32.Update(crc, castagnoli, buf[:n])
		}
		key = binary.LittleEndian.AppendUint32(key, crc)
	}
	return key
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dwarfLayoutLoader returns a function that reads the DWARF layout of the
// vmlinux path (sf) again, for a question the cached answers lack.
func dwarfLayoutLoader(path string, sf *symbols.File) func() Layout {
	return func() Layout {
		fh, err := fileio.OpenRegular(path)
		if err != nil {
			return nil
		}
		defer fh.Close()
		f, err := elf.NewFile(fh)
		if err != nil {
			return nil
		}
		dw, err := firstUnitsDWARF(&dwarfSections{f: f, sf: sf})
		if err != nil {
			return nil
		}
		return NewDWARFLayout(dw)
	}
}

// store writes the entry: the cached one completed with what this Open
// made, when it made anything.
func (c *layoutCache) store() {
	if c == nil || !c.madeDWARF && !c.madeBTF {
		return
	}
	var e layoutEntry
	if c.hit != nil {
		e = *c.hit
	}
	if c.madeDWARF && c.dwarf != nil {
		e.offsets = c.offsets
		e.dwarf = recordLayout(c.dwarf, c.dwarfModules)
	}
	if c.madeBTF && c.btf != nil {
		e.btf = recordLayout(c.btf, true)
	}
	if !e.dwarf.present && !e.btf.present {
		return
	}
	c.sf.WriteCache(layoutCacheName, encodeLayoutEntry(&e, c.key))
}

// encodeLayoutEntry serializes e for the key key.
func encodeLayoutEntry(e *layoutEntry, key []byte) []byte {
	b := []byte(layoutMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	o := &e.offsets
	for _, v := range [...]int64{o.taskStack, o.taskPid, o.taskComm, o.hotCurrent, o.hotTop, o.hotIRQ, o.tkXtimeSec} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	b = appendBool(b, o.haveDWARF)
	for _, r := range [...]*layoutRecord{&e.dwarf, &e.btf} {
		b = appendBool(b, r.present)
		if !r.present {
			continue
		}
		qs := make([]layoutQuery, 0, len(r.answers))
		for q := range r.answers {
			if len(q.st) <= 255 && len(q.member) <= 255 { // a longer one is asked of the layout
				qs = append(qs, q)
			}
		}
		sort.Slice(qs, func(i, j int) bool { return queryLess(qs[i], qs[j]) })
		b = binary.LittleEndian.AppendUint32(b, uint32(len(qs)))
		for _, q := range qs {
			a := r.answers[q]
			b = appendBool(b, q.size)
			b = append(b, byte(len(q.st)))
			b = append(b, q.st...)
			b = append(b, byte(len(q.member)))
			b = append(b, q.member...)
			b = binary.LittleEndian.AppendUint64(b, uint64(a.v))
			b = appendBool(b, a.ok)
		}
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func queryLess(a, b layoutQuery) bool {
	if a.st != b.st {
		return a.st < b.st
	}
	if a.member != b.member {
		return a.member < b.member
	}
	return !a.size && b.size
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// decodeLayoutEntry reads an entry encodeLayoutEntry wrote for key; nil
// when b is not one (another file's or version's, cut short, corrupt).
func decodeLayoutEntry(b, key []byte) *layoutEntry {
	if len(b) < len(layoutMagic)+4 || len(b) > maxLayoutFile || string(b[:len(layoutMagic)]) != layoutMagic {
		return nil
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil
	}
	d := layoutDecoder{p: body[len(layoutMagic):]}
	if n := d.u32(); uint64(n) != uint64(len(key)) || string(d.bytes(int(n))) != string(key) || d.bad {
		return nil
	}
	e := &layoutEntry{}
	o := &e.offsets
	for _, v := range [...]*int64{&o.taskStack, &o.taskPid, &o.taskComm, &o.hotCurrent, &o.hotTop, &o.hotIRQ, &o.tkXtimeSec} {
		*v = int64(d.u64())
	}
	o.haveDWARF = d.bool()
	for _, r := range [...]*layoutRecord{&e.dwarf, &e.btf} {
		if r.present = d.bool(); !r.present {
			continue
		}
		n := d.u32()
		if n > maxLayoutAnswers || d.bad {
			return nil
		}
		r.answers = make(map[layoutQuery]layoutAnswer, n)
		var prev layoutQuery
		for i := range n {
			var q layoutQuery
			q.size = d.bool()
			q.st = string(d.bytes(int(d.u8())))
			q.member = string(d.bytes(int(d.u8())))
			a := layoutAnswer{v: int64(d.u64()), ok: d.bool()}
			if d.bad {
				return nil
			}
			if i > 0 && !queryLess(prev, q) || q.st == "" || q.size && q.member != "" {
				return nil // out of order (as encodeLayoutEntry sorts them), twice, or no question
			}
			prev = q
			r.answers[q] = a
		}
	}
	if d.bad || len(d.p) != 0 {
		return nil
	}
	return e
}

// layoutDecoder reads a cache entry; bad is set (and zeros read) once it
// runs past the end or reads a flag that is neither 0 nor 1.
type layoutDecoder struct {
	p   []byte
	bad bool
}

func (d *layoutDecoder) bytes(n int) []byte {
	if d.bad || n > len(d.p) {
		d.bad = true
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *layoutDecoder) u8() uint8 {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *layoutDecoder) bool() bool {
	v := d.u8()
	if v > 1 {
		d.bad = true
	}
	return v == 1
}

func (d *layoutDecoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *layoutDecoder) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}
