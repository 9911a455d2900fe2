package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// TestBtWrongVmlinux: the lab kernel's vmlinux given for the prod kdump
// is refused (exit 1) with a message naming both build ids and the way
// out; --force-sym goes on with a warning.
func TestBtWrongVmlinux(t *testing.T) {
	prod := corpus.Dir(t, "prod")
	lab := corpus.Dir(t, "kernel")
	core := filepath.Join(prod, "kdump-sysrqc", "vmcore.kdump-lzo")
	vmlinux := filepath.Join(lab, "fp", "vmlinux")
	_, stderr, code := run(t, "bt", core, "--sym", vmlinux)
	want := "unwind: symbol file is not the dumped kernel's: " + vmlinux + " is not the dumped kernel's vmlinux: its build id is f3271a67d28e6226ef4fa6c03e63879ade0909d3, the dump's kernel's (VMCOREINFO BUILD-ID) is 4f61d8f6405b1c6eed15a7a3e2e27067394202d3; give the matching file, or --force-sym to use it anyway\n"
	if code != ExitFailure || stderr != want {
		t.Errorf("exit %d, stderr\n%s\nwant\n%s", code, stderr, want)
	}
	_, stderr, code = run(t, "bt", core, "--sym", vmlinux, "--force-sym")
	if code == ExitFailure || !strings.Contains(stderr, "(used anyway: --force-sym)") {
		t.Errorf("--force-sym: exit %d: %s", code, stderr)
	}
}

// TestNoVMCOREINFO: the makedumpfile ELF of the lab nmibt vmcore with its
// VMCOREINFO note renamed, as a QEMU dump taken without the vmcoreinfo
// device: info says the KASLR offset came from the IDT, and bt prints the
// same traces.
func TestNoVMCOREINFO(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	p, b := makedumpfileFile(t, "nmibt-d31.elf")
	want, _, code := run(t, "bt", p, "--sym", vmlinux)
	if code != ExitOK {
		t.Fatalf("bt: exit %d", code)
	}
	i := bytes.Index(b, []byte("VMCOREINFO\x00"))
	if i < 0 {
		t.Fatal("no VMCOREINFO note")
	}
	copy(b[i:], "XMCOREINFO")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := run(t, "info", p, "--sym", vmlinux)
	if code != ExitOK || !strings.Contains(out, "\nkaslr:    offset 0x0, from the IDT (CPU 0's gates for vectors 0, 3, 6, 14 at 0xfffffe0000000000 against the symbol file)\n") {
		t.Errorf("info: exit %d:\n%s%s", code, out, stderr)
	}
	got, stderr, code := run(t, "bt", p, "--sym", vmlinux)
	if code != ExitOK || got != want {
		t.Errorf("bt without VMCOREINFO: exit %d: %s\n%s\nwant\n%s", code, stderr, got, want)
	}
}
