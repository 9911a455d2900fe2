package unwind

import (
	"encoding/binary"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// fakeORC adds ORCSource to a fakeCode: per function, entries from an
// offset on.
type fakeORC struct {
	*fakeCode
	orc map[string][]orcRow
}

type orcRow struct {
	off uint64
	e   symbols.ORCEntry
}

func (c *fakeORC) FindORC(pc uint64) (symbols.ORCEntry, bool) {
	f := c.find(pc)
	if f == nil {
		return symbols.ORCEntry{}, false
	}
	rows, ok := c.orc[f.name]
	if !ok {
		return symbols.ORCEntry{}, false
	}
	var e symbols.ORCEntry
	found := false
	for _, r := range rows {
		if r.off <= pc-f.addr {
			e, found = r.e, true
		}
	}
	return e, found
}

func (c *fakeORC) HasORC() bool { return len(c.orc) > 0 }

func orcCallAt(sp int16) symbols.ORCEntry {
	return symbols.ORCEntry{SPOffset: sp, SPReg: symbols.ORCRegSP, Type: symbols.ORCCall}
}

// nullCallKernel is an ORC kernel in which caller calls through a NULL
// function pointer from a kernel thread: the #PF entry stub saves a
// pt_regs with RIP 0 and calls exc_page_fault, where the walk starts.
type nullCallKernel struct {
	code  *fakeORC
	stack *stackSim
	regs  ptregs.Regs
	ptr   uint64 // the pt_regs
	ra    uint64 // caller's return address, at the pt_regs's sp
}

func newNullCallKernel(t *testing.T, rip uint64) *nullCallKernel {
	t.Helper()
	const base = 0xffffffff81000000
	code := newFakeCode(base,
		// call *%rbx; nop (the kernel thread's first frame)
		&fakeFunc{name: "ret_from_fork", code: []byte{0xff, 0xd3, 0x90, 0x90}},
		// sub $8,%rsp; call *%rax; add $8,%rsp; ret
		&fakeFunc{name: "caller", code: []byte{0x48, 0x83, 0xec, 0x08, 0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3}},
		// push $0 (the stub's orig_ax slot stands in for PUSH_AND_CLEAR_REGS); call exc_page_fault; nop
		&fakeFunc{name: "asm_exc_page_fault", code: []byte{0x90, 0xe8, 0, 0, 0, 0, 0x90, 0x90}},
		// nop; nop; ret
		&fakeFunc{name: "exc_page_fault", code: []byte{0x90, 0x90, 0xc3}},
		// a retpoline thunk: Linux 6.1 marks it with the end bit
		&fakeFunc{name: "__x86_indirect_thunk_rax", code: []byte{0xff, 0xe0, 0xcc}},
	)
	afterCall := code.callAt("asm_exc_page_fault", 1, "exc_page_fault")
	c := &fakeORC{fakeCode: code, orc: map[string][]orcRow{
		"ret_from_fork": {{0, symbols.ORCEntry{Type: symbols.ORCEndOfStack}}},
		"caller":        {{0, orcCallAt(8)}, {4, orcCallAt(16)}, {10, orcCallAt(8)}},
		"asm_exc_page_fault": {
			{0, symbols.ORCEntry{SPOffset: 8, SPReg: symbols.ORCRegSP, Type: symbols.ORCRegsPartial, Signal: true}},
			{1, symbols.ORCEntry{SPReg: symbols.ORCRegSP, Type: symbols.ORCRegs, Signal: true}},
		},
		"exc_page_fault":           {{0, orcCallAt(8)}},
		"__x86_indirect_thunk_rax": {{0, symbols.ORCEntry{Type: symbols.ORCEndOfStack}}},
	}}
	st := newStack(0xffffc90000000000, 0x4000)
	k := &nullCallKernel{code: c, stack: st}
	// The kernel thread: ret_from_fork called caller.
	st.push(0) // padding where the task's pt_regs would be
	st.push(code.fn("ret_from_fork").addr + 2)
	st.push(0) // caller's sub $8
	callerSP := st.sp
	// caller: call *%rax with rax 0 pushes the return address.
	k.ra = code.fn("caller").addr + 6
	rsp := st.push(k.ra)
	// #PF: the CPU pushes ss, rsp, rflags, cs, rip (0), error code.
	st.push(0x18)
	st.push(rsp)
	st.push(0x246)
	st.push(0x10)
	st.push(rip)
	st.push(2) // error code, pt_regs->orig_ax
	for i := 0; i < 15; i++ {
		st.push(uint64(0x1000 + i))
	}
	k.ptr = st.sp
	st.put(k.ptr+4*8, callerSP+0x100) // pt_regs->bp: the interrupted rbp
	// The stub calls exc_page_fault(regs).
	st.push(afterCall)
	k.regs = regsOf(code.fn("exc_page_fault").addr+1, st.sp, 0x7777)
	return k
}

func (k *nullCallKernel) walk(t *testing.T, methods Method) ([]Frame, *Unwinder) {
	t.Helper()
	u := New(SplicedMemory{k.stack.region()}, k.regs, &Options{Code: k.code, Kernel: true, Methods: methods})
	var fs []Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	return fs, u
}

// TestORCNullCall crosses a call through a NULL function pointer as the
// kernel's unwind_orc.c does: the REGS entry of the #PF stub gives the
// pt_regs (RIP 0), ip 0's own entry the caller's return address at the
// interrupted sp, and ret_from_fork's end marker a proper end.
func TestORCNullCall(t *testing.T) {
	k := newNullCallKernel(t, 0)
	fs, u := k.walk(t, 0)
	got := names(fs)
	want := []string{"exc_page_fault", "asm_exc_page_fault", "?", "caller", "ret_from_fork"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("frames (-want +got):\n%s\nerr %v", diff, u.Err())
	}
	// RIP 0 is no code: the trace is not reliable, but the frames above
	// the pt_regs are no guesses (the call-site check passes for them).
	if u.Reliable() || u.StopReason() != StopEndOfStack {
		t.Errorf("reliable %v, stop %q, err %v", u.Reliable(), u.StopReason(), u.Err())
	}
	pf := fs[2]
	if pf.Kind != KindInterrupted || pf.Entry != "page_fault" || pf.PC != 0 || pf.RegsAddr != k.ptr || pf.Partial || pf.Method != MethodORC || pf.Reliable {
		t.Errorf("interrupted frame %+v", pf)
	}
	if v, _ := pf.Regs.Get(ptregs.RBP); v != k.stack.get(k.ptr+4*8) {
		t.Errorf("interrupted rbp %#x", v)
	}
	c := fs[3]
	if c.PC != k.ra || c.Method != MethodORC || !c.Reliable || c.SP != pf.SP+8 || !fs[4].Reliable {
		t.Errorf("caller frame %+v", c)
	}
	if v, _ := c.Regs.Get(ptregs.RBP); v != k.stack.get(k.ptr+4*8) {
		t.Errorf("caller rbp %#x: an undefined bp rule keeps the pt_regs's", v)
	}
	for i, f := range fs[1:] {
		if f.Method != MethodORC {
			t.Errorf("frame %d found by %v", i+1, f.Method)
		}
	}
	// Without ORC the entry-frame signals reject the pt_regs (its RIP is
	// no text, and nothing cross-checks it): the walk does not reach
	// caller reliably.
	fs, _ = k.walk(t, allMethods&^MethodORC)
	if len(fs) == len(want) && fs[3].Reliable {
		t.Errorf("without ORC the caller is found and reliable: %v", names(fs))
	}
}

// TestORCEntryFramesMatch checks that the pt_regs and iret frames ORC
// finds are the ones the entry-frame detection finds, field for field but
// the method: a full pt_regs (REGS) and, at the stub's first instruction,
// the hardware frame (REGS_PARTIAL).
func TestORCEntryFramesMatch(t *testing.T) {
	k := newNullCallKernel(t, 0)
	text := k.code.fn("caller").addr + 6 // a text RIP: the entry detection takes the pt_regs too
	k = newNullCallKernel(t, text)
	stub := k.code.fn("asm_exc_page_fault").addr
	for _, c := range []struct {
		name string
		regs ptregs.Regs
		at   int // the interrupted frame's index
	}{
		{"regs", k.regs, 2},
		// At the stub's first instruction: only the error code below
		// the CPU's frame.
		{"regs_partial", regsOf(stub, k.ptr+15*8, 0x7777), 1},
	} {
		ku := *k
		ku.regs = c.regs
		orc, u1 := ku.walk(t, 0)
		old, u2 := ku.walk(t, allMethods&^MethodORC)
		if len(orc) <= c.at || len(old) <= c.at {
			t.Fatalf("%s: frames %v (%v) and %v (%v)", c.name, names(orc), u1.Err(), names(old), u2.Err())
		}
		a, b := orc[c.at], old[c.at]
		if a.Method != MethodORC || b.Method != MethodPtRegs {
			t.Errorf("%s: methods %v and %v", c.name, a.Method, b.Method)
		}
		a.Method, b.Method = 0, 0
		if diff := cmp.Diff(b, a, cmp.AllowUnexported(ptregs.Regs{}, Frame{})); diff != "" {
			t.Errorf("%s: ORC's interrupted frame differs from the entry detection's (-ptregs +orc):\n%s", c.name, diff)
		}
		if a.Kind != KindInterrupted || a.Entry != "page_fault" || a.Partial != (c.name == "regs_partial") {
			t.Errorf("%s: %+v", c.name, a)
		}
	}
}

// TestORCEndOfStack: the end marker is a proper end in an outermost
// function and no end in a retpoline thunk (Linux 6.1 marks both).
func TestORCEndOfStack(t *testing.T) {
	k := newNullCallKernel(t, 0)
	thunk := k.code.fn("__x86_indirect_thunk_rax").addr
	k.regs = regsOf(thunk, k.ptr-8, 0)
	fs, u := k.walk(t, MethodORC)
	if u.Reliable() || u.StopReason() == StopEndOfStack || len(fs) != 1 {
		t.Errorf("in a thunk: %v reliable %v stop %q", names(fs), u.Reliable(), u.StopReason())
	}
	k.regs = regsOf(k.code.fn("ret_from_fork").addr+2, k.ptr, 0)
	fs, u = k.walk(t, MethodORC)
	if !u.Reliable() || u.StopReason() != StopEndOfStack || len(fs) != 1 {
		t.Errorf("in ret_from_fork: %v reliable %v stop %q err %v", names(fs), u.Reliable(), u.StopReason(), u.Err())
	}
}

// TestORCRules steps single frames through the sp and bp rules.
func TestORCRules(t *testing.T) {
	const base = 0xffffffff81000000
	code := newFakeCode(base,
		&fakeFunc{name: "outer", code: []byte{0xe8, 0, 0, 0, 0, 0x90, 0x90, 0x90}},
		&fakeFunc{name: "inner", code: []byte{0x90, 0x90, 0x90, 0xc3}},
	)
	ra := code.callAt("outer", 0, "inner")
	st := newStack(0xffffc90000000000, 0x1000)
	top := st.push(0)
	st.push(ra)                 // inner's return address
	cfa := st.sp + 8            // inner's CFA
	st.push(0xbbbb)             // saved rbp at CFA-16
	spSlot := st.push(cfa - 16) // a word holding a stack pointer
	st.put(top, cfa)            // and one holding the CFA
	for _, c := range []struct {
		name   string
		e      symbols.ORCEntry
		regs   ptregs.Regs
		rbp    uint64
		rbpSet bool
	}{
		{"sp", symbols.ORCEntry{SPOffset: int16(cfa - spSlot), SPReg: symbols.ORCRegSP, BPReg: symbols.ORCRegPrevSP, BPOffset: -16, Type: symbols.ORCCall},
			regsOf(code.fn("inner").addr+1, spSlot, 1), 0xbbbb, true},
		{"bp", symbols.ORCEntry{SPOffset: 16, SPReg: symbols.ORCRegBP, BPReg: symbols.ORCRegBP, BPOffset: 0, Type: symbols.ORCCall},
			regsOf(code.fn("inner").addr+1, spSlot, cfa-16), 0xbbbb, true},
		{"sp_indirect", symbols.ORCEntry{SPOffset: 16, SPReg: symbols.ORCRegSPIndirect, Type: symbols.ORCCall},
			regsOf(code.fn("inner").addr+1, spSlot, 5), 5, true},
		{"bp_indirect", symbols.ORCEntry{SPOffset: 16, SPReg: symbols.ORCRegBPIndirect, Type: symbols.ORCCall},
			regsOf(code.fn("inner").addr+1, spSlot-64, cfa-16), cfa - 16, true},
	} {
		o := &fakeORC{fakeCode: code, orc: map[string][]orcRow{"inner": {{0, c.e}}, "outer": {{0, symbols.ORCEntry{Type: symbols.ORCEndOfStack}}}}}
		u := New(SplicedMemory{st.region()}, c.regs, &Options{Code: o, Kernel: true, Methods: MethodORC})
		u.Next()
		if !u.Next() {
			t.Errorf("%s: no caller: %v", c.name, u.Err())
			continue
		}
		f := u.Frame()
		rbp, ok := f.Regs.Get(ptregs.RBP)
		if f.PC != ra || f.SP != cfa || f.Method != MethodORC || rbp != c.rbp || ok != c.rbpSet {
			t.Errorf("%s: caller pc %#x sp %#x (want %#x %#x) rbp %#x %v (want %#x) by %v", c.name, f.PC, f.SP, ra, cfa, rbp, ok, c.rbp, f.Method)
		}
	}
}

// TestORCWalkAllocs: a warm ORC walk (an Unwinder reset over the same
// stack) allocates nothing, and is exact.
func TestORCWalkAllocs(t *testing.T) {
	ch, o := orcChain(50)
	var mem Memory = ch.mem
	u := New(mem, ch.regs, &Options{Code: o, Stacks: ch.stacks, Kernel: true, Methods: MethodORC})
	var got []string
	for u.Next() {
		f := u.Frame()
		got = append(got, f.Function)
		if f.Index > 0 && f.Method != MethodORC {
			t.Errorf("frame %d by %v", f.Index, f.Method)
		}
	}
	if diff := cmp.Diff(ch.truth, got); diff != "" || !u.Reliable() {
		t.Fatalf("walk (-want +got):\n%s\nreliable %v: %v", diff, u.Reliable(), u.StopReason())
	}
	n := testing.AllocsPerRun(100, func() {
		u.Reset(mem, ch.regs)
		for u.Next() {
		}
	})
	if n != 0 {
		t.Errorf("a warm ORC walk allocates %v times", n)
	}
}

// fuzzORC decodes 8 bytes per function of code into an ORC row of its own
// (sp_offset, bp_offset, sp_reg, bp_reg, type, offset into the function)
// added to base's rows.
func fuzzORC(code *fakeCode, base map[string][]orcRow, b []byte) *fakeORC {
	o := &fakeORC{fakeCode: code, orc: map[string][]orcRow{}}
	for name, rows := range base {
		o.orc[name] = append([]orcRow(nil), rows...)
	}
	for _, f := range code.funcs {
		if len(b) < 8 {
			break
		}
		e := symbols.ORCEntry{
			SPOffset: int16(binary.LittleEndian.Uint16(b)), BPOffset: int16(binary.LittleEndian.Uint16(b[2:])),
			SPReg: symbols.ORCReg(b[4] & 0xf), BPReg: symbols.ORCReg(b[4] >> 4),
			Type: symbols.ORCType(b[5] % 6), Signal: b[5]&0x80 != 0,
		}
		off := uint64(b[6]) % uint64(len(f.code))
		rows := append(o.orc[f.name], orcRow{off, e})
		sort.Slice(rows, func(i, j int) bool { return rows[i].off < rows[j].off })
		o.orc[f.name] = rows
		b = b[8:]
	}
	return o
}

// FuzzORCWalk walks a kernel stack of random bytes (or a real chain's,
// from the seeds) with random ORC entries mixed into the chain's: every
// walk ends, with a stop reason, within the frame limit, never a panic.
func FuzzORCWalk(f *testing.F) {
	ch, o := orcChain(6)
	f.Add(fuzzSeed(ch, 0x81), []byte{})
	f.Add(fuzzSeed(ch, 0x81), []byte{8, 0, 0, 0, 5, 3, 0, 0, 0, 0, 0, 0, 5, 4, 1, 0, 16, 0, 240, 255, 4, 2, 4, 0})
	f.Add(fuzzSeed(ch, 0x81|byte(MethodORC>>1)), []byte{0, 0, 0, 0, 9, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data, orcs []byte) {
		mem, regs, opts := fuzzInput(ch.code, data)
		opts.Code = fuzzORC(ch.code, o.orc, orcs)
		opts.Kernel = true
		u := New(mem, regs, opts)
		n := 0
		for u.Next() {
			if u.Frame().Index != n {
				t.Fatalf("index %d at %d", u.Frame().Index, n)
			}
			n++
		}
		if n > DefaultMaxFrames {
			t.Fatalf("%d frames", n)
		}
		if u.StopReason() == "" {
			t.Fatal("no stop reason")
		}
		if (u.Err() != nil) != strings.HasPrefix(u.StopReason(), "error:") {
			t.Fatalf("err %v vs stop %q", u.Err(), u.StopReason())
		}
	})
}
