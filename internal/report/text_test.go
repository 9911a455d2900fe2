package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// recursion is a user thread 10,000 frames deep in one recursive call
// site, between a leaf and main.
func recursion() *Document {
	sym := func(name string, addr, size uint64) symbols.Sym {
		return symbols.Sym{Name: name, Addr: addr, Size: size, Module: "/bin/rec"}
	}
	fr := func(i int, pc uint64, s symbols.Sym) unwind.Frame {
		return unwind.Frame{Index: i, PC: pc, SP: 0x7ffe0000 + uint64(i)*32, Sym: s, SymOK: true, Function: s.Name,
			Kind: unwind.KindCall, Reliable: true}
	}
	leaf, rec, main := sym("leaf", 0x401000, 0x10), sym("rec", 0x401100, 0x40), sym("main", 0x401200, 0x30)
	frames := []unwind.Frame{fr(0, 0x401004, leaf)}
	for i := 1; i <= 9_999; i++ {
		frames = append(frames, fr(i, 0x401113, rec))
	}
	frames = append(frames, fr(10_000, 0x40121a, main))
	return &Document{Threads: []Thread{{TID: 7, CPU: -1, Comm: "rec", Frames: frames, Reliable: true, StopReason: "end of stack"}}}
}

// A deep recursion prints folded in text: its first frame, then one line
// for the rest with the first and last index and the count.
func TestTextFoldsRecursion(t *testing.T) {
	doc := recursion()
	var out bytes.Buffer
	if err := WriteText(&out, doc, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `Thread 7 (rec)
#0  0x0000000000401004 in leaf+0x4/0x10 (rec)
#1  0x0000000000401113 in rec+0x13/0x40 (rec)
#2 … #9999  0x0000000000401113 in rec+0x13/0x40 (rec) … (repeated 9,998 times)
#10000 0x000000000040121a in main+0x1a/0x30 (rec)
(10001 frames, reliable, stopped: end of stack)
`
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Error(d)
	}
	// Two identical frames stay two lines; JSON keeps every frame.
	doc.Threads[0].Frames = append(doc.Threads[0].Frames[:3:3], doc.Threads[0].Frames[len(doc.Threads[0].Frames)-1])
	out.Reset()
	if err := WriteText(&out, doc, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "repeated") || strings.Count(out.String(), "rec+0x13") != 2 {
		t.Errorf("two frames folded:\n%s", out.String())
	}
	out.Reset()
	if err := WriteJSON(&out, recursion()); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Threads []struct{ Frames []json.RawMessage }
	}
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if n := len(j.Threads[0].Frames); n != 10_001 {
		t.Errorf("JSON has %d frames, want 10001", n)
	}
}

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 99976: "99,976", 1234567: "1,234,567"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

// An interrupted frame whose RIP lies in inlined code is several frames
// (the inlined functions, then the one holding the code), all interrupted
// at the same pt_regs: its register block prints once, not once per
// inlined function (a CPU stopped in an IPI handler over a task in
// read_zero printed the IRQ → task block four times).
func TestKernelRegsBlockOncePerInterruptedFrame(t *testing.T) {
	sym := symbols.Sym{Name: "read_zero", Addr: 0xffffffff81500000, Size: 0x100}
	intr := func(fn string, inlined bool) unwind.Frame {
		return unwind.Frame{PC: sym.Addr + 0x59, SP: 0xffffc90000123e38, Sym: sym, SymOK: true, Function: fn, Inlined: inlined,
			Kind: unwind.KindInterrupted, Entry: "irq:236", RegsAddr: 0xffffc90000123d88, Reliable: true,
			Stack:  unwind.Stack{Kind: unwind.StackTask},
			PtRegs: ptregs.PtRegs{IP: sym.Addr + 0x59, CS: 0x10, SP: 0xffffc90000123e38, SS: 0x18, OrigAX: ^uint64(0)}}
	}
	irq := unwind.Frame{PC: 0xffffffff81000100, Sym: symbols.Sym{Name: "stop_this_cpu", Addr: 0xffffffff81000000, Size: 0x200}, SymOK: true,
		Kind: unwind.KindCall, Reliable: true, Stack: unwind.Stack{Kind: unwind.StackIRQ}}
	frames := []unwind.Frame{irq, intr("__clear_user", true), intr("clear_user", true), intr("iov_iter_zero", true), intr("read_zero", false)}
	for i := range frames {
		frames[i].Index = i
	}
	doc := &Document{Threads: []Thread{{CPU: 1, Kernel: true, Frames: frames, Reliable: true, StopReason: "user mode"}}}
	var out bytes.Buffer
	if err := WriteText(&out, doc, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\nRIP: 0010:read_zero+0x59/0x100\n"); n != 1 {
		t.Errorf("the register block prints %d times, want once:\n%s", n, out.String())
	}
	if n := strings.Count(out.String(), "(irq:236 entry, pt_regs at 0xffffc90000123d88)"); n != 1 {
		t.Errorf("the entry line prints %d times, want once:\n%s", n, out.String())
	}
}
