package cli

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// deepenCore writes a copy of the 100,000-frame core of fixtures/deepcore
// whose recursion is extra frames deeper (rounded up to a page of stack,
// 256 frames), and returns its path and the depth of its trace. The
// recursion's frames are all alike (a saved rbp pointing 16 bytes up and
// the same return address), so the stack segment grows down by extra
// frames of that form between frame 0 and frame 1, and the thread's rsp
// and rbp move down with frame 0. Nothing else changes: the segment's
// new contents go at the end of the file.
func deepenCore(tb testing.TB, core string, extra int) (string, int) {
	tb.Helper()
	b, err := os.ReadFile(core)
	if err != nil {
		tb.Fatal(err)
	}
	le := binary.LittleEndian
	phoff, phentsize, phnum := le.Uint64(b[0x20:]), uint64(le.Uint16(b[0x36:])), int(le.Uint16(b[0x38:]))
	ph := func(i int) []byte { return b[phoff+uint64(i)*phentsize:][:phentsize] }
	// The thread's registers: NT_PRSTATUS's pr_reg (at 112), rbp 4th
	// and rsp 19th of user_regs_struct.
	var regs []byte
	for i := 0; i < phnum && regs == nil; i++ {
		p := ph(i)
		if le.Uint32(p) != 4 { // PT_NOTE
			continue
		}
		notes := b[le.Uint64(p[8:]):][:le.Uint64(p[32:])]
		for len(notes) >= 12 && regs == nil {
			namesz, descsz, typ := (le.Uint32(notes)+3)&^3, (le.Uint32(notes[4:])+3)&^3, le.Uint32(notes[8:])
			desc := notes[12+namesz:]
			if typ == 1 {
				regs = desc[112:]
			}
			notes = desc[descsz:]
		}
	}
	if regs == nil {
		tb.Fatal("no NT_PRSTATUS")
	}
	sp0 := le.Uint64(regs[19*8:])
	for i := 0; i < phnum; i++ {
		p := ph(i)
		lo, off, size := le.Uint64(p[16:]), le.Uint64(p[8:]), le.Uint64(p[32:])
		if le.Uint32(p) != 1 || sp0 < lo || sp0-lo >= size || le.Uint64(p[40:]) != size {
			continue
		}
		old := b[off:][:size]
		at := func(a uint64) uint64 { return le.Uint64(old[a-lo:]) }
		ret := at(sp0 + 8)
		if at(sp0) != sp0+16 || le.Uint64(regs[4*8:]) != sp0 || at(sp0+16) != sp0+32 || at(sp0+24) != ret {
			tb.Fatalf("frames 0 and 1 at %#x are not the recursion's", sp0)
		}
		shift := (uint64(extra)*16 + 4095) &^ 4095
		seg := make([]byte, size+shift)
		copy(seg, old[:sp0-lo])                      // below frame 0
		copy(seg[sp0+16-lo+shift:], old[sp0+16-lo:]) // frame 1 on
		for a := sp0 - shift; a <= sp0; a += 16 {    // frame 0 and the new frames
			le.PutUint64(seg[a-(lo-shift):], a+16)
			le.PutUint64(seg[a+8-(lo-shift):], ret)
		}
		le.PutUint64(regs[4*8:], sp0-shift)
		le.PutUint64(regs[19*8:], sp0-shift)
		end := (uint64(len(b)) + 4095) &^ 4095
		le.PutUint64(p[8:], end)
		le.PutUint64(p[16:], lo-shift)
		le.PutUint64(p[32:], size+shift)
		le.PutUint64(p[40:], size+shift)
		out := append(append(b, make([]byte, end-uint64(len(b)))...), seg...)
		path := filepath.Join(tb.TempDir(), fmt.Sprintf("deep%d.core", extra))
		if err := os.WriteFile(path, out, 0o644); err != nil {
			tb.Fatal(err)
		}
		return path, deepFrames + int(shift/16)
	}
	tb.Fatalf("no stack segment holds rsp %#x", sp0)
	return "", 0
}

// The whole bt command is linear in a stack's depth, with a small
// constant: from 100,000 to 1,000,096 frames (the fixture's core made
// deeper), text and JSON allocate no more per frame (a compact record, not
// a 560-byte frame), and the text folds the recursion into one line.
func TestBtDeepLinear(t *testing.T) {
	core, exe := deepCore(t)
	deep, n := deepenCore(t, core, 900000)
	run := func(core string, frames int, format string) (perFrame float64, out string) {
		var errOut strings.Builder
		var text strings.Builder
		ios := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errOut}
		if format == "text" {
			ios.Out = &text
		}
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		if code := Run(ios, []string{"bt", core, "--exe", exe, "--max-frames", "0", "-o", format}); code != ExitPartial {
			t.Fatalf("%s: exit %d: %s", format, code, errOut.String())
		}
		runtime.ReadMemStats(&ms)
		return float64(ms.TotalAlloc-before) / float64(frames), text.String()
	}
	// The bytes a frame may cost: a record (48 bytes) and, for JSON, its
	// registers (8 bytes each, 8 of them in a recursion frame), in
	// blocks; the pages of the stack read from the file (16 bytes a frame).
	limit := map[string]float64{"text": 100, "json": 180}
	for _, format := range []string{"text", "json"} {
		small, _ := run(core, deepFrames, format)
		big, out := run(deep, n, format)
		t.Logf("%s: %.1f bytes/frame at %d frames, %.1f at %d", format, small, deepFrames, big, n)
		if big > small*1.1 || big > limit[format] {
			t.Errorf("%s: %.1f bytes allocated a frame at %d frames, %.1f at %d: want at most %.0f, and no more than at %d",
				format, small, deepFrames, big, n, limit[format], deepFrames)
		}
		if format == "text" {
			fold := fmt.Sprintf("#2 … #%d  0x000000000040101e in recurse+0x1e/0x35 (deep) at fixtures/deepcore/deep.c:14 … (repeated %s times)\n", n-2, groupDigitsTest(n-3))
			if !strings.Contains(out, fold) || !strings.Contains(out, fmt.Sprintf("\n(%d frames, UNRELIABLE, stopped: error: frame %d at 0x401043", n, n-1)) {
				t.Errorf("text of %d frames:\n%s", n, out)
			}
		}
	}
}

// groupDigitsTest writes n with thousands separators.
func groupDigitsTest(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
