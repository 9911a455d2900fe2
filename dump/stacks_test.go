package dump

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

func openFixtureCore(t *testing.T, variant, cs string) *Dump {
	t.Helper()
	z, err := os.ReadFile(filepath.Join("..", "fixtures", "usercores", variant, cs+".core.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestUserStacksOwnStack: a thread's stack oracle is the segment holding
// its stack pointer, as StackUser while that is the thread's own stack; in
// the fixture "signal" cores the crashing thread runs a handler on a
// sigaltstack in the program's bss, not on the main stack (where AT_EXECFN
// points), and the oracle says StackUnknown. The "threads" cores' threads
// run on stacks of their own (in the bss too, with their thread pointer at
// the top).
func TestUserStacksOwnStack(t *testing.T) {
	for _, v := range []string{"O0fp", "O2cfi", "O2nodbg", "O2nocfi", "static"} {
		t.Run(v, func(t *testing.T) {
			d := openFixtureCore(t, v, "signal")
			var execfn uint64
			for _, a := range d.Auxv() {
				if a.Tag == atExecFn {
					execfn = a.Val
				}
			}
			sp, _ := d.Threads()[0].Regs.Get(ptregs.RSP)
			st := d.Stacks(0)
			if len(st) != 1 || st[0].Kind != unwind.StackUnknown || !st[0].Contains(sp) || st[0].Contains(execfn) {
				t.Errorf("signal: stacks %+v, want the stack of sp %#x as unknown (the main stack holds AT_EXECFN %#x)", st, sp, execfn)
			}
			d = openFixtureCore(t, v, "threads")
			ps, _ := d.PsInfo()
			tcbs := 0
			for i, th := range d.Threads() {
				sp, _ := th.Regs.Get(ptregs.RSP)
				st := d.Stacks(i)
				if len(st) != 1 || st[0].Kind != unwind.StackUser || !st[0].Contains(sp) {
					t.Errorf("threads: thread %d (tid %d): stacks %+v, want the stack of sp %#x as user", i, th.TID, st, sp)
					continue
				}
				// A thread's stack ends at its control block (the
				// thread pointer); the main thread's does not.
				fs := th.PrStatus.Regs.FSBase
				if th.TID != ps.Pid {
					if st[0].Hi != fs {
						t.Errorf("threads: thread %d (tid %d): stack ends at %#x, not at its control block %#x", i, th.TID, st[0].Hi, fs)
					}
					tcbs++
				} else if st[0].Hi == fs {
					t.Errorf("threads: the main thread's stack ends at its thread pointer %#x", fs)
				}
			}
			if tcbs < 3 {
				t.Errorf("threads: %d threads besides main, want at least 3", tcbs)
			}
		})
	}
}
