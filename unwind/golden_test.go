package unwind

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// formatTrace prints every field of every frame that the JSON output
// carries, one frame per line, for golden files.
func formatTrace(fs []Frame, u *Unwinder) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "#%d pc=%#x lookup=%#x sp=%#x cfa=%#x slot=%#x %s+%#x/%#x kind=%s entry=%q partial=%v regs_addr=%#x stack=%s method=%s reliable=%v inlined=%v regmask=%#x\n",
			f.Index, f.PC, f.LookupPC, f.SP, f.CFA, f.Slot, f.Function, f.Offset(), f.Sym.Size, f.Kind, f.Entry,
			f.Partial, f.RegsAddr, f.Stack.Kind, f.Method, f.Reliable, f.Inlined, f.Regs.Mask())
	}
	fmt.Fprintf(&b, "stop=%q reliable=%v\n", u.StopReason(), u.Reliable())
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestGoldenTraces(t *testing.T) {
	walk := func(u *Unwinder) string {
		var fs []Frame
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		FillCFA(fs)
		return formatTrace(fs, u)
	}
	sc := irqOverSyscall(true)
	checkGolden(t, "kernel-irq-over-syscall", walk(New(sc.mem, sc.regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true})))
	sc = irqOverSyscall(false)
	checkGolden(t, "kernel-irq-over-syscall-fp", walk(New(sc.mem, sc.regs, &Options{Code: sc.code, Stacks: sc.stacks, Kernel: true})))
	ch := fpChain(3, true)
	checkGolden(t, "user-fp-chain", walk(New(ch.mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks})))
	ch = cfiChain(3)
	checkGolden(t, "user-cfi-chain-scan", walk(New(ch.mem, ch.regs, &Options{Code: ch.code, Stacks: ch.stacks, Methods: MethodScan})))
}
