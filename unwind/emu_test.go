package unwind_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// The emulator tests run the fixture kernel in the modes that build the
// entry frames Linux's unwinders find hardest (the nested-NMI copies on the
// NMI stack, int3 call emulation's gap and trampolines, NMIs and IRQs over
// task code) and compare, at every instruction boundary, the unwinder's
// frames with the emulator's shadow stack: the same PCs, the same frame
// kinds, for interrupted frames the same entry and interrupted RIP/RSP. A
// trace may stop early or go wrong only where it says so: a wrong frame
// marked reliable fails the test.

// emuStacks also places an address equal to a stack's top on that stack:
// an outermost frame entered with RSP at the top has SP == Hi.
type emuStacks unwind.Stacks

func (ss emuStacks) StackOf(addr uint64) (unwind.Stack, bool) {
	if s, ok := unwind.Stacks(ss).StackOf(addr); ok {
		return s, true
	}
	for _, s := range ss {
		if addr == s.Hi {
			return s, true
		}
	}
	return unwind.Stack{}, false
}

type emuRun struct {
	mode    uint64
	methods unwind.Method
	// cfiMayStop says where a walk with CFI may stop early (flagged): the
	// places the fixture kernel's CFI leaves RSP or the return address
	// undefined on purpose. Elsewhere a CFI walk must equal the truth.
	cfiMayStop func(where, diff string) bool
	insns      uint64 // boundaries to check at most
	every      uint64 // check every N-th boundary
	inject     func(m *emu.Machine, c *emu.CPU, n uint64)
}

// truthDefects are places where the emulator's shadow stack, not the
// unwinder, is wrong; a difference there is counted, logged, and not held
// against the unwinder.
var truthDefects = []struct {
	name  string
	match func(where, diff string) bool
}{{
	// The fixture kernel's sysret tail pushes the user RSP and RDI at the
	// top of the task stack, over pt_regs->ss and pt_regs->sp; the
	// emulator takes that store for a change of the interrupted RSP and
	// reports the user RDI (a character user_puts prints) as the user
	// frame's RSP. The CFI row there (rsp at CFA-8) gives the RSP sysretq
	// really returns with.
	name: "emu: sysret-tail pushes over pt_regs->sp taken for a new user RSP",
	match: func(where, diff string) bool {
		return strings.HasPrefix(where, "entry_SYSCALL_64_after_hwframe+") && strings.Contains(diff, "interrupted rsp")
	},
}}

type emuStats struct {
	checked, exact, flagged int
	truthBugs               map[string]int
	cfiMiss                 []string // CFI walks that differ where they must not
	lies                    []string
	byKind                  map[string]int // mismatch descriptions (flagged)
}

func newEmuMachine(t *testing.T, mode uint64) (*emu.Machine, *symbols.Set) {
	t.Helper()
	k, err := unwindfixtures.Kernel("fp")
	if err != nil {
		t.Fatal(err)
	}
	m, err := emu.New(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := m.SymbolByName("boot_args")
	if !ok {
		t.Fatal("no boot_args")
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], mode)
	if _, err := m.Memory().WriteAt(b[:], s.Addr); err != nil {
		t.Fatal(err)
	}
	f, err := symbols.NewFile(bytes.NewReader(k), "kernel-fp.elf", 0)
	if err != nil {
		t.Fatal(err)
	}
	var set symbols.Set
	set.Add(f)
	return m, &set
}

// userEnd: a kernel unwind must reproduce the truth down to the first
// user-mode frame.
func userEnd(truth []emu.Frame) int {
	if len(truth) == 0 || truth[0].Kind == emu.FrameUser {
		return len(truth)
	}
	for i := range truth {
		if truth[i].Kind == emu.FrameUser {
			return i + 1
		}
	}
	return len(truth)
}

// compareEmu compares one walk with the truth. It returns "" when exact,
// else the first difference; lie reports a wrong frame marked reliable (or
// a wrong trace called reliable).
func compareEmu(u *unwind.Unwinder, truth []emu.Frame) (diff string, lie bool) {
	need := userEnd(truth)
	n := 0
	last := ""
	for u.Next() {
		f := u.Frame()
		if f.Inlined {
			continue
		}
		last = f.Function
		d := ""
		if n >= need {
			if n < len(truth) {
				break // beyond the user frame: not compared
			}
			d = fmt.Sprintf("frame %d %s beyond the truth", n, f.Function)
		} else {
			t := &truth[n]
			switch {
			case f.PC != t.PC:
				d = fmt.Sprintf("frame %d: pc %#x (%s), truth %#x (%s)", n, f.PC, f.Function, t.PC, t.Function)
			case (t.Entry != "") != f.Interrupted():
				d = fmt.Sprintf("frame %d %s: interrupted=%v (%s), truth entry %q", n, t.Function, f.Interrupted(), f.Entry, t.Entry)
			case t.Entry != "" && f.Entry != t.Entry && !(f.Entry == "irq" && strings.HasPrefix(t.Entry, "irq:")):
				d = fmt.Sprintf("frame %d %s: entry %q, truth %q", n, t.Function, f.Entry, t.Entry)
			case t.Entry != "" && t.RegsAddr != 0 && f.RegsAddr != 0 && !f.Partial && f.RegsAddr != t.RegsAddr:
				d = fmt.Sprintf("frame %d %s: pt_regs %#x, truth %#x", n, t.Function, f.RegsAddr, t.RegsAddr)
			case t.Entry != "" && f.SP != t.SP:
				d = fmt.Sprintf("frame %d %s: interrupted rsp %#x, truth %#x", n, t.Function, f.SP, t.SP)
			}
		}
		if d != "" {
			return d, f.Reliable || u.Reliable()
		}
		n++
	}
	if n < need {
		if u.Reliable() {
			return fmt.Sprintf("reliable trace ends after %d frames, truth %d", n, need), true
		}
		stop := u.StopReason()
		if i := strings.Index(stop, " at 0x"); i > 0 {
			stop = stop[:i]
		}
		next := truth[n].Function
		return fmt.Sprintf("ends at frame %d after %s (next %s): %s", n, last, next, stop), false
	}
	return "", false
}

func runEmu(t *testing.T, r emuRun) emuStats {
	t.Helper()
	m, set := newEmuMachine(t, r.mode)
	o := &unwind.Options{Code: set, Stacks: emuStacks(m.Stacks(0)), Kernel: true, Methods: r.methods}
	m.EntryConventions(o)
	u := unwind.New(m.Memory(), ptregs.Regs{}, o)
	st := emuStats{byKind: map[string]int{}, truthBugs: map[string]int{}}
	c := m.CPUs[0]
	for n := uint64(0); n < r.insns; n++ {
		if r.inject != nil {
			r.inject(m, c, n)
		}
		err := m.StepCPU(0)
		if errors.Is(err, emu.ErrStopped) {
			break
		}
		if err != nil {
			t.Fatalf("mode %d: %v", r.mode, err)
		}
		if r.every > 1 && n%r.every != 0 {
			continue
		}
		if c.CPL() == 3 {
			continue
		}
		truth := m.ShadowStack(0)
		u.Reset(m.Memory(), c.Regs())
		st.checked++
		diff, lie := compareEmu(u, truth)
		where := "?"
		if s, ok := set.Symbol(c.RIP); ok {
			where = fmt.Sprintf("%s+%#x", s.Name, c.RIP-s.Addr)
		}
		known := ""
		for _, d := range truthDefects {
			if diff != "" && d.match(where, diff) {
				known = d.name
			}
		}
		switch {
		case diff == "":
			st.exact++
		case known != "":
			st.truthBugs[known]++
		case lie:
			if len(st.lies) < 20 {
				st.lies = append(st.lies, fmt.Sprintf("insn %d at %s: %s", n, where, diff))
			}
		default:
			st.flagged++
			st.byKind[where+": "+diff]++
			if r.methods&(unwind.MethodCFI) != 0 || r.methods == 0 {
				if r.cfiMayStop == nil || !r.cfiMayStop(where, diff) {
					if len(st.cfiMiss) < 10 {
						st.cfiMiss = append(st.cfiMiss, fmt.Sprintf("insn %d at %s: %s", n, where, diff))
					}
				}
			}
		}
	}
	return st
}

func reportEmu(t *testing.T, name string, st emuStats) {
	t.Logf("%s: %d boundaries checked, %d exact, %d flagged, %d wrong-reliable", name, st.checked, st.exact, st.flagged, len(st.lies))
	if testing.Verbose() {
		var ks []string
		for k := range st.byKind {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			t.Logf("  flagged x%d: %s", st.byKind[k], k)
		}
	}
	for k, n := range st.truthBugs {
		t.Logf("%s: %d boundaries differ where the truth is known to be wrong (%s)", name, n, k)
	}
	for _, l := range st.cfiMiss {
		t.Errorf("%s: the CFI walk differs from the truth: %s", name, l)
	}
	for _, l := range st.lies {
		t.Errorf("%s: wrong frame marked reliable: %s", name, l)
	}
}

// emuStrategies are the strategy sets each mode is checked with: all, CFI
// alone, frame pointers with entry frames (no CFI).
var emuStrategies = []struct {
	name    string
	methods unwind.Method
}{
	{"all", 0},
	{"cfi", unwind.MethodCFI},
	{"fp", unwind.MethodFP | unwind.MethodPtRegs},
}

func checkMode(t *testing.T, r emuRun) {
	for _, s := range emuStrategies {
		t.Run(s.name, func(t *testing.T) {
			r := r
			r.methods = s.methods
			reportEmu(t, fmt.Sprintf("mode %d %s", r.mode, s.name), runEmu(t, r))
		})
	}
}

// syscallRSPUndefined: entry_SYSCALL_64 keeps the user RSP only in a
// per-CPU slot for its first instructions; CFI says RSP is undefined there.
func syscallRSPUndefined(where, diff string) bool {
	if (strings.HasPrefix(where, "entry_SYSCALL_64+") || strings.HasPrefix(where, "entry_SYSCALL_64_safe_stack+")) &&
		strings.Contains(diff, "interrupted rsp") {
		return true
	}
	// An NMI or IRQ that interrupted those instructions.
	return strings.Contains(diff, " after entry_SYSCALL_64 (") || strings.Contains(diff, " after entry_SYSCALL_64_safe_stack (")
}

// TestEmuNestedNMI: mode 6, an NMI nested in an NMI (after a #PF's IRET
// in the outer handler unblocked NMIs) on the same IST stack, detected by
// the "NMI executing" word, the outer repeated through repeat_nmi.
func TestEmuNestedNMI(t *testing.T) { checkMode(t, emuRun{mode: 6, insns: 400000}) }

// TestEmuInt3Gap: mode 8, int3 call emulation through the 48-byte gap the
// int3 entry leaves below a kernel-mode frame, in task, IRQ, softirq and
// NMI context.
func TestEmuInt3Gap(t *testing.T) { checkMode(t, emuRun{mode: 8, insns: 400000}) }

// TestEmuInt3Tramp: mode 9, int3 emulation through per-context trampolines.
// After the handler pointed pt_regs->ip at int3_tramp_*, the interrupted
// frame is the trampoline's first instruction, whose return address lives
// only in a per-CPU slot (CFI: RIP undefined): walks stop there, flagged.
// (The emulator's truth keeps the original interrupted frame there.)
func TestEmuInt3Tramp(t *testing.T) {
	checkMode(t, emuRun{mode: 9, insns: 400000, cfiMayStop: func(where, diff string) bool {
		return strings.Contains(diff, "(next int3_site_func)") &&
			(strings.HasPrefix(where, "int3_tramp_") || strings.HasPrefix(where, "exc_int3+") ||
				strings.HasPrefix(where, "poke_int3_handler+") || strings.HasPrefix(where, "asm_exc_int3+"))
	}})
}

// TestEmuBasicInjected: NMIs and IRQs (timer, marker) injected into the
// task chain, the syscall path and user mode, once the kernel runs its
// task loop.
func TestEmuBasicInjected(t *testing.T) {
	var started bool
	checkMode(t, emuRun{mode: 0, insns: 300000, every: 5, cfiMayStop: syscallRSPUndefined, inject: func(m *emu.Machine, c *emu.CPU, n uint64) {
		if n == 0 {
			started = false
		}
		if !started {
			if s, ok := m.Symbol(c.RIP); ok && s.Name == "task_loop" {
				started = true
			}
			return
		}
		switch {
		case n%997 == 500:
			c.RaiseNMI()
		case n%613 == 300:
			c.RaiseIRQ(0xec)
		case n%1409 == 700:
			c.RaiseIRQ(0xed)
		}
	}})
}

// TestEmuStubWalkInt3Gap: stopped inside asm_exc_int3 after it copied
// the frame into the call-emulation gap, a walk without CFI finds the
// hardware frame (the copy), recovers the interrupted rbp, analyses the
// interrupted int3_site_func although its first byte is an int3 the file
// does not have, and proves the whole trace.
func TestEmuStubWalkInt3Gap(t *testing.T) {
	m, set := newEmuMachine(t, 8)
	c := m.CPUs[0]
	found := false
	for n := 0; n < 100000 && !found; n++ {
		if err := m.StepCPU(0); err != nil {
			t.Fatal(err)
		}
		if s, ok := set.Symbol(c.RIP); ok && s.Name == "asm_exc_int3" && c.RIP-s.Addr >= 0x10 {
			found = true
		}
	}
	if !found {
		t.Fatal("never stopped inside asm_exc_int3")
	}
	truth := m.ShadowStack(0)
	for _, meth := range []unwind.Method{unwind.MethodFP | unwind.MethodPtRegs, 0} {
		o := &unwind.Options{Code: set, Stacks: emuStacks(m.Stacks(0)), Kernel: true, Methods: meth}
		m.EntryConventions(o)
		u := unwind.New(m.Memory(), c.Regs(), o)
		diff, _ := compareEmu(u, truth)
		if diff != "" || !u.Reliable() {
			t.Errorf("methods %v: %q, reliable=%v (%s)", meth, diff, u.Reliable(), u.StopReason())
		}
	}
}
