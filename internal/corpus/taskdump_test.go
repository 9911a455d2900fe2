package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFindTaskDump: the dump is found in UNWIND_TASKDUMP, the ordinary
// kdump file before a flattened one, with the folder's vmlinux; a folder
// without a dump skips, under CI=true too.
func TestFindTaskDump(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("UNWIND_TASKDUMP", dir)
	t.Setenv("CI", "true")
	if got := endOf(func(tb testing.TB) { TaskDump(tb) }); got != "skip" {
		t.Errorf("empty folder: test ended %q, want skip", got)
	}
	for _, n := range []string{"vmcore.kdump-zlib.flat", "vmcore.kdump-zlib", "vmlinux"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, v, err := FindTaskDump()
	if err != nil {
		t.Fatal(err)
	}
	if d != filepath.Join(dir, "vmcore.kdump-zlib") || v != filepath.Join(dir, "vmlinux") {
		t.Errorf("FindTaskDump = %s, %s; want the .kdump-zlib and vmlinux of %s", d, v, dir)
	}
	if got := endOf(func(tb testing.TB) { TaskDump(tb) }); got != "" {
		t.Errorf("with a dump: test ended %q, want it to go on", got)
	}
}
