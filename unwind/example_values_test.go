package unwind_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/unwind"
)

// ExampleFrameValues prints the parameters of the frames of a committed
// core (fixtures/valcores, -O2), each with how it was recovered: from a
// register the unwind knows for that frame, from the stack, as an entry
// value from the caller's call site, or not at all (tag and lbl are in
// registers the call to leaf clobbered).
func ExampleFrameValues() {
	z, _ := os.ReadFile("../fixtures/valcores/O2cfi/crash.core.zst")
	dec, _ := zstd.NewReader(nil)
	raw, _ := dec.DecodeAll(z, nil)
	d, err := dump.NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	empty, _ := os.MkdirTemp("", "sysroot")
	defer os.RemoveAll(empty)
	set, _, _ := d.Symbols(dump.SymbolOptions{Exe: "../fixtures/valcores/O2cfi/uvals",
		SearchDirs: []string{"../fixtures/usercores/lib"}, Sysroot: empty})
	tr, _ := d.Unwind(0, set, unwind.Options{})
	for i, f := range tr.Frames[:3] {
		args, _, ok := unwind.FrameValues(tr.Frames, i, tr.Mem, set, nil)
		if !ok {
			continue
		}
		fmt.Printf("#%d %s\n", i, f.Function)
		for _, v := range args[:3] {
			fmt.Printf("    %s = %s (%s)\n", v.Name, v.Text(), v.Recovered)
		}
	}
	// Output:
	// #0 leaf
	//     depth = 0 (register)
	//     tag = 1400 (register)
	//     t = 0x7ffc11ff41a0 (register)
	// #1 level
	//     depth = 0 (stack)
	//     tag = <not recovered> (not_recovered)
	//     parent = 0x7ffc11ff4210 (register)
	// #2 level
	//     depth = 1 (stack)
	//     tag = 1300 (register)
	//     parent = 0x7ffc11ff4280 (register)
}
