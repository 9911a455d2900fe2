package symbols

import (
	"cmp"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// dwarfIndex maps pcs to compile units; each unit's line table and
// functions are decoded on the first lookup that lands in it, and the
// inlined scopes of a function on the first lookup in that function.
type dwarfIndex struct {
	d *dwarf.Data
	// Every unit's entry and the units' address ranges, as the "units"
	// cache entry holds them (read there in place), and each unit's
	// cuInfo, made on first use (unit): loading a cached index of a
	// libc's thousands of units decodes and allocates none of them.
	tab   unitTable
	units unitSlots
	vars  varState // variables, read per function on demand (vars.go)

	cache debugCache // the file's debug cache folder, or ""
	packs *packCache // where units' details and functions' scopes are kept (packcache.go), or nil
	key   []byte     // of the DWARF sections, for the cache; nil: no caching

	ar      *arIndex      // units found by .debug_aranges (aranges.go), or nil: by ranges
	streams *dwarfStreams // the sections inflated as far as lookups read them, or nil
}

type cuRange struct {
	lo, hi uint64
	unit   int
}

// cuInfo is one compile unit, decoded lazily.
type cuInfo struct {
	off       dwarf.Offset // the unit's entry
	end       dwarf.Offset // the next unit's entry (or the largest offset)
	once      sync.Once
	err       error
	entry     *dwarf.Entry // read by load
	callFiles []string     // the line table file table, indexed as DW_AT_call_file is
	top       scopeLevel   // functions (subprograms not inside another), their scopes read by scopeOf

	// The line table: its sequences, read from marks by seqLine
	// (lineseq.go) when lineIndex could index it, else all its rows.
	lineMu sync.Mutex                   // held while lr reads a block
	lr     *dwarf.LineReader            // with seqs
	seqs   []lineSeq                    // sorted by lo; nil: lines holds the rows
	blocks []atomic.Pointer[[]blockRow] // the rows after each mark of seqs, read on first use
	files  []string                     // file names of rows
	lines  []lineRow                    // sorted by addr

	mu    sync.Mutex              // held while a function's scopes are read
	names map[dwarf.Offset]string // names of the DIEs abstract origins lead to
}

// lineRow is one row of a line table, 16 bytes (a vmlinux unit can have
// tens of thousands); file is an index in cuInfo.files, or endRow for the
// end of a sequence.
type lineRow struct {
	addr uint64
	file int32
	line int32
}

// endRow is lineRow.file of a row that ends a sequence.
const endRow = -1

func (r *lineRow) end() bool { return r.file == endRow }

// maxLineScratch bounds the rows a scratch slice keeps between units.
const maxLineScratch = 1 << 20

// lineScratch holds the rows of a line table while they are read, so that
// a unit keeps them in a slice of their exact size.
var lineScratch = sync.Pool{New: func() any { return new([]lineRow) }}

// scope is a subprogram or inlined subroutine with the scopes nested in it.
// A function's name (when an abstract origin gives it) and nested scopes
// are read on first use (cuInfo.scopeOf); until then only off, ref and
// kids are set.
type scope struct {
	off      dwarf.Offset // the DIE
	name     string
	callFile int
	callLine int
	inlined  bool
	children scopeLevel

	ref    dwarf.Offset // the DIE its name comes from, while unresolved
	kids   bool         // its children are still to read
	die    bool         // all but off still to read from the DIE (a function from the debug cache)
	loaded atomic.Bool  // name and children read
}

// scopeLevel is the scopes directly inside one scope, by address range.
type scopeLevel []scopeRange

type scopeRange struct {
	lo, hi uint64
	s      *scope
}

// find returns the scope at this level whose range holds pc.
func (l scopeLevel) find(pc uint64) *scope {
	lo, hi := 0, len(l)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l[m].lo <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0 && i >= lo-4; i-- {
		if pc < l[i].hi {
			return l[i].s
		}
	}
	return nil
}

func sortLevel(l scopeLevel) {
	slices.SortFunc(l, func(a, b scopeRange) int { return cmp.Compare(a.lo, b.lo) })
}

// buildDWARFIndex reads the compile units' address ranges.
func buildDWARFIndex(d *dwarf.Data) (*dwarfIndex, error) {
	x := &dwarfIndex{d: d}
	var starts []dwarf.Offset
	var ranges []cuRange // unit: an index in starts
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			// The units before the damage stay usable: the index is
			// whole for them (sorted, with a slot for each unit).
			x.setUnits(starts, ranges)
			return x, err
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			starts = append(starts, e.Offset)
			rs, err := d.Ranges(e)
			if err == nil {
				for _, rg := range rs {
					if rg[1] > rg[0] && rg[0] != 0 {
						ranges = append(ranges, cuRange{lo: rg[0], hi: rg[1], unit: len(starts) - 1})
					}
				}
			}
		}
		r.SkipChildren()
	}
	x.setUnits(starts, ranges)
	return x, nil
}

// setUnits gives x the units' entries starts (ascending) and their ranges
// (unit: an index in starts), which it sorts, and the units' slots.
func (x *dwarfIndex) setUnits(starts []dwarf.Offset, ranges []cuRange) {
	slices.SortFunc(ranges, func(a, b cuRange) int { return cmp.Compare(a.lo, b.lo) })
	x.tab = makeUnitTable(starts, ranges)
	x.units = newUnitSlots(x.tab.numStarts())
}

// unit returns the cuInfo of unit u (an index in x.tab's starts), made on
// first use with its end: the next unit's entry.
func (x *dwarfIndex) unit(u int) *cuInfo {
	if c := x.units.load(u); c != nil {
		return c
	}
	c := &cuInfo{off: x.tab.start(u), end: ^dwarf.Offset(0)}
	if u+1 < x.tab.numStarts() {
		c.end = x.tab.start(u + 1)
	}
	return x.units.store(u, c)
}

// load loads u, a unit of x, once.
func (x *dwarfIndex) load(u *cuInfo) {
	u.once.Do(func() { u.load(x) })
}

func (x *dwarfIndex) unitFor(pc uint64) *cuInfo {
	if x.ar != nil {
		return x.ar.unitFor(x, pc)
	}
	lo, hi := 0, x.tab.numRanges()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.tab.rangeLo(m) <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0 && i >= lo-8; i-- {
		if r := x.tab.rangeAt(i); pc < r.hi {
			return x.unit(r.unit)
		}
	}
	return nil
}

// load decodes the unit's entry and line table header and finds its
// functions: from the debug cache when it holds the unit's detail (see
// unitdetail.go), else by reading the line program once (lineIndex) and
// listing the unit's functions (readScopes), which it then caches.
func (u *cuInfo) load(x *dwarfIndex) {
	d := x.d
	defer func() {
		if p := recover(); p != nil {
			u.err = fmt.Errorf("malformed DWARF: %v", p)
		}
	}()
	r := d.Reader()
	r.Seek(u.off)
	e, err := r.Next()
	if err == nil && (e == nil || e.Offset != u.off || e.Tag != dwarf.TagCompileUnit && e.Tag != dwarf.TagPartialUnit) {
		err = errors.New("not a unit's entry")
	}
	if err != nil {
		u.entry = &dwarf.Entry{Offset: u.off} // no attributes
		u.err = fmt.Errorf("unit at %#x: %w", u.off, err)
		return
	}
	u.entry = e
	det := x.loadDetail(u)
	if det != nil && det.seqs != nil {
		// The cached sequences and file names: the table's header is
		// read only as far as its program.
		if lr, err := d.LineProgram(u.entry); err == nil && lr != nil {
			u.useSeqs(lr, det.seqs, det.files)
		} else {
			det = nil
		}
	}
	if det == nil || det.seqs == nil {
		lr, err := d.LineReader(u.entry)
		if err != nil {
			u.err = err
			return
		}
		if lr != nil {
			if det != nil {
				u.readRows(lr) // a unit lineIndex does not index
			} else if seqs, ok := lineIndex(lr); ok {
				u.useSeqs(lr, seqs, fileNames(lr.Files()))
			} else {
				lr.Reset()
				u.readRows(lr)
			}
		}
	}
	if det != nil {
		u.top = det.level()
		return
	}
	u.top, _ = u.readScopes(d, r, nil)
	if u.err == nil {
		x.storeDetail(u)
	}
}

// useSeqs answers the unit's lines from the sequences of its line table
// that lineIndex found, read by lr, with files the names of its files.
func (u *cuInfo) useSeqs(lr *dwarf.LineReader, seqs []lineSeq, files []string) {
	u.lr, u.seqs, u.callFiles = lr, seqs, files
	if seqs == nil {
		u.seqs = []lineSeq{} // indexed, and empty
	}
	u.blocks = make([]atomic.Pointer[[]blockRow], numberBlocks(seqs))
}

// fileNames returns the names of a line table's files.
func fileNames(tab []*dwarf.LineFile) []string {
	names := make([]string, len(tab))
	for i, lf := range tab {
		if lf != nil {
			names[i] = lf.Name
		}
	}
	return names
}

// readRows decodes the whole line program of the unit into rows sorted by
// address: the way to answer lines of a table lineIndex cannot index.
func (u *cuInfo) readRows(lr *dwarf.LineReader) {
	scratch := lineScratch.Get().(*[]lineRow)
	rows := (*scratch)[:0]
	fileIdx := make(map[*dwarf.LineFile]int32)
	var le dwarf.LineEntry
	for {
		if err := lr.Next(&le); err != nil {
			if !errors.Is(err, io.EOF) {
				u.err = err
			}
			break
		}
		fi, ok := fileIdx[le.File]
		if !ok {
			fi = int32(len(u.files))
			name := ""
			if le.File != nil {
				name = le.File.Name
			}
			u.files = append(u.files, name)
			fileIdx[le.File] = fi
		}
		if le.EndSequence {
			fi = endRow
		}
		rows = append(rows, lineRow{addr: le.Address, file: fi, line: int32(le.Line)})
	}
	// Call files index the line table's file table.
	u.callFiles = fileNames(lr.Files())
	slices.SortStableFunc(rows, func(a, b lineRow) int {
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		if a.end() != b.end() { // an end marker sorts before a sequence starting there
			if a.end() {
				return -1
			}
			return 1
		}
		return 0
	})
	u.lines = slices.Clone(rows)
	if cap(rows) <= maxLineScratch {
		*scratch = rows
		lineScratch.Put(scratch)
	}
}

// readScopes reads the subprograms and inlined subroutines below the entry
// r has just returned (the unit's, or the function in's), returning their
// sorted level and every scope read. With in nil (the unit) it reads only
// the functions' DIE offsets and ranges, the rest (name, call site,
// children) left for scopeOf to read from the DIE; else it reads
// the whole tree below in, resolving names. Entries that cannot hold code
// (types, variables) are skipped with their children.
func (u *cuInfo) readScopes(d *dwarf.Data, r *dwarf.Reader, in *scope) (scopeLevel, []*scope) {
	var top scopeLevel
	depth := 0
	scopeAtDepth := []*scope{in} // innermost enclosing scope at each depth (nil: the unit)
	var all []*scope
	for {
		need := scopeAttrs
		if in == nil {
			// The functions' ranges only: the rest is read from their
			// DIE by scopeOf, as for functions from the debug cache.
			need = rangeAttrs
		}
		e, err := r.NextIfOnly(codeTag, need...)
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 { // end of children
			depth--
			if depth < 0 {
				break
			}
			scopeAtDepth = scopeAtDepth[:depth+1]
			continue
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			break // next unit
		}
		parent := scopeAtDepth[depth]
		var cur *scope
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine {
			rs, _ := d.Ranges(e)
			if len(rs) > 0 {
				cur = &scope{off: e.Offset}
				all = append(all, cur)
				if in == nil {
					cur.die = true
				} else {
					cur.setFrom(e)
				}
				level := &top
				if parent != nil {
					level = &parent.children
				}
				for _, rg := range rs {
					if rg[1] > rg[0] {
						*level = append(*level, scopeRange{lo: rg[0], hi: rg[1], s: cur})
					}
				}
				if parent == nil && e.Children {
					r.SkipChildren() // a function: its scopes are read on first use
					continue
				}
			}
		}
		if e.Children && !scopeTag(e.Tag) {
			r.SkipChildren() // types, structs, enums: no code inside
			continue
		}
		if e.Children {
			depth++
			if cur == nil {
				cur = parent
			}
			scopeAtDepth = append(scopeAtDepth, cur)
		}
	}
	if in != nil {
		// Resolve names through abstract origins (possibly chained,
		// possibly in another unit).
		for _, s := range all {
			if s.ref != 0 {
				s.name, s.ref = u.nameAt(d, s.ref, 0), 0
			}
			s.loaded.Store(true)
		}
		top = in.children
	}
	// Sort every level once (a scope with several ranges appears several
	// times in its parent's level).
	sortLevel(top)
	for _, s := range all {
		sortLevel(s.children)
	}
	return top, all
}

// setFrom sets what the scope's DIE e says: its kind, name (or the DIE
// that has it) and call site.
func (s *scope) setFrom(e *dwarf.Entry) {
	s.inlined = e.Tag == dwarf.TagInlinedSubroutine
	if n, ok := e.Val(dwarf.AttrName).(string); ok {
		s.name = n
	} else {
		ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if ref == 0 {
			ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
		}
		s.ref = ref
	}
	if v, ok := e.Val(dwarf.AttrCallFile).(int64); ok {
		s.callFile = int(v)
	}
	if v, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
		s.callLine = int(v)
	}
}

// scopeOf reads the name and nested scopes of s, a function of the unit,
// once: from the debug cache when it holds them (scopecache.go), else
// from its DIEs, then caching them.
func (u *cuInfo) scopeOf(x *dwarfIndex, s *scope) {
	if s.loaded.Load() {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if s.loaded.Load() {
		return
	}
	if !s.die && !s.kids && s.ref == 0 {
		s.loaded.Store(true) // nothing to read
		return
	}
	if x.loadScopes(u, s) {
		s.loaded.Store(true)
		return
	}
	read := false
	defer func() {
		p := recover() // malformed DWARF: the scopes read so far
		s.loaded.Store(true)
		if p == nil && read {
			x.storeScopes(s)
		}
	}()
	d := x.d
	r := d.Reader()
	if s.die {
		// A function from the debug cache: read as readScopes reads it.
		s.die = false
		r.Seek(s.off)
		e, err := r.NextIfOnly(anyTag, scopeAttrs...)
		if err != nil || e == nil || e.Offset != s.off {
			return
		}
		s.setFrom(e)
		s.kids = e.Children
		if s.ref != 0 {
			s.name, s.ref = u.nameAt(d, s.ref, 0), 0
		}
		if s.kids {
			s.children, _ = u.readScopes(d, r, s)
		}
		read = true
		return
	}
	if s.ref != 0 {
		s.name, s.ref = u.nameAt(d, s.ref, 0), 0
	}
	if s.kids {
		r.Seek(s.off)
		if _, err := r.Next(); err != nil {
			return
		}
		s.children, _ = u.readScopes(d, r, s)
	}
	read = true
}

// nameAt returns the name of the subprogram or inlined subroutine DIE at
// off, through its abstract origins and specifications; a subprogram of this
// unit without a name gives its linkage name. Called with u.mu held.
func (u *cuInfo) nameAt(d *dwarf.Data, off dwarf.Offset, depth int) string {
	if n, ok := u.names[off]; ok {
		return n
	}
	if depth > 4 {
		return ""
	}
	r := d.Reader()
	r.Seek(off)
	e, err := r.NextIfOnly(anyTag, nameAttrs...)
	if err != nil || e == nil {
		return ""
	}
	if u.names == nil {
		u.names = make(map[dwarf.Offset]string)
	}
	if off >= u.off && off < u.end && (e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine) {
		if n, ok := e.Val(dwarf.AttrName).(string); ok {
			u.names[off] = n
			return n
		}
		if n, ok := e.Val(dwarf.AttrLinkageName).(string); ok && e.Tag == dwarf.TagSubprogram {
			u.names[off] = n
			return n
		}
	}
	n, _ := e.Val(dwarf.AttrName).(string)
	if n == "" {
		ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if ref == 0 {
			ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
		}
		if ref != 0 {
			n = u.nameAt(d, ref, depth+1)
		}
	}
	u.names[off] = n
	return n
}

// scopesAt appends the scopes holding the link-time pc to chain, outermost
// (the function) first, at most maxScopes in all.
func (u *cuInfo) scopesAt(x *dwarfIndex, pc uint64, chain []*scope) []*scope {
	for l := u.top; len(chain) < maxScopes; {
		s := l.find(pc)
		if s == nil {
			break
		}
		u.scopeOf(x, s)
		chain = append(chain, s)
		l = s.children
	}
	return chain
}

// maxScopes bounds the scopes nested at one pc.
const maxScopes = 32

// line returns the file and line for the link-time pc: the last row at
// or below pc of the address-sorted rows of the whole line table, unless
// that row ends a sequence.
func (u *cuInfo) line(pc uint64) (string, int, bool) {
	if u.seqs != nil {
		return u.seqLine(pc)
	}
	lo, hi := 0, len(u.lines)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if u.lines[m].addr <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return "", 0, false
	}
	row := &u.lines[lo-1]
	if row.end() {
		return "", 0, false
	}
	return u.files[row.file], int(row.line), true
}

func (u *cuInfo) callFile(i int) string {
	if i >= 0 && i < len(u.callFiles) {
		return u.callFiles[i]
	}
	return ""
}

// lines appends the source frames for the link-time pc, innermost first.
func (x *dwarfIndex) lines(pc uint64, buf []Line) []Line {
	u := x.unitFor(pc)
	if u == nil {
		return buf
	}
	x.load(u)
	file, line, ok := u.line(pc)
	// Collect the scope chain, outermost first, on a fixed array.
	var arr [maxScopes]*scope
	chain := u.scopesAt(x, pc, arr[:0])
	n := len(chain)
	if n == 0 {
		if ok {
			buf = append(buf, Line{File: file, Line: line})
		}
		return buf
	}
	for i := n - 1; i >= 0; i-- {
		s := chain[i]
		buf = append(buf, Line{Function: s.name, File: file, Line: line, Inlined: s.inlined})
		if s.inlined {
			file, line = u.callFile(s.callFile), s.callLine
		}
	}
	return buf
}

// hasData reports whether ef has section name with contents in the file.
func hasData(ef *elf.File, name string) bool {
	s := ef.Section(name)
	if s == nil && strings.HasPrefix(name, ".debug_") {
		s = ef.Section(".zdebug_" + name[len(".debug_"):]) // GNU-style compressed
	}
	return s != nil && s.Type != elf.SHT_NOBITS
}

// loadDWARF builds the unit index on first use, from the attached debug
// file when it has DWARF.
func (f *File) loadDWARF() {
	defer func() {
		if p := recover(); p != nil {
			f.dw, f.dwErr = nil, fmt.Errorf("symbols: %s: malformed DWARF: %v", f.Path, p)
		}
	}()
	if f.reloc != nil {
		d, err := f.moduleDWARF()
		if d == nil {
			f.dwErr = fmt.Errorf("symbols: %s: %w", f.Path, err)
			return
		}
		f.dw, f.dwErr = buildDWARFIndex(d)
		f.dwErr = errors.Join(err, f.dwErr)
		return
	}
	ef, r, path, mapped := f.ef, f.r, f.Path, f.mapped
	if f.dbg != nil && hasData(f.dbg, ".debug_info") {
		ef, r, path, mapped = f.dbg, f.dbgR, f.DebugPath, f.dbgMapped
	}
	if !hasData(ef, ".debug_info") {
		return
	}
	d, key, st, err := readDWARF(ef, r, path, mapped)
	if err != nil {
		f.dwErr = fmt.Errorf("symbols: %s: %w", path, err)
		return
	}
	f.dw, f.dwErr = indexDWARF(d, key, st, debugCacheFor(ef, path))
	if f.dw != nil {
		f.dw.vars.ef, f.dw.vars.r, f.dw.vars.mapped, f.dw.vars.cache = ef, r, mapped, f.dw.cache
	}
}

// indexDWARF returns the unit index of d: the one cached under key, or
// made from .debug_aranges where .debug_info is streamed (st), or made by
// reading every unit's entry and then cached.
func indexDWARF(d *dwarf.Data, key []byte, st *dwarfStreams, cache debugCache) (*dwarfIndex, error) {
	x := cache.loadUnits(d, key)
	var err error
	if x == nil {
		if ar := st.arangesIndex(); ar != nil {
			x = &dwarfIndex{d: d, ar: ar}
		} else if x, err = buildDWARFIndex(d); err == nil {
			cache.storeUnits(x, key)
		}
	}
	if x != nil {
		x.cache, x.key, x.streams = cache, key, st
		x.packs = newPackCache(cache)
	}
	return x, err
}

// Lines appends to buf[:0] the source frames for the run-time pc, innermost
// first: the inlined functions executing at pc (Inlined true), each followed
// by its caller at the call site, ending with the containing function
// (Inlined false). It returns buf[:0] when the file has no DWARF for pc.
// Pass the previous result back as buf to avoid allocating.
func (f *File) Lines(pc uint64, buf []Line) []Line {
	buf = buf[:0]
	f.dwarfOnce.Do(f.loadDWARF)
	if f.dw == nil {
		return buf
	}
	buf = f.dw.lines(pc-f.Bias, buf)
	if len(buf) == 1 && buf[0].Function == "" {
		// A line without a DWARF function (padding, or assembly without
		// subprogram entries): name the nearest symbol below, as addr2line does.
		if s, ok := f.Syms.nearest(pc); ok {
			buf[0].Function = s.Name
		}
	}
	return buf
}

// The attributes readScopes reads of a unit's functions (rangeAttrs) and
// of the scopes in a function (scopeAttrs, what setFrom reads too).
var (
	rangeAttrs = []dwarf.Attr{dwarf.AttrLowpc, dwarf.AttrHighpc, dwarf.AttrRanges}
	scopeAttrs = []dwarf.Attr{dwarf.AttrLowpc, dwarf.AttrHighpc, dwarf.AttrRanges,
		dwarf.AttrName, dwarf.AttrAbstractOrigin, dwarf.AttrSpecification, dwarf.AttrCallFile, dwarf.AttrCallLine}
)

// nameAttrs are the attributes nameAt reads.
var nameAttrs = []dwarf.Attr{dwarf.AttrName, dwarf.AttrLinkageName, dwarf.AttrAbstractOrigin, dwarf.AttrSpecification}

// anyTag accepts every tag (the one entry read at an offset).
func anyTag(dwarf.Tag) bool { return true }

// codeTag reports whether readScopes reads a DIE's attributes (those of
// rangeAttrs or scopeAttrs it has); the others' tags and children are all
// it needs.
func codeTag(tag dwarf.Tag) bool {
	return tag == dwarf.TagSubprogram || tag == dwarf.TagInlinedSubroutine
}

// scopeTag reports whether code scopes can be nested in a DIE with tag.
func scopeTag(tag dwarf.Tag) bool {
	switch tag {
	case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine, dwarf.TagLexDwarfBlock,
		dwarf.TagNamespace, dwarf.TagModule:
		return true
	}
	return false
}
