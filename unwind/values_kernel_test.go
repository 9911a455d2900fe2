package unwind_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/linux"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// syscallArgs are the parameters of functions that syscall entry calls
// with the user's arguments unchanged: name -> the pt_regs field each
// parameter holds (di, si, dx: the first three syscall arguments).
var syscallArgs = map[string]map[string]string{
	"ksys_read":  {"fd": "di", "buf": "si", "count": "dx"},
	"ksys_write": {"fd": "di", "buf": "si", "count": "dx"},
}

// TestKernelValuesMatchPtRegs checks the parameters of the entry and
// syscall functions of every CPU of the lab vmcores (with vmlinux's DWARF)
// against the pt_regs they were called with: every "struct pt_regs *regs"
// parameter that has a value is the address of the pt_regs of the nearest
// interrupted frame outside it, and the syscall functions' arguments are
// that pt_regs's registers.
func TestKernelValuesMatchPtRegs(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	cores, _ := filepath.Glob(filepath.Join(kdir, "fp", "*", "*.vmcore.zst"))
	if len(cores) == 0 {
		t.Fatalf("no vmcores in %s/fp", kdir)
	}
	var regsChecked, argsChecked int
	for _, src := range cores {
		name := strings.TrimSuffix(filepath.Base(src), ".vmcore.zst")
		if strings.HasSuffix(name, "-paging") {
			continue // the same state as the physical dump beside it
		}
		t.Run(name, func(t *testing.T) {
			d, err := dump.Open(unpackVMCore(t, src, name))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			k, err := linux.Open(d, dump.SymbolOptions{Files: []string{filepath.Join(kdir, "fp", "vmlinux")}})
			if err != nil {
				t.Fatal(err)
			}
			set := k.Symbols()
			for i := range k.CPUs() {
				tr, err := k.UnwindCPU(i, unwind.Options{})
				if err != nil {
					t.Fatal(err)
				}
				fs := tr.Frames
				for fi := range fs {
					args, _, ok := unwind.FrameValues(fs, fi, tr.Mem, set, nil)
					if !ok {
						continue
					}
					// The pt_regs this frame runs on behalf of.
					var pr *unwind.Frame
					for j := fi + 1; j < len(fs); j++ {
						if fs[j].Kind == unwind.KindInterrupted && fs[j].RegsAddr != 0 && !fs[j].Partial {
							pr = &fs[j]
							break
						}
					}
					for _, a := range args {
						if !a.Recovered.Known() {
							continue
						}
						where := fmt.Sprintf("cpu %d frame %d %s(%s=%s, %s at %s)", i, fi, fs[fi].Function, a.Name, a.Value, a.Recovered, a.Location)
						if a.Name == "regs" && a.Type == "struct pt_regs *" {
							if pr == nil {
								t.Errorf("%s: no pt_regs outside the frame", where)
								continue
							}
							regsChecked++
							if want := fmt.Sprintf("%#x", pr.RegsAddr); a.Value != want {
								t.Errorf("%s: want %s, the %s pt_regs", where, want, pr.Entry)
							}
							continue
						}
						field, ok := syscallArgs[fs[fi].Function][a.Name]
						if !ok || pr == nil || pr.Entry != "syscall" {
							continue
						}
						argsChecked++
						if !sameValue(a, ptField(pr, field)) {
							t.Errorf("%s: want %#x, pt_regs->%s of the syscall", where, ptField(pr, field), field)
						}
					}
				}
			}
		})
	}
	t.Logf("%d pt_regs pointers and %d syscall arguments match their pt_regs", regsChecked, argsChecked)
	if regsChecked < 20 || argsChecked < 3 {
		t.Errorf("only %d pt_regs pointers and %d syscall arguments checked", regsChecked, argsChecked)
	}
	corpus.Checked(t, regsChecked+argsChecked)
}

func ptField(f *unwind.Frame, name string) uint64 {
	switch name {
	case "di":
		return f.PtRegs.DI
	case "si":
		return f.PtRegs.SI
	case "dx":
		return f.PtRegs.DX
	}
	return 0
}

// sameValue compares a printed integer or pointer with v (an int's low 32
// bits, sign-extended).
func sameValue(a symbols.Value, v uint64) bool {
	s := a.Value
	if i := strings.IndexByte(s, ' '); i > 0 {
		s = s[:i] // "0x7f… \"…\"": the pointer
	}
	if n, err := strconv.ParseUint(s, 0, 64); err == nil {
		return n == v || strings.HasPrefix(a.Type, "unsigned int") && n == v&0xffffffff
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return uint64(n) == v || int64(int32(v)) == n
	}
	return false
}
