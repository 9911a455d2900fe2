package unwind

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

const (
	textBase  = 0x401000
	stackBase = 0x7ffff0000000
	stackSize = 1 << 20
)

// chain is a synthetic process: main → f1 → … → fN → leaf, stopped in leaf.
type chain struct {
	code   *fakeCode
	stk    *stackSim
	mem    SplicedMemory
	regs   ptregs.Regs
	truth  []string // innermost first
	stacks Stacks
	rets   []uint64 // return-address slots, innermost first
}

// fpChain builds a frame-pointer chain (with CFI rows when cfiRows).
func fpChain(n int, cfiRows bool) *chain {
	var funcs []*fakeFunc
	rows := func(r []fakeRow) []fakeRow {
		if cfiRows {
			return r
		}
		return nil
	}
	funcs = append(funcs, &fakeFunc{name: "_start", code: clone(fpCaller), rows: rows(fpRows)})
	for i := 1; i <= n; i++ {
		funcs = append(funcs, &fakeFunc{name: fmt.Sprintf("f%d", i), code: clone(fpCaller), rows: rows(fpRows)})
	}
	funcs = append(funcs, &fakeFunc{name: "leaf", code: clone(fpLeaf), rows: rows(fpLeafRows)})
	c := newFakeCode(textBase, funcs...)
	s := newStack(stackBase, stackSize)
	s.push(0)
	rbp := s.push(0)
	var truth []string
	var rets []uint64
	for i := 0; i+1 < len(funcs); i++ {
		ra := c.callAt(funcs[i].name, 4, funcs[i+1].name)
		rets = append(rets, s.push(ra))
		rbp = s.push(rbp)
	}
	for i := len(funcs) - 1; i >= 0; i-- {
		truth = append(truth, funcs[i].name)
	}
	for i, j := 0, len(rets)-1; i < j; i, j = i+1, j-1 {
		rets[i], rets[j] = rets[j], rets[i]
	}
	ch := &chain{code: c, stk: s, truth: truth, rets: rets}
	ch.regs = regsOf(c.fn("leaf").addr+4, s.sp, rbp)
	ch.mem = SplicedMemory{{Addr: textBase, Data: c.text}, s.region()}
	ch.stacks = Stacks{{Kind: StackUser, Lo: s.lo, Hi: s.hi, CPU: -1}}
	return ch
}

// cfiChain builds a chain of functions without frame pointers, described
// by CFI only, stopped at the first instruction of a frameless leaf.
func cfiChain(n int) *chain {
	var funcs []*fakeFunc
	funcs = append(funcs, &fakeFunc{name: "_start", code: clone(nofpCaller), rows: nofpRows})
	for i := 1; i <= n; i++ {
		funcs = append(funcs, &fakeFunc{name: fmt.Sprintf("f%d", i), code: clone(nofpCaller), rows: nofpRows})
	}
	funcs = append(funcs, &fakeFunc{name: "leaf", code: clone(leafNoFrame), rows: leafRows})
	c := newFakeCode(textBase, funcs...)
	s := newStack(stackBase, stackSize)
	s.push(0)
	var truth []string
	for i := 0; i+1 < len(funcs); i++ {
		s.sp -= 8
		ra := c.callAt(funcs[i].name, 4, funcs[i+1].name)
		s.push(ra)
	}
	for i := len(funcs) - 1; i >= 0; i-- {
		truth = append(truth, funcs[i].name)
	}
	ch := &chain{code: c, stk: s, truth: truth}
	ch.regs = regsOf(c.fn("leaf").addr, s.sp, 0x1234)
	ch.mem = SplicedMemory{{Addr: textBase, Data: c.text}, s.region()}
	ch.stacks = Stacks{{Kind: StackUser, Lo: s.lo, Hi: s.hi, CPU: -1}}
	return ch
}

func (ch *chain) walk(t testing.TB, m Method) ([]Frame, *Unwinder) {
	t.Helper()
	u := New(ch.mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks, Methods: m})
	var fs []Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	return fs, u
}

func TestChains(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ch      *chain
		methods Method
		want    Method // method of frames 1..
	}{
		{"fp-only", fpChain(6, false), MethodFP, MethodFP},
		{"fp-code-all-methods", fpChain(6, false), 0, MethodFP},
		{"cfi-on-fp-code", fpChain(6, true), MethodCFI, MethodCFI},
		{"combined", fpChain(6, true), MethodCFI | MethodFP, MethodCFI},
		{"cfi-only", cfiChain(6), MethodCFI, MethodCFI},
		{"cfi-all-methods", cfiChain(6), 0, MethodCFI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, u := tc.ch.walk(t, tc.methods)
			if diff := cmp.Diff(tc.ch.truth, names(fs)); diff != "" {
				t.Fatalf("frames (-want +got):\n%s\nstop: %s", diff, u.StopReason())
			}
			if u.Err() != nil || u.StopReason() != StopEndOfStack || !u.Reliable() {
				t.Errorf("err %v, stop %q, reliable %v", u.Err(), u.StopReason(), u.Reliable())
			}
			for i, f := range fs {
				if f.Index != i || !f.Reliable {
					t.Errorf("frame %d: index %d reliable %v", i, f.Index, f.Reliable)
				}
				if i > 0 && (f.Method != tc.want || f.LookupPC != f.PC-1 || f.Kind != KindCall) {
					t.Errorf("frame %d: method %v lookup %#x pc %#x kind %v", i, f.Method, f.LookupPC, f.PC, f.Kind)
				}
				if f.Stack.Kind != StackUser {
					t.Errorf("frame %d: stack %v", i, f.Stack.Kind)
				}
			}
			if fs[0].Method != MethodRegs || fs[0].LookupPC != fs[0].PC {
				t.Errorf("frame 0: %+v", fs[0])
			}
		})
	}
}

// TestPrologueEpilogue stops the leaf at each instruction of its prologue
// and epilogue: the frame-pointer walk (no CFI) must still find its caller.
func TestPrologueEpilogue(t *testing.T) {
	for _, off := range []uint64{0, 1, 4, 5, 6, 7} {
		ch := fpChain(3, false)
		leaf := ch.code.fn("leaf").addr
		// Undo the leaf's prologue as far as the stop requires.
		rbp, _ := ch.regs.Get(ptregs.RBP)
		sp := ch.stk.sp
		switch off {
		case 0: // before push %rbp
			rbp = ch.stk.get(sp)
			sp += 8
		case 1: // after push, before mov
			rbp = ch.stk.get(sp)
		case 7: // after pop %rbp, at ret
			rbp = ch.stk.get(sp)
			sp += 8
		}
		ch.regs = regsOf(leaf+off, sp, rbp)
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			fs, u := ch.walk(t, MethodFP)
			if diff := cmp.Diff(ch.truth, names(fs)); diff != "" {
				t.Fatalf("frames (-want +got):\n%s\nstop %s", diff, u.StopReason())
			}
			if !u.Reliable() {
				t.Errorf("not reliable: %s", u.StopReason())
			}
		})
	}
}

// TestFPCorruptNeverReliable corrupts each saved rbp in turn (and each
// return address): no frame reported reliable may be wrong.
func TestFPCorruptNeverReliable(t *testing.T) {
	base := fpChain(8, false)
	bad := []uint64{0, 1, 0xdeadbeef, stackBase + 8, stackBase + stackSize - 8}
	for i, slot := range base.rets {
		for _, target := range []uint64{slot - 8, slot} { // saved rbp, return address
			vals := append([]uint64{}, bad...)
			for _, s := range base.rets { // other frames' rbp: skips and loops
				vals = append(vals, s-8)
			}
			for _, v := range vals {
				ch := fpChain(8, false)
				ch.stk.put(target, v)
				fs, u := ch.walk(t, MethodFP)
				for j, f := range fs {
					if f.Reliable && (j >= len(ch.truth) || names(fs)[j] != ch.truth[j]) {
						t.Errorf("slot %d word %#x=%#x: frame %d %s reliable, want %v", i, target, v, j, names(fs)[j], ch.truth)
					}
				}
				if u.Reliable() && cmp.Diff(ch.truth, names(fs)) != "" {
					t.Errorf("slot %d: wrong trace reliable: %v", i, names(fs))
				}
				if len(fs) > DefaultMaxFrames {
					t.Errorf("too many frames")
				}
			}
		}
	}
}

func TestNullCall(t *testing.T) {
	c := newFakeCode(textBase,
		&fakeFunc{name: "_start", code: clone(fpCaller), rows: fpRows},
		&fakeFunc{name: "n3", code: clone(fpIndirect), rows: fpIndRows})
	s := newStack(stackBase, 4096)
	s.push(0)
	rbp := s.push(0)
	s.push(c.callAt("_start", 4, "n3"))
	rbp = s.push(rbp)
	s.push(c.fn("n3").addr + 6) // return address of call *%rax
	mem := SplicedMemory{{Addr: textBase, Data: c.text}, s.region()}
	for _, m := range []Method{0, MethodFP} {
		fs, err := Walk(mem, regsOf(0, s.sp, rbp), &Options{Code: c, Methods: m})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"?", "n3", "_start"}, names(fs)); diff != "" {
			t.Errorf("methods %v: %s", m, diff)
		}
		for _, f := range fs {
			if !f.Reliable {
				t.Errorf("frame %d unreliable", f.Index)
			}
		}
	}
}

func TestLoopAndDepthBounded(t *testing.T) {
	s := newStack(stackBase, 4096)
	// rbp pointing at itself, return address in text.
	c := newFakeCode(textBase, &fakeFunc{name: "f", code: clone(fpCaller)})
	s.put(stackBase+64, stackBase+64)
	s.put(stackBase+72, textBase+9)
	mem := SplicedMemory{{Addr: textBase, Data: c.text}, s.region()}
	fs, err := Walk(mem, regsOf(textBase+9, stackBase+32, stackBase+64), &Options{Code: c, Methods: MethodFP})
	if err == nil || len(fs) > 3 {
		t.Errorf("loop: %d frames, err %v", len(fs), err)
	}
	ch := fpChain(40, true)
	u := New(ch.mem, ch.regs, &Options{Code: ch.code, MaxFrames: 10})
	n := 0
	for u.Next() {
		n++
	}
	// The frame limit truncates the trace; it is no error, and the frames
	// it yielded keep their verdict.
	if n != 10 || u.Err() != nil || !u.Truncated() || !u.Reliable() || u.StopReason() != "frame limit" {
		t.Errorf("max frames: %d frames, err %v, truncated %v, reliable %v, stop %q", n, u.Err(), u.Truncated(), u.Reliable(), u.StopReason())
	}
	ch = fpChain(40, true)
	u = New(ch.mem, ch.regs, &Options{Code: ch.code, MaxFrames: -1})
	for n = 0; u.Next(); n++ {
	}
	if u.Truncated() || n < 40 {
		t.Errorf("no frame limit: %d frames, truncated %v, stop %q", n, u.Truncated(), u.StopReason())
	}
}

func TestLinesAndInlined(t *testing.T) {
	ch := fpChain(2, true)
	ch.code.lines = map[string][]symbols.Line{
		"f2": {{Function: "inl", File: "x.c", Line: 3, Inlined: true}, {Function: "f2", File: "x.c", Line: 9}},
	}
	fs, err := Walk(ch.mem, ch.regs, &Options{Code: fakeLines{ch.code}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"leaf", "inl", "f2", "f1", "_start"}, names(fs)); diff != "" {
		t.Fatal(diff)
	}
	if !fs[1].Inlined || fs[2].Inlined || fs[1].PC != fs[2].PC || fs[2].Line != 9 || fs[2].Index != 2 || fs[3].Index != 3 {
		t.Errorf("inlined frames: %+v %+v", fs[1], fs[2])
	}
}

func TestFramesIterator(t *testing.T) {
	ch := fpChain(3, true)
	n := 0
	for f, err := range New(ch.mem, ch.regs, &Options{Code: ch.code}).Frames() {
		if err != nil {
			t.Fatal(err)
		}
		if f.Index != n {
			t.Fatal(f.Index)
		}
		n++
	}
	if n != len(ch.truth) {
		t.Errorf("%d frames", n)
	}
	// Reset reuses the unwinder.
	u := New(ch.mem, ch.regs, &Options{Code: ch.code})
	for u.Next() {
	}
	u.Reset(ch.mem, ch.regs)
	n = 0
	for u.Next() {
		n++
	}
	if n != len(ch.truth) || !u.Reliable() {
		t.Errorf("after reset: %d frames", n)
	}
}

// TestDegenerateInputs: missing memory, code, registers or bounds end the
// walk with an error or a short trace, never a panic.
func TestDegenerateInputs(t *testing.T) {
	ch := fpChain(2, true)
	var none ptregs.Regs
	if _, err := Walk(ch.mem, none, nil); err == nil {
		t.Error("no registers: no error")
	}
	if fs, _ := Walk(nil, ch.regs, nil); len(fs) != 1 {
		t.Errorf("nil memory: %d frames", len(fs))
	}
	if fs, _ := Walk(ch.mem, ch.regs, &Options{Kernel: true, Stacks: ch.stacks}); len(fs) == 0 {
		t.Error("no code: no frames")
	}
	r := regsOf(^uint64(0), ^uint64(0)-3, ^uint64(0))
	if _, err := Walk(ch.mem, r, &Options{Code: ch.code, Kernel: true}); err == nil {
		t.Error("wild registers: no error")
	}
}

// TestWarmChains walks synthetic chains fresh and then warm (the same
// Unwinder reset, the frame-pointer walk on its fast path): the traces
// must be identical, frame for frame.
func TestWarmChains(t *testing.T) {
	for _, n := range []int{2, 30, 200} {
		for _, ch := range []*chain{fpChain(n, false), fpChain(n, true), cfiChain(n)} {
			for _, m := range []Method{MethodFP, MethodFP | MethodSignal, MethodFP | MethodScan, MethodCFI, 0} {
				walk := func(u *Unwinder) ([]Frame, string) {
					var fs []Frame
					for u.Next() {
						fs = append(fs, u.Frame())
					}
					return fs, fmt.Sprintf("%v %q %v", u.Reliable(), u.StopReason(), u.Err())
				}
				var mem Memory = ch.mem
				u := New(mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks, Methods: m})
				fresh, fe := walk(u)
				for k := 0; k < 2; k++ {
					u.Reset(mem, ch.regs)
					warm, we := walk(u)
					if fe != we || len(fresh) != len(warm) {
						t.Fatalf("n %d methods %v walk %d: %s (%d frames) / %s (%d frames)", n, m, k, fe, len(fresh), we, len(warm))
					}
					for i := range fresh {
						if fresh[i] != warm[i] {
							t.Fatalf("n %d methods %v walk %d frame %d:\n%+v\n%+v", n, m, k, i, fresh[i], warm[i])
						}
					}
				}
			}
		}
	}
}
