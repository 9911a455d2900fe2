package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// prodPaths returns the prod corpus's kdump, System.map, vmlinux and
// module folder.
func prodPaths(t *testing.T) (vmcore, sysmap, vmlinux, mods string) {
	t.Helper()
	d := corpus.Dir(t, "prod")
	k := filepath.Join(d, "kernel")
	return filepath.Join(d, "kdump-sysrqc", "vmcore.kdump-lzo"), filepath.Join(k, "System.map-6.1.0-47-cloud-amd64"),
		filepath.Join(k, "vmlinux-6.1.0-47-cloud-amd64"), filepath.Join(k, "modules")
}

// TestModsProd: `unwind mods` lists the prod kdump's modules in the
// kernel's list order with what /proc/modules said (truth-dev.json), in
// text and JSON.
func TestModsProd(t *testing.T) {
	vmcore, sysmap, vmlinux, mods := prodPaths(t)
	out, errOut, code := run(t, "mods", vmcore, "--system-map", sysmap, "--search", mods)
	if code != ExitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"prodcrash", "qemu_fw_cfg", "virtio_blk", "virtio_pci", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_ring", "virtio"}
	if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("output:\n%s", out)
	}
	for i, w := range want {
		f := strings.Fields(lines[i+1])
		if f[0] != w || f[3] != "live" || !strings.HasSuffix(f[6], w+".ko") {
			t.Errorf("line %d: %q, want module %s live with its .ko", i+1, lines[i+1], w)
		}
	}
	if f := strings.Fields(lines[1]); f[1] != "ffffffffc05ac000" || f[2] != "16384" || f[4] != "OE" {
		t.Errorf("prodcrash: %q", lines[1])
	}
	corpus.Checked(t, len(want))

	out, _, code = run(t, "mods", vmcore, "--sym", vmlinux, "-o", "json")
	var doc struct {
		Version int          `json:"version"`
		Modules []jsonModule `json:"modules"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != ExitOK {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if doc.Version != JSONVersion || len(doc.Modules) != len(want) {
		t.Fatalf("version %d, %d modules", doc.Version, len(doc.Modules))
	}
	p := doc.Modules[0]
	if p.Name != "prodcrash" || p.Address != "0xffffffffc05ae040" || p.TextEnd != "0xffffffffc05ad000" || p.Taints != "0x3000" ||
		p.TaintLetters != "OE" || p.ORCEntries != 49 || p.Symbols != 20 || p.File != "" || p.Sections[".orc_unwind_ip"] != "0xffffffffc05ad28e" {
		t.Errorf("prodcrash: %+v", p)
	}
}

// TestModsUsage: mods needs the kernel's symbols, and a kernel dump.
func TestModsUsage(t *testing.T) {
	vmcore, _, _, _ := prodPaths(t)
	_, errOut, code := run(t, "mods", vmcore)
	if code != ExitUsage || !strings.Contains(errOut, "mods needs the kernel's symbols: give vmlinux (--sym), --system-map or --debug-dir") {
		t.Errorf("no symbols: exit %d, %q", code, errOut)
	}
}

// TestInfoTaintingModules: info names the modules that taint the kernel.
func TestInfoTaintingModules(t *testing.T) {
	vmcore, sysmap, _, _ := prodPaths(t)
	out, _, code := run(t, "info", vmcore, "--system-map", sysmap)
	if code != ExitOK || !strings.Contains(out, "\ntainting: prodcrash(OE)\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	out, _, _ = run(t, "info", vmcore, "--system-map", sysmap, "-o", "json")
	if !strings.Contains(out, `"tainting_modules": [`+"\n"+`      "prodcrash(OE)"`) {
		t.Errorf("JSON:\n%s", out)
	}
	corpus.Checked(t, 2)
}

// TestBtModuleFiles shows what a user sees when a module's .ko is not in
// the --search folder, or the file there is not the module's: a warning
// each, and the module frames still named from the dump, as the kernel
// printed them.
func TestBtModuleFiles(t *testing.T) {
	vmcore, sysmap, _, mods := prodPaths(t)
	empty, wrong := t.TempDir(), t.TempDir()
	b, err := os.ReadFile(filepath.Join(mods, "virtio_ring.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wrong, "prodcrash.ko"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, warning string
	}{
		{empty, "warning: module prodcrash: no prodcrash.ko in " + empty + ": its frames are named from the kernel's symbol table in memory, without source lines\n"},
		{wrong, "warning: module prodcrash: " + filepath.Join(wrong, "prodcrash.ko") + " refused, using the symbols in memory: symbols: " +
			filepath.Join(wrong, "prodcrash.ko") + " is module virtio_ring, not the loaded module prodcrash\n"},
	} {
		out, errOut, _ := run(t, "bt", vmcore, "--system-map", sysmap, "--search", c.dir, "--cpu", "1")
		if !strings.Contains(errOut, c.warning) {
			t.Errorf("stderr:\n%s\nwant:\n%s", errOut, c.warning)
		}
		for _, l := range []string{"RIP: 0010:prod_spin_inner+0x4d/0x90 [prodcrash]\n", " prod_spin_outer+0x10/0x20 [prodcrash]\n", " prod_write+0xb1/0xd3 [prodcrash]\n"} {
			if !strings.Contains(out, l) && !strings.Contains(out, strings.TrimPrefix(l, "RIP: 0010:")) {
				t.Errorf("no %q in:\n%s", l, out)
			}
		}
		corpus.Checked(t, 1)
	}
}
