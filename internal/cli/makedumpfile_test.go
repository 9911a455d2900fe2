package cli

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
)

// makedumpfileFile decompresses fixtures/makedumpfile/NAME.zst into a
// temporary file and returns its path and contents.
func makedumpfileFile(t *testing.T, name string) (string, []byte) {
	t.Helper()
	z, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "makedumpfile", name+".zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

var userCodeRE = regexp.MustCompile(`^Code: Unable to access opcode bytes at 0x[0-9a-f]{1,12}\.$`)

// TestBtMakedumpfileOutputs: makedumpfile -d 31 of the lab nmibt vmcore,
// in its ELF, zlib and LZO outputs, prints every CPU's trace as the
// original QEMU vmcore does. The compressed outputs excluded the user
// pages, so a user-mode RIP's Code: line says it cannot read them.
func TestBtMakedumpfileOutputs(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	full := corpus.Vmcore(t, "nmibt", "nmibt")
	want, stderr, code := run(t, "bt", full, "--sym", vmlinux)
	if code != ExitOK {
		t.Fatalf("bt on the QEMU vmcore: exit %d: %s", code, stderr)
	}
	for _, name := range []string{"nmibt-d31.elf", "nmibt-d31.kdump-zlib", "nmibt-d31.kdump-lzo"} {
		t.Run(name, func(t *testing.T) {
			p, _ := makedumpfileFile(t, name)
			got, stderr, code := run(t, "bt", p, "--sym", vmlinux)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
			if len(wl) != len(gl) {
				t.Fatalf("%d lines, the QEMU vmcore's trace has %d:\n%s", len(gl), len(wl), got)
			}
			excluded := 0
			for i := range wl {
				if gl[i] == wl[i] {
					continue
				}
				// Only a user RIP's code may be missing (user pages
				// excluded), and only in the compressed outputs.
				if strings.HasPrefix(wl[i-1], "RIP: 0033:") && userCodeRE.MatchString(gl[i]) && !strings.HasSuffix(name, ".elf") {
					excluded++
					continue
				}
				t.Errorf("line %d:\n got  %s\n want %s", i+1, gl[i], wl[i])
			}
			if !strings.HasSuffix(name, ".elf") && excluded == 0 {
				t.Errorf("the user code is readable although makedumpfile -d 31 excludes user pages")
			}
		})
	}
}

// excludePage clears page frame pfn from a compressed kdump file's
// second bitmap and removes its descriptor, as makedumpfile does for a
// page its dump level excludes.
func excludePage(t *testing.T, b []byte, pfn uint64) {
	t.Helper()
	le := binary.LittleEndian
	blk, sub, bmBlks := uint64(le.Uint32(b[428:])), uint64(le.Uint32(b[432:])), uint64(le.Uint32(b[436:]))
	bm2 := blk*(1+sub) + bmBlks*blk/2
	desc := blk*(1+sub) + bmBlks*blk
	if b[bm2+pfn/8]&(1<<(pfn%8)) == 0 {
		t.Fatalf("page %#x is not dumped", pfn)
	}
	idx, total := uint64(0), uint64(0)
	for i := uint64(0); i < bmBlks*blk/2; i++ {
		c := uint64(bits.OnesCount8(b[bm2+i]))
		if i < pfn/8 {
			idx += c
		} else if i == pfn/8 {
			idx += uint64(bits.OnesCount8(b[bm2+i] & (1<<(pfn%8) - 1)))
		}
		total += c
	}
	copy(b[desc+idx*24:desc+total*24], b[desc+(idx+1)*24:desc+total*24])
	b[bm2+pfn/8] &^= 1 << (pfn % 8)
}

// TestBtExcludedStackPage: a walk that needs a page makedumpfile
// excluded stops there, says so (the page frame and the dump level) and
// is not reliable; the frames before it are printed.
func TestBtExcludedStackPage(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	p, b := makedumpfileFile(t, "nmibt-d31.kdump-lzo")
	d, err := dump.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	// CPU 1 is in an NMI over an IRQ over dd's read(2); the IRQ
	// entry's pt_regs lie on dd's task stack.
	const taskStack = 0xffffc90000123d88 // the irq:236 pt_regs
	info := d.VMCoreInfo()
	pgt, _ := info.Symbol("init_top_pgt")
	pb, _ := info.Number("phys_base")
	w := &dump.PageWalker{Phys: d.PhysMemory(), Root: pgt - 0xffffffff80000000 + uint64(pb), Levels: 4}
	pa, err := w.Translate(taskStack)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	pfn := pa / 4096
	excludePage(t, b, pfn)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(": page %#x was excluded by makedumpfile (dump level 31)", pfn)

	// Each strategy reads the page its own way: CFI for a saved
	// register, the frame pointer for the next frame.
	for _, methods := range []string{"all", "fp,ptregs"} {
		out, stderr, code := run(t, "bt", p, "--sym", vmlinux, "--cpu", "1", "-o", "json", "--methods", methods)
		if code != ExitPartial {
			t.Fatalf("exit %d, want %d (%s)", code, ExitPartial, stderr)
		}
		var doc btJSON
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		th := doc.Threads[0]
		if th.Reliable || !strings.HasPrefix(th.StopReason, "error: ") || strings.Count(th.StopReason, want) != 1 {
			t.Errorf("%s: reliable %v, stop reason %q, want it to say once %q", methods, th.Reliable, th.StopReason, want)
		}
		var names []string
		for _, f := range th.Frames {
			names = append(names, f.Symbol)
		}
		if len(names) < 5 || names[0] != "nmi_cpu_backtrace" || names[len(names)-1] != "sysvec_apic_timer_interrupt" {
			t.Errorf("%s: frames before the excluded page: %v", methods, names)
		}
	}
	text, _, _ := run(t, "bt", p, "--sym", vmlinux, "--cpu", "1")
	last := strings.TrimSpace(text[strings.LastIndex(strings.TrimSpace(text), "\n")+1:])
	if !strings.Contains(last, want) || !strings.Contains(last, "UNRELIABLE") {
		t.Errorf("text ends %q", last)
	}
	t.Log(last)
}

// TestInfoMakedumpfileExcluded: info says which pages makedumpfile left
// out: the dump level a kdump header records, or for its ELF output
// (which records none) that PT_LOADs end their file data early.
func TestInfoMakedumpfileExcluded(t *testing.T) {
	for name, want := range map[string]string{
		"nmibt-d31.kdump-lzo":  "excluded: dump level 31 (zero, cache, private cache, user, free pages)\n",
		"nmibt-d31.kdump-zlib": "excluded: dump level 31 (zero, cache, private cache, user, free pages)\n",
		"nmibt-d31.elf":        "excluded: 8 PT_LOADs end their file data early (makedumpfile's ELF output, which records no dump level)\n",
	} {
		p, _ := makedumpfileFile(t, name)
		out, stderr, code := run(t, "info", p)
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d: %s%s", name, code, out, stderr)
		}
	}
}

// TestBtCorruptStackPage: a walk that needs a damaged compressed page
// stops there, naming the codec, the page frame and the file offset.
func TestBtCorruptStackPage(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	p, b := makedumpfileFile(t, "nmibt-d31.kdump-lzo")
	d, err := dump.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	info := d.VMCoreInfo()
	pgt, _ := info.Symbol("init_top_pgt")
	pb, _ := info.Number("phys_base")
	w := &dump.PageWalker{Phys: d.PhysMemory(), Root: pgt - 0xffffffff80000000 + uint64(pb), Levels: 4}
	pa, err := w.Translate(0xffffc90000123d88) // dd's task stack, under CPU 1's IRQ
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	pfn := pa / 4096
	// The page's descriptor: its rank in the second bitmap.
	le := binary.LittleEndian
	blk, sub, bmBlks := uint64(le.Uint32(b[428:])), uint64(le.Uint32(b[432:])), uint64(le.Uint32(b[436:]))
	bm2 := blk*(1+sub) + bmBlks*blk/2
	idx := uint64(0)
	for i := uint64(0); i < pfn/8; i++ {
		idx += uint64(bits.OnesCount8(b[bm2+i]))
	}
	idx += uint64(bits.OnesCount8(b[bm2+pfn/8] & (1<<(pfn%8) - 1)))
	desc := blk*(1+sub) + bmBlks*blk + idx*24
	off, sz, flags := le.Uint64(b[desc:]), uint64(le.Uint32(b[desc+8:])), le.Uint32(b[desc+12:])
	if flags != 2 {
		t.Fatalf("the stack page is stored with flags %#x, not LZO", flags)
	}
	for i := off + 1; i < off+sz; i += 3 {
		b[i] ^= 0x3c
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("dump: corrupt lzo page: pfn %#x, %d bytes (descriptor at %#x) at offset %#x", pfn, sz, desc, off)
	out, stderr, code := run(t, "bt", p, "--sym", vmlinux, "--cpu", "1", "-o", "json")
	if code != ExitPartial {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc btJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	th := doc.Threads[0]
	if th.Reliable || !strings.Contains(th.StopReason, want) {
		t.Errorf("stop reason %q, want it to say %q", th.StopReason, want)
	}
	t.Log(th.StopReason)
}
