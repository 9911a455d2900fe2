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

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// dwarfIndex maps pcs to compile units; each unit's lines and scope tree are
// decoded on the first lookup that lands in it.
type dwarfIndex struct {
	d      *dwarf.Data
	ranges []cuRange // sorted by lo (link-time addresses)
	units  []*cuInfo
	vars   varState // variables, read per function on demand (vars.go)
}

type cuRange struct {
	lo, hi uint64
	unit   int
}

// cuInfo is one compile unit, decoded lazily.
type cuInfo struct {
	entry     *dwarf.Entry
	once      sync.Once
	err       error
	files     []string   // file names of line rows
	callFiles []string   // the line table file table, indexed as DW_AT_call_file is
	lines     []lineRow  // sorted by addr
	top       scopeLevel // subprograms
}

// lineRow is one row of a line table; end marks the end of a sequence.
type lineRow struct {
	addr uint64
	file int32
	line int32
	end  bool
}

// scope is a subprogram or inlined subroutine with the scopes nested in it.
type scope struct {
	off      dwarf.Offset // the DIE
	name     string
	callFile int
	callLine int
	inlined  bool
	children scopeLevel
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
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return x, err
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			rs, err := d.Ranges(e)
			if err == nil {
				u := len(x.units)
				x.units = append(x.units, &cuInfo{entry: e})
				for _, rg := range rs {
					if rg[1] > rg[0] && rg[0] != 0 {
						x.ranges = append(x.ranges, cuRange{lo: rg[0], hi: rg[1], unit: u})
					}
				}
			}
		}
		r.SkipChildren()
	}
	slices.SortFunc(x.ranges, func(a, b cuRange) int { return cmp.Compare(a.lo, b.lo) })
	return x, nil
}

func (x *dwarfIndex) unitFor(pc uint64) *cuInfo {
	lo, hi := 0, len(x.ranges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.ranges[m].lo <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0 && i >= lo-8; i-- {
		if pc < x.ranges[i].hi {
			return x.units[x.ranges[i].unit]
		}
	}
	return nil
}

// load decodes the unit's line table and scope tree.
func (u *cuInfo) load(d *dwarf.Data) {
	defer func() {
		if p := recover(); p != nil {
			u.err = fmt.Errorf("malformed DWARF: %v", p)
		}
	}()
	lr, err := d.LineReader(u.entry)
	if err != nil {
		u.err = err
		return
	}
	if lr != nil {
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
			u.lines = append(u.lines, lineRow{addr: le.Address, file: fi, line: int32(le.Line), end: le.EndSequence})
		}
		// Call files index the line table's file table.
		tab := lr.Files()
		u.callFiles = make([]string, len(tab))
		for i, lf := range tab {
			if lf != nil {
				u.callFiles[i] = lf.Name
			}
		}
		slices.SortStableFunc(u.lines, func(a, b lineRow) int {
			if c := cmp.Compare(a.addr, b.addr); c != 0 {
				return c
			}
			if a.end != b.end { // an end marker sorts before a sequence starting there
				if a.end {
					return -1
				}
				return 1
			}
			return 0
		})
	}
	u.readScopes(d)
}

// readScopes builds the subprogram/inlined-subroutine tree of the unit.
func (u *cuInfo) readScopes(d *dwarf.Data) {
	r := d.Reader()
	r.Seek(u.entry.Offset)
	if _, err := r.Next(); err != nil { // the unit entry itself
		return
	}
	names := make(map[dwarf.Offset]string)
	type pending struct {
		s    *scope
		refs dwarf.Offset
	}
	var unresolved []pending
	depth := 0
	var scopeAtDepth []*scope // innermost enclosing scope at each depth (nil: the unit)
	var all []*scope
	for {
		e, err := r.Next()
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
		parent := (*scope)(nil)
		if depth < len(scopeAtDepth) {
			parent = scopeAtDepth[depth]
		}
		var cur *scope
		if n, ok := e.Val(dwarf.AttrName).(string); ok && (e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine) {
			names[e.Offset] = n
		} else if e.Tag == dwarf.TagSubprogram {
			if n, ok := e.Val(dwarf.AttrLinkageName).(string); ok {
				names[e.Offset] = n
			}
		}
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine {
			rs, _ := d.Ranges(e)
			if len(rs) > 0 {
				cur = &scope{off: e.Offset, inlined: e.Tag == dwarf.TagInlinedSubroutine}
				all = append(all, cur)
				if n, ok := e.Val(dwarf.AttrName).(string); ok {
					cur.name = n
				} else {
					ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
					if ref == 0 {
						ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
					}
					if ref != 0 {
						unresolved = append(unresolved, pending{cur, ref})
					}
				}
				if v, ok := e.Val(dwarf.AttrCallFile).(int64); ok {
					cur.callFile = int(v)
				}
				if v, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
					cur.callLine = int(v)
				}
				level := &u.top
				if parent != nil {
					level = &parent.children
				}
				for _, rg := range rs {
					if rg[1] > rg[0] {
						*level = append(*level, scopeRange{lo: rg[0], hi: rg[1], s: cur})
					}
				}
			}
		}
		if e.Children && !scopeTag(e.Tag) {
			r.SkipChildren() // types, structs, enums: no code inside
			continue
		}
		if e.Children {
			depth++
			for len(scopeAtDepth) <= depth {
				scopeAtDepth = append(scopeAtDepth, nil)
			}
			if cur != nil {
				scopeAtDepth[depth] = cur
			} else {
				scopeAtDepth[depth] = parent
			}
		}
	}
	// Resolve names through abstract origins (possibly chained, possibly in
	// another unit).
	for _, p := range unresolved {
		p.s.name = resolveName(d, names, p.refs, 0)
	}
	// Sort every level once (a scope with several ranges appears several
	// times in its parent's level).
	sortLevel(u.top)
	for _, s := range all {
		sortLevel(s.children)
	}
}

func resolveName(d *dwarf.Data, names map[dwarf.Offset]string, off dwarf.Offset, depth int) string {
	if n, ok := names[off]; ok {
		return n
	}
	if depth > 4 {
		return ""
	}
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil {
		return ""
	}
	n, _ := e.Val(dwarf.AttrName).(string)
	if n == "" {
		ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if ref == 0 {
			ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
		}
		if ref != 0 {
			n = resolveName(d, names, ref, depth+1)
		}
	}
	names[off] = n
	return n
}

// line returns the file and line for the link-time pc.
func (u *cuInfo) line(pc uint64) (string, int, bool) {
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
	if row.end {
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
	u.once.Do(func() { u.load(x.d) })
	file, line, ok := u.line(pc)
	// Collect the scope chain, outermost first, on a fixed array.
	var chain [32]*scope
	n := 0
	for l := u.top; n < len(chain); {
		s := l.find(pc)
		if s == nil {
			break
		}
		chain[n] = s
		n++
		l = s.children
	}
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
	ef, r, path := f.ef, f.r, f.Path
	if f.dbg != nil && hasData(f.dbg, ".debug_info") {
		ef, r, path = f.dbg, f.dbgR, f.DebugPath
	}
	if !hasData(ef, ".debug_info") {
		return
	}
	d, err := readDWARF(ef, r, path)
	if err != nil {
		f.dwErr = fmt.Errorf("symbols: %s: %w", path, err)
		return
	}
	f.dw, f.dwErr = buildDWARFIndex(d)
	if f.dw != nil {
		f.dw.vars.ef, f.dw.vars.path = ef, path
	}
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

// scopeTag reports whether code scopes can be nested in a DIE with tag.
func scopeTag(tag dwarf.Tag) bool {
	switch tag {
	case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine, dwarf.TagLexDwarfBlock,
		dwarf.TagNamespace, dwarf.TagModule:
		return true
	}
	return false
}
