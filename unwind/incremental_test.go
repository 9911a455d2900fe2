package unwind

import (
	"fmt"
	"testing"

	"github.com/unwind-dev/unwind/ptregs"
)

// TestIncrementalMatchesScratch walks synthetic chains with an incremental
// Unwinder while their memory changes between walks (a return address, a
// saved rbp, the code before a return address, the registers), and
// abandoning a walk halfway: every walk must equal a walk from scratch,
// frame for frame, and so must the way it ends.
func TestIncrementalMatchesScratch(t *testing.T) {
	for _, tc := range []struct {
		name string
		ch   func() *chain
	}{
		{"fp", func() *chain { return fpChain(30, false) }},
		{"fp+cfi", func() *chain { return fpChain(30, true) }},
		{"cfi", func() *chain { return cfiChain(30) }},
	} {
		for _, m := range []Method{MethodFP, MethodCFI, MethodFP | MethodScan, 0} {
			for _, max := range []int{0, 12} {
				for _, journal := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%v/max%d/journal=%v", tc.name, m, max, journal), func(t *testing.T) {
						ch := tc.ch()
						// The target's text is its own copy: the Code (the
						// file) does not change when the target patches it.
						text := append([]byte(nil), ch.code.text...)
						ch.mem[0] = Region{Addr: textBase, Data: text}
						var mem Memory = ch.mem
						jm := &journalMem{mem: ch.mem}
						wrote := func(uint64, int) {}
						if journal {
							// The memory logs its writes: the changes
							// below go through wrote.
							mem, wrote = jm, jm.wrote
						}
						opts := Options{Code: ch.code, Stacks: ch.stacks, Methods: m, MaxFrames: max}
						inc := opts
						inc.Incremental = true
						u := New(mem, ch.regs, &inc)
						check := func(what string, regs ptregs.Regs) {
							t.Helper()
							matchesScratch(t, what, u, mem, regs, &opts)
						}
						for i := 0; i < 3; i++ {
							check(fmt.Sprintf("walk %d", i), ch.regs)
						}
						// A word in the middle of the stack, then the code
						// before a return address in the middle of the chain.
						mid := ch.stk.sp + (ch.stk.hi-ch.stk.sp)/2&^7
						old := ch.stk.get(mid)
						for _, v := range []uint64{old + 1, 0, old ^ 0x10, old} {
							ch.stk.put(mid, v)
							wrote(mid, 8)
							check(fmt.Sprintf("stack word %#x = %#x", mid, v), ch.regs)
							check(fmt.Sprintf("stack word %#x = %#x again", mid, v), ch.regs)
						}
						for _, slot := range ch.rets {
							ra := ch.stk.get(slot)
							if ra < textBase+5 || ra-textBase > uint64(len(text)) {
								continue
							}
							at := ra - 5 - textBase // the call instruction
							orig := append([]byte(nil), text[at:at+5]...)
							for _, p := range [][]byte{
								{0x90, 0x90, 0x90, 0x90, 0x90},             // no call (the file's bytes still have it)
								{0xe8, 0xc0, 0xff, 0xff, 0xff},             // a call to an earlier function
								{0xe8, orig[1], orig[2], orig[3], orig[4]}, // as it was
							} {
								copy(text[at:], p)
								wrote(textBase+at, len(p))
								check(fmt.Sprintf("call before %#x is % x", ra, p), ch.regs)
								check(fmt.Sprintf("call before %#x is % x, again", ra, p), ch.regs)
							}
							break
						}
						// Abandoned walks.
						for k := 1; k < 6; k += 4 {
							u.Reset(mem, ch.regs)
							for i := 0; i < k && u.Next(); i++ {
							}
							check(fmt.Sprintf("after a walk abandoned at %d", k), ch.regs)
						}
						// Other registers: another frame 0.
						regs := ch.regs
						sp, _ := regs.SP()
						regs.Set(ptregs.RSP, sp+8)
						check("rsp+8", regs)
						check("rsp+8 again", regs)
						check("back", ch.regs)
					})
				}
			}
		}
	}
}

// matchesScratch walks the incremental u again from regs over mem, and a
// fresh Unwinder with opts, and fails t unless both give the same frames
// and end the same way (reliability, stop reason, error, invalidation).
func matchesScratch(t *testing.T, what string, u *Unwinder, mem Memory, regs ptregs.Regs, opts *Options) {
	t.Helper()
	walk := func(u *Unwinder) ([]Frame, string) {
		var fs []Frame
		for u.Next() {
			fs = append(fs, u.Frame())
		}
		return fs, fmt.Sprintf("%v %q %v %d", u.Reliable(), u.StopReason(), u.Err(), u.Invalidated())
	}
	want, wantEnd := walk(New(mem, regs, opts))
	u.Reset(mem, regs)
	got, gotEnd := walk(u)
	if gotEnd != wantEnd || len(got) != len(want) {
		t.Fatalf("%s: %d frames, %s; from scratch %d frames, %s", what, len(got), gotEnd, len(want), wantEnd)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: frame %d:\n%+v\nfrom scratch:\n%+v", what, i, got[i], want[i])
		}
	}
}

// journalMem is a Memory with a WriteJournal kept by hand: the test
// reports each change it makes to the memory with wrote.
type journalMem struct {
	mem    Memory
	writes [][2]uint64 // addr, n
}

func (j *journalMem) ReadAt(p []byte, addr uint64) (int, error) { return j.mem.ReadAt(p, addr) }
func (j *journalMem) WriteSeq() uint64                          { return uint64(len(j.writes)) }
func (j *journalMem) wrote(addr uint64, n int) {
	j.writes = append(j.writes, [2]uint64{addr, uint64(n)})
}

func (j *journalMem) WrittenSince(seq, addr uint64, n int) bool {
	if seq > uint64(len(j.writes)) {
		return true
	}
	for _, w := range j.writes[seq:] {
		if w[0] < addr+uint64(n) && addr < w[0]+w[1] {
			return true
		}
	}
	return false
}
