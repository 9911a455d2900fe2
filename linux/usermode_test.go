package linux

import (
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// A CPU the dump caught in user mode (the busy shell on CPU 1 of
// scripts/make-taskdump.sh's dump) has one frame, the user context, and a
// reliable end; anything else is left to the walk.
func TestUserModeCPU(t *testing.T) {
	th := func(cs, pc, sp uint64) dump.Thread {
		var th dump.Thread
		th.Regs.Set(ptregs.RIP, pc)
		th.Regs.Set(ptregs.RSP, sp)
		th.PrStatus.Regs.CS, th.PrStatus.Regs.SS = cs, cs+8
		th.PrStatus.Regs.IP, th.PrStatus.Regs.SP = pc, sp
		th.PrStatus.Regs.AX = 0x5b56c5
		return th
	}
	tr, ok := userModeCPU(th(0x33, 0x401038, 0x7fffca449778), nil)
	if !ok || len(tr.Frames) != 1 || !tr.Reliable || tr.StopReason != unwind.StopUserMode {
		t.Fatalf("user-mode CPU: ok %v, %+v", ok, tr)
	}
	f := tr.Frames[0]
	if f.Kind != unwind.KindInterrupted || f.PC != 0x401038 || f.SP != 0x7fffca449778 ||
		f.PtRegs.CS != 0x33 || f.PtRegs.AX != 0x5b56c5 || f.Stack.Kind != unwind.StackUser || !f.Reliable {
		t.Errorf("frame 0: %+v", f)
	}
	for _, c := range []struct {
		name       string
		cs, pc, sp uint64
	}{
		{"kernel mode", 0x10, 0xffffffff8129b5a0, 0xffffc90000003f00},
		{"user CS, kernel RIP", 0x33, 0xffffffff8129b5a0, 0x7fffca449778},
		{"user CS, kernel RSP", 0x33, 0x401038, 0xffffc90000003f00},
		{"user CS, non-canonical RIP", 0x33, 0x0000900000000000, 0x7fffca449778},
	} {
		if _, ok := userModeCPU(th(c.cs, c.pc, c.sp), nil); ok {
			t.Errorf("%s: taken as a user-mode CPU", c.name)
		}
	}
}
