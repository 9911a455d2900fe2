package symbols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
	"github.com/go-delve/delve/pkg/dwarf/loclist"
	"github.com/go-delve/delve/pkg/dwarf/op"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/internal/dwarf"
	"github.com/unwind-dev/unwind/internal/leb128"
	"github.com/unwind-dev/unwind/ptregs"
)

// Recovery says how a variable's value was obtained, and so how far it can
// be trusted. Its String form is the "recovered" field of the JSON output.
type Recovery uint8

// How a value was recovered.
const (
	// RecoveredRegister: read from a register this frame's unwind knows
	// (frame 0's registers, a pt_regs, or a callee-saved register the
	// CFI restored).
	RecoveredRegister Recovery = iota + 1
	// RecoveredStack: read from memory at the address DWARF gives (the
	// frame's stack slot, or a static variable's storage).
	RecoveredStack
	// RecoveredEntryValue: the value the parameter had on entry, computed
	// from the caller's DW_TAG_call_site (DW_OP_entry_value), after the
	// call site was checked to be the one that called this function.
	RecoveredEntryValue
	// RecoveredConstant: DWARF gives the value itself (DW_AT_const_value,
	// DW_OP_implicit_value, a constant DW_OP_stack_value).
	RecoveredConstant
	// RecoveredComputed: a DW_OP_stack_value expression over known
	// registers or memory (the variable has no home, but its value does).
	RecoveredComputed
	// NotRecovered: the value lives in a register this frame's unwind did
	// not recover (a caller-saved register in a caller frame holds what the
	// callee left there), in unreadable memory, or in a form this package
	// does not evaluate. Value is empty: no stale value is printed.
	NotRecovered
	// OptimizedOut: DWARF gives no location for the variable at this pc.
	OptimizedOut
)

var recoveryNames = [...]string{RecoveredRegister: "register", RecoveredStack: "stack",
	RecoveredEntryValue: "entry_value", RecoveredConstant: "constant", RecoveredComputed: "computed",
	NotRecovered: "not_recovered", OptimizedOut: "optimized_out"}

// String returns the JSON name: register, stack, entry_value, constant,
// computed, not_recovered or optimized_out.
func (r Recovery) String() string {
	if int(r) < len(recoveryNames) && recoveryNames[r] != "" {
		return recoveryNames[r]
	}
	return "unknown"
}

// Known reports whether the value could be read (Value is set).
func (r Recovery) Known() bool { return r >= RecoveredRegister && r <= RecoveredComputed }

// Value is one parameter or local variable of a frame, printed as gdb
// prints it for C.
type Value struct {
	Name  string
	Type  string // the C type, its base types named as DWARF names them ("long int", "const char *")
	Param bool   // a formal parameter (else a local variable)
	// Value is the printed value ("16", "0x5555… <sym>", "{a = 1, b = 2}");
	// empty when Recovered is NotRecovered or OptimizedOut.
	Value string
	// Location says where the value came from: a register name ("rbx"),
	// a memory address ("0x7ffc…"), "entry_value(rdi)", "constant",
	// "computed", or pieces joined by ", ".
	Location  string
	Recovered Recovery
	// Reason says why a value is NotRecovered ("rax not recovered in this
	// frame", "cannot read memory at 0x…").
	Reason string
}

// Text returns the value as bt prints it: its Value, or "<not recovered>"
// or "<optimized out>".
func (v *Value) Text() string {
	switch v.Recovered {
	case OptimizedOut:
		return "<optimized out>"
	case NotRecovered, 0:
		return "<not recovered>"
	}
	return v.Value
}

// MemoryReader reads the target's memory at a virtual address; it has the
// shape of unwind.Memory.
type MemoryReader interface {
	ReadAt(p []byte, addr uint64) (int, error)
}

// VarFrame is what evaluating a frame's variables needs: its pc, its
// registers with their validity (ptregs.Regs: a register the unwind did not
// recover is not valid, and whatever lives in it is NotRecovered), its CFA,
// and its caller, for the entry values of its parameters.
type VarFrame struct {
	// PC is where the frame executes: the stopped or interrupted RIP, or
	// the return address of a caller frame.
	PC uint64
	// LookupPC selects the scope and the location-list entry: PC-1 for a
	// return address (the call instruction), PC otherwise.
	LookupPC uint64
	Regs     *ptregs.Regs
	// CFA is the frame's canonical frame address (the SP before the call
	// that made it); 0 when unknown, then it is computed from the CFI.
	CFA uint64
	// Caller is the frame that called this one with a call instruction
	// (PC is then its return address); nil when there is none, or when the
	// frame was interrupted (a signal or a pt_regs: no call site).
	Caller *VarFrame
}

// ValueOptions tune how values are printed; the zero value prints like
// gdb with structs and arrays one level deep.
type ValueOptions struct {
	// Depth is how many levels of structs and arrays are expanded (0:
	// the default, 1; deeper ones print as "{...}").
	Depth int
	// MaxString bounds the characters of a string (default 200, gdb's
	// "print elements").
	MaxString int
	// MaxElements bounds the elements of an array (default 200).
	MaxElements int
	// NoStrings prints char pointers as bare addresses. By default a
	// char * is followed to print the string it points to, as gdb does:
	// the only pointer that is dereferenced.
	NoStrings bool
}

// varMu serializes variable evaluation: dwarf.Data's type cache and the
// per-file function caches are not safe for concurrent use, and an entry
// value crosses files (a caller in another module).
var varMu sync.Mutex

// FrameValues returns the parameters and the local variables in scope of
// one source-level frame: fr's physical frame at inline depth inline (0 is
// the innermost function at fr.LookupPC, 1 the function it is inlined
// into, as Lines orders them). Locals are listed innermost block first, as
// gdb's bt full does. ok is false when no DWARF describes the function.
// mem reads the target's memory; opts may be nil. args and locals are
// appended to (pass nil or reuse earlier slices with [:0]). Calls are
// safe from several goroutines (they are serialized).
func (s *Set) FrameValues(fr *VarFrame, inline int, mem MemoryReader, opts *ValueOptions, args, locals []Value) ([]Value, []Value, bool) {
	varMu.Lock()
	defer varMu.Unlock()
	var o ValueOptions
	if opts != nil {
		o = *opts
	}
	if o.Depth <= 0 {
		o.Depth = 1
	}
	if o.MaxString <= 0 {
		o.MaxString = 200
	}
	if o.MaxElements <= 0 {
		o.MaxElements = 200
	}
	ev := s.evaluator(fr, mem)
	if ev == nil {
		return args, locals, false
	}
	var chain [32]*scope
	_, ch := ev.x.scopeChain(ev.link, chain[:0])
	if inline < 0 || inline >= len(ch) {
		return args, locals, false
	}
	fv := ev.x.function(ev.u, ch[len(ch)-1-inline])
	if fv.err != nil && len(fv.params) == 0 && len(fv.top.vars) == 0 {
		return args, locals, false
	}
	p := printer{s: s, mem: mem, opts: &o, x: ev.x}
	for _, v := range fv.params {
		args = append(args, ev.value(v, &p))
	}
	var vbuf [32]*varDesc
	for _, v := range fv.top.inScope(ev.link, vbuf[:0]) {
		locals = append(locals, ev.value(v, &p))
	}
	return args, locals, true
}

// evaluator evaluates locations in one physical frame.
type evaluator struct {
	s     *Set
	f     *File
	x     *dwarfIndex
	u     *cuInfo
	phys  *funcVars // the physical function: frame base, call sites, entry
	fr    *VarFrame
	mem   MemoryReader
	link  uint64 // fr.LookupPC at link time
	cfa   uint64 // 0: unknown
	fb    int64
	fbErr error
	fbSet bool
	depth int // entry-value nesting
}

// maxEntryDepth bounds chains of entry values through callers.
const maxEntryDepth = 32

func (s *Set) evaluator(fr *VarFrame, mem MemoryReader) *evaluator {
	if fr == nil || fr.Regs == nil {
		return nil
	}
	f := s.fileFor(fr.LookupPC)
	if f == nil {
		return nil
	}
	f.dwarfOnce.Do(f.loadDWARF)
	if f.dw == nil {
		return nil
	}
	ev := &evaluator{s: s, f: f, x: f.dw, fr: fr, mem: mem, link: fr.LookupPC - f.Bias}
	var chain [32]*scope
	u, ch := ev.x.scopeChain(ev.link, chain[:0])
	if u == nil || len(ch) == 0 {
		return nil
	}
	ev.u = u
	ev.phys = ev.x.function(u, ch[0])
	ev.cfa = fr.CFA
	if ev.cfa == 0 {
		var row CFIRow
		if s.FindCFI(fr.LookupPC, &row) == nil && row.CFA.Kind == cfi.RuleCFA {
			if b, ok := fr.Regs.Get(ptregs.Reg(row.CFA.Reg)); ok {
				ev.cfa = b + uint64(row.CFA.Offset)
			}
		}
	}
	return ev
}

// piece is one evaluated part of a location.
type piece struct {
	b     []byte
	rec   Recovery
	where string
	why   string
}

// value evaluates and prints one variable.
func (ev *evaluator) value(v *varDesc, p *printer) Value {
	out := Value{Name: v.name, Param: v.param}
	var t dwarf.Type
	if v.hasType {
		t = p.typeAt(v.typ)
	}
	out.Type = cTypeName(t)
	if at, ok := strip(t).(*dwarf.ArrayType); ok && at.Count < 0 {
		// A variable-length array: its bound is a variable of the frame.
		if n, ok := ev.vlaCount(v.typ); ok {
			t = &dwarf.ArrayType{CommonType: dwarf.CommonType{ByteSize: n * int64(typeSize(at.Type))}, Type: at.Type, Count: n}
		}
	}
	size := typeSize(t)
	var pc piece
	switch {
	case v.loc == nil && v.constVal != nil:
		pc = piece{b: constBytes(v.constVal, size), rec: RecoveredConstant, where: "constant"}
	case v.loc == nil:
		pc = piece{rec: OptimizedOut}
	default:
		expr, err := ev.exprAt(v.loc, v.locClass)
		switch {
		case err != nil:
			pc = piece{rec: NotRecovered, why: err.Error()}
		case len(expr) == 0:
			pc = piece{rec: OptimizedOut}
		default:
			pc = ev.location(expr, size)
		}
	}
	out.Recovered, out.Location, out.Reason = pc.rec, pc.where, pc.why
	if pc.rec.Known() {
		out.Value = p.format(t, pc.b, 0)
	}
	return out
}

// maxVLA bounds the bytes of a variable-length array that are read.
const maxVLA = 1 << 16

// vlaCount returns the element count of the variable-length array type at
// off (through typedefs and qualifiers): its DW_AT_count or DW_AT_upper_bound
// is a constant, an expression, or a variable of the frame, evaluated here.
func (ev *evaluator) vlaCount(off dwarf.Offset) (int64, bool) {
	r := ev.x.d.Reader()
	for depth := 0; depth < 8; depth++ {
		r.Seek(off)
		e, err := r.Next()
		if err != nil || e == nil {
			return 0, false
		}
		if e.Tag != dwarf.TagArrayType {
			next, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
			if !ok {
				return 0, false
			}
			off = next
			continue
		}
		if !e.Children {
			return 0, false
		}
		sub, err := r.Next()
		if err != nil || sub == nil || sub.Tag != dwarf.TagSubrangeType {
			return 0, false
		}
		attr, plus := dwarf.AttrCount, int64(0)
		if sub.AttrField(attr) == nil {
			attr, plus = dwarf.AttrUpperBound, 1
		}
		var n int64
		switch b := sub.Val(attr).(type) {
		case int64:
			n = b
		case []byte:
			p := ev.segment(b, 8, true)
			if !p.rec.Known() {
				return 0, false
			}
			n = int64(binary.LittleEndian.Uint64(p.b))
		case dwarf.Offset:
			r.Seek(b)
			ve, err := r.Next()
			if err != nil || ve == nil {
				return 0, false
			}
			v := ev.x.readVar(ve)
			expr, err := ev.exprAt(v.loc, v.locClass)
			if err != nil || len(expr) == 0 {
				return 0, false
			}
			p := ev.location(expr, 8)
			if !p.rec.Known() {
				return 0, false
			}
			n = int64(binary.LittleEndian.Uint64(p.b))
		default:
			return 0, false
		}
		n += plus
		return n, n >= 0 && n <= maxVLA
	}
	return 0, false
}

// exprAt returns the location expression in force at the frame's pc: the
// exprloc itself, or the location-list entry covering it (nil when none:
// optimized out there).
func (ev *evaluator) exprAt(loc any, class dwarf.Class) ([]byte, error) {
	switch l := loc.(type) {
	case []byte:
		return l, nil
	case int64:
		return ev.listEntry(l, class)
	case uint64:
		return ev.listEntry(int64(l), class)
	}
	return nil, fmt.Errorf("unsupported location form %T", loc)
}

func (ev *evaluator) listEntry(off int64, class dwarf.Class) (expr []byte, err error) {
	vs := &ev.x.vars
	key := exprKey{off, ev.link}
	if class == dwarf.ClassLocList {
		key.off = -1 - off // an index, not an offset
	}
	if e, ok := vs.exprs[key]; ok {
		return e, nil
	}
	defer func() {
		if err != nil {
			return
		}
		if vs.exprs == nil || len(vs.exprs) >= maxExprCache {
			vs.exprs = make(map[exprKey][]byte)
		}
		vs.exprs[key] = expr
	}()
	defer func() {
		if p := recover(); p != nil {
			expr, err = nil, fmt.Errorf("malformed location list at %#x", off)
		}
	}()
	uv := vs.unitOf(ev.u)
	if uv.version >= 5 {
		if vs.lists == nil {
			return nil, errors.New("no .debug_loclists")
		}
		if class == dwarf.ClassLocList { // DW_FORM_loclistx: an index
			i := uv.listsBase + uint64(off)*4
			if i+4 > uint64(len(vs.lists)) {
				return nil, fmt.Errorf("loclistx %d out of range", off)
			}
			off = int64(uv.listsBase) + int64(binary.LittleEndian.Uint32(vs.lists[i:]))
		}
		if off < 0 || off >= int64(len(vs.lists)) {
			return nil, fmt.Errorf("location list offset %#x out of range", off)
		}
		var da *godwarf.DebugAddr
		if vs.addr != nil {
			da = godwarf.ParseAddr(vs.addr).GetSubsection(uv.addrBase)
		}
		if vs.lists5 == nil {
			vs.lists5 = loclist.NewDwarf5Reader(vs.lists)
		}
		e, err := vs.lists5.Find(int(off), 0, uv.base, ev.link, da)
		if err != nil || e == nil {
			return nil, err
		}
		return e.Instr, nil
	}
	if vs.loc == nil || off < 0 || off >= int64(len(vs.loc)) {
		return nil, fmt.Errorf("location list offset %#x out of range", off)
	}
	e, err := loclist.NewDwarf2Reader(vs.loc, 8).Find(int(off), 0, uv.base, ev.link, nil)
	if err != nil || e == nil {
		return nil, err
	}
	return e.Instr, nil
}

// location evaluates a location expression for a value of size bytes.
func (ev *evaluator) location(expr []byte, size int) piece {
	if size <= 0 {
		size = 8
	}
	segs, err := splitPieces(expr)
	if err != nil {
		return piece{rec: NotRecovered, why: err.Error()}
	}
	if len(segs) == 1 && segs[0].size == 0 {
		segs[0].size = size
	}
	out := piece{b: make([]byte, 0, size)}
	var missing, known int
	for _, sg := range segs {
		p := ev.segment(sg.expr, sg.size, false)
		if p.rec == NotRecovered {
			return p
		}
		if out.where != "" {
			out.where += ", "
		}
		switch {
		case p.rec == OptimizedOut:
			missing++
			out.where += "<optimized out>"
			p.b = make([]byte, sg.size)
		default:
			known++
			out.where += p.where
			switch {
			case out.rec == 0:
				out.rec = p.rec
			case out.rec != p.rec && p.rec == RecoveredEntryValue:
				out.rec = p.rec
			case out.rec != p.rec && out.rec != RecoveredEntryValue:
				out.rec = RecoveredComputed
			}
		}
		out.b = append(out.b, p.b...)
	}
	if known == 0 || missing > 0 && len(segs) == 1 {
		return piece{rec: OptimizedOut}
	}
	if missing > 0 {
		// Parts of the object are gone: print nothing rather than zeros.
		return piece{rec: OptimizedOut, where: out.where}
	}
	if len(out.b) < size {
		// The pieces do not describe the whole object.
		return piece{rec: OptimizedOut, where: out.where}
	}
	out.b = out.b[:size]
	return out
}

type segment struct {
	expr []byte
	size int // 0: the whole object
}

// splitPieces splits a composite location at its DW_OP_piece operations.
func splitPieces(expr []byte) ([]segment, error) {
	var segs []segment
	start := 0
	for i := 0; i < len(expr); {
		code := expr[i]
		next, err := opEnd(expr, i)
		if err != nil {
			return nil, err
		}
		switch code {
		case dwOpPiece:
			n, _ := leb128.Unsigned(expr[i+1:])
			if n == 0 || n > 1<<16 {
				return nil, fmt.Errorf("DW_OP_piece of %d bytes", n)
			}
			segs = append(segs, segment{expr: expr[start:i], size: int(n)})
			start = next
		case dwOpBitPiece:
			return nil, errors.New("DW_OP_bit_piece not supported")
		}
		i = next
	}
	if start < len(expr) || len(segs) == 0 {
		segs = append(segs, segment{expr: expr[start:]})
	}
	return segs, nil
}

// DWARF expression opcodes this file looks at.
const (
	dwOpAddr           = 0x03
	dwOpDeref          = 0x06
	dwOpConst8u        = 0x0e
	dwOpReg0           = 0x50
	dwOpReg31          = 0x6f
	dwOpBreg0          = 0x70
	dwOpBreg31         = 0x8f
	dwOpRegx           = 0x90
	dwOpFbreg          = 0x91
	dwOpBregx          = 0x92
	dwOpPiece          = 0x93
	dwOpDerefSize      = 0x94
	dwOpCallFrameCFA   = 0x9c
	dwOpBitPiece       = 0x9d
	dwOpImplicitValue  = 0x9e
	dwOpStackValue     = 0x9f
	dwOpImplicitPtr    = 0xa0
	dwOpEntryValue     = 0xa3
	dwOpGNUImplicitPtr = 0xf2
	dwOpGNUEntryValue  = 0xf3
)

// segment evaluates one piece's expression. asValue evaluates a
// DW_AT_call_value or DW_AT_call_target: the result is the value itself,
// not an address to read.
func (ev *evaluator) segment(expr []byte, size int, asValue bool) piece {
	if len(expr) == 0 {
		return piece{rec: OptimizedOut}
	}
	if r, ok := singleReg(expr); ok {
		v, known := ev.fr.Regs.Get(ptregs.Reg(r))
		if r >= ptregs.NumRegs || !known {
			return piece{rec: NotRecovered, where: regName(r), why: regName(r) + " not recovered in this frame"}
		}
		return piece{b: leBytes(v, size), rec: RecoveredRegister, where: regName(r)}
	}
	// Check every operation, resolve entry values, and note what the
	// expression reads.
	var prog []byte
	usesEntry, usesState, stackValue := false, false, false
	where := ""
	for i := 0; i < len(expr); {
		code := expr[i]
		next, err := opEnd(expr, i)
		if err != nil {
			return piece{rec: NotRecovered, why: err.Error()}
		}
		switch {
		case code == dwOpEntryValue || code == dwOpGNUEntryValue:
			n, k := leb128.Unsigned(expr[i+1:])
			blk := expr[i+1+k : i+1+k+int(n)]
			v, w, err := ev.entryValue(blk)
			if err != nil {
				return piece{rec: NotRecovered, where: w, why: err.Error()}
			}
			if prog == nil {
				prog = append([]byte(nil), expr[:i]...)
			}
			prog = append(prog, dwOpConst8u)
			prog = binary.LittleEndian.AppendUint64(prog, v)
			usesEntry, where = true, w
			i = next
			continue
		case code == dwOpImplicitPtr || code == dwOpGNUImplicitPtr:
			return piece{rec: OptimizedOut, where: "<synthetic pointer>"}
		case code >= dwOpBreg0 && code <= dwOpBreg31 || code == dwOpBregx:
			r := uint64(code - dwOpBreg0)
			if code == dwOpBregx {
				r, _ = leb128.Unsigned(expr[i+1:])
			}
			if r >= ptregs.NumRegs || !ev.fr.Regs.Valid(ptregs.Reg(r)) {
				return piece{rec: NotRecovered, where: regName(r), why: regName(r) + " not recovered in this frame"}
			}
			usesState = true
			if where == "" {
				where = regName(r)
			}
		case code >= dwOpReg0 && code <= dwOpReg31 || code == dwOpRegx:
			return piece{rec: NotRecovered, why: "register location inside an expression"}
		case code == dwOpFbreg:
			if err := ev.frameBase(); err != nil {
				return piece{rec: NotRecovered, where: "frame base", why: err.Error()}
			}
			usesState = true
		case code == dwOpCallFrameCFA:
			if ev.cfa == 0 {
				return piece{rec: NotRecovered, where: "cfa", why: "the frame's CFA is unknown"}
			}
			usesState = true
		case code == dwOpDeref || code == dwOpDerefSize || code == dwOpAddr:
			usesState = true
		case code == dwOpStackValue:
			stackValue = true
		case !opSupported(code):
			return piece{rec: NotRecovered, why: fmt.Sprintf("DW_OP %#x not supported", code)}
		}
		if prog != nil {
			prog = append(prog, expr[i:next]...)
		}
		i = next
	}
	if prog == nil {
		prog = expr
	}
	addr, pieces, err := ev.run(prog)
	if err != nil {
		return piece{rec: NotRecovered, where: where, why: err.Error()}
	}
	rec := RecoveredComputed
	switch {
	case usesEntry:
		rec = RecoveredEntryValue
		where = "entry_value(" + where + ")"
	case !usesState:
		rec = RecoveredConstant
		where = "constant"
	default:
		where = "computed"
	}
	if len(pieces) > 0 {
		pc := pieces[0]
		if pc.Kind == op.ImmPiece && pc.Bytes != nil {
			return piece{b: fit(pc.Bytes, size), rec: rec, where: where}
		}
		return piece{b: leBytes(pc.Val, size), rec: rec, where: where}
	}
	if stackValue || asValue {
		return piece{b: leBytes(uint64(addr), size), rec: rec, where: where}
	}
	// A memory location.
	a := uint64(addr)
	b := make([]byte, size)
	if ev.mem == nil {
		return piece{rec: NotRecovered, where: fmt.Sprintf("%#x", a), why: "no memory"}
	}
	if n, err := ev.mem.ReadAt(b, a); n != size {
		why := fmt.Sprintf("cannot read memory at %#x", a)
		if err != nil {
			why += ": " + err.Error()
		}
		return piece{rec: NotRecovered, where: fmt.Sprintf("%#x", a), why: why}
	}
	if !usesEntry {
		rec = RecoveredStack
	}
	if usesEntry {
		where = fmt.Sprintf("%#x (%s)", a, where)
	} else {
		where = fmt.Sprintf("%#x", a)
	}
	return piece{b: b, rec: rec, where: where}
}

// run executes a checked expression with delve's evaluator.
func (ev *evaluator) run(prog []byte) (addr int64, pieces []op.Piece, err error) {
	defer func() {
		if p := recover(); p != nil {
			addr, pieces, err = 0, nil, fmt.Errorf("malformed DWARF expression: %v", p)
		}
	}()
	regs := make([]*op.DwarfRegister, ptregs.NumRegs)
	for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
		if v, ok := ev.fr.Regs.Get(r); ok {
			regs[r] = op.DwarfRegisterFromUint64(v)
		}
	}
	dr := op.NewDwarfRegisters(ev.f.Bias, regs, binary.LittleEndian, uint64(ptregs.RIP), uint64(ptregs.RSP), uint64(ptregs.RBP), 0)
	dr.CFA = int64(ev.cfa)
	dr.FrameBase = ev.fb
	read := func(b []byte, a uint64) (int, error) {
		if ev.mem == nil {
			return 0, errors.New("no memory")
		}
		n, err := ev.mem.ReadAt(b, a)
		if n != len(b) {
			if err == nil {
				err = fmt.Errorf("short read at %#x", a)
			}
			return n, fmt.Errorf("cannot read memory at %#x: %w", a, err)
		}
		return n, nil
	}
	return op.ExecuteStackProgram(*dr, prog, 8, read)
}

// frameBase evaluates the physical function's DW_AT_frame_base once.
func (ev *evaluator) frameBase() error {
	if ev.fbSet {
		return ev.fbErr
	}
	ev.fbSet = true
	if ev.phys == nil || ev.phys.frameBase == nil {
		ev.fbErr = errors.New("no DW_AT_frame_base")
		return ev.fbErr
	}
	expr, err := ev.exprAt(ev.phys.frameBase, ev.phys.fbClass)
	if err != nil || len(expr) == 0 {
		ev.fbErr = errors.New("no frame base at this pc")
		return ev.fbErr
	}
	if bytes.Contains(expr, []byte{dwOpFbreg}) && expr[0] == dwOpFbreg {
		ev.fbErr = errors.New("recursive frame base")
		return ev.fbErr
	}
	if r, ok := singleReg(expr); ok {
		v, known := ev.fr.Regs.Get(ptregs.Reg(r))
		if r >= ptregs.NumRegs || !known {
			ev.fbErr = fmt.Errorf("frame base register %s not recovered in this frame", regName(r))
			return ev.fbErr
		}
		ev.fb = int64(v)
		return nil
	}
	p := ev.segment(expr, 8, true)
	if !p.rec.Known() {
		ev.fbErr = fmt.Errorf("frame base: %s", p.why)
		return ev.fbErr
	}
	ev.fb = int64(binary.LittleEndian.Uint64(p.b))
	return nil
}

// entryValue resolves DW_OP_entry_value(blk): the value the register blk
// names had when this function was entered, from the caller's call site.
func (ev *evaluator) entryValue(blk []byte) (uint64, string, error) {
	r, ok := singleReg(blk)
	if !ok {
		return 0, "entry_value", errors.New("entry value of a non-register location not supported")
	}
	w := regName(r)
	if ev.depth >= maxEntryDepth {
		return 0, w, errors.New("entry values nested too deep")
	}
	c := ev.fr.Caller
	if c == nil {
		return 0, w, errors.New("no caller frame reached by a call: the entry value is unknown")
	}
	ce := ev.s.evaluator(c, ev.mem)
	if ce == nil || ce.phys == nil {
		return 0, w, errors.New("no DWARF for the caller")
	}
	ce.depth = ev.depth + 1
	site := ce.phys.calls[c.PC-ce.f.Bias]
	if site == nil {
		return 0, w, fmt.Errorf("no call site at the caller's return address %#x", c.PC)
	}
	if site.tail {
		return 0, w, errors.New("the call site is a tail call")
	}
	// The call site must be the call of this function: a tail call in
	// between would make it another's.
	callee := ev.phys
	switch {
	case site.origin != 0:
		name := ce.x.nameOf(site.origin)
		if name == "" || !callee.named(name) {
			// The caller called T, which tail-called this function: T's
			// one tail call to it says what it passed, in terms of T's
			// entry values, which the caller's call site gives.
			if v, ok, err := ev.viaTailCall(ce, c, site, r); ok || err != nil {
				return v, w, err
			}
			return 0, w, fmt.Errorf("the caller's call site calls %s, not %s", orQ(name), orQ(callee.name))
		}
	case site.target != nil:
		p := ce.segment(site.target, 8, true)
		if !p.rec.Known() {
			return 0, w, fmt.Errorf("the caller's indirect call target is unknown: %s", p.why)
		}
		if t := binary.LittleEndian.Uint64(p.b); callee.entry == 0 || t != callee.entry+ev.f.Bias {
			return 0, w, fmt.Errorf("the caller's indirect call went to %#x, not %s", t, orQ(callee.name))
		}
	default:
		return 0, w, errors.New("the caller's call site does not say what it calls")
	}
	return siteValue(ce, site, r, w)
}

// siteValue evaluates, in the caller ce, what call site site passed in
// register r.
func siteValue(ce *evaluator, site *callSite, r uint64, w string) (uint64, string, error) {
	for _, prm := range site.params {
		if pr, ok := singleReg(prm.loc); !ok || pr != r {
			continue
		}
		if prm.value == nil {
			break
		}
		p := ce.segment(prm.value, 8, true)
		if !p.rec.Known() {
			if strings.HasPrefix(p.why, "caller's value of") {
				return 0, w, errors.New(p.why)
			}
			return 0, w, fmt.Errorf("caller's value of %s: %s", w, orQ(p.why))
		}
		return binary.LittleEndian.Uint64(p.b), w, nil
	}
	return 0, w, fmt.Errorf("the caller's call site does not say what it passed in %s", w)
}

// named reports whether the function is known by name n.
func (fv *funcVars) named(n string) bool {
	for _, m := range fv.names {
		if m == n {
			return true
		}
	}
	return false
}

// viaTailCall resolves an entry value across one tail call: the caller
// (evaluator ce, frame c) called T at site, and T, defined in the caller's
// file, tail-called this function from exactly one site. That site's value
// for register r is evaluated in a frame of T with no registers, so only
// its entry values (through c's call site, which does call T) and
// constants count. ok is false when the chain is not of that shape.
func (ev *evaluator) viaTailCall(ce *evaluator, c *VarFrame, site *callSite, r uint64) (uint64, bool, error) {
	w := regName(r)
	tf := ce.x.vars.funcs[site.origin]
	if tf == nil {
		// T's DIE: read it as a function when it is a definition.
		tf = ce.x.functionAt(ce.u, site.origin)
	}
	if tf == nil || tf.entry == 0 {
		return 0, false, nil
	}
	var tail *callSite
	for _, ts := range tf.tails {
		if ts.origin != 0 && ev.phys.named(ce.x.nameOf(ts.origin)) {
			if tail != nil {
				return 0, false, nil // two tail calls to it: which one ran is unknown
			}
			tail = ts
		}
	}
	if tail == nil {
		return 0, false, nil
	}
	var none ptregs.Regs
	tfr := &VarFrame{PC: tf.entry + ce.f.Bias, LookupPC: tf.entry + ce.f.Bias, Regs: &none, Caller: c}
	te := ev.s.evaluator(tfr, ev.mem)
	if te == nil || te.phys == nil || te.phys.off != tf.off {
		return 0, false, nil
	}
	te.depth = ev.depth + 1
	v, _, err := siteValue(te, tail, r, w)
	if err != nil {
		return 0, true, fmt.Errorf("through the tail call in %s: %v", orQ(tf.name), err)
	}
	return v, true, nil
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// singleReg reports whether expr is exactly DW_OP_regN or DW_OP_regx N.
func singleReg(expr []byte) (uint64, bool) {
	if len(expr) == 1 && expr[0] >= dwOpReg0 && expr[0] <= dwOpReg31 {
		return uint64(expr[0] - dwOpReg0), true
	}
	if len(expr) > 1 && expr[0] == dwOpRegx {
		r, n := leb128.Unsigned(expr[1:])
		if n > 0 && 1+n == len(expr) {
			return r, true
		}
	}
	return 0, false
}

func regName(r uint64) string {
	switch {
	case r < ptregs.NumRegs:
		return ptregs.Reg(r).String()
	case r >= 17 && r <= 32:
		return fmt.Sprintf("xmm%d", r-17)
	case r >= 33 && r <= 40:
		return fmt.Sprintf("st%d", r-33)
	}
	return fmt.Sprintf("reg%d", r)
}

func leBytes(v uint64, size int) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	if size > 8 {
		out := make([]byte, size)
		copy(out, b[:])
		return out
	}
	return append([]byte(nil), b[:size]...)
}

func fit(b []byte, size int) []byte {
	out := make([]byte, size)
	copy(out, b)
	return out
}

// constBytes turns a DW_AT_const_value into size bytes.
func constBytes(v any, size int) []byte {
	if size <= 0 {
		size = 8
	}
	switch c := v.(type) {
	case int64:
		return leBytes(uint64(c), size)
	case uint64:
		return leBytes(c, size)
	case []byte:
		return fit(c, size)
	}
	return make([]byte, size)
}

// opEnd returns the offset just past the operation at expr[i].
func opEnd(expr []byte, i int) (int, error) {
	code := expr[i]
	j := i + 1
	rest := expr[j:]
	need := func(n int) (int, error) {
		if n <= 0 || n > len(rest) {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		return j + n, nil
	}
	lebs := func(k int) (int, error) { // k LEB128 operands
		n := 0
		for ; k > 0; k-- {
			_, m := leb128.Signed(rest[n:])
			if m == 0 {
				return 0, fmt.Errorf("truncated DW_OP %#x", code)
			}
			n += m
		}
		return j + n, nil
	}
	switch {
	case code == dwOpAddr, code == dwOpConst8u, code == 0x0f:
		return need(8)
	case code == 0x08, code == 0x09, code == 0x15, code == dwOpDerefSize, code == 0x95:
		return need(1)
	case code == 0x0a, code == 0x0b, code == 0x28, code == 0x2f, code == 0x98:
		return need(2)
	case code == 0x0c, code == 0x0d, code == 0x99, code == 0x9a, code == 0xfa:
		return need(4)
	case code == 0x10, code == 0x11, code == 0x23, code == dwOpRegx, code == dwOpFbreg, code == dwOpPiece,
		code == 0xa1, code == 0xa2, code == 0xa8, code == 0xa9, code == 0xf7, code == 0xf9, code == 0xfb, code == 0xfc:
		return lebs(1)
	case code >= dwOpBreg0 && code <= dwOpBreg31:
		return lebs(1)
	case code == dwOpBregx, code == dwOpBitPiece, code == 0xa5, code == 0xf5:
		return lebs(2)
	case code == dwOpImplicitValue, code == dwOpEntryValue, code == dwOpGNUEntryValue:
		n, k := leb128.Unsigned(rest)
		if k == 0 {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		return need(k + int(n))
	case code == dwOpImplicitPtr, code == dwOpGNUImplicitPtr:
		if len(rest) < 4 {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		_, m := leb128.Signed(rest[4:])
		if m == 0 {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		return j + 4 + m, nil
	case code == 0xa6, code == 0xf6: // deref_type: size, type
		if len(rest) < 1 {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		_, m := leb128.Signed(rest[1:])
		if m == 0 {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		return j + 1 + m, nil
	case code == 0xa4, code == 0xf4: // const_type: type, size, block
		_, m := leb128.Signed(rest)
		if m == 0 || m >= len(rest) {
			return 0, fmt.Errorf("truncated DW_OP %#x", code)
		}
		return need(m + 1 + int(rest[m]))
	}
	return j, nil
}

// opSupported reports whether delve's evaluator runs the operation.
func opSupported(code byte) bool {
	switch {
	case code == dwOpAddr, code == dwOpDeref:
		return true
	case code == 0x28 || code == 0x2f:
		// DW_OP_bra and DW_OP_skip could jump into an operand this
		// package did not check (a huge DW_OP_implicit_value length).
		return false
	case code >= 0x08 && code <= 0x96:
		return code != dwOpPiece
	case code == dwOpCallFrameCFA, code == dwOpImplicitValue, code == dwOpStackValue:
		return true
	}
	return false
}
