package unwind

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/unwind-dev/unwind/ptregs"
)

var update = flag.Bool("update", false, "rewrite golden files and fuzz seeds")

const fuzzStackSize = 4096

// fuzzInput turns fuzz bytes into a walk: byte 0 selects Kernel and the
// methods, bytes 1–24 the registers (rip as an offset into the text unless
// bit 6 of byte 0 says raw, rsp and rbp as offsets into the stack), the rest
// is the top 4 KiB of the stack of a synthetic chain's address space.
func fuzzInput(code *fakeCode, data []byte) (Memory, ptregs.Regs, *Options) {
	var hdr [25]byte
	copy(hdr[:], data)
	rest := data[min(len(data), 25):]
	stk := make([]byte, fuzzStackSize)
	copy(stk, rest)
	lo := uint64(stackBase + stackSize - fuzzStackSize)
	le := binary.LittleEndian
	rip, rsp, rbp := le.Uint64(hdr[1:]), le.Uint64(hdr[9:]), le.Uint64(hdr[17:])
	if hdr[0]&0x40 == 0 {
		rip = textBase + rip%uint64(len(code.text))
		rsp = lo + rsp%fuzzStackSize
		rbp = lo + rbp%(fuzzStackSize+64)
	}
	var regs ptregs.Regs
	regs.Set(ptregs.RIP, rip)
	regs.Set(ptregs.RSP, rsp)
	regs.Set(ptregs.RBP, rbp)
	mem := NewSplicedMemory(Region{Addr: textBase, Data: code.text}, Region{Addr: lo, Data: stk})
	opts := &Options{Code: code, Kernel: hdr[0]&1 != 0, Methods: Method(hdr[0]>>1) & allMethods}
	if hdr[0]&0x80 != 0 {
		opts.Stacks = Stacks{{Kind: StackUser, Lo: lo, Hi: lo + fuzzStackSize}}
	}
	return mem, regs, opts
}

// fuzzSeed encodes a synthetic chain as a fuzz input.
func fuzzSeed(ch *chain, flags byte) []byte {
	b := make([]byte, 25, 25+fuzzStackSize)
	b[0] = flags | 0x40
	rip, _ := ch.regs.PC()
	sp, _ := ch.regs.SP()
	bp, _ := ch.regs.Get(ptregs.RBP)
	binary.LittleEndian.PutUint64(b[1:], rip)
	binary.LittleEndian.PutUint64(b[9:], sp)
	binary.LittleEndian.PutUint64(b[17:], bp)
	return append(b, ch.stk.mem[len(ch.stk.mem)-fuzzStackSize:]...)
}

func fuzzCode() *fakeCode {
	return fpChain(6, true).code
}

func FuzzWalk(f *testing.F) {
	code := fuzzCode()
	f.Add(fuzzSeed(fpChain(6, true), 0x80))
	f.Fuzz(func(t *testing.T, data []byte) {
		mem, regs, opts := fuzzInput(code, data)
		u := New(mem, regs, opts)
		n := 0
		for u.Next() {
			n++
			fr := u.Frame()
			if fr.Index != n-1 {
				t.Fatalf("index %d at %d", fr.Index, n-1)
			}
		}
		if n > DefaultMaxFrames {
			t.Fatalf("%d frames", n)
		}
		if u.StopReason() == "" {
			t.Fatal("no stop reason")
		}
		if (u.Err() != nil) != (len(u.StopReason()) > 6 && u.StopReason()[:6] == "error:") {
			t.Fatalf("err %v vs stop %q", u.Err(), u.StopReason())
		}
		checkRecord(t, mem, regs, opts) // a Recording gives Walk's frames
	})
}

// TestWriteFuzzSeeds writes testdata/fuzz/FuzzWalk seeds from the
// synthetic chains (with -update).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("use -update to rewrite the fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzWalk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{
		"fp-chain":        fuzzSeed(fpChain(6, true), 0x80),
		"fp-chain-fponly": fuzzSeed(fpChain(6, true), 0x80|byte(MethodFP)<<1),
		"fp-chain-kernel": fuzzSeed(fpChain(6, true), 0x81),
		"fp-chain-scan":   fuzzSeed(fpChain(6, true), 0x80|byte(MethodScan)<<1),
		"cfi-chain":       fuzzSeed(cfiChain(6), 0x80),
		"no-bounds":       fuzzSeed(fpChain(6, true), 0),
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
