package ptregs

import (
	"errors"
	"testing"
)

// Frames seen in the corpus (kernel/fp/nmibt/serial.log): an NMI over
// lapic_next_event in kernel mode and a syscall from user mode.
var (
	kernelFrame = IretFrame{IP: 0xffffffff8103a395, CS: 0x10, Flags: 0x2, SP: 0xffffc900000a8f18, SS: 0x18}
	userFrame   = IretFrame{IP: 0x47b7a0, CS: 0x33, Flags: 0x202, SP: 0x7ffd820cfe38, SS: 0x2b}
)

func TestCheck(t *testing.T) {
	with := func(f IretFrame, mod func(*IretFrame)) IretFrame { mod(&f); return f }
	text := func(pc uint64) bool { return pc >= 0xffffffff81000000 && pc < 0xffffffff82000000 }
	stack := func(sp uint64) bool { return sp >= 0xffffc900000a0000 && sp < 0xffffc900000b0000 }
	for _, tc := range []struct {
		name  string
		f     IretFrame
		opt   CheckOptions
		field string // "" = plausible
	}{
		{"kernel", kernelFrame, CheckOptions{}, ""},
		{"kernel with bounds", kernelFrame, CheckOptions{IsText: text, OnStack: stack}, ""},
		{"user", userFrame, CheckOptions{}, ""},
		{"user ignores bounds", userFrame, CheckOptions{IsText: text, OnStack: stack}, ""},
		{"kernel ss 0 (from user or IST)", with(kernelFrame, func(f *IretFrame) { f.SS = 0 }), CheckOptions{}, ""},
		{"compat", with(userFrame, func(f *IretFrame) { f.CS, f.IP, f.SP = 0x23, 0xf7f4d549, 0xffc8e1a0 }), CheckOptions{}, ""},
		{"FRED upper bits in cs and ss", with(kernelFrame, func(f *IretFrame) { f.CS |= 1 << 16; f.SS |= 0x2 << 32 }), CheckOptions{}, ""},
		{"vsyscall page", with(userFrame, func(f *IretFrame) { f.IP = 0xffffffffff600400 }), CheckOptions{}, ""},
		{"NULL call in kernel", with(kernelFrame, func(f *IretFrame) { f.IP = 0 }), CheckOptions{}, ""},
		{"user RSP in SYSCALL window", with(kernelFrame, func(f *IretFrame) { f.SP = 0x7ffd820cfe38 }), CheckOptions{}, ""},
		{"all legal flag bits", with(userFrame, func(f *IretFrame) { f.Flags = 0x3f7fd7 &^ (1 << 17) }), CheckOptions{}, ""},
		{"LDT code selector", with(userFrame, func(f *IretFrame) { f.CS, f.SS = 0x0f, 0x17 }), CheckOptions{LDT: true}, ""},
		{"LA57 user address", with(userFrame, func(f *IretFrame) { f.IP, f.SP = 0x00ff000000001000, 0x00ff7ffffffff000 }), CheckOptions{LA57: true}, ""},

		{"cs zero", with(kernelFrame, func(f *IretFrame) { f.CS = 0 }), CheckOptions{}, "cs"},
		{"cs __KERNEL32_CS", with(kernelFrame, func(f *IretFrame) { f.CS = 0x08 }), CheckOptions{}, "cs"},
		{"cs random", with(kernelFrame, func(f *IretFrame) { f.CS = 0xffffffff81000000 }), CheckOptions{}, "cs"},
		{"LDT needs option", with(userFrame, func(f *IretFrame) { f.CS, f.SS = 0x0f, 0x17 }), CheckOptions{}, "cs"},
		{"kernel with user ss", with(kernelFrame, func(f *IretFrame) { f.SS = 0x2b }), CheckOptions{}, "ss"},
		{"user with kernel ss", with(userFrame, func(f *IretFrame) { f.SS = 0x18 }), CheckOptions{}, "ss"},
		{"user with null ss", with(userFrame, func(f *IretFrame) { f.SS = 0 }), CheckOptions{}, "ss"},
		{"flags bit 1 clear", with(kernelFrame, func(f *IretFrame) { f.Flags = 0x200 }), CheckOptions{}, "flags"},
		{"flags bit 3", with(kernelFrame, func(f *IretFrame) { f.Flags |= 1 << 3 }), CheckOptions{}, "flags"},
		{"flags bit 5", with(kernelFrame, func(f *IretFrame) { f.Flags |= 1 << 5 }), CheckOptions{}, "flags"},
		{"flags bit 15", with(kernelFrame, func(f *IretFrame) { f.Flags |= 1 << 15 }), CheckOptions{}, "flags"},
		{"flags bit 22", with(kernelFrame, func(f *IretFrame) { f.Flags |= 1 << 22 }), CheckOptions{}, "flags"},
		{"flags bit 63", with(kernelFrame, func(f *IretFrame) { f.Flags |= 1 << 63 }), CheckOptions{}, "flags"},
		{"flags VM", with(kernelFrame, func(f *IretFrame) { f.Flags |= 1 << 17 }), CheckOptions{}, "flags"},
		{"ip non-canonical", with(kernelFrame, func(f *IretFrame) { f.IP = 0x0000800000000000 }), CheckOptions{}, "ip"},
		{"ip not text", with(kernelFrame, func(f *IretFrame) { f.IP = 0xffffffffa0000000 }), CheckOptions{IsText: text}, "ip"},
		{"user ip in kernel half", with(userFrame, func(f *IretFrame) { f.IP = 0xffffffff81000000 }), CheckOptions{}, "ip"},
		{"compat ip above 4G", with(userFrame, func(f *IretFrame) { f.CS, f.IP = 0x23, 1<<32 }), CheckOptions{}, "ip"},
		{"LA57 address without LA57", with(userFrame, func(f *IretFrame) { f.IP = 0x00ff000000001000 }), CheckOptions{}, "ip"},
		{"sp non-canonical", with(kernelFrame, func(f *IretFrame) { f.SP = 0xffff7fffffffffff }), CheckOptions{}, "sp"},
		{"user sp non-canonical", with(userFrame, func(f *IretFrame) { f.SP = 0x0001000000000000 }), CheckOptions{}, "sp"},
		{"sp off stack", kernelFrame, CheckOptions{OnStack: func(uint64) bool { return false }}, "sp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Check(tc.opt)
			p := PtRegs{IP: tc.f.IP, CS: tc.f.CS, Flags: tc.f.Flags, SP: tc.f.SP, SS: tc.f.SS, AX: 1, OrigAX: 7}
			if perr := p.Check(tc.opt); (perr == nil) != (err == nil) {
				t.Errorf("PtRegs.Check %v, IretFrame.Check %v", perr, err)
			}
			if tc.f.Plausible(tc.opt) != (err == nil) || p.Plausible(tc.opt) != (err == nil) {
				t.Errorf("Plausible %v / %v, Check %v", tc.f.Plausible(tc.opt), p.Plausible(tc.opt), err)
			}
			if tc.field == "" {
				if err != nil {
					t.Errorf("rejected a plausible frame: %v", err)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CheckError on %s", err, tc.field)
			}
			if ce.Field != tc.field || ce.Reason == "" {
				t.Errorf("failed on %q (%s), want %q", ce.Field, ce.Reason, tc.field)
			}
		})
	}
}

func TestUserMode(t *testing.T) {
	for cs, want := range map[uint64]bool{0x10: false, 0x33: true, 0x23: true, 0x2b: true, 0x18: false, 0x33 | 1<<16: true, 0x10 | 3<<16: false} {
		if UserMode(cs) != want {
			t.Errorf("UserMode(%#x) = %v", cs, !want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for addr, want := range map[uint64][2]bool{ // {48-bit, 57-bit}
		0:                  {true, true},
		0x00007fffffffffff: {true, true},
		0x0000800000000000: {false, true},
		0x00ffffffffffffff: {false, true},
		0x0100000000000000: {false, false},
		0xffff800000000000: {true, true},
		0xffff7fffffffffff: {false, true},
		0xff00000000000000: {false, true},
		0xfeffffffffffffff: {false, false},
		0xffffffffffffffff: {true, true},
	} {
		if Canonical(addr) != want[0] || Canonical57(addr) != want[1] {
			t.Errorf("%#x: Canonical %v Canonical57 %v, want %v", addr, Canonical(addr), Canonical57(addr), want)
		}
	}
}
