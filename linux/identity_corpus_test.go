package linux

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

// patchedFile is a file with some bytes replaced, read in place.
type patchedFile struct {
	r     io.ReaderAt
	at    int64
	bytes []byte
}

func (p patchedFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	for i := range p.bytes {
		if j := p.at + int64(i) - off; j >= 0 && j < int64(n) {
			b[j] = p.bytes[i]
		}
	}
	return n, err
}

// withoutVMCOREINFO opens path with its VMCOREINFO note renamed (as a
// QEMU dump taken without the vmcoreinfo device has none).
func withoutVMCOREINFO(t *testing.T, path string) *dump.Dump {
	t.Helper()
	d, err := dump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var at int64 = -1
	for _, n := range d.Notes() {
		if n.Name == "VMCOREINFO" {
			at = n.Off - 12 // the name, 11 bytes padded to 12, before the descriptor
		}
	}
	d.Close()
	if at < 0 {
		t.Fatalf("%s has no VMCOREINFO note", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	d, err = dump.NewFile(patchedFile{f, at, []byte("XMCOREINFO")}, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.VMCoreInfo()) != 0 || d.Kind() != dump.KindVmcore {
		t.Fatalf("still has VMCOREINFO, or kind %s", d.Kind())
	}
	return d
}

func cpuChains(t *testing.T, k *Kernel) []string {
	var out []string
	for i := range k.CPUs() {
		tr, err := k.UnwindCPU(i, unwind.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var fs []string
		for _, f := range tr.Frames {
			fs = append(fs, fmt.Sprintf("%s@%#x", f.Sym.Name, f.PC))
		}
		out = append(out, strings.Join(fs, " ")+" / "+tr.StopReason)
	}
	return out
}

// TestOffsetWithoutVMCOREINFO: the prod QEMU dump (KASLR offset
// 0x21000000) with its VMCOREINFO note removed: the offset is found from
// the IDT's gates against the handlers' link-time addresses, says so,
// and every CPU's trace is the one VMCOREINFO gives, with the debug
// vmlinux and with System.map only.
func TestOffsetWithoutVMCOREINFO(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	path := filepath.Join(dir, "live", "vmcore.qemu-elf")
	kd := filepath.Join(dir, "kernel")
	for name, opts := range map[string]dump.SymbolOptions{
		"vmlinux":    {Files: []string{filepath.Join(kd, "vmlinux-6.1.0-47-cloud-amd64")}},
		"System.map": {SystemMap: filepath.Join(kd, "System.map-6.1.0-47-cloud-amd64")},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := dump.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			k, err := Open(d, opts)
			if err != nil {
				t.Fatal(err)
			}
			if k.Offset() != 0x21000000 || k.OffsetSource() != "VMCOREINFO KERNELOFFSET" {
				t.Fatalf("offset %#x from %s", k.Offset(), k.OffsetSource())
			}
			want := cpuChains(t, k)

			k2, err := Open(withoutVMCOREINFO(t, path), opts)
			if err != nil {
				t.Fatal(err)
			}
			if k2.Offset() != 0x21000000 || !strings.HasPrefix(k2.OffsetSource(), "the IDT") {
				t.Fatalf("without VMCOREINFO: offset %#x from %q", k2.Offset(), k2.OffsetSource())
			}
			in := k2.Info()
			if in.KernelOffset != "0x21000000" || !strings.HasPrefix(in.KernelOffsetSource, "the IDT (CPU 0's gates") {
				t.Errorf("info: %q from %q", in.KernelOffset, in.KernelOffsetSource)
			}
			got := cpuChains(t, k2)
			for i := range want {
				if i >= len(got) || got[i] != want[i] {
					t.Errorf("CPU %d without VMCOREINFO:\n got  %v\n want %s", i, got, want[i])
				}
			}
		})
	}
}

// TestWrongVmlinux: the lab kernel's vmlinux given for the prod dump, and
// the prod vmlinux for a lab dump, are refused with an error naming both
// build ids; a wrong System.map by its linux_banner; --force-sym
// (SymbolOptions.Force) uses them with a warning.
func TestWrongVmlinux(t *testing.T) {
	prod := corpus.Dir(t, "prod")
	lab := corpus.Dir(t, "kernel")
	prodDump := filepath.Join(prod, "kdump-sysrqc", "vmcore.kdump-lzo")
	labDump := corpus.Vmcore(t, "nmibt", "nmibt")
	prodVmlinux := filepath.Join(prod, "kernel", "vmlinux-6.1.0-47-cloud-amd64")
	prodMap := filepath.Join(prod, "kernel", "System.map-6.1.0-47-cloud-amd64")
	labVmlinux := filepath.Join(lab, "fp", "vmlinux")
	labMap := filepath.Join(lab, "fp", "System.map")
	const prodID, labID = "4f61d8f6405b1c6eed15a7a3e2e27067394202d3", "f3271a67d28e6226ef4fa6c03e63879ade0909d3"
	for _, c := range []struct {
		name, dump string
		opts       dump.SymbolOptions
		want       string
	}{
		{"lab vmlinux for prod", prodDump, dump.SymbolOptions{Files: []string{labVmlinux}},
			labVmlinux + " is not the dumped kernel's vmlinux: its build id is " + labID + ", the dump's kernel's (VMCOREINFO BUILD-ID) is " + prodID},
		{"prod vmlinux for lab", labDump, dump.SymbolOptions{Files: []string{prodVmlinux}},
			prodVmlinux + " is not the dumped kernel's vmlinux: its build id is " + prodID + ", the dump's kernel's (VMCOREINFO BUILD-ID) is " + labID},
		{"prod System.map for lab", labDump, dump.SymbolOptions{SystemMap: prodMap},
			prodMap + " is not the dumped kernel's System.map: its linux_banner (0xffffffff8211fa00) holds"},
		{"lab System.map for prod", prodDump, dump.SymbolOptions{SystemMap: labMap},
			labMap + " is not the dumped kernel's System.map: its linux_banner"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := dump.Open(c.dump)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			_, err = Open(d, c.opts)
			if !errors.Is(err, ErrWrongSymbols) || !strings.Contains(err.Error(), c.want) || !strings.HasSuffix(err.Error(), "--force-sym to use it anyway") {
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
			t.Log(err)
			c.opts.Force = true
			k, err := Open(d, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, w := range k.Warnings() {
				found = found || strings.Contains(w, c.want) && strings.HasSuffix(w, "(used anyway: --force-sym)")
			}
			if !found {
				t.Errorf("forced: warnings %q", k.Warnings())
			}
		})
	}
	// The right files pass.
	for _, c := range []struct {
		dump string
		opts dump.SymbolOptions
	}{{prodDump, dump.SymbolOptions{Files: []string{prodVmlinux}}}, {prodDump, dump.SymbolOptions{SystemMap: prodMap}},
		{labDump, dump.SymbolOptions{Files: []string{labVmlinux}}}, {labDump, dump.SymbolOptions{SystemMap: labMap}}} {
		d, err := dump.Open(c.dump)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(d, c.opts); err != nil {
			t.Errorf("%s %+v: %v", c.dump, c.opts, err)
		}
		d.Close()
	}
}

// patchVMCOREINFO opens path with the VMCOREINFO line starting with key
// given a new value of the same length.
func patchVMCOREINFO(t *testing.T, path, key, value string) *dump.Dump {
	t.Helper()
	d, err := dump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var at int64 = -1
	for _, n := range d.Notes() {
		if i := strings.Index(string(n.Desc), "\n"+key+"="); n.Name == "VMCOREINFO" && i >= 0 {
			old, _, _ := strings.Cut(string(n.Desc[i+len(key)+2:]), "\n")
			if len(old) != len(value) {
				t.Fatalf("%s=%s: the new value must have %d characters", key, old, len(old))
			}
			at = n.Off + int64(i+len(key)+2)
		}
	}
	d.Close()
	if at < 0 {
		t.Fatalf("%s: no %s in VMCOREINFO", path, key)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	d, err = dump.NewFile(patchedFile{f, at, []byte(value)}, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestImpossibleOffset: a KERNELOFFSET no kernel can have (not a
// multiple of 2 MiB, past the 1 GiB kernel image area) is refused, not
// applied: the QEMU dump's IDT gives the real one (with a warning); the
// kdump file, which has no IDT register, fails to open, saying why.
func TestImpossibleOffset(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	vmlinux := dump.SymbolOptions{Files: []string{filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")}}
	for _, bad := range []string{"21000001", "f1000000"} {
		k, err := Open(patchVMCOREINFO(t, filepath.Join(dir, "live", "vmcore.qemu-elf"), "KERNELOFFSET", bad), vmlinux)
		if err != nil {
			t.Fatal(err)
		}
		if k.Offset() != 0x21000000 || !strings.HasPrefix(k.OffsetSource(), "the IDT") {
			t.Errorf("KERNELOFFSET=%s: offset %#x from %q", bad, k.Offset(), k.OffsetSource())
		}
		want := "VMCOREINFO KERNELOFFSET=" + bad + " is no KASLR offset a kernel can have (a multiple of 2 MiB below 0x3f000000): refused"
		if w := k.Warnings(); len(w) == 0 || w[0] != want {
			t.Errorf("warnings %q, want %q first", w, want)
		}
	}
	_, err := Open(patchVMCOREINFO(t, filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"), "KERNELOFFSET", "36a00010"), vmlinux)
	want := "impossible KASLR offset: VMCOREINFO KERNELOFFSET=36a00010 is no KASLR offset a kernel can have (a multiple of 2 MiB below 0x3f000000): refused, and the IDT gives none"
	if !errors.Is(err, ErrBadOffset) || err.Error() != want {
		t.Errorf("kdump: %v\nwant %s", err, want)
	}
}
