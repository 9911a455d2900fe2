package dump

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
)

// TestKdumpEqualsELF checks that every compressed kdump of a capture holds
// the same registers and physical pages as the ELF dump taken at the same
// stop.
func TestKdumpEqualsELF(t *testing.T) {
	dir := corpus.Dir(t, "kdump")
	for _, sc := range []string{"idle", "nmibt"} {
		elfDump, err := Open(filepath.Join(dir, "fp", sc, sc+".vmcore"))
		if err != nil {
			t.Fatal(err)
		}
		defer elfDump.Close()
		for _, format := range []string{"zlib", "snappy", "lzo"} {
			t.Run(sc+"/"+format, func(t *testing.T) {
				d, err := Open(filepath.Join(dir, "fp", sc, sc+".kdump-"+format))
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				if h, ok := d.Kdump(); !ok || h.Version != 6 {
					t.Errorf("header %+v", h)
				}
				if d.Kind() != KindVmcore || d.Release() != elfDump.Release() {
					t.Errorf("kind %q release %q, ELF %q", d.Kind(), d.Release(), elfDump.Release())
				}
				a, b := elfDump.Threads(), d.Threads()
				if len(a) != len(b) {
					t.Fatalf("%d CPUs, ELF has %d", len(b), len(a))
				}
				for i := range a {
					for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
						x, _ := a[i].Regs.Get(r)
						y, _ := b[i].Regs.Get(r)
						if x != y {
							t.Errorf("cpu %d %s: kdump %#x, ELF %#x", i, r, y, x)
						}
					}
				}
				pa, pb := make([]byte, 4096), make([]byte, 4096)
				compared := 0
				for phys := uint64(0); phys < 128<<20; phys += 4096 * 7 {
					_, errA := elfDump.PhysMemory().ReadAt(pa, phys)
					_, errB := d.PhysMemory().ReadAt(pb, phys)
					if (errA == nil) != (errB == nil) {
						t.Fatalf("phys %#x: ELF err %v, kdump err %v", phys, errA, errB)
					}
					if errA == nil && !bytes.Equal(pa, pb) {
						t.Fatalf("phys %#x differs", phys)
					}
					compared++
				}
				sp, _ := b[0].Regs.SP()
				va, vb := make([]byte, 256), make([]byte, 256)
				_, errA := elfDump.Memory().ReadAt(va, sp)
				_, errB := d.Memory().ReadAt(vb, sp)
				if errA != nil || errB != nil || !bytes.Equal(va, vb) {
					t.Errorf("stack at %#x: ELF %v, kdump %v, equal %v", sp, errA, errB, bytes.Equal(va, vb))
				}
				t.Logf("%d pages compared", compared)
			})
		}
	}
}
