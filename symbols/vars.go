package symbols

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/go-delve/delve/pkg/dwarf/loclist"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// varState is a file's variable cache: the DIEs of each function asked for,
// read once (only the compile units and functions a trace reaches are
// decoded), and the location-list sections, read on first use.
type varState struct {
	ef     *elf.File
	r      io.ReaderAt // ef's file
	mapped []byte      // r mapped read-only, or nil
	cache  debugCache  // where compressed sections are kept decompressed, or ""

	mu      sync.Mutex // guards everything below and dwarf.Data's type cache
	secOnce bool
	loc     []byte // .debug_loc (DWARF 2–4)
	lists   []byte // .debug_loclists (DWARF 5)
	addr    []byte // .debug_addr
	info    []byte // .debug_info, only when mapped (for unit versions)
	funcs   map[dwarf.Offset]*funcVars
	names   map[dwarf.Offset]string
	units   map[*cuInfo]*unitVars
	types   map[dwarf.Offset]dwarf.Type
	lists5  *loclist.Dwarf5Reader
	exprs   map[exprKey][]byte // location-list lookups: a recursion asks the same again
}

// exprKey is a location-list lookup: the list's offset and the pc.
type exprKey struct {
	off int64
	pc  uint64
}

// maxExprCache bounds the cached location-list lookups.
const maxExprCache = 1 << 16

// unitVars is what location lists need of a compile unit.
type unitVars struct {
	base      uint64 // DW_AT_low_pc: the base of DWARF 4 location lists
	version   int
	listsBase uint64 // DW_AT_loclists_base
	addrBase  uint64 // DW_AT_addr_base
}

// varDesc is one formal parameter or variable as its DIEs describe it.
type varDesc struct {
	name       string
	param      bool
	typ        dwarf.Offset // 0: unknown
	hasType    bool
	loc        any // []byte (an exprloc), int64 (a loclist offset) or nil
	locClass   dwarf.Class
	constVal   any // int64, uint64 or []byte when DW_AT_const_value is given
	origin     dwarf.Offset
	declared   bool // DW_AT_declaration: no storage here
	artificial bool
}

// blockDesc is a lexical block (or the function's outermost scope).
type blockDesc struct {
	ranges [][2]uint64
	vars   []*varDesc
	kids   []*blockDesc
}

func (b *blockDesc) holds(pc uint64) bool {
	for _, r := range b.ranges {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}

// callSite is a DW_TAG_call_site (or DW_TAG_GNU_call_site) of a function.
type callSite struct {
	origin dwarf.Offset // the called function's DIE, 0 for an indirect call
	target []byte       // DW_AT_call_target: the called address, for an indirect call
	tail   bool
	params []callParam
}

// callParam is a DW_TAG_call_site_parameter: where the argument was passed
// (a register) and how to compute its value in the caller.
type callParam struct {
	loc, value []byte
}

// funcVars is one subprogram or inlined subroutine: its parameters, its
// blocks of locals, and, for a subprogram, its frame base and call sites.
type funcVars struct {
	name      string
	off       dwarf.Offset
	unit      *cuInfo
	entry     uint64 // link-time entry address (low_pc), 0 when unknown
	params    []*varDesc
	top       blockDesc
	frameBase any // DW_AT_frame_base: []byte or a loclist offset
	fbClass   dwarf.Class
	calls     map[uint64]*callSite // by link-time return address
	tails     []*callSite          // tail calls (a jmp: no return address)
	names     []string             // its name and the names of its origins
	err       error
}

// Tags of the GNU call-site extension (DWARF 4).
const (
	tagGNUCallSite          dwarf.Tag  = 0x4109
	tagGNUCallSiteParameter dwarf.Tag  = 0x410a
	attrGNUCallSiteValue    dwarf.Attr = 0x2111
	attrGNUCallSiteTarget   dwarf.Attr = 0x2113
	attrGNUTailCall         dwarf.Attr = 0x2115
)

// scopeChain returns the unit and the scopes holding the link-time pc,
// outermost (the subprogram) first.
func (x *dwarfIndex) scopeChain(pc uint64, chain []*scope) (*cuInfo, []*scope) {
	u := x.unitFor(pc)
	if u == nil {
		return nil, chain
	}
	x.load(u)
	return u, u.scopesAt(x, pc, chain)
}

// loadSections reads the location-list sections once. Called with mu held.
func (vs *varState) loadSections() {
	if vs.secOnce {
		return
	}
	vs.secOnce = true
	if vs.ef == nil {
		return
	}
	read := func(name string) []byte {
		s := vs.ef.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS || s.Size == 0 || s.Size > maxDebugSection {
			return nil
		}
		if name == ".debug_info" && (vs.mapped == nil || s.Flags&elf.SHF_COMPRESSED != 0) {
			return nil // only wanted cheaply: a slice of the mapping
		}
		b, err := cachedSectionBytes(s, vs.r, vs.mapped, vs.cache)
		if err != nil {
			return nil
		}
		return b
	}
	vs.loc = read(".debug_loc")
	vs.lists = read(".debug_loclists")
	vs.addr = read(".debug_addr")
	vs.info = read(".debug_info")
}

// unitOf returns the location-list facts of unit u. Called with mu held.
func (vs *varState) unitOf(u *cuInfo) *unitVars {
	if uv, ok := vs.units[u]; ok {
		return uv
	}
	if vs.units == nil {
		vs.units = make(map[*cuInfo]*unitVars)
	}
	uv := &unitVars{}
	if v, ok := u.entry.Val(dwarf.AttrLowpc).(uint64); ok {
		uv.base = v
	}
	if v, ok := u.entry.Val(dwarf.AttrLoclistsBase).(int64); ok {
		uv.listsBase = uint64(v)
	}
	if v, ok := u.entry.Val(dwarf.AttrAddrBase).(int64); ok {
		uv.addrBase = uint64(v)
	}
	vs.loadSections()
	switch {
	case uv.listsBase != 0:
		uv.version = 5
	case vs.lists != nil && vs.loc == nil:
		uv.version = 5
	case vs.loc != nil && vs.lists == nil:
		uv.version = 4
	default:
		// Both sections: the unit header says. The unit DIE follows an
		// 11-byte (DWARF 2–4) or 12-byte (DWARF 5) 32-bit header.
		uv.version = 5
		off := int(u.entry.Offset)
		if off >= 12 && off <= len(vs.info) {
			if v := binary.LittleEndian.Uint16(vs.info[off-7:]); v >= 2 && v <= 4 {
				uv.version = int(v)
			}
		}
	}
	vs.units[u] = uv
	return uv
}

// function returns the variables of the scope s in unit u, reading its
// DIEs on first use. Called with mu held.
func (x *dwarfIndex) function(u *cuInfo, s *scope) *funcVars {
	vs := &x.vars
	if fv, ok := vs.funcs[s.off]; ok {
		return fv
	}
	if vs.funcs == nil {
		vs.funcs = make(map[dwarf.Offset]*funcVars)
		vs.names = make(map[dwarf.Offset]string)
	}
	fv := &funcVars{off: s.off, unit: u, name: s.name}
	func() {
		defer func() {
			if p := recover(); p != nil {
				fv.err = fmt.Errorf("malformed DWARF at %#x: %v", s.off, p)
			}
		}()
		x.readFunction(fv)
	}()
	vs.funcs[s.off] = fv
	return fv
}

// functionAt returns the function whose DIE is at off when it is a
// subprogram with code (not a declaration), nil otherwise. Called with
// varMu held.
func (x *dwarfIndex) functionAt(u *cuInfo, off dwarf.Offset) *funcVars {
	r := x.d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil || e.Tag != dwarf.TagSubprogram {
		return nil
	}
	if _, ok := e.Val(dwarf.AttrLowpc).(uint64); !ok {
		return nil
	}
	// The scope of the same DIE in the unit that holds its code.
	name, _ := e.Val(dwarf.AttrName).(string)
	return x.function(u, &scope{off: off, name: name})
}

// maxFuncDIEs bounds the DIEs read for one function.
const maxFuncDIEs = 1 << 20

// readFunction reads the DIE tree of fv.off.
func (x *dwarfIndex) readFunction(fv *funcVars) {
	d := x.d
	r := d.Reader()
	r.Seek(fv.off)
	e, err := r.Next()
	if err != nil || e == nil {
		fv.err = fmt.Errorf("reading DIE %#x: %v", fv.off, err)
		return
	}
	if v, ok := e.Val(dwarf.AttrLowpc).(uint64); ok {
		fv.entry = v
	} else if v, ok := e.Val(dwarf.AttrEntrypc).(uint64); ok {
		fv.entry = v
	}
	if fb := e.AttrField(dwarf.AttrFrameBase); fb != nil {
		fv.frameBase, fv.fbClass = fb.Val, fb.Class
	}
	fv.names = x.originNames(e)
	if fv.name == "" && len(fv.names) > 0 {
		fv.name = fv.names[0]
	}
	fv.top.ranges, _ = d.Ranges(e)
	fv.calls = make(map[uint64]*callSite)
	concrete := make(map[dwarf.Offset]bool) // abstract DIEs the concrete ones stand for
	if !e.Children {
		x.inherit(fv, e, concrete)
		return
	}
	// Walk the subtree: blocks[depth] is the block being filled at each
	// nesting depth, nil inside an inlined subroutine (its variables are
	// its own frame's).
	blocks := []*blockDesc{&fv.top}
	var site *callSite
	siteDepth := -1
	for n := 0; n < maxFuncDIEs; n++ {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			blocks = blocks[:len(blocks)-1]
			if len(blocks) == 0 {
				break
			}
			if len(blocks) <= siteDepth {
				site, siteDepth = nil, -1
			}
			continue
		}
		cur := blocks[len(blocks)-1]
		var child *blockDesc // the block this entry's children fill
		descend := false
		switch e.Tag {
		case dwarf.TagFormalParameter, dwarf.TagVariable:
			if cur == nil {
				break
			}
			v := x.readVar(e)
			if v.origin != 0 {
				concrete[v.origin] = true
			}
			if v.declared && v.loc == nil && v.constVal == nil || v.name == "" {
				break // a declaration, or a compiler temporary (a VLA bound)
			}
			if e.Tag == dwarf.TagFormalParameter && cur == &fv.top {
				v.param = true
				fv.params = append(fv.params, v)
			} else if e.Tag == dwarf.TagVariable {
				cur.vars = append(cur.vars, v)
			}
		case dwarf.TagLexDwarfBlock:
			descend = true
			if cur != nil {
				b := &blockDesc{}
				b.ranges, _ = d.Ranges(e)
				cur.kids = append(cur.kids, b)
				child = b
			}
		case dwarf.TagInlinedSubroutine:
			descend = true // for its call sites only
		case dwarf.TagCallSite, tagGNUCallSite:
			descend = true
			cs, ret := readCallSite(e)
			switch {
			case cs.tail:
				fv.tails = append(fv.tails, cs)
			case ret != 0:
				fv.calls[ret] = cs
			}
			site, siteDepth = cs, len(blocks)
		case dwarf.TagCallSiteParameter, tagGNUCallSiteParameter:
			if site != nil {
				p := callParam{}
				p.loc, _ = e.Val(dwarf.AttrLocation).([]byte)
				if p.value, _ = e.Val(dwarf.AttrCallValue).([]byte); p.value == nil {
					p.value, _ = e.Val(attrGNUCallSiteValue).([]byte)
				}
				site.params = append(site.params, p)
			}
		}
		if !e.Children {
			continue
		}
		if !descend {
			r.SkipChildren()
			continue
		}
		blocks = append(blocks, child)
	}
	x.inherit(fv, e, concrete)
}

// inherit adds the parameters and variables of fv's abstract origin that no
// concrete DIE stands for (optimized out entirely), and orders the
// parameters as the abstract instance declares them.
func (x *dwarfIndex) inherit(fv *funcVars, e *dwarf.Entry, concrete map[dwarf.Offset]bool) {
	org, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
	if org == 0 {
		return
	}
	r := x.d.Reader()
	r.Seek(org)
	ae, err := r.Next()
	if err != nil || ae == nil || !ae.Children {
		return
	}
	byOrigin := make(map[dwarf.Offset]*varDesc, len(fv.params))
	for _, p := range fv.params {
		if p.origin != 0 {
			byOrigin[p.origin] = p
		}
	}
	var params []*varDesc
	for n := 0; n < maxFuncDIEs; n++ {
		c, err := r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			break
		}
		switch c.Tag {
		case dwarf.TagFormalParameter:
			if p, ok := byOrigin[c.Offset]; ok {
				params = append(params, p)
				delete(byOrigin, c.Offset)
			} else if !concrete[c.Offset] {
				v := x.readVar(c)
				v.param = true
				v.loc = nil
				params = append(params, v)
			}
		case dwarf.TagVariable:
			if !concrete[c.Offset] {
				v := x.readVar(c)
				if !v.declared {
					v.loc = nil
					fv.top.vars = append(fv.top.vars, v)
				}
			}
		}
		if c.Children {
			r.SkipChildren()
		}
	}
	for _, p := range fv.params { // concrete parameters the abstract one lacks
		if _, left := byOrigin[p.origin]; left || p.origin == 0 {
			params = append(params, p)
		}
	}
	fv.params = params
}

// readVar reads a parameter or variable DIE, taking its name and type from
// its abstract origin when it has none of its own.
func (x *dwarfIndex) readVar(e *dwarf.Entry) *varDesc {
	v := &varDesc{}
	v.name, _ = e.Val(dwarf.AttrName).(string)
	if t, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
		v.typ, v.hasType = t, true
	}
	if f := e.AttrField(dwarf.AttrLocation); f != nil {
		v.loc, v.locClass = f.Val, f.Class
	}
	v.constVal = e.Val(dwarf.AttrConstValue)
	v.declared, _ = e.Val(dwarf.AttrDeclaration).(bool)
	v.artificial, _ = e.Val(dwarf.AttrArtificial).(bool)
	v.origin, _ = e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
	org := v.origin
	for depth := 0; org != 0 && depth < 4 && (v.name == "" || !v.hasType); depth++ {
		r := x.d.Reader()
		r.Seek(org)
		oe, err := r.Next()
		if err != nil || oe == nil {
			break
		}
		if v.name == "" {
			v.name, _ = oe.Val(dwarf.AttrName).(string)
		}
		if !v.hasType {
			if t, ok := oe.Val(dwarf.AttrType).(dwarf.Offset); ok {
				v.typ, v.hasType = t, true
			}
		}
		if v.constVal == nil {
			v.constVal = oe.Val(dwarf.AttrConstValue)
		}
		org, _ = oe.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
	}
	return v
}

// readCallSite reads a call-site DIE; ret is its link-time return address
// (0 when it has none).
func readCallSite(e *dwarf.Entry) (*callSite, uint64) {
	cs := &callSite{}
	ret, _ := e.Val(dwarf.AttrCallReturnPC).(uint64)
	if ret == 0 && e.Tag == tagGNUCallSite {
		ret, _ = e.Val(dwarf.AttrLowpc).(uint64)
	}
	cs.origin, _ = e.Val(dwarf.AttrCallOrigin).(dwarf.Offset)
	if cs.origin == 0 {
		cs.origin, _ = e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
	}
	if cs.target, _ = e.Val(dwarf.AttrCallTarget).([]byte); cs.target == nil {
		cs.target, _ = e.Val(attrGNUCallSiteTarget).([]byte)
	}
	tail, _ := e.Val(dwarf.AttrCallTailCall).(bool)
	gtail, _ := e.Val(attrGNUTailCall).(bool)
	cs.tail = tail || gtail
	return cs, ret
}

// originNames returns the names of e and of the DIEs it refers to
// (abstract origin, specification), so a call site naming any of them
// matches.
func (x *dwarfIndex) originNames(e *dwarf.Entry) []string {
	var names []string
	add := func(n string) {
		if n == "" {
			return
		}
		for _, m := range names {
			if m == n {
				return
			}
		}
		names = append(names, n)
	}
	for depth := 0; e != nil && depth < 5; depth++ {
		n, _ := e.Val(dwarf.AttrName).(string)
		add(n)
		ln, _ := e.Val(dwarf.AttrLinkageName).(string)
		add(ln)
		ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if ref == 0 {
			ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
		}
		if ref == 0 {
			break
		}
		r := x.d.Reader()
		r.Seek(ref)
		e, _ = r.Next()
	}
	return names
}

// nameOf returns the name of the function DIE at off (through abstract
// origins and specifications). Called with mu held.
func (x *dwarfIndex) nameOf(off dwarf.Offset) string {
	if n, ok := x.vars.names[off]; ok {
		return n
	}
	r := x.d.Reader()
	r.Seek(off)
	e, err := r.Next()
	n := ""
	if err == nil && e != nil {
		if ns := x.originNames(e); len(ns) > 0 {
			n = ns[0]
		}
	}
	if x.vars.names == nil {
		x.vars.names = make(map[dwarf.Offset]string)
	}
	x.vars.names[off] = n
	return n
}

// inScope appends the variables of the blocks of b that hold pc, innermost
// block first (as gdb's bt full lists them).
func (b *blockDesc) inScope(pc uint64, out []*varDesc) []*varDesc {
	for _, k := range b.kids {
		if k.holds(pc) {
			out = k.inScope(pc, out)
		}
	}
	return append(out, b.vars...)
}
