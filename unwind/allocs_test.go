package unwind

import "testing"

// TestWarmWalkAllocatesNothing holds the README's claim: once an
// Unwinder's caches are warm (a first walk made, Reset between walks), a
// walk allocates nothing, with frame pointers, CFI, both, and across
// pt_regs on kernel stacks. (A read that fails allocates its error in the
// Memory implementation: the kernel scene's text, which starts a region,
// gets a page before it so that the call-site check's read of the bytes
// before a return address succeeds, as it does in a kernel image.)
func TestWarmWalkAllocatesNothing(t *testing.T) {
	type walk struct {
		name  string
		mem   Memory
		u     *Unwinder
		reset func(u *Unwinder, mem Memory)
	}
	var cases []walk
	for _, c := range []struct {
		name string
		ch   *chain
		m    Method
	}{{"fp", fpChain(50, false), MethodFP}, {"cfi", cfiChain(50), MethodCFI}, {"fp+cfi", fpChain(50, true), 0}} {
		ch := c.ch
		var mem Memory = ch.mem
		cases = append(cases, walk{c.name, mem, New(mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks, Methods: c.m}),
			func(u *Unwinder, mem Memory) { u.Reset(mem, ch.regs) }})
	}
	for _, c := range []struct {
		name string
		cfi  bool
	}{{"kernel-cfi", true}, {"kernel-fp", false}} {
		sc := irqOverSyscall(c.cfi)
		var mem Memory = NewSplicedMemory(append(sc.mem, Region{Addr: kText - 4096, Data: make([]byte, 4096)})...)
		cases = append(cases, walk{c.name, mem, New(mem, sc.regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true}),
			func(u *Unwinder, mem Memory) { u.Reset(mem, sc.regs) }})
	}
	for _, c := range cases {
		u, mem := c.u, c.mem
		frames := 0
		for u.Next() {
			frames++
		}
		if frames < 3 || !u.Reliable() {
			t.Fatalf("%s: warm-up walk: %d frames, %s", c.name, frames, u.StopReason())
		}
		n := testing.AllocsPerRun(100, func() {
			c.reset(u, mem)
			for u.Next() {
				_ = u.Frame()
			}
		})
		if n != 0 {
			t.Errorf("%s: a warm walk of %d frames allocates %v times", c.name, frames, n)
		}
	}
}
