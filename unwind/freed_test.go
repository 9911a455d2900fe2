package unwind

import (
	"slices"
	"testing"
)

// freedCode marks [lo, hi) of a fakeCode's image as code the target has
// freed (FreedCode).
type freedCode struct {
	*fakeCode
	lo, hi uint64
}

func (c freedCode) Freed(addr uint64) bool { return c.lo <= addr && addr < c.hi }

// A return address into code the kernel freed after boot (init text:
// start_kernel under the boot CPU's idle task), where memory now holds
// other bytes: the call-site check takes the image's copy only when the
// Code says the code is freed there, and the image's copy must itself be
// a call.
func TestFreedCodeCallSite(t *testing.T) {
	sc := irqOverSyscall(true)
	c := sc.code
	do := c.fn("do_syscall_64")
	raDo := do.addr + 4 + 5 // do_syscall_64's call of work returns here
	text := slices.Clone(c.text)
	clear(text[raDo-9-kText : raDo-kText]) // reused memory: zeros
	regions := []Region{{Addr: irqLo, Data: sc.irq.mem}, {Addr: taskLo, Data: sc.task.mem}, {Addr: kText, Data: text}}
	walk := func(code Code) (reliable bool, found bool) {
		mem := NewSplicedMemory(regions...)
		u := New(mem, sc.regs, &Options{Code: code, Stacks: sc.stacks, Kernel: true})
		for u.Next() {
			f := u.Frame()
			if f.Kind == KindCall && f.PC == raDo {
				return f.Reliable, true
			}
		}
		return false, false
	}
	for _, tc := range []struct {
		name string
		code Code
		want bool
	}{
		{"not freed", c, false},
		{"freed elsewhere", freedCode{c, c.fn("work").addr, c.fn("work").addr + 1}, false},
		{"freed there", freedCode{c, do.addr, do.addr + uint64(len(do.code))}, true},
	} {
		rel, found := walk(tc.code)
		if !found {
			t.Fatalf("%s: no frame returning to %#x", tc.name, raDo)
		}
		if rel != tc.want {
			t.Errorf("%s: frame at %#x reliable %v, want %v", tc.name, raDo, rel, tc.want)
		}
	}
	// The image must show the call too: a freed range whose image holds
	// no call before the return address gets no pass.
	img := slices.Clone(c.text)
	clear(img[raDo-9-kText : raDo-kText])
	c2 := *c
	c2.text = img
	if rel, found := walk(freedCode{&c2, do.addr, do.addr + uint64(len(do.code))}); !found || rel {
		t.Errorf("freed, image without a call: found %v reliable %v, want an unreliable frame", found, rel)
	}
}
