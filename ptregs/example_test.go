package ptregs_test

import (
	"fmt"
	"os"

	"github.com/unwind-dev/unwind/ptregs"
)

// A pt_regs the kernel saved when a timer interrupt hit clear_user_rep_good
// (kernel/fp/irq of the corpus), decoded from stack memory, checked and
// printed the way Linux 6.1 prints it inside a call trace.
func Example() {
	saved := ptregs.PtRegs{
		R15: 0, R14: 0xffff888000989700, R13: 0x99000, R12: 0x67000,
		BP: 0xffffc90000103e60, BX: 0x7f836c5f9000, R11: 0, R10: 0,
		R9: 0, R8: 0x67000, AX: 0, CX: 0x111, DX: 0x1000, SI: 0x1000,
		DI: 0x7f836c660778, OrigAX: ^uint64(0),
		IP: 0xffffffff812a755e, CS: 0x10, Flags: 0x206, SP: 0xffffc90000103e38, SS: 0x18,
	}
	stackBytes := saved.Encode() // what a dump reader would hand over

	p, err := ptregs.DecodePtRegs(stackBytes[:])
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := p.Check(ptregs.CheckOptions{}); err != nil {
		fmt.Println("not a pt_regs:", err)
		return
	}
	sym := func(addr uint64) (string, uint64, uint64, bool) {
		const start, size = 0xffffffff812a7550, 0x30 // from System.map
		if addr >= start && addr < start+size {
			return "clear_user_rep_good", addr - start, size, true
		}
		return "", 0, 0, false
	}
	if err := ptregs.FormatPtRegs(os.Stdout, &p, sym); err != nil {
		fmt.Println(err)
	}
	// Output:
	// RIP: 0010:clear_user_rep_good+0xe/0x30
	// RSP: 0018:ffffc90000103e38 EFLAGS: 00000206
	// RAX: 0000000000000000 RBX: 00007f836c5f9000 RCX: 0000000000000111
	// RDX: 0000000000001000 RSI: 0000000000001000 RDI: 00007f836c660778
	// RBP: ffffc90000103e60 R08: 0000000000067000 R09: 0000000000000000
	// R10: 0000000000000000 R11: 0000000000000000 R12: 0000000000067000
	// R13: 0000000000099000 R14: ffff888000989700 R15: 0000000000000000
}

// A partial frame: only the hardware iret words are valid, so only RIP and
// RSP are known and only two lines are printed.
func ExampleFormatIret() {
	f := ptregs.IretFrame{IP: 0x47b6fd, CS: 0x33, Flags: 0x246, SP: 0x7ffc27f00e08, SS: 0x2b}
	r := f.Regs()
	pc, _ := r.PC()
	_, raxKnown := r.Get(ptregs.RAX)
	fmt.Printf("pc %#x, rax known: %v\n", pc, raxKnown)
	_ = ptregs.FormatIret(os.Stdout, &f, nil)
	// Output:
	// pc 0x47b6fd, rax known: false
	// RIP: 0033:0x47b6fd
	// RSP: 002b:00007ffc27f00e08 EFLAGS: 00000246
}
