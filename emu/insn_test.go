package emu

import (
	"fmt"
	"testing"
)

type insnCase struct {
	asm   string
	code  []byte
	flags uint64    // flags the architecture defines for this instruction
	in    [5]uint64 // rax rbx rcx rdx rflags
	out   [5]uint64 // results measured on real hardware
}

// newBare returns a 1-CPU machine with code mapped at 0x1000 and a stack
// page at 0x8000, no IDT.
func newBare(code []byte) *Machine {
	m := newMachine(&symTab{byName: map[string]Symbol{}})
	m.entry = 0x1000
	m.mem.mapRange(0x1000, uint64(max(len(code), 1)))
	m.mem.mapRange(0x8000, pageSize)
	m.mem.WriteAt(code, 0x1000)
	m.reset(1)
	m.CPUs[0].GPR[RSP] = 0x9000
	return m
}

// TestInstructionSemantics runs each instruction on the emulator and
// compares registers and the defined flags with a native run
// (testdata/gen/gen_insn_cases.py).
func TestInstructionSemantics(t *testing.T) {
	for i, tc := range insnCases {
		m := newBare(tc.code)
		c := m.CPUs[0]
		c.GPR[RAX], c.GPR[RBX], c.GPR[RCX], c.GPR[RDX] = tc.in[0], tc.in[1], tc.in[2], tc.in[3]
		c.RFLAGS = tc.in[4]
		if err := m.Step(); err != nil {
			t.Fatalf("%s: %v", tc.asm, err)
		}
		got := [5]uint64{c.GPR[RAX], c.GPR[RBX], c.GPR[RCX], c.GPR[RDX], c.RFLAGS}
		bad := false
		for r := 0; r < 4; r++ {
			bad = bad || got[r] != tc.out[r]
		}
		if got[4]&tc.flags != tc.out[4]&tc.flags {
			bad = true
		}
		if c.RIP != 0x1000+uint64(len(tc.code)) {
			bad = true
		}
		if bad {
			t.Errorf("case %d %q in %#x:\n got %#x rip %#x\nwant %#x (flags mask %#x)", i, tc.asm, tc.in, got, c.RIP, tc.out, tc.flags)
		}
	}
}

func TestUnimplementedInstructionError(t *testing.T) {
	for _, code := range [][]byte{{0x0f, 0xa2}, {0xd9, 0xe8}, {0x0f, 0x0b}} { // cpuid, fld1, ud2
		m := newBare(code)
		err := m.Step()
		if code[1] == 0x0b {
			// ud2 is implemented: #UD with no IDT is a triple fault.
			if err == nil {
				t.Errorf("ud2: no error")
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.RIP != 0x1000 || fmt.Sprintf("% x", e.Bytes) != fmt.Sprintf("% x", code) {
			t.Errorf("% x: err = %v", code, err)
		}
	}
}
