package unwind

import (
	"encoding/binary"
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
		if sf.Kind != KindSignal || sf.Entry != "signal:14" || sf.RegsAddr != uc || sf.LookupPC != sf.PC || sf.Method != MethodSignal {
			t.Errorf("signal frame %+v", sf)
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
