package unwind

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// FuzzIncremental feeds FuzzWalk's random memory and registers to an
// incremental Unwinder, then changes the memory a byte at a time (edits:
// 3 bytes each, a 16-bit offset into the text and stack, and the new byte)
// and walks again after each change: every walk must equal a walk from
// scratch, frame for frame, and end the same way. With journal, the
// memory also logs its writes (WriteJournal), as an emulator's does.
func FuzzIncremental(f *testing.F) {
	code := fuzzCode()
	seed := fuzzSeed(fpChain(6, true), 0x80)
	// A return address, a saved rbp and a byte of the code before a
	// return address: offsets past the text are into the stack.
	edits := []byte{0x10, 0x00, 0x90}
	for _, off := range []int{fuzzStackSize - 64, fuzzStackSize - 120, fuzzStackSize - 8} {
		o := len(code.text) + off
		edits = append(edits, byte(o), byte(o>>8), 0x42)
	}
	f.Add(seed, edits, false)
	f.Add(seed, edits, true)
	f.Add(fuzzSeed(fpChain(6, true), 0x81), edits, true)
	f.Add(fuzzSeed(fpChain(6, true), 0x80|byte(MethodScan)<<1), edits, false)
	f.Fuzz(func(t *testing.T, data, edits []byte, journal bool) {
		mem, regs, opts := fuzzInput(code, data)
		sm := mem.(SplicedMemory)
		// The target's text is its own copy, as in a live target.
		text := append([]byte(nil), sm[0].Data...)
		sm[0].Data = text
		stk := sm[1].Data
		jm := &journalMem{mem: sm}
		if journal {
			mem = jm
		}
		inc := *opts
		inc.Incremental = true
		u := New(mem, regs, &inc)
		check := func(what string) { matchesScratch(t, what, u, mem, regs, opts) }
		check("first walk")
		check("again")
		for k := 0; k+3 <= len(edits) && k < 3*16; k += 3 {
			off := int(binary.LittleEndian.Uint16(edits[k:])) % (len(text) + len(stk))
			addr := sm[0].Addr + uint64(off)
			if off < len(text) {
				text[off] = edits[k+2]
			} else {
				off -= len(text)
				stk[off] = edits[k+2]
				addr = sm[1].Addr + uint64(off)
			}
			jm.wrote(addr, 1)
			check(fmt.Sprintf("after edit %d (%#x = %#x)", k/3, addr, edits[k+2]))
		}
	})
}
