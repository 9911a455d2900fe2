package dump_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/unwind"
)

// readZstd reads a zstd-compressed fixture.
func readZstd(path string) ([]byte, error) {
	z, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(z, nil)
}

// Unwind every thread of a user core the way `unwind bt` does: the core
// (here one of the project's own, decompressed in memory), its symbols
// (the executable named; libc and its separate debug file found by build
// id in search folders), then one call per thread.
func ExampleDump_Unwind() {
	raw, err := readZstd("../fixtures/usercores/O2cfi/deep.core.zst")
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := dump.NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	set, _, err := d.Symbols(dump.SymbolOptions{
		Exe:        "../fixtures/usercores/O2cfi/ucore",
		SearchDirs: []string{"../fixtures/usercores/lib", "../fixtures/usercores/debug"},
		Sysroot:    os.TempDir(), // not the machine's own /lib: the core's libc is in lib/
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range d.Threads() {
		tr, err := d.Unwind(i, set, unwind.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, f := range tr.Frames {
			name := f.Function // the source function, inlined ones included
			if name == "" {
				name = fmt.Sprintf("%#x", f.PC) // no symbol file names it
			}
			mark := ""
			if f.Inlined {
				mark = " (inlined)"
			}
			fmt.Printf("#%-2d %s%s [%s]\n", f.Index, name, mark, f.Method)
		}
		fmt.Println(tr.Reliable, tr.StopReason)
	}
	// Output:
	// #0  dv_divide [regs]
	// #1  dv_scale (inlined) [cfi]
	// #2  dv_apply [cfi]
	// #3  dv_term [cfi]
	// #4  dv_expr (inlined) [cfi]
	// #5  dv_leaf [cfi]
	// #6  dv_call [cfi]
	// #7  dv_item (inlined) [cfi]
	// #8  dv_list [cfi]
	// #9  dv_list [cfi]
	// #10 dv_list [cfi]
	// #11 dv_list [cfi]
	// #12 dv_doc [cfi]
	// #13 case_deep [cfi]
	// #14 main [cfi]
	// #15 __libc_start_call_main [cfi]
	// #16 __libc_start_main [cfi]
	// #17 _start [cfi]
	// true end of stack
}

// Scan a deep stack without holding its frames: Record keeps a few words
// a frame (here a 100,000-frame recursion, about 5 MB instead of 56), and
// Frame rebuilds each one when it is read. Repeats says a frame is its
// predecessor again (same code, source line and verdict), as a debugger
// folding a recursion wants to know.
func ExampleDump_Record() {
	raw, err := readZstd("../fixtures/deepcore/deep.core.zst")
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := dump.NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	set, _, err := d.Symbols(dump.SymbolOptions{Exe: "../fixtures/deepcore/deep"})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := d.Record(0, set, unwind.Options{MaxFrames: -1}, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 0; i < r.Len(); i++ {
		if i > 0 && i+1 < r.Len() && r.Repeats(i-1, i) && r.Repeats(i, i+1) {
			continue // inside a run: print its ends only
		}
		f := r.Frame(i)
		fmt.Printf("#%d %s:%d\n", f.Index, f.Function, f.Line)
	}
	fmt.Println(r.Len(), "frames:", r.StopReason())
	// Output:
	// #0 recurse:13
	// #1 recurse:14
	// #99998 recurse:14
	// #99999 _start:21
	// 100000 frames: error: frame 99999 at 0x401043: cfi: return address 0x1 is not text; the stack scan found no return address
}
