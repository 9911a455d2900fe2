package verify

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// Issue 15's mutants of an emulator snapshot (syscall-irq: a timer IRQ
// over a syscall from user mode): an interrupted RIP that no code can have
// is no reliable frame and leaves no reliable trace; frame 0 at a
// non-canonical PC is no reliable frame; a kernel selector in the user
// entry's pt_regs at the top of the task stack is inconsistent, no end.
func TestSnapshotMutants(t *testing.T) {
	d, code := loadRun(t, "syscall-irq")
	var m *emu.Machine
	var truth []emu.Frame
	var regs ptregs.Regs
	irq, user := -1, -1
	d.run(func(cpu int) {
		if m != nil {
			return
		}
		tr := d.m.ShadowStack(cpu)
		irq, user = -1, -1
		for i, f := range tr {
			switch {
			case f.Entry != "" && f.RegsAddr != 0 && f.Kind != emu.FrameUser && irq < 0:
				irq = i
			case f.Kind == emu.FrameUser && f.RegsAddr != 0:
				user = i
			}
		}
		if irq > 0 && user > irq {
			m = d.m.Clone()
			truth = append([]emu.Frame(nil), tr...)
			regs = m.CPUs[cpu].Regs()
		}
	})
	if m == nil {
		t.Fatal("syscall-irq: no boundary with an IRQ over a syscall")
	}
	walk := func(mem unwind.Memory, r ptregs.Regs, s Strategy) ([]unwind.Frame, *unwind.Unwinder) {
		o := &unwind.Options{Code: code, Stacks: topInclusive(m.Stacks(0)), Methods: s.Methods(), Kernel: true}
		m.EntryConventions(o)
		u := unwind.New(mem, r, o)
		var fs []unwind.Frame
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		return fs, u
	}
	put := func(addr, val uint64) unwind.Memory {
		o := &overlay{base: m.Memory(), addr: addr}
		binary.LittleEndian.PutUint64(o.val[:], val)
		return o
	}
	for s := Strategy(0); s < NumStrategies; s++ {
		fs, u := walk(m.Memory(), regs, s)
		if !u.Reliable() || len(fs) <= irq {
			t.Fatalf("%s: the intact snapshot: %d frames, reliable=%v, %s", s, len(fs), u.Reliable(), u.StopReason())
		}
		// The IRQ's pt_regs RIP.
		for _, rip := range []uint64{^uint64(0), 0xffff888000123000, 0x8000000000001000} {
			fs, u := walk(put(truth[irq].RegsAddr+16*8, rip), regs, s)
			for _, f := range fs {
				if f.PC == rip && f.Interrupted() && f.Reliable {
					t.Errorf("%s: interrupted RIP %#x marked reliable", s, rip)
				}
			}
			if u.Reliable() {
				t.Errorf("%s: interrupted RIP %#x: the trace is reliable (%d frames, %s)", s, rip, len(fs), u.StopReason())
			}
		}
		// Frame 0 at a non-canonical PC.
		bad := regs
		bad.Set(ptregs.RIP, 0x8000000000001000)
		if fs, u := walk(m.Memory(), bad, s); len(fs) == 0 || fs[0].Reliable || u.Reliable() {
			t.Errorf("%s: frame 0 at a non-canonical PC: reliable", s)
		}
		// A kernel cs in the user entry's pt_regs at the top of the task
		// stack (and the kernel ss with it: a plausible kernel pt_regs).
		// Frame pointers and pt_regs say so; CFI crosses the stub's signal
		// frame into an interrupted frame that is no text, unreliable.
		mem := &overlay{base: put(truth[user].RegsAddr+17*8, 0x10), addr: truth[user].RegsAddr + 20*8}
		binary.LittleEndian.PutUint64(mem.val[:], 0x18)
		fs, u = walk(mem, regs, s)
		if u.Reliable() || u.Err() == nil || s == FP && !strings.Contains(u.Err().Error(), "kernel-mode cs 0x10") {
			t.Errorf("%s: kernel cs at the top of the task stack: %d frames, reliable=%v, %s", s, len(fs), u.Reliable(), u.StopReason())
		}
	}
}
