package dump

import (
	"bytes"
	"fmt"

	"github.com/unwind-dev/unwind/unwind"
)

// Open a core (here one built in memory), list its threads and read the
// word at each thread's stack pointer.
func ExampleNewFile() {
	stack := make([]byte, 0x1000)
	stack[0xff8] = 0x42
	core := buildCore([]synthNote{prstatusNote(1234, 0x401000, 0x7fff8ff8)},
		[]synthLoad{{vaddr: 0x7fff8000, data: stack}})
	d, err := NewFile(bytes.NewReader(core), int64(len(core)))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, t := range d.Threads() {
		sp, _ := t.Regs.SP()
		w, err := unwind.ReadU64(d.Memory(), sp)
		fmt.Printf("%s tid %d sp %#x [sp]=%#x err=%v stack %v\n", d.Kind(), t.TID, sp, w, err, d.Stacks(i)[0].Kind)
	}
	// Output:
	// user-core tid 1234 sp 0x7fff8ff8 [sp]=0x42 err=<nil> stack user
}
