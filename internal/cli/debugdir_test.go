package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// TestDebugDir: --debug-dir laid out as Debian installs the -dbg package
// (usr/lib/debug/.build-id/xx/rest.debug, usr/lib/debug/boot/vmlinux-RELEASE,
// usr/lib/debug/lib/modules/RELEASE/.../NAME.ko) finds the prod kernel's
// vmlinux by build id or by release, and its modules, and prints what
// --sym vmlinux --search modules prints; a vmlinux of another build at the
// release's path is skipped with a warning.
func TestDebugDir(t *testing.T) {
	prod := corpus.Dir(t, "prod")
	lab := corpus.Dir(t, "kernel")
	core := filepath.Join(prod, "kdump-sysrqc", "vmcore.kdump-lzo")
	vmlinux := filepath.Join(prod, "kernel", "vmlinux-6.1.0-47-cloud-amd64")
	mods := filepath.Join(prod, "kernel", "modules")
	const rel = "6.1.0-47-cloud-amd64"
	want, wantErr, wantCode := run(t, "bt", core, "-l", "--sym", vmlinux, "--search", mods)
	if wantCode == ExitFailure || !strings.Contains(want, "prodcrash.c:") {
		t.Fatalf("bt --sym: exit %d: %s", wantCode, wantErr)
	}
	link := func(src, dst string) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	modules := func(root string) {
		kos, _ := filepath.Glob(filepath.Join(mods, "*.ko"))
		if len(kos) < 8 {
			t.Fatalf("%d .ko files in %s", len(kos), mods)
		}
		for _, ko := range kos {
			sub := "kernel/drivers/virtio"
			if strings.HasPrefix(filepath.Base(ko), "prodcrash") {
				sub = "updates"
			}
			link(ko, filepath.Join(root, "usr/lib/debug/lib/modules", rel, sub, filepath.Base(ko)))
		}
	}
	byID := t.TempDir()
	link(vmlinux, filepath.Join(byID, "usr/lib/debug/.build-id/4f/61d8f6405b1c6eed15a7a3e2e27067394202d3.debug"))
	modules(byID)
	byRelease := t.TempDir()
	link(vmlinux, filepath.Join(byRelease, "usr/lib/debug/boot/vmlinux-"+rel))
	modules(byRelease)
	for name, dir := range map[string]string{"build id": byID, "release": byRelease, "release (usr/lib/debug given)": filepath.Join(byRelease, "usr/lib/debug")} {
		got, stderr, code := run(t, "bt", core, "-l", "--debug-dir", dir)
		if code != wantCode || got != want || stderr != wantErr {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q), output equal %v", name, code, wantCode, stderr, wantErr, got == want)
		}
	}
	wrong := t.TempDir()
	link(filepath.Join(lab, "fp", "vmlinux"), filepath.Join(wrong, "boot/vmlinux-"+rel))
	_, stderr, _ := run(t, "bt", core, "--debug-dir", wrong)
	for _, w := range []string{
		"warning: --debug-dir: " + wrong + "/boot/vmlinux-" + rel + " (build id f3271a67d28e6226ef4fa6c03e63879ade0909d3) is not the dumped kernel's vmlinux (build id 4f61d8f6405b1c6eed15a7a3e2e27067394202d3): skipped\n",
		"warning: --debug-dir: no vmlinux with build id \"4f61d8f6405b1c6eed15a7a3e2e27067394202d3\" or for release \"" + rel + "\" in " + wrong + "\n",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
}
