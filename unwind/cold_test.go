package unwind

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/symbols"
)

// fakeByName adds symbolsByName to a fakeCode.
type fakeByName struct{ *fakeCode }

func (c fakeByName) ByName(name string) (symbols.Sym, bool) {
	for _, f := range c.funcs {
		if f.name == name {
			return symbols.Sym{Name: f.name, Addr: f.addr, Size: uint64(len(f.code))}, true
		}
	}
	return symbols.Sym{}, false
}

// TestColdPart: f sets up rbp, saves rbx and jumps to its cold part
// f.cold, which calls leaf. Frame-pointer unwinding with prologue analysis
// alone (no CFI, as with a kernel's System.map): f.cold has no prologue
// of its own and runs in f's frame, so the analysis starts from f's state
// at the jump, and the step from f.cold along the rbp chain is reliable.
// Analysed as a function of its own, f.cold looked frameless (the CFA at
// rsp+8, where rbx is saved) and the rest of the chain was a guess.
func TestColdPart(t *testing.T) {
	// push %rbp; mov %rsp,%rbp; push %rbx; test %edi,%edi; jne f.cold;
	// pop %rbx; pop %rbp; ret
	parent := []byte{0x55, 0x48, 0x89, 0xe5, 0x53, 0x85, 0xff, 0x0f, 0x85, 0, 0, 0, 0, 0x5b, 0x5d, 0xc3}
	// mov %rbx,%rdi; call leaf; pop %rbx; pop %rbp; ret
	cold := []byte{0x48, 0x89, 0xdf, 0xe8, 0, 0, 0, 0, 0x5b, 0x5d, 0xc3}
	c := newFakeCode(textBase,
		&fakeFunc{name: "_start", code: clone(fpCaller)},
		&fakeFunc{name: "f", code: parent},
		&fakeFunc{name: "leaf", code: clone(fpLeaf)},
		&fakeFunc{name: "f.cold", code: cold})
	f, fc := c.fn("f"), c.fn("f.cold")
	binary.LittleEndian.PutUint32(c.text[f.addr+9-c.base:], uint32(int32(int64(fc.addr)-int64(f.addr+13))))
	s := newStack(stackBase, 1<<16)
	s.push(0)
	rbp := s.push(0)
	s.push(c.callAt("_start", 4, "f"))
	rbp = s.push(rbp) // f: push %rbp
	s.push(0x1111)    // f: push %rbx
	s.push(c.callAt("f.cold", 3, "leaf"))
	rbp = s.push(rbp) // leaf: push %rbp
	regs := regsOf(c.fn("leaf").addr+4, s.sp, rbp)
	mem := SplicedMemory{{Addr: textBase, Data: c.text}, s.region()}
	stacks := Stacks{{Kind: StackUser, Lo: s.lo, Hi: s.hi, CPU: -1}}
	for _, tc := range []struct {
		name     string
		code     Code
		reliable bool
	}{
		{"by name", fakeByName{c}, true},
		// Without the parent the cold part is not analysed: the chain
		// goes on, as a guess.
		{"no names", c, false},
	} {
		u := New(mem, regs, &Options{Code: tc.code, Stacks: stacks, Methods: MethodFP})
		var fs []Frame
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		if diff := cmp.Diff([]string{"leaf", "f.cold", "_start"}, names(fs)); diff != "" {
			t.Fatalf("%s: %s\nstop %s", tc.name, diff, u.StopReason())
		}
		if fs[1].Reliable != true || fs[2].Reliable != tc.reliable || u.Reliable() != tc.reliable {
			t.Errorf("%s: reliable %v %v %v, walk %v (%s), want true %v %v", tc.name, fs[0].Reliable, fs[1].Reliable, fs[2].Reliable,
				u.Reliable(), u.StopReason(), tc.reliable, tc.reliable)
		}
	}
}
