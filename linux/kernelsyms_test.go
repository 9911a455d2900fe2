package linux

import (
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/symbols"
)

// TestKernelSymsFromTable checks that the vmlinux symbols loadKernelSyms
// reads from the symbol table (File.SymbolValue) are the ones a scan of
// .symtab finds, in every corpus vmlinux: value and size of each name.
func TestKernelSymsFromTable(t *testing.T) {
	for _, path := range needVmlinuxes(t) {
		for _, bias := range []uint64{0, 0x1e000000} {
			f, err := symbols.Open(path, bias)
			if err != nil {
				t.Fatal(err)
			}
			scan := map[string][2]uint64{}
			for _, s := range f.ELFSymbolsNamed(kernelSymNames) {
				scan[s.Name] = [2]uint64{s.Value, s.Size} // the last of a name, as loadKernelSyms kept it
			}
			found := 0
			for name := range kernelSymNames {
				v, size, ok := f.SymbolValue(name)
				want, wok := scan[name]
				if ok != wok || ok && [2]uint64{v, size} != want {
					t.Errorf("%s at %#x: SymbolValue(%s) = %#x %#x %v, scan %#x %v", filepath.Base(path), bias, name, v, size, ok, want, wok)
				}
				if ok {
					found++
				}
			}
			if found < len(kernelSymNames)/2 {
				t.Errorf("%s: %d of %d names found", path, found, len(kernelSymNames))
			}
			f.Close()
		}
	}
}

// corpusVmlinuxes returns the lab (kernel corpus, fp build) and prod
// vmlinux files there are.
func corpusVmlinuxes() []string {
	var paths []string
	if dir, err := corpus.Find("kernel"); err == nil {
		paths = append(paths, filepath.Join(dir, "fp", "vmlinux"))
	}
	if dir, err := corpus.Find("prod"); err == nil {
		paths = append(paths, filepath.Join(dir, "kernel", "vmlinux-"+prodRelease))
	}
	return paths
}

// needVmlinuxes is corpusVmlinuxes for a test that has nothing to check
// without them: with none, it ends t as corpus.Unavailable does.
func needVmlinuxes(t testing.TB) []string {
	paths := corpusVmlinuxes()
	if len(paths) == 0 {
		corpus.Unavailable(t, "the kernel and prod corpora's vmlinux", nil)
	}
	return paths
}
