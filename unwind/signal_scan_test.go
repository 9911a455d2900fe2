package unwind

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/ptregs"
)

// TestUserSignalFrame: handler h returns to __restore_rt; the rt_sigframe
// above it holds the interrupted spin (a frameless leaf) whose caller is
// _start.
func TestUserSignalFrame(t *testing.T) {
	for _, withCFI := range []bool{false, true} {
		rows := func(r []fakeRow) []fakeRow {
			if withCFI {
				return r
			}
			return nil
		}
		c := newFakeCode(textBase,
			&fakeFunc{name: "_start", code: clone(fpCaller), rows: rows(fpRows)},
			&fakeFunc{name: "spin", code: clone(leafNoFrame), rows: rows(leafRows)},
			&fakeFunc{name: "__restore_rt", code: append(clone(restoreRT), 0x90)},
			&fakeFunc{name: "h", code: clone(fpLeaf), rows: rows(fpLeafRows)})
		s := newStack(stackBase, 1<<16)
		s.push(0)
		rbp0 := s.push(0)
		ra := c.callAt("_start", 4, "spin")
		spinSP := s.push(ra)
		// rt_sigframe below the red zone: pretcode, ucontext, siginfo
		frame := (spinSP - 128 - 1024) &^ 15
		s.put(frame, c.fn("__restore_rt").addr)
		uc := frame + 8
		mc := uc + ucMcontextOff
		s.put(mc+8*10, rbp0)                // rbp
		s.put(mc+8*13, 0x77)                // rax
		s.put(mc+8*15, spinSP)              // rsp
		s.put(mc+8*16, c.fn("spin").addr+1) // rip
		s.put(mc+8*18, 0x33|0x2b<<48)       // cs, ss
		binary.LittleEndian.PutUint32(s.mem[uc+ucSiginfoOff-s.lo:], 14)
		s.sp = frame
		rbp := s.push(0x5555) // h: push %rbp (garbage from the signal context)
		regs := regsOf(c.fn("h").addr+4, s.sp, rbp)
		mem := NewSplicedMemory(Region{Addr: textBase, Data: c.text}, s.region())
		u := New(mem, regs, &Options{Code: c, Stacks: Stacks{{Kind: StackUser, Lo: s.lo, Hi: s.hi}}})
		var fs []Frame
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		if diff := cmp.Diff([]string{"h", "__restore_rt", "spin", "_start"}, names(fs)); diff != "" {
			t.Fatalf("cfi=%v: %s\nstop %s", withCFI, diff, u.StopReason())
		}
		sf := fs[2]
		// Without DWARF saying h is an SA_SIGINFO handler the frame's
		// siginfo may be stale: no number.
		if sf.Kind != KindSignal || sf.Entry != "signal" || sf.RegsAddr != uc || sf.LookupPC != sf.PC || sf.Method != MethodSignal {
			t.Errorf("signal frame %+v", sf)
		}
		for _, k := range []struct {
			siginfo, known bool
			entry          string
		}{{true, true, "signal:14"}, {false, true, "signal"}, {true, false, "signal"}} {
			hc := sigInfoCode{c, c.fn("h").addr, k.siginfo, k.known}
			u := New(mem, regs, &Options{Code: hc, Stacks: Stacks{{Kind: StackUser, Lo: s.lo, Hi: s.hi}}})
			var fs []Frame
			for u.Next() {
				fs = append(fs, u.Frame())
			}
			if len(fs) < 3 || fs[2].Entry != k.entry {
				t.Errorf("cfi=%v, handler takes siginfo %v (known %v): entry %q, want %q", withCFI, k.siginfo, k.known, fs[min(2, len(fs)-1)].Entry, k.entry)
			}
		}
		if v, _ := sf.Regs.Get(ptregs.RAX); v != 0x77 {
			t.Errorf("rax %#x", v)
		}
		if !u.Reliable() {
			t.Errorf("cfi=%v: not reliable: %s", withCFI, u.StopReason())
		}
		if withCFI {
			continue
		}
		// The stack scan finds the return address to __restore_rt: the
		// walk goes on through the rt_sigframe, every frame after the
		// scan a guess.
		u = New(mem, regs, &Options{Code: c, Stacks: Stacks{{Kind: StackUser, Lo: s.lo, Hi: s.hi}}, Methods: MethodScan | MethodSignal})
		fs = fs[:0]
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		if diff := cmp.Diff([]string{"h", "? __restore_rt", "spin", "? _start"}, names(fs)); diff != "" {
			t.Fatalf("scan: %s\nstop %s", diff, u.StopReason())
		}
		if sf := fs[2]; sf.Kind != KindSignal || sf.RegsAddr != uc || sf.Reliable || fs[1].LookupPC != fs[1].PC {
			t.Errorf("scan: signal frame %+v after %+v", sf, fs[1])
		}
	}
}

// TestScan: without CFI or frame pointers the chain is recovered by a
// validated scan; stale text words that do not follow a consistent call
// are skipped; every scanned frame is unreliable.
func TestScan(t *testing.T) {
	ch := cfiChain(4)
	// stale words: a function start and a return address after a call to
	// another function, in f4's frame slot (the sub $8 hole).
	f3 := ch.code.fn("f3")
	leafSP, _ := ch.regs.SP()
	hole := leafSP + 8 // f4's padding word
	ch.stk.put(hole, f3.addr)
	fs, u := ch.walk(t, MethodScan)
	if diff := cmp.Diff([]string{"leaf", "? f4", "? f3", "? f2", "? f1", "? _start"}, names(fs)); diff != "" {
		t.Fatalf("%s\nstop %s", diff, u.StopReason())
	}
	for _, f := range fs[1:] {
		if f.Reliable || f.Kind != KindScan || f.Slot == 0 || f.Method != MethodScan {
			t.Errorf("frame %+v", f)
		}
	}
	if u.Reliable() {
		t.Error("scanned trace reliable")
	}
	// A stale return address into f2 (after its call to f3) placed in the
	// leaf's frame does not follow a call to the leaf: skipped.
	ch = cfiChain(4)
	leafSP, _ = ch.regs.SP()
	ch.regs.Set(ptregs.RSP, leafSP-16)
	ch.stk.put(leafSP-16, ch.code.fn("f2").addr+9)
	ch.stk.put(leafSP-8, ch.code.fn("leaf").addr+9)
	fs, _ = ch.walk(t, MethodScan)
	if diff := cmp.Diff([]string{"leaf", "? f4", "? f3", "? f2", "? f1", "? _start"}, names(fs)); diff != "" {
		t.Fatalf("%s", diff)
	}
}

func TestScanText(t *testing.T) {
	ch := cfiChain(3)
	sp, _ := ch.regs.SP()
	ch.stk.put(sp-8, ch.code.fn("f2").addr) // a function start: not after a call
	var got []string
	ScanText(ch.mem, ch.code, sp-8, ch.stk.hi, func(addr, pc uint64) bool {
		s, _ := ch.code.Symbol(pc - 1)
		got = append(got, s.Name)
		return true
	})
	if diff := cmp.Diff([]string{"f3", "f2", "f1", "_start"}, got); diff != "" {
		t.Error(diff)
	}
}

// sigaltstackCase is a signal handler h running on a sigaltstack: spin (a
// frameless leaf called by _start) on the main stack is interrupted, the
// kernel builds the rt_sigframe at the top of the alternate stack, and h
// (which pushed rbp) is frame 0. With nested, a second signal arrives while
// h runs and its handler h2 runs below h's frame on the same stack.
type sigaltstackCase struct {
	code      *fakeCode
	main, alt *stackSim
	mem       SplicedMemory
	regs      ptregs.Regs
}

func newSigaltstackCase(ssFlags uint64, nested bool) *sigaltstackCase {
	c := newFakeCode(textBase,
		&fakeFunc{name: "_start", code: clone(fpCaller), rows: fpRows},
		&fakeFunc{name: "spin", code: clone(leafNoFrame), rows: leafRows},
		&fakeFunc{name: "__restore_rt", code: append(clone(restoreRT), 0x90)},
		&fakeFunc{name: "h", code: clone(fpLeaf), rows: fpLeafRows},
		&fakeFunc{name: "h2", code: clone(fpLeaf), rows: fpLeafRows})
	s := newStack(stackBase, 1<<16)
	s.push(0)
	rbp0 := s.push(0)
	spinSP := s.push(c.callAt("_start", 4, "spin"))
	alt := newStack(0x7ffe00000000, 1<<15)
	// An rt_sigframe below sp: pretcode (8 below a multiple of 16),
	// ucontext with uc_stack, siginfo.
	sigframe := func(sp, rip, rsp, rbp uint64, signo uint32) uint64 {
		frame := (sp-1024)&^15 - 8
		alt.put(frame, c.fn("__restore_rt").addr)
		uc := frame + 8
		alt.put(uc+ucStackOff, alt.lo)
		alt.put(uc+ucStackOff+8, ssFlags)
		alt.put(uc+ucStackOff+16, alt.hi-alt.lo)
		mc := uc + ucMcontextOff
		alt.put(mc+8*10, rbp)
		alt.put(mc+8*15, rsp)
		alt.put(mc+8*16, rip)
		alt.put(mc+8*18, 0x33|0x2b<<48)
		binary.LittleEndian.PutUint32(alt.mem[uc+ucSiginfoOff-alt.lo:], signo)
		return frame
	}
	alt.sp = sigframe(alt.hi, c.fn("spin").addr+1, spinSP, rbp0, 14)
	hrbp := alt.push(0x5555) // h: push %rbp
	regs := regsOf(c.fn("h").addr+4, alt.sp, hrbp)
	if nested {
		// h interrupted after its mov %rsp,%rbp.
		alt.sp = sigframe(alt.sp, c.fn("h").addr+4, alt.sp, hrbp, 10)
		rbp := alt.push(hrbp)
		regs = regsOf(c.fn("h2").addr+4, alt.sp, rbp)
	}
	return &sigaltstackCase{code: c, main: s, alt: alt, regs: regs,
		mem: NewSplicedMemory(Region{Addr: textBase, Data: c.text}, s.region(), alt.region())}
}

// TestUserSigaltstack: the frames of a handler on a sigaltstack are on
// StackAltSignal, with the bounds uc_stack gives, from frame 0 on, when
// the stack oracle does not know the stack frame 0 runs on (no stack, or
// one of kind StackUnknown); frames the signal interrupted are on the
// user stack. Warm and incremental walks give the same frames.
func TestUserSigaltstack(t *testing.T) {
	const user, alt = StackUser, StackAltSignal
	for _, tc := range []struct {
		name    string
		ssFlags uint64
		nested  bool
		stacks  func(c *sigaltstackCase) Stacks
		want    []StackKind
	}{
		{"unknown", 0, false, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}, {Kind: StackUnknown, Lo: c.alt.lo, Hi: c.alt.hi}}
		}, []StackKind{alt, alt, user, user}},
		{"absent", 0, false, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}}
		}, []StackKind{alt, alt, user, user}},
		{"autodisarm", ssAutoDisarm, false, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}}
		}, []StackKind{alt, alt, user, user}},
		{"nested", 0, true, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}, {Kind: StackUnknown, Lo: c.alt.lo, Hi: c.alt.hi}}
		}, []StackKind{alt, alt, alt, alt, user, user}},
		// The oracle calls the stack a user stack: the walk learns it is
		// a sigaltstack only at the signal frame, after emitting the
		// handler's frames; the nested handler's signal frame says so
		// of the frames below it.
		{"named", 0, true, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}, {Kind: StackUser, Lo: c.alt.lo, Hi: c.alt.hi}}
		}, []StackKind{user, user, alt, alt, user, user}},
		// No sigaltstack (SS_DISABLE): a stack the oracle cannot name is
		// a user stack.
		{"disabled", ssDisable, false, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}, {Kind: StackUnknown, Lo: c.alt.lo, Hi: c.alt.hi}}
		}, []StackKind{user, user, user, user}},
		{"disabled-absent", ssDisable, false, func(c *sigaltstackCase) Stacks {
			return Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}}
		}, []StackKind{user, user, user, user}},
	} {
		for _, m := range []Method{0, MethodFP | MethodSignal, MethodScan | MethodSignal} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, m), func(t *testing.T) {
				c := newSigaltstackCase(tc.ssFlags, tc.nested)
				var mem Memory = c.mem
				opts := Options{Code: c.code, Stacks: tc.stacks(c), Methods: m}
				u := New(mem, c.regs, &opts)
				fs := walkFrames(u)
				want := []string{"h", "__restore_rt", "spin", "_start"}
				if tc.nested {
					want = append([]string{"h2", "__restore_rt"}, want...)
				}
				if m&MethodScan != 0 {
					// Scanned, but for the signal frames.
					for i := len(want) - 1; i > 0; i-- {
						if want[i-1] != "__restore_rt" {
							want[i] = "? " + want[i]
						}
					}
				}
				if diff := cmp.Diff(want, names(fs)); diff != "" {
					t.Fatalf("%s\nstop %s", diff, u.StopReason())
				}
				for i, f := range fs {
					if f.Stack.Kind != tc.want[i] {
						t.Errorf("#%d %s on stack %v, want %v", i, f.Function, f.Stack.Kind, tc.want[i])
					}
					if f.Stack.Kind == StackAltSignal && (f.Stack.Lo != c.alt.lo || f.Stack.Hi != c.alt.hi) {
						t.Errorf("#%d %s: sigaltstack %#x-%#x, want %#x-%#x", i, f.Function, f.Stack.Lo, f.Stack.Hi, c.alt.lo, c.alt.hi)
					}
				}
				// The same Unwinder again (warm caches), and an incremental
				// one walking twice.
				u.Reset(mem, c.regs)
				if d := diffFrames(fs, walkFrames(u)); d != "" {
					t.Errorf("warm walk: %s", d)
				}
				inc := opts
				inc.Incremental = true
				ui := New(mem, c.regs, &inc)
				for k := 0; k < 3; k++ {
					ui.Reset(mem, c.regs)
					if d := diffFrames(fs, walkFrames(ui)); d != "" {
						t.Errorf("incremental walk %d: %s", k, d)
					}
				}
			})
		}
	}
}

func walkFrames(u *Unwinder) []Frame {
	var fs []Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	return fs
}

func diffFrames(want, got []Frame) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Sprintf("frame %d:\n%+v\nwant\n%+v", i, got[i], want[i])
		}
	}
	return ""
}

// sigInfoCode is a Code whose DWARF says whether the handler at handler
// takes a siginfo_t (SigInfoSource).
type sigInfoCode struct {
	*fakeCode
	handler        uint64
	siginfo, known bool
}

func (c sigInfoCode) TakesSigInfo(pc uint64) (bool, bool) {
	if s, ok := c.Symbol(pc); ok && s.Addr == c.handler {
		return c.siginfo, c.known
	}
	return false, false
}
