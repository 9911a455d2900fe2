package unwind

import (
	"errors"
	"slices"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// The per-PC caches of an Unwinder. They survive Reset, so a reused
// Unwinder (a verify loop unwinding at every instruction boundary, a tool
// walking every thread of a dump) makes almost no Code calls once warm.
//
// A cache only remembers what cannot change between walks: what the Code
// says (symbols, CFI, machine code from the file, text ranges) and what the
// stack-bounds oracle says. Whatever depends on the target's memory is
// either recomputed at every use or cached together with the bytes it was
// computed from, which are read again and compared: a live target (the
// emulator) patches its own code between two walks.

// caches are the per-PC caches of an Unwinder (about 550 KiB). A fresh
// Unwinder walks its first cacheAfter frames without them, so a one-shot
// Walk of a short stack stays cheap.
type caches struct {
	pcs    [1 << pcBits]pcEntry
	rows   rowCache
	calls  callCache
	stacks stackCache
	crows  crowPool
	// analyses are the positions of the last prologue analyses, by
	// function start.
	analyses analyses
}

// analyses keeps the analysis positions of a few functions.
type analyses struct {
	fn   [8]uint64
	a    [8]analysis
	next int
}

// get returns the analysis position of the function starting at fn.
func (as *analyses) get(fn uint64) *analysis {
	for i := range as.fn {
		if as.fn[i] == fn && as.a[i].started {
			return &as.a[i]
		}
	}
	i := as.next
	as.next = (as.next + 1) % len(as.fn)
	as.fn[i], as.a[i] = fn, analysis{}
	return &as.a[i]
}

const cacheAfter = 24

// slot hashes a key into a cache of 1<<bits entries.
func slot(key uint64, bits uint) uint64 { return (key * 0x9e3779b97f4a7c15) >> (64 - bits) }

const pcBits = 11

// pcEntry holds what a warm walk needs about one frame PC reached with one
// lookup PC (PC itself, or PC-1 for a return address): the symbol, the
// entry stub it belongs to, the CFI row in compact form, the prologue
// analysis, the start of the function, and the call-site verdict for PC as
// a return address. A step checks the call site of the caller's PC, the
// caller's emit looks its symbol up and its own step uses the rest: one
// entry serves the whole frame. It is three cache lines: what every step
// reads, the symbol emit copies, what entry frames and misses need.
type pcEntry struct {
	pc      uint64
	fnStart uint64 // start of the enclosing function (efFn)
	callee  uint64 // the callee the call-site verdict is for (efCall)
	flags   entryFlags
	row     int32   // the compact CFI row in the pool (efRow)
	rowGen  uint32  // the pool generation row belongs to
	delta   uint8   // pc minus the lookup PC: 0 or 1
	callWin [9]byte // the memory the call-site verdict was decoded from
	st0     frameState

	sym   symbols.Sym    // efSym
	lines []symbols.Line // efLines: LineSource.Lines at the lookup PC (read only)

	stub   string // the symbol name entry-frame detection uses (efStub)
	entry  string // entryFromSymbol(stub)
	rowErr error  // FindCFI's error (efRowMiss)
	st1    frameState
	orc    symbols.ORCEntry // the ORC entry at the lookup PC (efORC)
}

// entryFlags say which fields of a pcEntry are filled, and hold its
// booleans.
type entryFlags uint32

const (
	efValid     entryFlags = 1 << iota
	efSym                  // sym is set (symOK says whether there is one)
	efSymOK                //
	efStub                 // stub and entry are set
	efOut                  // efOutermost is set
	efOutermost            // the function is one a stack ends in
	efFn                   // fnStart is set
	efSt0                  // st0 is set (no int3 before the PC)
	efSt1                  // st1 is set (an int3 before the PC)
	efCall                 // the call-site verdict is set
	efCallOK               // the verdict
	efCallMem              // callWin was read (9 bytes), else it could not be
	efTramp                // efTrampOK is set
	efTrampOK              // the PC is __restore_rt
	efRT                   // efRetText is set
	efRetText              // IsText(pc-1): pc can be a return address
	efRow                  // row (or rowErr) is set
	efRowMiss              // no row: rowErr says why
	efSite                 // the call-site check's verdict for pc as a return address is set (callWin)
	efSiteOK               // the verdict
	efSiteRule             // it passed by rule (no call in memory)
	efORC                  // orc is set (efORCOK says whether there is one)
	efORCOK                //
	efLines                // lines is set
)

func (e *pcEntry) has(f entryFlags) bool { return e.flags&f != 0 }

// set sets flag f and makes flag v say b.
func (e *pcEntry) set(f, v entryFlags, b bool) {
	e.flags |= f
	if b {
		e.flags |= v
	} else {
		e.flags &^= v
	}
}

// entry returns the cache entry of a frame at pc with lookup PC lookup,
// emptied when it held another frame.
func (u *Unwinder) entry(pc, lookup uint64) *pcEntry {
	d := pc - lookup
	e := &u.c.pcs[slot(pc^d<<40, pcBits)]
	if e.pc == pc && uint64(e.delta) == d && e.flags&efValid != 0 {
		return e
	}
	return u.newEntry(e, pc, d)
}

func (u *Unwinder) newEntry(e *pcEntry, pc, d uint64) *pcEntry {
	if d > 1 {
		// Not a lookup PC a frame has: nothing is kept.
		e = &u.noEntry
	}
	*e = pcEntry{pc: pc, delta: uint8(d), flags: efValid}
	return e
}

// textSymbol returns the symbol containing pc when pc is code: a data
// symbol that happens to cover a bad PC (0, a user address in a kernel
// walk) is not its name.
func (u *Unwinder) textSymbol(pc uint64) (symbols.Sym, bool) {
	if !u.opts.Code.IsText(pc) {
		return symbols.Sym{}, false
	}
	return u.opts.Code.Symbol(pc)
}

// frameSymbol fills f.Sym, f.SymOK and f.Function for f.LookupPC.
func (u *Unwinder) frameSymbol(f *Frame) {
	if u.c == nil {
		f.Sym, f.SymOK = u.textSymbol(f.LookupPC)
		if f.SymOK {
			f.Function = f.Sym.Name
		}
		return
	}
	e := u.entry(f.PC, f.LookupPC)
	if !e.has(efSym) {
		var ok bool
		e.sym, ok = u.textSymbol(f.LookupPC)
		e.set(efSym, efSymOK, ok)
	}
	f.SymOK = e.has(efSymOK)
	if f.SymOK {
		f.Sym = e.sym
		f.Function = e.sym.Name // from the entry: the copy's stores are in flight
	}
}

// frameLines returns the source lines at f.LookupPC (LineSource.Lines),
// looked up once per frame PC when the caches are on. The caller must not
// modify or append to them.
func (u *Unwinder) frameLines(f *Frame) []symbols.Line {
	if u.c == nil {
		u.lineBuf = u.lines.Lines(f.LookupPC, u.lineBuf[:0])
		return u.lineBuf
	}
	e := u.entry(f.PC, f.LookupPC)
	if !e.has(efLines) {
		e.lines = slices.Clip(u.lines.Lines(f.LookupPC, nil))
		e.flags |= efLines
	}
	return e.lines
}

// stubOf returns the name of the function an emitted frame is in, as the
// entry-frame signals use it (the frame's symbol, else any symbol at its
// lookup PC), and the entry that name belongs to ("" for no entry stub).
func (u *Unwinder) stubOf(f *Frame) (stub, entry string) {
	if u.c == nil {
		stub = u.stubName(f)
		return stub, u.entryOf(stub)
	}
	e := u.entry(f.PC, f.LookupPC)
	if !e.has(efStub) {
		e.stub = u.stubName(f)
		e.entry = u.entryOf(e.stub)
		e.flags |= efStub
	}
	return e.stub, e.entry
}

func (u *Unwinder) stubName(f *Frame) string {
	if f.SymOK {
		return f.Sym.Name
	}
	if c := u.opts.Code; c != nil {
		if s, ok := c.Symbol(f.LookupPC); ok {
			return s.Name
		}
	}
	return ""
}

// outermost reports whether f is in a function a stack legitimately ends
// in (outermostFuncs).
func (u *Unwinder) outermost(f *Frame) bool {
	c := u.opts.Code
	if c == nil {
		return false
	}
	if u.c == nil {
		s, ok := c.Symbol(f.LookupPC)
		return ok && outermostFuncs[s.Name]
	}
	e := u.entry(f.PC, f.LookupPC)
	if !e.has(efOut) {
		s, ok := c.Symbol(f.LookupPC)
		e.set(efOut, efOutermost, ok && outermostFuncs[s.Name])
	}
	return e.has(efOutermost)
}

// calleeStart returns the start of the function the frame is in (the
// enclosing function of a label), 0 when unknown.
func (u *Unwinder) calleeStart(f *Frame) uint64 {
	if u.opts.Code == nil {
		return 0
	}
	if u.c != nil {
		e := u.entry(f.PC, f.LookupPC)
		if !e.has(efFn) {
			e.fnStart = u.funcStart(f)
			e.flags |= efFn
		}
		return e.fnStart
	}
	return u.funcStart(f)
}

// frameStateAt analyses the function containing the current frame's PC.
// The result points into the cache (or u.stBuf): copy it before the next
// cache lookup. (A pointer, not a value: a returned frameState goes
// through the stack in pieces and costs a store-forwarding stall.)
func (u *Unwinder) frameStateAt(f *Frame) *frameState {
	if u.opts.Code == nil {
		u.stBuf = frameState{}
		return &u.stBuf
	}
	int3 := u.int3Before(f)
	if u.c == nil {
		u.stBuf = u.analyze(f, int3)
		return &u.stBuf
	}
	e := u.entry(f.PC, f.LookupPC)
	if int3 {
		if !e.has(efSt1) {
			e.st1 = u.analyze(f, true)
			e.flags |= efSt1
		}
		return &e.st1
	}
	if !e.has(efSt0) {
		e.st0 = u.analyze(f, false)
		e.flags |= efSt0
	}
	return &e.st0
}

// int3Before reports whether an interrupted frame stopped right after an
// int3 in memory (an instruction being patched). It is read at every
// step: the target may patch its code between two walks.
func (u *Unwinder) int3Before(f *Frame) bool {
	if f.Kind != KindInterrupted || f.PC == 0 || u.mem == nil {
		return false
	}
	n, _ := u.readAt(u.word[:1], f.PC-1)
	return n == 1 && u.word[0] == 0xcc
}

// atRestoreRTCached is atRestoreRT, remembered per PC when the answer
// came from the Code's bytes (memory can change).
func (u *Unwinder) atRestoreRTCached(pc uint64) bool {
	if u.c == nil {
		return u.atRestoreRT(pc)
	}
	e := u.entry(pc, pc-1)
	if !e.has(efTramp) {
		if !u.restoreRTStatic(pc) {
			return u.atRestoreRT(pc)
		}
		e.set(efTramp, efTrampOK, u.atRestoreRT(pc))
	}
	return e.has(efTrampOK)
}

// setCall records the call-site verdict for callee, decoded from the n
// bytes of win.
func (e *pcEntry) setCall(callee uint64, ok bool, n uint8, win *[9]byte) {
	if e.callWin != *win || e.has(efCallMem) != (n == 9) {
		e.flags &^= efSite | efSiteOK | efSiteRule // decoded from other bytes
	}
	e.callee, e.callWin = callee, *win
	e.set(efCall, efCallOK, ok)
	e.set(0, efCallMem, n == 9)
}

// callCache remembers call-site verdicts for a second callee of a return
// address (a scan, a retried strategy): the pcEntry keeps the first.
type callCache [1024]struct {
	ra, callee uint64
	set, ok    bool
	n          uint8
	win        [9]byte
}

// callsiteOK reports whether ra is a plausible return address for a frame
// whose callee (the frame below) starts at callee (0 when unknown): ra is
// text, the bytes before it are a call, and a direct call's target is the
// callee, a stub in front of it (PLT entry, thunk, static-call trampoline),
// or the parent of its .cold/.part clone. A cached verdict is used only
// while the bytes before ra in memory are those it was decoded from.
func (u *Unwinder) callsiteOK(ra, callee uint64) bool {
	var win [9]byte
	n := u.callWindow(ra, &win)
	if u.c == nil {
		ok, _ := u.sharedCallsite(ra, callee, &win, n)
		return ok
	}
	e := u.entry(ra, ra-1)
	if e.has(efCall) && e.callee == callee && e.has(efCallMem) == (n == 9) && e.callWin == win {
		return e.has(efCallOK)
	}
	c := &u.c.calls[slot(ra^callee<<1, 10)]
	if c.set && c.ra == ra && c.callee == callee && c.n == n && c.win == win {
		e.setCall(callee, c.ok, n, &win)
		return c.ok
	}
	ok, static := u.sharedCallsite(ra, callee, &win, n)
	if static {
		e.setCall(callee, ok, n, &win)
		c.ra, c.callee, c.set, c.ok, c.n, c.win = ra, callee, true, ok, n, win
	}
	return ok
}

// sharedCallsite is checkCallsite, kept in the Options.CodeCache when
// there is one.
func (u *Unwinder) sharedCallsite(ra, callee uint64, win *[9]byte, n uint8) (ok, static bool) {
	cc := u.opts.CodeCache
	if cc == nil {
		return u.checkCallsite(ra, callee, win, n)
	}
	k := callKey{site: siteKey{ra: ra, win: *win, n: n, kernel: u.opts.Kernel}, callee: callee}
	if v, found := cc.calls.load(k); found {
		return v, true
	}
	ok, static = u.checkCallsite(ra, callee, win, n)
	if static {
		cc.calls.store(k, ok)
	}
	return ok, static
}

// callWindow reads the 9 bytes before ra from memory into win: the longest
// call instruction that can end at ra. It returns 9, or 0 when they cannot
// be read (then win is zero).
func (u *Unwinder) callWindow(ra uint64, win *[9]byte) uint8 {
	if ra < 9 || u.mem == nil {
		return 0
	}
	if b := u.splicedAt(codeWin, ra-9, 9); b != nil {
		*win = [9]byte(b)
		return 9
	}
	if k, _ := u.readAt(u.callBuf[:], ra-9); k == len(u.callBuf) {
		*win = u.callBuf
		return 9
	}
	return 0
}

// stackCache remembers the stack-bounds oracle's answers per address.
type stackCache [1024]stackAnswer

// stackAnswer is the oracle's answer for addr, with the two questions the
// entry-frame code asks about every frame's SP answered in advance.
type stackAnswer struct {
	addr    uint64
	set, ok bool
	irqTop  bool // addr is the top word of an IRQ stack (fixIRQTop)
	taskTop bool // a pt_regs at addr ends at the top of a task stack
	s       Stack
}

func (a *stackAnswer) fill(addr uint64, sb StackBounds) {
	a.s, a.ok = sb.StackOf(addr)
	a.addr, a.set = addr, true
	a.irqTop = a.ok && a.s.Kind == StackIRQ && addr == a.s.Hi-8
	a.taskTop = a.ok && a.s.Kind == StackTask && addr+ptregs.PtRegsSize == a.s.Hi
}

// stackOf returns the known stack holding addr. In a user walk the
// sigaltstack, once known, comes first (the oracle does not know it), and
// a stack the oracle knows but cannot name is a user stack.
func (u *Unwinder) stackOf(addr uint64) (Stack, bool) {
	if u.opts.Stacks == nil {
		return Stack{}, false
	}
	if u.altOK && u.alt.holds(addr) {
		return u.alt, true
	}
	a := u.stackAt(addr)
	if a.ok && a.s.Kind == StackUnknown && !u.opts.Kernel {
		s := a.s
		s.Kind = StackUser
		return s, true
	}
	return a.s, a.ok
}

// stackAt returns the oracle's answer for addr (Options.Stacks must be
// set), valid until the next stackAt. The oracle is a function of the
// address: its answers are remembered, and the last two are tried first (a
// step asks about the caller's SP, the next step about the same SP again).
func (u *Unwinder) stackAt(addr uint64) *stackAnswer {
	if a := u.lastStack[0]; a != nil && a.addr == addr && a.set {
		return a
	}
	if a := u.lastStack[1]; a != nil && a.addr == addr && a.set {
		u.lastStack[0], u.lastStack[1] = a, u.lastStack[0]
		return a
	}
	var a *stackAnswer
	if u.c != nil {
		a = &u.c.stacks[slot(addr, 10)]
		if !a.set || a.addr != addr {
			a.fill(addr, u.opts.Stacks)
		}
	} else {
		// No caches: the two answers live in the Unwinder.
		a = &u.ownStack[0]
		if a == u.lastStack[0] {
			a = &u.ownStack[1]
		}
		a.fill(addr, u.opts.Stacks)
	}
	u.lastStack[0], u.lastStack[1] = a, u.lastStack[0]
	return a
}

// onKnownStack reports whether sp lies on a known stack.
func (u *Unwinder) onKnownStack(sp uint64) bool {
	return u.opts.Stacks != nil && u.stackAt(sp).ok
}

// crow is a CFI row in the form the fast step applies: the CFA rule, the
// same-value columns as a mask, the other defined columns in order, and
// what cfiStep needs to know of the rest.
type crow struct {
	fast    bool // CFA = reg+offset and only simple column rules
	cfaReg  uint8
	retReg  uint8        // the row's return-address column as given
	raKind  cfi.RuleKind // the rule of the return-address column (RIP when out of range)
	signal  bool         // the CIE is a signal frame's
	r15Full bool         // r15 saved at CFA-168: the whole pt_regs is saved
	rspCFA  bool         // RSP has no rule of its own: the caller's RSP is the CFA
	n       uint8        // rules used
	same    uint32       // the same-value columns (not in rules)
	spanN   uint16       // bytes from CFA+spanLo that hold every saved register (0: none, or too spread)
	cfaOff  int64
	raOff   int64 // the return-address column's offset when raKind is RuleOffset
	spanLo  int64
	rules   [cfi.NumCols]crule
}

// maxSpan bounds the bytes fastStep reads at once: a whole pt_regs.
const maxSpan = 256

// crule is one defined column of a crow.
type crule struct {
	col, reg uint8
	kind     cfi.RuleKind
	off      int64
}

// compile fills c from row.
func (c *crow) compile(row *symbols.CFIRow) {
	*c = crow{cfaReg: row.CFA.Reg, cfaOff: row.CFA.Offset, retReg: row.RetAddrReg, signal: row.SignalFrame}
	c.fast = row.CFA.Kind == cfi.RuleCFA
	for col := range row.Regs {
		r := &row.Regs[col]
		switch r.Kind {
		case cfi.RuleUndefined:
			continue
		case cfi.RuleSameValue:
			c.same |= 1 << col // copied in one go
			continue
		case cfi.RuleOffset, cfi.RuleValOffset, cfi.RuleRegister:
		default:
			c.fast = false
		}
		c.rules[c.n] = crule{col: uint8(col), reg: r.Reg, kind: r.Kind, off: r.Offset}
		c.n++
	}
	// The saved registers, read with one access when they lie close.
	lo, hi, any := int64(0), int64(0), false
	for _, r := range c.rules[:c.n] {
		if r.kind != cfi.RuleOffset {
			continue
		}
		if !any || r.off < lo {
			lo = r.off
		}
		if !any || r.off+8 > hi {
			hi = r.off + 8
		}
		any = true
	}
	if any && hi-lo <= maxSpan && hi > lo {
		c.spanLo, c.spanN = lo, uint16(hi-lo)
	}
	ra := row.RetAddrReg
	if int(ra) >= len(row.Regs) {
		ra = uint8(ptregs.RIP)
	}
	c.raKind, c.raOff = row.Regs[ra].Kind, row.Regs[ra].Offset
	r15 := row.Regs[ptregs.R15]
	c.r15Full = r15.Kind == cfi.RuleOffset && r15.Offset == -ptregs.PtRegsSize
	k := row.Regs[ptregs.RSP].Kind
	c.rspCFA = k == cfi.RuleUndefined || k == cfi.RuleSameValue
}

// findCRow returns the compact CFI row at the frame's lookup PC, or
// FindCFI's error. The row is valid until the next findCRow.
func (u *Unwinder) findCRow(f *Frame) (*crow, error) {
	if u.c == nil {
		if err := u.opts.Code.FindCFI(f.LookupPC, &u.rowBuf); err != nil {
			return nil, err
		}
		u.crowBuf.compile(&u.rowBuf)
		return &u.crowBuf, nil
	}
	e := u.entry(f.PC, f.LookupPC)
	p := &u.c.crows
	if !e.has(efRow) || !e.has(efRowMiss) && e.rowGen != p.gen {
		if err := u.opts.Code.FindCFI(f.LookupPC, &u.rowBuf); err != nil {
			e.rowErr = err
			e.set(efRow, efRowMiss, true)
		} else {
			e.rowErr = nil
			e.row = p.intern(&u.rowBuf)
			e.rowGen = p.gen
			e.set(efRow, efRowMiss, false)
		}
	}
	if e.has(efRowMiss) {
		return nil, e.rowErr
	}
	return &p.rows[e.row], nil
}

// crowPool holds the compact rows of the pcEntries, each distinct row
// once: a few hundred rows serve the thousands of PCs a long run stops at,
// and the pcEntries stay small.
type crowPool struct {
	rows  []crow
	index map[crow]int32 // by content: the rows of many functions' prologues are alike
	gen   uint32         // bumped when the pool is emptied
}

// maxPoolRows bounds the pool; a full pool starts over.
const maxPoolRows = 4096

// intern returns the index of row's compact form in the pool, adding it
// when new.
func (p *crowPool) intern(row *symbols.CFIRow) int32 {
	var c crow
	c.compile(row)
	if i, ok := p.index[c]; ok {
		return i
	}
	if p.index == nil || len(p.rows) >= maxPoolRows {
		p.rows = p.rows[:0]
		p.index = make(map[crow]int32)
		p.gen++
	}
	i := int32(len(p.rows))
	p.rows = append(p.rows, c)
	p.index[c] = i
	return i
}

// rowCache is a small direct-mapped cache of full CFI rows keyed by lookup
// PC, for the rows the fast step cannot apply (expressions).
type rowCache struct {
	e [64]struct {
		pc   uint64
		set  bool
		miss bool
		err  error
		row  symbols.CFIRow
	}
}

func (u *Unwinder) findRow(pc uint64) (*symbols.CFIRow, error) {
	if u.c == nil {
		if err := u.opts.Code.FindCFI(pc, &u.rowBuf); err != nil {
			return nil, err
		}
		return &u.rowBuf, nil
	}
	e := &u.c.rows.e[slot(pc, 6)]
	if e.set && e.pc == pc {
		if e.miss {
			return nil, e.err
		}
		return &e.row, nil
	}
	err := u.opts.Code.FindCFI(pc, &e.row)
	e.pc, e.set, e.miss, e.err = pc, true, err != nil, err
	if err != nil {
		return nil, err
	}
	return &e.row, nil
}

// hasCFI reports whether a CFI row covers pc.
func (u *Unwinder) hasCFI(pc uint64) bool {
	_, err := u.findRow(pc)
	return err == nil
}

// isNoFDE reports whether a FindCFI error says only that no CFI covers the
// PC.
func isNoFDE(err error) bool { return err == cfi.ErrNoFDE || errors.Is(err, cfi.ErrNoFDE) }
