package dump

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

// vmcore returns the decompressed kernel corpus dump fp/SCENARIO/NAME.
func vmcore(t testing.TB, scenario, name string) string {
	t.Helper()
	return corpus.Vmcore(t, scenario, name)
}

func kernelDir(t *testing.T) string { return kernelDirTB(t) }

func kernelDirTB(tb testing.TB) string { return filepath.Join(corpus.Dir(tb, "kernel"), "fp") }

func systemMapAddr(t *testing.T, name string) uint64 {
	f, err := os.Open(filepath.Join(kernelDir(t), "System.map"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && fs[2] == name {
			v, _ := strconv.ParseUint(fs[0], 16, 64)
			return v
		}
	}
	t.Fatalf("%s not in System.map", name)
	return 0
}

func TestVmcoreLinuxBannerPhysicalAndPaging(t *testing.T) {
	addr := systemMapAddr(t, "linux_banner")
	for _, name := range []string{"irq", "irq-paging"} {
		t.Run(name, func(t *testing.T) {
			d, err := Open(vmcore(t, "irq", name))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			buf := make([]byte, 64)
			if _, err := d.Memory().ReadAt(buf, addr); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(buf, []byte("Linux version 6.1.192")) {
				t.Errorf("linux_banner reads %q", buf)
			}
			if _, err := d.Memory().ReadAt(buf[:8], 0xffff800000000000); err == nil {
				t.Errorf("read of an unmapped kernel address succeeded")
			} else if !isUnmapped(err) {
				t.Errorf("unmapped read error %v", err)
			}
		})
	}
}

func isUnmapped(err error) bool {
	_, ok := err.(*unwind.MemoryError)
	return ok
}
