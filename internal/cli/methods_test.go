package cli

import (
	"testing"

	"github.com/unwind-dev/unwind/unwind"
)

// TestParseMethods: every strategy the unwinder has can be asked for by
// name, alone or with others; anything else is a usage error.
func TestParseMethods(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unwind.Method
		err  bool
	}{
		{"all", 0, false},
		{"", 0, false},
		{"cfi", unwind.MethodCFI, false},
		{"fp, ptregs", unwind.MethodFP | unwind.MethodPtRegs, false},
		{"signal", unwind.MethodSignal, false},
		{"orc", unwind.MethodORC, false},
		{"orc,ptregs", unwind.MethodORC | unwind.MethodPtRegs, false},
		{"scan,signal", unwind.MethodScan | unwind.MethodSignal, false},
		{"cfi,fp,ptregs,signal,scan", unwind.MethodCFI | unwind.MethodFP | unwind.MethodPtRegs | unwind.MethodSignal | unwind.MethodScan, false},
		{"regs", 0, true},
		{"cfi,,fp", 0, true},
	} {
		got, err := parseMethods(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseMethods(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
