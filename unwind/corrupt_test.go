package unwind

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/ptregs"
)

// Synthetic IST stacks for the invalidation rule (CorruptStackError).
const (
	mcLo  = 0xfffffe0000020000
	dbLo  = 0xfffffe0000030000
	istSz = 0x1000
)

// istScene is kernel memory with entry stubs that encode rbp (stubCode)
// and handlers with frame pointers (fpCaller, interrupted at +4, after
// their prologue, at their call).
type istScene struct {
	code   *fakeCode
	stacks Stacks
	stk    map[StackKind]*stackSim
}

func newISTScene(kinds ...StackKind) *istScene {
	c := newFakeCode(kText,
		&fakeFunc{name: "_start", code: clone(fpCaller)},
		&fakeFunc{name: "task_fn", code: clone(fpCaller)},
		&fakeFunc{name: "asm_exc_machine_check", code: clone(stubCode)},
		&fakeFunc{name: "exc_machine_check", code: clone(fpLeaf)},
		&fakeFunc{name: "asm_exc_int3", code: clone(stubCode)},
		&fakeFunc{name: "exc_int3", code: clone(fpCaller)},
		&fakeFunc{name: "asm_exc_nmi", code: clone(stubCode)},
		&fakeFunc{name: "exc_nmi", code: clone(fpCaller)},
	)
	c.callAt("_start", 4, "task_fn")
	c.callAt("asm_exc_machine_check", 8, "exc_machine_check")
	c.callAt("asm_exc_int3", 8, "exc_int3")
	c.callAt("asm_exc_nmi", 8, "exc_nmi")
	sc := &istScene{code: c, stk: map[StackKind]*stackSim{}}
	lo := map[StackKind]uint64{StackMC: mcLo, StackDB: dbLo, StackNMI: nmiLo, StackTask: taskLo}
	for _, k := range kinds {
		s := newStack(lo[k], istSz)
		sc.stk[k] = s
		sc.stacks = append(sc.stacks, Stack{Kind: k, Lo: s.lo, Hi: s.hi, CPU: 0})
	}
	return sc
}

func (sc *istScene) mem() SplicedMemory {
	rs := []Region{{Addr: kText, Data: sc.code.text}}
	for _, s := range sc.stk {
		rs = append(rs, s.region())
	}
	return NewSplicedMemory(rs...)
}

// entry builds, at pt on stack k, an entry whose pt_regs resumes ip at sp
// with rbp, and whose stub called handler, which is stopped (or
// interrupted) right after its prologue. It returns the handler's sp and
// rbp.
func (sc *istScene) entry(k StackKind, pt uint64, stub string, ip, sp, rbp uint64) (hsp, hrbp uint64) {
	s := sc.stk[k]
	putPtRegs(s, pt, ptregs.PtRegs{IP: ip, CS: 0x10, Flags: 0x46, SP: sp, SS: 0x18, BP: rbp, OrigAX: ^uint64(0)})
	s.put(pt-8, sc.code.fn(stub).addr+13) // the stub's call returns here
	s.put(pt-16, pt+1)                    // the handler saved the encoded rbp
	return pt - 16, pt - 16
}

func (sc *istScene) fn(name string, off uint64) uint64 { return sc.code.fn(name).addr + off }

type walked struct {
	frames []Frame
	err    error
	from   int
	end    string
}

func walkAll(u *Unwinder) walked {
	var w walked
	for u.Next() {
		w.frames = append(w.frames, u.Frame())
	}
	w.err, w.from = u.Err(), u.Invalidated()
	w.end = fmt.Sprintf("%v %q %d", u.Reliable(), u.StopReason(), w.from)
	return w
}

// check walks the scene from regs, fresh and with an incremental Unwinder
// (twice: the second walk replays the first), and returns the fresh walk;
// all must agree, frame for frame, to the finding.
func (sc *istScene) check(t *testing.T, regs ptregs.Regs, m Method) walked {
	t.Helper()
	opts := Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: m}
	want := walkAll(New(sc.mem(), regs, &opts))
	inc := opts
	inc.Incremental = true
	u := New(sc.mem(), regs, &inc)
	for i := 0; i < 3; i++ {
		u.Reset(sc.mem(), regs)
		got := walkAll(u)
		if got.end != want.end || fmt.Sprint(got.err) != fmt.Sprint(want.err) {
			t.Fatalf("incremental walk %d ends %s (%v), fresh %s (%v)", i, got.end, got.err, want.end, want.err)
		}
		if len(got.frames) != len(want.frames) {
			t.Fatalf("incremental walk %d: %d frames, fresh %d", i, len(got.frames), len(want.frames))
		}
		for j := range want.frames {
			if got.frames[j] != want.frames[j] {
				t.Fatalf("incremental walk %d, frame %d:\n%+v\nfresh:\n%+v", i, j, got.frames[j], want.frames[j])
			}
		}
	}
	return want
}

func reliability(fs []Frame) []bool {
	var out []bool
	for _, f := range fs {
		out = append(out, f.Reliable)
	}
	return out
}

// wantCorrupt checks that the walk ended on a CorruptStackError about
// stack kind k that invalidates the frames from from on, that Walk marks
// them unreliable (and so does a Recording), and that the frames before
// it stay reliable.
func wantCorrupt(t *testing.T, w walked, k StackKind, from int, mem Memory, regs ptregs.Regs, opts *Options) {
	t.Helper()
	var ce *CorruptStackError
	if !errors.As(w.err, &ce) {
		t.Fatalf("err %v (%T), want a *CorruptStackError", w.err, w.err)
	}
	if ce.Stack.Kind != k || ce.From != from || w.from != from {
		t.Errorf("corrupt stack %s from %d (Invalidated %d), want %s from %d: %v", ce.Stack.Kind, ce.From, w.from, k, from, ce)
	}
	for i, f := range w.frames {
		if i < from && !f.Reliable {
			t.Errorf("frame %d (%s) before the first invalidated one is unreliable", i, f.Function)
		}
	}
	if r := checkRecord(t, mem, regs, opts); r.Invalidated() != from {
		t.Errorf("Record: Invalidated %d, want %d", r.Invalidated(), from)
	}
	fs, err := Walk(mem, regs, opts)
	if fmt.Sprint(err) != fmt.Sprint(w.err) || len(fs) != len(w.frames) {
		t.Fatalf("Walk: %d frames, %v", len(fs), err)
	}
	for i, f := range fs {
		if want := w.frames[i].Reliable && i < from; f.Reliable != want {
			t.Errorf("Walk: frame %d (%s) reliable %v, want %v", i, f.Function, f.Reliable, want)
		}
	}
}

// TestCorruptISTReentered: a #MC over an int3 handler on the #DB stack,
// which interrupted an NMI handler, whose pt_regs (left by an int3 that
// reset the #DB stack and has returned) names the #DB stack again. The
// frames read from the #DB stack's memory are invalidated, from the first
// one (the int3 stub, read from the handler's frame record there); the
// #MC frames and the interrupted int3 handler, read from the #MC stack's
// pt_regs, stand.
func TestCorruptISTReentered(t *testing.T) {
	sc := newISTScene(StackMC, StackDB, StackNMI)
	db, nmi, mc := sc.stk[StackDB], sc.stk[StackNMI], sc.stk[StackMC]
	ptDB, ptNMI, ptMC := db.hi-ptregs.PtRegsSize, nmi.hi-ptregs.PtRegsSize, mc.hi-ptregs.PtRegsSize
	intSP, intRBP := sc.entry(StackDB, ptDB, "asm_exc_int3", sc.fn("exc_nmi", 4), ptNMI-16, ptNMI-16)
	mcSP, mcRBP := sc.entry(StackMC, ptMC, "asm_exc_machine_check", sc.fn("exc_int3", 4), intSP, intRBP)
	// The NMI's pt_regs names exc_int3 on the #DB stack, at the frame the
	// #MC interrupted: the memory the walk read there the first time.
	sc.entry(StackNMI, ptNMI, "asm_exc_nmi", sc.fn("exc_int3", 4), intSP, intRBP)
	regs := regsOf(sc.fn("exc_machine_check", 4), mcSP, mcRBP)
	for _, m := range []Method{MethodFP | MethodPtRegs, 0} {
		t.Run(m.String(), func(t *testing.T) {
			w := sc.check(t, regs, m)
			want := []string{"exc_machine_check", "asm_exc_machine_check", "exc_int3", "asm_exc_int3", "exc_nmi", "asm_exc_nmi"}
			if diff := cmp.Diff(want, names(w.frames)); diff != "" {
				t.Fatalf("%s\n%s", diff, w.end)
			}
			if !strings.Contains(w.err.Error(), "entered twice") {
				t.Errorf("err %v", w.err)
			}
			// Before the finding, every frame was yielded reliable.
			if diff := cmp.Diff([]bool{true, true, true, true, true, true}, reliability(w.frames)); diff != "" {
				t.Errorf("yielded reliability: %s", diff)
			}
			wantCorrupt(t, w, StackDB, 3, sc.mem(), regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: m})
		})
	}
}

// TestCorruptNotMovingUp: the NMI's pt_regs names a stack pointer below
// its own frames on the NMI stack (and is no nested NMI's hardware frame:
// nothing lies at the top of the stack): the frames read from the NMI
// stack are invalidated; those before, read from the #MC and #DB stacks,
// stand.
func TestCorruptNotMovingUp(t *testing.T) {
	sc := newISTScene(StackMC, StackDB, StackNMI)
	db, nmi, mc := sc.stk[StackDB], sc.stk[StackNMI], sc.stk[StackMC]
	ptDB, ptNMI, ptMC := db.hi-ptregs.PtRegsSize, nmi.hi-ptregs.PtRegsSize-0x40, mc.hi-ptregs.PtRegsSize
	intSP, intRBP := sc.entry(StackDB, ptDB, "asm_exc_int3", sc.fn("exc_nmi", 4), ptNMI-16, ptNMI-16)
	mcSP, mcRBP := sc.entry(StackMC, ptMC, "asm_exc_machine_check", sc.fn("exc_int3", 4), intSP, intRBP)
	sc.entry(StackNMI, ptNMI, "asm_exc_nmi", sc.fn("exc_nmi", 4), ptNMI-16-0x100, ptNMI-16-0x100)
	regs := regsOf(sc.fn("exc_machine_check", 4), mcSP, mcRBP)
	w := sc.check(t, regs, MethodFP|MethodPtRegs)
	if !strings.Contains(fmt.Sprint(w.err), "does not move up") || len(w.frames) != 6 {
		t.Fatalf("%d frames, err %v", len(w.frames), w.err)
	}
	wantCorrupt(t, w, StackNMI, 5, sc.mem(), regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: MethodFP | MethodPtRegs})
}

// nestedNMI builds an NMI nested on the NMI stack over an outer NMI
// stopped in its handler (exc_nmi+4), which interrupted task_fn: the nested
// NMI is at its first instruction, its hardware frame at the top of the
// stack. The outer NMI's pt_regs is at pt (below the nested NMI's frames,
// or overlapping them when pt+168 passes the top's 40 bytes).
func nestedNMI(pt uint64) (*istScene, ptregs.Regs) {
	sc := newISTScene(StackNMI, StackTask)
	nmi, task := sc.stk[StackNMI], sc.stk[StackTask]
	task.push(0)
	rbp0 := task.push(0) // _start's frame
	task.push(sc.fn("_start", 9))
	taskRBP := task.push(rbp0) // task_fn's frame, interrupted at +4
	outerSP, outerRBP := sc.entry(StackNMI, pt, "asm_exc_nmi", sc.fn("task_fn", 4), task.sp, taskRBP)
	fr := ptregs.IretFrame{IP: sc.fn("exc_nmi", 4), CS: 0x10, Flags: 0x46, SP: outerSP, SS: 0x18}
	b := fr.Encode()
	copy(nmi.mem[istSz-ptregs.IretFrameSize:], b[:])
	return sc, regsOf(sc.fn("asm_exc_nmi", 0), nmi.hi-ptregs.IretFrameSize, outerRBP)
}

// TestNestedNMIBelow: the outer NMI's frames lie below the nested one's
// hardware frame (Linux's layout keeps its pt_regs below the copies at the
// top of the stack): the walk goes down the NMI stack once and on to the
// task, reliable, nothing invalidated.
func TestNestedNMIBelow(t *testing.T) {
	sc, regs := nestedNMI(nmiLo + istSz - 304)
	w := sc.check(t, regs, MethodFP|MethodPtRegs)
	want := []string{"asm_exc_nmi", "exc_nmi", "asm_exc_nmi", "task_fn", "_start"}
	if diff := cmp.Diff(want, names(w.frames)); diff != "" || w.err != nil || w.from != -1 {
		t.Fatalf("%s\nerr %v, invalidated %d", diff, w.err, w.from)
	}
	if !strings.HasPrefix(w.end, "true ") {
		t.Errorf("not reliable: %s", w.end)
	}
}

// TestNestedNMIOverwrote: the outer NMI's pt_regs lies where the nested
// NMI's entry pushed its own frame (a naive IST entry): the outer's frames
// read into the nested one's, every frame read from the NMI stack is
// invalidated (the walk cannot tell the nested NMI from an outer one that
// returned through the overwritten frame).
func TestNestedNMIOverwrote(t *testing.T) {
	sc, regs := nestedNMI(nmiLo + istSz - ptregs.PtRegsSize)
	w := sc.check(t, regs, MethodFP|MethodPtRegs)
	if diff := cmp.Diff([]string{"asm_exc_nmi", "exc_nmi", "asm_exc_nmi"}, names(w.frames)); diff != "" {
		t.Fatalf("%s\n%s", diff, w.end)
	}
	if !strings.Contains(fmt.Sprint(w.err), "into the nested nmi's frames") {
		t.Errorf("err %v", w.err)
	}
	wantCorrupt(t, w, StackNMI, 1, sc.mem(), regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: MethodFP | MethodPtRegs})
}

// TestNestedNMIUnconfirmed: below a nested NMI the walk stops (a
// misaligned rbp) before the outer NMI's frames were seen to leave the NMI
// stack clear of the nested one's: the frames read from it are
// invalidated, and the error says why.
func TestNestedNMIUnconfirmed(t *testing.T) {
	sc, regs := nestedNMI(nmiLo + istSz - 304)
	rbp, _ := regs.Get(ptregs.RBP)
	regs.Set(ptregs.RBP, rbp+3)
	w := sc.check(t, regs, MethodFP|MethodPtRegs)
	if diff := cmp.Diff([]string{"asm_exc_nmi", "exc_nmi"}, names(w.frames)); diff != "" {
		t.Fatalf("%s\n%s", diff, w.end)
	}
	if !strings.Contains(fmt.Sprint(w.err), "not confirmed intact") {
		t.Errorf("err %v", w.err)
	}
	wantCorrupt(t, w, StackNMI, 1, sc.mem(), regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true, Methods: MethodFP | MethodPtRegs})
}
