package unwind_test

import (
	"encoding/binary"
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// Example walks a two-frame frame-pointer stack with no symbols: without a
// Code the rbp chain is followed but cannot be validated, so the frames
// are not reliable, nor is the end of the chain (the walk says where it
// stopped and why).
func Example() {
	const base = 0x7ff000
	stack := make([]byte, 64)
	le := binary.LittleEndian
	le.PutUint64(stack[16:], base+32)  // saved rbp of frame 1
	le.PutUint64(stack[24:], 0x401234) // return address into frame 1
	le.PutUint64(stack[32:], 0)        // end of the chain
	le.PutUint64(stack[40:], 0x401567)
	mem := unwind.SplicedMemory{{Addr: base, Data: stack}}

	var regs ptregs.Regs
	regs.Set(ptregs.RIP, 0x401000)
	regs.Set(ptregs.RSP, base+8)
	regs.Set(ptregs.RBP, base+16)

	u := unwind.New(mem, regs, &unwind.Options{Methods: unwind.MethodFP})
	for u.Next() {
		f := u.Frame()
		fmt.Printf("#%d pc=%#x sp=%#x %s reliable=%v\n", f.Index, f.PC, f.SP, f.Method, f.Reliable)
	}
	fmt.Println(u.StopReason())
	// Output:
	// #0 pc=0x401000 sp=0x7ff008 regs reliable=true
	// #1 pc=0x401234 sp=0x7ff020 fp reliable=false
	// #2 pc=0x401567 sp=0x7ff030 fp reliable=false
	// error: frame 2 at 0x401567: fp: the frame-pointer chain ends outside an outermost function
}
