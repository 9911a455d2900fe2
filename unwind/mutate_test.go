package unwind_test

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/unwind-dev/unwind/unwind"
)

// Mutants of the real user cores under fixtures/usercores (issue 15,
// "Frames marked reliable that are wrong"): one stack word changed, every
// strategy set, and no frame marked reliable may differ from the intact
// core's reliable walk at its index.

// wordOverlay is memory with one 8-byte word replaced.
type wordOverlay struct {
	base unwind.Memory
	addr uint64
	val  [8]byte
}

func (o *wordOverlay) ReadAt(p []byte, addr uint64) (int, error) {
	n, err := o.base.ReadAt(p, addr)
	for i := range o.val {
		if a := o.addr + uint64(i); a >= addr && a-addr < uint64(n) {
			p[a-addr] = o.val[i]
		}
	}
	return n, err
}

var mutantMethods = []unwind.Method{unwind.MethodCFI, unwind.MethodFP, 0}

// mutantWalk walks thread i of c over mem with methods.
func mutantWalk(c *fxCore, i int, mem unwind.Memory, m unwind.Method) ([]unwind.Frame, *unwind.Unwinder) {
	th := c.d.Threads()[i]
	u := unwind.New(mem, th.Regs, &unwind.Options{Code: c.set, Stacks: c.d.Stacks(i), Methods: m})
	var fs []unwind.Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	if from := u.Invalidated(); from >= 0 {
		for j := from; j < len(fs); j++ {
			fs[j].Reliable = false
		}
	}
	return fs, u
}

// mutantCheck walks the mutant with every strategy set and reports the
// frames marked reliable that are wrong, and traces cut short that claim
// a reliable end.
func mutantCheck(c *fxCore, i int, good []unwind.Frame, addr, val uint64, what string) []string {
	o := &wordOverlay{base: c.d.Memory(), addr: addr}
	binary.LittleEndian.PutUint64(o.val[:], val)
	var bad []string
	for _, m := range mutantMethods {
		fs, u := mutantWalk(c, i, o, m)
		for j := range fs {
			f := &fs[j]
			if f.Reliable && (j >= len(good) || f.PC != good[j].PC || f.SP != good[j].SP) {
				bad = append(bad, fmt.Sprintf("%s, methods %v: frame %d %s pc %#x marked reliable, the intact walk has %s",
					what, m, j, f.Function, f.PC, frameAt(good, j)))
				break
			}
		}
		intact, _ := mutantWalk(c, i, c.d.Memory(), m)
		if u.Reliable() && len(fs) < len(intact) {
			bad = append(bad, fmt.Sprintf("%s, methods %v: %d frames of %d, reliable, stopped: %s", what, m, len(fs), len(intact), u.StopReason()))
		}
	}
	return bad
}

func frameAt(fs []unwind.Frame, j int) string {
	if j >= len(fs) {
		return "no such frame"
	}
	return fmt.Sprintf("%s pc %#x", fs[j].Function, fs[j].PC)
}

// TestUserCoreMutants: every return address of every thread of the user
// cores moved by ±1..8 bytes (into or past the call before it), set to 0
// and to a non-canonical value, and (with frame pointers) every saved rbp
// pointed 8 or 16 bytes lower.
func TestUserCoreMutants(t *testing.T) {
	m := fxManifestLoad(t)
	mutants := 0
	for _, cs := range []string{"deep", "abort", "signal", "threads"} {
		for _, v := range []string{"O2cfi", "O0fp", "static"} {
			t.Run(cs+"/"+v, func(t *testing.T) {
				c := fxOpen(t, m, v, cs, true)
				var bad []string
				for i := range c.d.Threads() {
					good, u := mutantWalk(c, i, c.d.Memory(), 0)
					if !u.Reliable() {
						continue // the property is about reliable walks
					}
					for j := 1; j < len(good); j++ {
						f := good[j]
						if f.Kind != unwind.KindCall || f.Slot == 0 || f.Inlined {
							continue
						}
						for d := -8; d <= 8; d++ {
							if d == 0 || returnSite(c, f.PC+uint64(d)) {
								// (Another call's return site: another
								// history, no unwinder can tell.)
								continue
							}
							mutants++
							bad = append(bad, mutantCheck(c, i, good, f.Slot, f.PC+uint64(d), fmt.Sprintf("thread %d return address of #%d %+d", i, j, d))...)
						}
						for _, val := range []uint64{0, 0x8000000000000000 | f.PC} {
							mutants++
							bad = append(bad, mutantCheck(c, i, good, f.Slot, val, fmt.Sprintf("thread %d return address of #%d = %#x", i, j, val))...)
						}
						if v == "O0fp" && f.Slot >= 8 {
							// The saved rbp below the return address.
							var b [8]byte
							if n, _ := c.d.Memory().ReadAt(b[:], f.Slot-8); n == 8 {
								rbp := binary.LittleEndian.Uint64(b[:])
								for _, d := range []uint64{8, 16} {
									mutants++
									bad = append(bad, mutantCheck(c, i, good, f.Slot-8, rbp-d, fmt.Sprintf("thread %d saved rbp at #%d -%d", i, j, d))...)
								}
							}
						}
					}
				}
				for k, b := range bad {
					if k == 10 {
						t.Errorf("… %d more", len(bad)-10)
						break
					}
					t.Error(b)
				}
			})
		}
	}
	t.Logf("%d mutants, each walked with cfi, fp and all strategies", mutants)
}

// returnSite reports whether a call instruction ends at ra, decoding its
// function from its start.
func returnSite(c *fxCore, ra uint64) bool {
	sym, ok := c.set.Symbol(ra - 1)
	if !ok {
		return false
	}
	code := c.set.CodeAt(sym.Addr)
	for off := 0; off < len(code) && sym.Addr+uint64(off) < ra; {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil || inst.Len == 0 {
			return false
		}
		off += inst.Len
		if sym.Addr+uint64(off) == ra {
			return inst.Op == x86asm.CALL
		}
	}
	return false
}

// TestFrameModuleWithoutSymbol: with libc's full symbol table left out
// (its static functions then have no symbol), a frame in libc's text
// still names libc as its module.
func TestFrameModuleWithoutSymbol(t *testing.T) {
	m := fxManifestLoad(t)
	c := fxOpen(t, m, "O2cfi", "abort", false)
	named := 0
	for i := range c.d.Threads() {
		fs, _ := c.walk(i, 0)
		for _, f := range fs {
			if f.SymOK {
				continue
			}
			want := c.module(f.LookupPC)
			if want == "" {
				continue
			}
			if filepath.Base(f.Sym.Module) != want {
				t.Errorf("thread %d frame %d pc %#x: module %q, want %s", i, f.Index, f.PC, f.Sym.Module, want)
			}
			named++
		}
	}
	if named == 0 {
		t.Fatal("no frame without a symbol in a mapped file: the test tests nothing")
	}
}
