package unwind

import (
	"encoding/binary"
	"testing"
)

// FuzzSignalWalk feeds user walks random signal frames: the memory of a
// handler on a sigaltstack (two rt_sigframes, their uc_stack and
// sigcontext) overwritten from its stack pointer up by the fuzz data,
// under the three stack oracles a core can give (the stack unknown, named
// unknown, named user) and the strategy sets a user walk uses. A walk must
// not panic, stay bounded, end with a stop reason that matches its error,
// and an incremental walk must equal a fresh one.
func FuzzSignalWalk(f *testing.F) {
	base := newSigaltstackCase(0, true)
	spOff := func(c *sigaltstackCase) uint64 { sp, _ := c.regs.SP(); return sp - c.alt.lo }
	seed := append([]byte{0, 0}, base.alt.mem[spOff(base):]...)
	f.Add(seed)
	f.Add(append([]byte{1, 1}, seed[2:]...))
	f.Add(append([]byte{2, 2}, seed[2:]...))
	disabled := append([]byte(nil), seed...)
	binary.LittleEndian.PutUint64(disabled[2+1024:], ssDisable)
	f.Add(disabled)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		c := newSigaltstackCase(0, true)
		copy(c.alt.mem[spOff(c):], data[2:])
		var stacks Stacks
		switch data[0] % 3 {
		case 1:
			stacks = Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}, {Kind: StackUnknown, Lo: c.alt.lo, Hi: c.alt.hi}}
		case 2:
			stacks = Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}, {Kind: StackUser, Lo: c.alt.lo, Hi: c.alt.hi}}
		default:
			stacks = Stacks{{Kind: StackUser, Lo: c.main.lo, Hi: c.main.hi}}
		}
		methods := []Method{0, MethodFP | MethodSignal, MethodScan | MethodSignal, MethodCFI | MethodSignal}[data[1]%4]
		opts := Options{Code: c.code, Stacks: stacks, Methods: methods}
		want, wantEnd := fuzzWalkAll(t, New(c.mem, c.regs, &opts))
		inc := opts
		inc.Incremental = true
		u := New(c.mem, c.regs, &inc)
		for i := 0; i < 2; i++ {
			u.Reset(c.mem, c.regs)
			got, gotEnd := fuzzWalkAll(t, u)
			if gotEnd != wantEnd || len(got) != len(want) {
				t.Fatalf("incremental walk %d: %d frames, %s; fresh %d frames, %s", i, len(got), gotEnd, len(want), wantEnd)
			}
			for k := range want {
				if got[k] != want[k] {
					t.Fatalf("incremental walk %d, frame %d:\n%+v\nfresh:\n%+v", i, k, got[k], want[k])
				}
			}
		}
	})
}

// fuzzWalkAll walks u to its end, checking what every walk must hold.
func fuzzWalkAll(t *testing.T, u *Unwinder) ([]Frame, string) {
	var fs []Frame
	for u.Next() {
		f := u.Frame()
		if f.Index != len(fs) {
			t.Fatalf("frame %d has index %d", len(fs), f.Index)
		}
		fs = append(fs, f)
	}
	if len(fs) > DefaultMaxFrames {
		t.Fatalf("%d frames", len(fs))
	}
	stop := u.StopReason()
	if stop == "" {
		t.Fatal("no stop reason")
	}
	if (u.Err() != nil) != (len(stop) > 6 && stop[:6] == "error:") {
		t.Fatalf("err %v vs stop %q", u.Err(), stop)
	}
	if from := u.Invalidated(); from >= len(fs) {
		t.Fatalf("invalidated from frame %d of %d", from, len(fs))
	}
	return fs, stop + " " + boolString(u.Reliable())
}

func boolString(b bool) string {
	if b {
		return "reliable"
	}
	return "unreliable"
}
