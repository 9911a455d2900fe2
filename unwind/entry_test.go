package unwind

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/ptregs"
)

const (
	kText    = 0xffffffff81000000
	taskLo   = 0xffffc90000100000
	irqLo    = 0xffffc90000200000
	nmiLo    = 0xfffffe0000010000
	kStackSz = 0x4000
	userIP   = 0x401000
	userSP   = 0x7ffc00001000
)

var (
	// mov %rsp,%rdi; lea 1(%rsp),%rbp; call X; nop   (call at 8, return at 13)
	stubCode = []byte{0x48, 0x89, 0xe7, 0x48, 0x8d, 0x6c, 0x24, 0x01, 0xe8, 0, 0, 0, 0, 0x90}
	// mov %rsp,%rdi; call X; nop   (call at 3, return at 8)
	syscallStub = []byte{0x48, 0x89, 0xe7, 0xe8, 0, 0, 0, 0, 0x90}
)

type kernelScene struct {
	code   *fakeCode
	mem    SplicedMemory
	regs   ptregs.Regs
	stacks Stacks
	task   *stackSim
	irq    *stackSim
	ptAddr uint64
}

func putPtRegs(s *stackSim, addr uint64, p ptregs.PtRegs) {
	b := p.Encode()
	copy(s.mem[addr-s.lo:], b[:])
}

// irqOverSyscall builds: user → entry_SYSCALL_64 → do_syscall_64 → work,
// interrupted (frameless, at work+1) by the timer IRQ:
// asm_sysvec_apic_timer_interrupt → sysvec_apic_timer_interrupt → (IRQ
// stack) __sysvec_apic_timer_interrupt, stopped after its prologue.
func irqOverSyscall(withCFI bool) *kernelScene {
	rows := func(r []fakeRow) []fakeRow {
		if withCFI {
			return r
		}
		return nil
	}
	c := newFakeCode(kText,
		&fakeFunc{name: "entry_SYSCALL_64", code: clone(syscallStub)},
		&fakeFunc{name: "do_syscall_64", code: clone(fpCaller), rows: rows(fpRows)},
		&fakeFunc{name: "work", code: clone(leafNoFrame), rows: rows(leafRows)},
		&fakeFunc{name: "asm_sysvec_apic_timer_interrupt", code: clone(stubCode)},
		&fakeFunc{name: "sysvec_apic_timer_interrupt", code: clone(fpCaller), rows: rows(fpRows)},
		&fakeFunc{name: "__sysvec_apic_timer_interrupt", code: clone(fpLeaf), rows: rows(fpLeafRows)},
	)
	sc := &kernelScene{code: c}
	task := newStack(taskLo, kStackSz)
	irq := newStack(irqLo, kStackSz)
	sc.task, sc.irq = task, irq
	// user pt_regs at the top of the task stack
	task.sp = task.hi - ptregs.PtRegsSize
	putPtRegs(task, task.sp, ptregs.PtRegs{IP: userIP, CS: 0x33, Flags: 0x246, SP: userSP, SS: 0x2b, BP: 0x7ffc00000ff0, OrigAX: 0})
	raSys := c.callAt("entry_SYSCALL_64", 3, "do_syscall_64")
	task.push(raSys)
	rbp := task.push(0x7ffc00000ff0) // do_syscall_64 saves the user rbp
	raDo := c.callAt("do_syscall_64", 4, "work")
	task.push(raDo)
	workSP := task.sp
	// IRQ: hardware frame at the 16-aligned sp, then the stub's pt_regs
	task.sp = workSP &^ 15
	p := ptregs.PtRegs{IP: c.fn("work").addr + 1, CS: 0x10, Flags: 0x202, SP: workSP, SS: 0x18, BP: rbp, OrigAX: ^uint64(0), AX: 0xaa}
	task.sp -= ptregs.PtRegsSize
	sc.ptAddr = task.sp
	putPtRegs(task, task.sp, p)
	raStub := c.callAt("asm_sysvec_apic_timer_interrupt", 8, "sysvec_apic_timer_interrupt")
	task.push(raStub)
	rbp = task.push(sc.ptAddr + 1) // sysvec saves the encoded rbp
	// call_on_irqstack
	irq.put(irq.hi-8, task.sp)
	irq.sp = irq.hi - 8
	irq.push(c.callAt("sysvec_apic_timer_interrupt", 4, "__sysvec_apic_timer_interrupt"))
	rbp = irq.push(rbp)
	sc.regs = regsOf(c.fn("__sysvec_apic_timer_interrupt").addr+4, irq.sp, rbp)
	sc.mem = NewSplicedMemory(Region{Addr: irqLo, Data: irq.mem}, Region{Addr: taskLo, Data: task.mem}, Region{Addr: kText, Data: c.text})
	sc.stacks = Stacks{{Kind: StackIRQ, Lo: irq.lo, Hi: irq.hi, CPU: 0}, {Kind: StackTask, Lo: task.lo, Hi: task.hi, CPU: 0}}
	return sc
}

func TestKernelIRQOverSyscall(t *testing.T) {
	want := []string{"__sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "asm_sysvec_apic_timer_interrupt",
		"work", "do_syscall_64", "entry_SYSCALL_64", "?"}
	wantStacks := []StackKind{StackIRQ, StackIRQ, StackTask, StackTask, StackTask, StackTask, StackUser}
	for _, tc := range []struct {
		name    string
		cfi     bool
		methods Method
	}{
		{"fp", false, MethodFP | MethodPtRegs},
		{"cfi", true, MethodCFI | MethodPtRegs},
		{"all", true, 0},
		{"all-no-cfi-rows", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := irqOverSyscall(tc.cfi)
			u := New(sc.mem, sc.regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: tc.methods})
			var fs []Frame
			for u.Next() {
				fs = append(fs, u.Frame())
			}
			if diff := cmp.Diff(want, names(fs)); diff != "" {
				t.Fatalf("(-want +got)\n%s\nstop %s", diff, u.StopReason())
			}
			var stk []StackKind
			for _, f := range fs {
				stk = append(stk, f.Stack.Kind)
			}
			if diff := cmp.Diff(wantStacks, stk); diff != "" {
				t.Errorf("stacks: %s", diff)
			}
			if u.StopReason() != StopUserMode || !u.Reliable() {
				t.Errorf("stop %q reliable %v", u.StopReason(), u.Reliable())
				for _, f := range fs {
					t.Logf("%d %s %v %v", f.Index, f.Function, f.Method, f.Reliable)
				}
			}
			w := fs[3]
			if w.Kind != KindInterrupted || w.Entry != "irq:236" || w.RegsAddr != sc.ptAddr || w.PtRegs.AX != 0xaa ||
				w.LookupPC != w.PC || w.Method != MethodPtRegs || w.Partial {
				t.Errorf("interrupted frame: %+v", w)
			}
			if v, ok := w.Regs.Get(ptregs.RAX); !ok || v != 0xaa {
				t.Errorf("rax %#x %v", v, ok)
			}
			usr := fs[6]
			if usr.Kind != KindInterrupted || usr.Entry != "syscall" || usr.PC != userIP || usr.SP != userSP {
				t.Errorf("user frame: %+v", usr)
			}
			if fs[1].SP != sc.ptAddr-16 {
				t.Errorf("sysvec sp %#x, want the saved task sp %#x", fs[1].SP, sc.ptAddr-16)
			}
		})
	}
}

// TestKernelNMIPartial stops in the NMI entry stub before it saved
// registers: the iret frame at the top of the NMI stack gives the
// interrupted frame, marked partial.
func TestKernelNMIPartial(t *testing.T) {
	sc := irqOverSyscall(true)
	c := newFakeCode(kText, append(sc.code.funcs, &fakeFunc{name: "asm_exc_nmi", code: []byte{0x90, 0x90, 0x90, 0x90}})...)
	sc.code = c
	nmi := newStack(nmiLo, 4096)

	workSP := binary.LittleEndian.Uint64(sc.task.mem[sc.ptAddr+8*19-taskLo:])
	fr := ptregs.IretFrame{IP: c.fn("work").addr + 1, CS: 0x10, Flags: 0x2, SP: workSP, SS: 0x18}
	b := fr.Encode()
	copy(nmi.mem[len(nmi.mem)-40:], b[:])
	// the task stack as it was before the IRQ: no pt_regs below work
	mem := NewSplicedMemory(Region{Addr: nmiLo, Data: nmi.mem}, Region{Addr: taskLo, Data: sc.task.mem}, Region{Addr: kText, Data: c.text})
	stacks := append(Stacks{{Kind: StackNMI, Lo: nmi.lo, Hi: nmi.hi, CPU: 0}}, sc.stacks...)
	doRBP := sc.task.hi - ptregs.PtRegsSize - 16
	regs := regsOf(c.fn("asm_exc_nmi").addr, nmi.hi-40, doRBP)
	fs, err := Walk(mem, regs, &Options{Code: c, Stacks: stacks, Kernel: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"asm_exc_nmi", "work", "do_syscall_64", "entry_SYSCALL_64", "?"}, names(fs)); diff != "" {
		t.Fatal(diff)
	}
	if !fs[1].Partial || fs[1].Entry != "nmi" || fs[1].Kind != KindInterrupted || fs[1].Stack.Kind != StackTask {
		t.Errorf("partial frame: %+v", fs[1])
	}
	if fs[1].Regs.Valid(ptregs.RAX) {
		t.Errorf("partial frame claims rax")
	}
}

// TestStackSwitchInward: a saved rbp that leads from the task stack to an
// IRQ stack is an error, not a frame.
func TestStackSwitchInward(t *testing.T) {
	sc := irqOverSyscall(false)
	// Start on the task stack in sysvec_apic_timer_interrupt with rbp
	// pointing into the IRQ stack.
	irqFrame := sc.irq.lo + 0x100
	sc.irq.put(irqFrame, 0)
	sc.irq.put(irqFrame+8, sc.code.fn("sysvec_apic_timer_interrupt").addr+9)
	regs := regsOf(sc.code.fn("sysvec_apic_timer_interrupt").addr+9, sc.ptAddr-16, irqFrame)
	u := New(sc.mem, regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: MethodFP})
	n := 0
	for u.Next() {
		n++
	}
	if u.Err() == nil || !strings.Contains(u.StopReason(), "inward") || n != 1 {
		t.Errorf("%d frames, stop %q", n, u.StopReason())
	}
	// The caller was read from the task stack: the frames read from it
	// (none but the rejected caller) are invalidated.
	var ce *CorruptStackError
	if !errors.As(u.Err(), &ce) || ce.Stack.Kind != StackTask || ce.From != 1 || u.Invalidated() != 1 {
		t.Errorf("err %#v, invalidated %d", u.Err(), u.Invalidated())
	}
}

// TestKernelMarkerEntry: the entry stub pushes a marker return address and
// the interrupted rbp instead of encoding rbp. The marker and the stub's
// vector come from Options (names the unwinder has never heard of).
func TestKernelMarkerEntry(t *testing.T) {
	for _, withCFI := range []bool{false, true} {
		rows := func(r []fakeRow) []fakeRow {
			if withCFI {
				return r
			}
			return nil
		}
		c := newFakeCode(kText,
			&fakeFunc{name: "work", code: clone(leafNoFrame), rows: rows(leafRows)},
			&fakeFunc{name: "my_entry_marker", code: []byte{0x0f, 0x0b}},
			// push $marker; push %rbp; mov %rsp,%rbp; call X; nop (call at 9, return at 14)
			&fakeFunc{name: "asm_sysvec_my_vector", code: []byte{0x68, 0, 0, 0, 0, 0x55, 0x48, 0x89, 0xe5, 0xe8, 0, 0, 0, 0, 0x90}},
			&fakeFunc{name: "sysvec_my_vector", code: clone(fpLeaf), rows: rows(fpLeafRows)},
			&fakeFunc{name: "_start", code: clone(fpCaller), rows: rows(fpRows)})
		stub := c.fn("asm_sysvec_my_vector")
		binary.LittleEndian.PutUint32(c.text[stub.addr-kText+1:], uint32(c.fn("my_entry_marker").addr))
		task := newStack(taskLo, kStackSz)
		task.sp = task.hi - ptregs.PtRegsSize // kernel thread: kernel-mode pt_regs at the top
		putPtRegs(task, task.sp, ptregs.PtRegs{IP: c.fn("_start").addr + 9, CS: 0x10, Flags: 0x2, SP: task.sp, SS: 0x18})
		task.push(0)
		rbp0 := task.push(0) // _start's frame
		task.push(c.callAt("_start", 4, "work"))
		workSP := task.sp
		task.sp &^= 15
		task.sp -= ptregs.PtRegsSize
		pt := task.sp
		putPtRegs(task, pt, ptregs.PtRegs{IP: c.fn("work").addr + 1, CS: 0x10, Flags: 0x202, SP: workSP, SS: 0x18, BP: rbp0, OrigAX: ^uint64(0)})
		task.push(c.fn("my_entry_marker").addr)
		rec := task.push(rbp0)
		task.push(c.callAt("asm_sysvec_my_vector", 9, "sysvec_my_vector"))
		rbp := task.push(rec)
		mem := NewSplicedMemory(Region{Addr: taskLo, Data: task.mem}, Region{Addr: kText, Data: c.text})
		regs := regsOf(c.fn("sysvec_my_vector").addr+4, task.sp, rbp)
		u := New(mem, regs, &Options{Code: c, Stacks: Stacks{{Kind: StackTask, Lo: task.lo, Hi: task.hi}}, Kernel: true,
			EntryMarkers: []uint64{c.fn("my_entry_marker").addr}, EntryVectors: map[string]int{"asm_sysvec_my_vector": 0xed}})
		var fs []Frame
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		if diff := cmp.Diff([]string{"sysvec_my_vector", "asm_sysvec_my_vector", "work", "_start"}, names(fs)); diff != "" {
			t.Fatalf("cfi=%v: %s\nstop %s", withCFI, diff, u.StopReason())
		}
		if w := fs[2]; w.Kind != KindInterrupted || w.RegsAddr != pt || w.Entry != "irq:237" {
			t.Errorf("interrupted frame %+v", w)
		}
		if !u.Reliable() {
			t.Errorf("cfi=%v: not reliable: %s", withCFI, u.StopReason())
		}
	}
}

func TestEntryNames(t *testing.T) {
	for _, tc := range []struct {
		stub string
		orig uint64
		cs   uint64
		sk   StackKind
		want string
	}{
		{"asm_exc_page_fault", 2, 0x10, StackTask, "page_fault"},
		{"asm_sysvec_apic_timer_interrupt", ^uint64(0), 0x10, StackTask, "irq:236"},
		{"asm_common_interrupt", 0x21, 0x10, StackTask, "irq:33"},
		{"end_repeat_nmi", ^uint64(0), 0x10, StackNMI, "nmi"},
		{"entry_SYSCALL_64_after_hwframe", 0, 0x33, StackTask, "syscall"},
		{"asm_exc_int3", ^uint64(0), 0x10, StackTask, "int3"},
		{"asm_exc_debug", ^uint64(0), 0x10, StackDB, "debug"},
		{"asm_exc_double_fault", 0, 0x10, StackDF, "double_fault"},
		{"asm_exc_general_protection", 0, 0x10, StackTask, "general_protection"},
		{"", ^uint64(236), 0x10, StackTask, "irq:236"},
		{"", ^uint64(0), 0x10, StackNMI, "nmi"},
		{"", ^uint64(0), 0x10, StackDB, "debug"},
		{"", 1, 0x33, StackTask, "syscall"},
	} {
		p := ptregs.PtRegs{OrigAX: tc.orig, CS: tc.cs}
		if got := entryName(tc.stub, &p, tc.sk); got != tc.want {
			t.Errorf("%s/%#x: %q, want %q", tc.stub, tc.orig, got, tc.want)
		}
	}
}
