package symbols

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortedOrder checks the order build sorts symbols in against a
// stable sort by run-time address, for addresses in one granule, in a
// few, in hundreds and thousands (four radix digits), in more than
// packedOrder ranks (sortKeys then), and wrapped around 2^64 by the
// bias; ties broken by index, and by a tie function that reverses it.
func TestSortedOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	spreads := map[string]func() uint64{
		"one granule": func() uint64 { return 0xffffffff81000000 + rng.Uint64N(1<<20)&^3 },
		"a vmlinux": func() uint64 {
			if rng.IntN(20) == 0 {
				return rng.Uint64N(0x2a000) // per-cpu
			}
			return 0xffffffff81000000 + rng.Uint64N(0x3000000)&^15
		},
		"1000 granules": func() uint64 { return rng.Uint64N(1000) << granuleBits },
		"3000 granules": func() uint64 { return rng.Uint64N(3000)<<granuleBits | rng.Uint64N(4) },
		"everywhere":    func() uint64 { return rng.Uint64() },
	}
	for what, addr := range spreads {
		for _, bias := range []uint64{0, 0x1e000000, 1 << 63, ^uint64(0) - 0xfff} {
			for _, n := range []int{1, 2, 255, 256, minRadixKeys - 1, minRadixKeys, 5000} {
				b := &tableBuilder{bias: bias}
				for range n {
					b.add(addr(), 0, 0, 0, 0, 0, 0)
				}
				for _, rev := range []bool{false, true} {
					want := make([]uint64, n)
					for i := range want {
						want[i] = uint64(i)
					}
					tie := func(x, y int) int {
						if rev {
							return cmp.Compare(y, x)
						}
						return cmp.Compare(x, y)
					}
					slices.SortStableFunc(want, func(x, y uint64) int {
						if c := cmp.Compare(b.addr[x]+bias, b.addr[y]+bias); c != 0 {
							return c
						}
						return tie(int(x), int(y))
					})
					if got, _ := b.sortedOrder(tie); !slices.Equal(got, want) {
						t.Fatalf("%s, bias %#x, %d symbols, reversed ties %v: order differs", what, bias, n, rev)
					}
				}
			}
		}
	}
}
