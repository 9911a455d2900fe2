package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// userFrameTextReference is the user frame line as it was formatted with
// fmt before lines were appended: appendUserFrame must give the same text.
func userFrameTextReference(f *unwind.Frame, args string) string {
	var b strings.Builder
	if !f.Reliable {
		b.WriteString("? ")
	}
	if f.Inlined {
		b.WriteString("(inlined) ")
	} else {
		fmt.Fprintf(&b, "0x%016x in ", f.PC)
	}
	switch {
	case f.Inlined:
		b.WriteString(orUnknown(f.Function))
		b.WriteString(args)
	case f.SymOK && f.Function != "" && f.Function != f.Sym.Name:
		fmt.Fprintf(&b, "%s%s (in %s+%#x/%#x, %s)", f.Function, args, f.Sym.Name, f.PC-f.Sym.Addr, f.Sym.Size, baseName(f.Sym.Module))
	case f.SymOK:
		fmt.Fprintf(&b, "%s+%#x/%#x%s", f.Sym.Name, f.PC-f.Sym.Addr, f.Sym.Size, args)
		if f.Sym.Module != "" {
			fmt.Fprintf(&b, " (%s)", baseName(f.Sym.Module))
		}
	default:
		b.WriteString("??")
		b.WriteString(args)
	}
	if f.File != "" {
		fmt.Fprintf(&b, " at %s:%d", f.File, f.Line)
	}
	return b.String()
}

// Each user frame line, and the numbered line written for it, is what
// the fmt formats "#%-2d %s\n" of the escaped userFrameTextReference give:
// PCs of every width, offsets and sizes of zero, inlined frames, frames
// without a symbol, names that need escaping, indexes of one to six digits.
func TestUserFrameLineMatchesFmt(t *testing.T) {
	names := []string{"", "main", "dv_list", "ctl\x1b[2J", "bad\xff"}
	pcs := []uint64{0, 1, 0x401000, 0x7fffffffe000, 0xffffffffffffffff}
	var buf strings.Builder
	ew := &errWriter{}
	n := 0
	for i, pc := range pcs {
		for j, name := range names {
			for k := 0; k < 8; k++ {
				f := unwind.Frame{Index: []int{0, 7, 9, 10, 99, 100, 99999, 123456}[k], PC: pc, Reliable: k%2 == 0, Inlined: k%4 == 3,
					Function: names[(j+k)%len(names)], File: names[(i+j)%len(names)], Line: i * j * 1000}
				if k%3 != 2 {
					f.SymOK = true
					f.Sym = symbols.Sym{Name: name, Addr: pc &^ 0xff, Size: uint64(k) * 0x10, Module: "/usr/lib/" + names[(i+k)%len(names)]}
				}
				args := []string{"", " (x=1)"}[k%2]
				want := userFrameTextReference(&f, args)
				if got := string(appendUserFrame(nil, &f, args)); got != want {
					t.Errorf("frame %+v: %q, fmt gives %q", f, got, want)
				}
				buf.Reset()
				ew.w = newOutBuf(&buf)
				ew.userLine(f.Index, []byte(want))
				ew.w.Flush()
				if wantLine := fmt.Sprintf("#%-2d %s\n", f.Index, Escape(want)); buf.String() != wantLine {
					t.Errorf("line %q, fmt gives %q", buf.String(), wantLine)
				}
				n++
			}
		}
	}
	t.Logf("%d frames", n)
}
