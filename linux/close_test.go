package linux

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// Kernel.Close closes the vmlinux and module files Open opened: with the
// dump closed too, the process holds the descriptors it held before, and
// the Kernel's traces made before stay readable.
func TestKernelClose(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	kd := filepath.Join(dir, "kernel")
	opts := dump.SymbolOptions{Files: []string{filepath.Join(kd, prodVmlinux)}, SearchDirs: []string{filepath.Join(kd, "modules")}}
	before := openFDs(t)
	d, err := dump.Open(filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := Open(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := k.Modules()
	if err != nil || len(mods) == 0 {
		t.Fatalf("%d modules, %v", len(mods), err)
	}
	withFile := 0
	for _, m := range mods {
		if m.File != "" {
			withFile++
		}
	}
	if withFile == 0 {
		t.Fatal("no module read from its .ko file")
	}
	tr, err := k.UnwindCPU(0, unwind.Options{})
	if err != nil || len(tr.Frames) == 0 {
		t.Fatalf("CPU 0: %d frames, %v", len(tr.Frames), err)
	}
	if err := k.Close(); err != nil {
		t.Errorf("Kernel.Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("Dump.Close: %v", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after Kernel.Close and Dump.Close, %d before Open", after, before)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Kernel.Close: %v", err)
	}
	n := 0
	for _, f := range tr.Frames {
		n += len(f.Sym.Name) + len(f.Function) + len(f.File)
	}
	if n == 0 {
		t.Error("CPU 0's frames have no names or files")
	}
}
