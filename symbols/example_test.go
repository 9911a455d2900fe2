package symbols_test

import (
	"fmt"
	"strings"

	"github.com/unwind-dev/unwind/symbols"
)

// Symbolize a kernel address with a System.map, KASLR offset applied.
func ExampleParseSystemMap() {
	const kaslr = 0x1c000000
	sysmap := "ffffffff81000000 T _text\nffffffff81000000 T startup_64\nffffffff81000070 T secondary_startup_64\n"
	tab, err := symbols.ParseSystemMap(strings.NewReader(sysmap), kaslr)
	if err != nil {
		panic(err)
	}
	pc := uint64(0xffffffff81000012 + kaslr)
	if s, ok := tab.Lookup(pc); ok {
		fmt.Printf("%s+%#x/%#x\n", s.Name, pc-s.Addr, s.Size)
	}
	_, ok := tab.Lookup(0x1234)
	fmt.Println(ok)
	// Output:
	// startup_64+0x12/0x70
	// false
}

// Source lines with inlined callers, innermost first.
func ExampleFile_Lines() {
	f, err := symbols.Open("testdata/prog", 0)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	for _, l := range f.Lines(0x11eb, nil) {
		fmt.Printf("%s %s:%d inlined=%v\n", l.Function, l.File[strings.LastIndexByte(l.File, '/')+1:], l.Line, l.Inlined)
	}
	// Output:
	// square prog.c:9 inlined=true
	// sum_squares prog.c:15 inlined=true
	// leaf prog.c:22 inlined=false
}
