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
	var paths []string
	if dir, err := corpus.Find("kernel"); err == nil {
		paths = append(paths, filepath.Join(dir, "fp", "vmlinux"))
	}
	if dir, err := corpus.Find("prod"); err == nil {
		paths = append(paths, filepath.Join(dir, "kernel", "vmlinux-"+prodRelease))
	}
	if len(paths) == 0 {
		corpus.Unavailable(t, "vmlinux", nil)
	}
	for _, path := range paths {
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
