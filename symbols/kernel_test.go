package symbols

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// openKernel opens the corpus vmlinux and parses its System.map.
func openKernel(t *testing.T, bias uint64) (*File, *Table, []byte) {
	t.Helper()
	dir := filepath.Join(corpus.Dir(t, "kernel"), "fp")
	sysmap, err := os.ReadFile(filepath.Join(dir, "System.map"))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := ParseSystemMap(bytes.NewReader(sysmap), bias)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "vmlinux"), bias)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, sm, sysmap
}

// TestKernelSizesMatchSystemMap checks, for every text symbol of System.map,
// that vmlinux and System.map give the same symbol and kallsyms-style size
// at its first and last byte.
func TestKernelSizesMatchSystemMap(t *testing.T) {
	f, sm, sysmap := openKernel(t, 0)
	if !f.kernel {
		t.Fatal("vmlinux not recognized as a kernel image")
	}
	n, differ := 0, 0
	for _, line := range strings.Split(string(sysmap), "\n") {
		fs := strings.Fields(line)
		if len(fs) != 3 || !strings.ContainsAny(fs[1], "tTwW") {
			continue
		}
		addr, _ := strconv.ParseUint(fs[0], 16, 64)
		want, ok := sm.Lookup(addr)
		if !ok {
			t.Errorf("System.map: no symbol at its own %s %#x", fs[2], addr)
			continue
		}
		for _, a := range []uint64{addr, addr + max(want.Size, 1) - 1} {
			got, ok := f.Syms.Lookup(a)
			n++
			if !ok || got.Name != want.Name || got.Addr != want.Addr || got.Size != want.Size || got.Module != "" {
				if differ++; differ <= 20 {
					t.Errorf("%#x: vmlinux %+v %v, System.map %+v", a, got, ok, want)
				}
			}
		}
	}
	t.Logf("%d lookups, %d differ", n, differ)
	if n < 10000 {
		t.Errorf("only %d text symbols checked", n)
	}
	// ELF sizes are still there.
	s, ok := f.Syms.ByName("lapic_next_event")
	if !ok || s.Size != 0x20 || s.ELFSize != 0x19 {
		t.Errorf("lapic_next_event: %+v, want Size 0x20 ELFSize 0x19", s)
	}
}

var kernelFrameRE = regexp.MustCompile(`(\? )?([A-Za-z0-9_.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)`)

// TestKernelSerialLogFrames checks every "func+0xOFF/0xSIZE" the kernel
// printed in the corpus serial logs against Lookup on vmlinux (and on
// System.map): func's address + OFF must give func back, with SIZE. Lines
// marked "? " (stack-scan guesses) are checked too: they are symbolized the
// same way.
func TestKernelSerialLogFrames(t *testing.T) {
	f, sm, _ := openKernel(t, 0)
	logs, _ := filepath.Glob(filepath.Join(corpus.Dir(t, "kernel"), "fp", "*", "serial.log"))
	if len(logs) == 0 {
		t.Fatal("no serial.log in the kernel corpus")
	}
	// Static functions may share a name: try every address it has.
	addrs := map[string][]uint64{}
	for i := 0; i < f.Syms.Len(); i++ {
		s := f.Syms.At(i)
		addrs[s.Name] = append(addrs[s.Name], s.Addr)
	}
	type frame struct {
		name      string
		off, size uint64
	}
	seen := map[frame]bool{}
	total, agree := 0, 0
	for _, log := range logs {
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range kernelFrameRE.FindAllStringSubmatch(string(b), -1) {
			off, _ := strconv.ParseUint(m[3], 16, 64)
			size, _ := strconv.ParseUint(m[4], 16, 64)
			fr := frame{m[2], off, size}
			if seen[fr] {
				continue
			}
			seen[fr] = true
			total++
			ok := false
			var got, gotSM Sym
			// Call Trace lines use %pB, which looks up the return
			// address minus 1 (so a call as a function's last
			// instruction prints as "f+0x20/0x20"); RIP lines use %pS.
			pcOff := off
			if off == size && off > 0 {
				pcOff--
			}
			for _, a := range addrs[fr.name] {
				got, _ = f.Syms.Lookup(a + pcOff)
				gotSM, _ = sm.Lookup(a + pcOff)
				if got.Name == fr.name && got.Size == size && gotSM.Name == fr.name && gotSM.Size == size {
					ok = true
					break
				}
			}
			if ok {
				agree++
			} else {
				t.Errorf("%s: %s+%#x/%#x: vmlinux gives %s+%#x/%#x, System.map %s/%#x", filepath.Base(filepath.Dir(log)),
					fr.name, off, size, got.Name, off, got.Size, gotSM.Name, gotSM.Size)
			}
		}
	}
	t.Logf("%d of %d distinct printed frames agree", agree, total)
	if total < 40 {
		t.Errorf("only %d frames found in %d serial logs", total, len(logs))
	}
}

func TestKernelModuleName(t *testing.T) {
	f, err := Open("testdata/hello-mod.ko", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, ok := f.Syms.ByName("hello_init")
	if !ok || s.Module != "hello_mod" {
		t.Errorf("hello_init: %+v %v, want Module hello_mod", s, ok)
	}
	// Without a name= tag, the file name as the kernel spells it.
	p, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := moduleName(p.ef, "/lib/modules/6.1/kernel/e1000-e.ko.zst"); got != "e1000_e" {
		t.Errorf("moduleName = %q", got)
	}
	// An ordinary executable keeps its path as module.
	if s, ok := p.Syms.ByName("main"); !ok || s.Module != "testdata/prog" || s.ELFSize == 0 || s.ELFSize != s.Size {
		t.Errorf("main: %+v", s)
	}
}

func TestKernelAliasOrder(t *testing.T) {
	if got := kallsymsRank("__start_foo", false); got != 1 {
		t.Errorf("__start_foo rank %d", got)
	}
	if got := kallsymsRank("foo", true); got != 2 {
		t.Errorf("weak foo rank %d", got)
	}
	tab, err := ParseSystemMap(strings.NewReader(`ffffffff81000000 W weak_fn
ffffffff81000000 T __text_end
ffffffff81000000 T __zzz
ffffffff81000010 T next
`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := tab.Lookup(0xffffffff81000004); s.Name != "__zzz" || s.Size != 0x10 {
		t.Errorf("got %+v, want __zzz/0x10", s)
	}
}
