package linux

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// prodModTruth is the part of the prod corpus's truth-dev.json the module
// tests read.
type prodModTruth struct {
	Captures []struct {
		Name    string `json:"name"`
		Modules []struct {
			Name    string `json:"name"`
			Size    uint64 `json:"size"`
			Address string `json:"address"`
		} `json:"modules"`
		CPUs []struct {
			CPU     int      `json:"cpu"`
			Printed []string `json:"printed"`
			Expect  []string `json:"expect"`
		} `json:"cpus"`
		Tasks []struct {
			PID     int      `json:"pid"`
			Comm    string   `json:"comm"`
			Printed []string `json:"printed"`
		} `json:"tasks"`
	} `json:"captures"`
}

func readProdModTruth(t *testing.T) (string, *prodModTruth) {
	t.Helper()
	dir := corpus.Dir(t, "prod")
	b, err := os.ReadFile(filepath.Join(dir, "truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr prodModTruth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Captures) == 0 {
		t.Fatal("truth-dev.json has no captures")
	}
	return dir, &tr
}

// prodSymbolModes are the ways a user may give the prod kernel's symbols:
// the debug vmlinux or only System.map, each with and without the
// modules' .ko files (found with --search, as SearchDirs).
func prodSymbolModes(dir string) map[string]dump.SymbolOptions {
	kd := filepath.Join(dir, "kernel")
	vmlinux := filepath.Join(kd, "vmlinux-6.1.0-47-cloud-amd64")
	sysmap := filepath.Join(kd, "System.map-6.1.0-47-cloud-amd64")
	mods := []string{filepath.Join(kd, "modules")}
	return map[string]dump.SymbolOptions{
		"vmlinux":        {Files: []string{vmlinux}},
		"vmlinux+ko":     {Files: []string{vmlinux}, SearchDirs: mods},
		"System.map":     {SystemMap: sysmap},
		"System.map+ko":  {SystemMap: sysmap, SearchDirs: mods},
		"System.map+ko2": {SystemMap: sysmap, Files: []string{filepath.Join(kd, "modules", "prodcrash.ko")}},
	}
}

// TestModulesProd lists the modules of both prod captures and compares
// them with what the running kernel's /proc/modules said (truth-dev.json:
// names, order, base, size), with vmlinux and with System.map only.
func TestModulesProd(t *testing.T) {
	dir, truth := readProdModTruth(t)
	modes := prodSymbolModes(dir)
	for _, c := range truth.Captures {
		for _, mode := range []string{"vmlinux", "System.map"} {
			t.Run(c.Name+"/"+mode, func(t *testing.T) {
				k := openWith(t, filepath.Join(dir, c.Name), modes[mode])
				mods, err := k.Modules()
				if err != nil {
					t.Fatal(err)
				}
				if len(mods) != len(c.Modules) || len(mods) == 0 {
					t.Fatalf("%d modules, /proc/modules had %d", len(mods), len(c.Modules))
				}
				corpus.Checked(t, len(mods))
				for i, want := range c.Modules {
					m := mods[i]
					if got := fmt.Sprintf("%s %#x %d", m.Name, m.Base, m.Size); got != fmt.Sprintf("%s %s %d", want.Name, want.Address, want.Size) {
						t.Errorf("module %d: %s, /proc/modules: %s %s %d", i, got, want.Name, want.Address, want.Size)
					}
					if m.State != "live" || m.InitBase != 0 || m.TextEnd <= m.Base || m.TextEnd > m.Base+m.Size {
						t.Errorf("%s: state %s, init %#x, text end %#x", m.Name, m.State, m.InitBase, m.TextEnd)
					}
					// prodcrash is out of tree and unsigned: O and E (bits 12
					// and 13), as "Tainted: G OE" says; the others are Debian's.
					wantTaint, wantLetters := uint64(0), ""
					if m.Name == "prodcrash" {
						wantTaint, wantLetters = 0x3000, "OE"
					}
					if m.Taints != wantTaint || m.TaintLetters != wantLetters {
						t.Errorf("%s: taints %#x %q, want %#x %q", m.Name, m.Taints, m.TaintLetters, wantTaint, wantLetters)
					}
					if m.ORC == nil || m.ORC.Len() < 10 || len(m.Symbols) < 10 || m.Sections[".text"] != m.Base {
						t.Errorf("%s: ORC %v, %d symbols, .text at %#x", m.Name, m.ORC != nil, len(m.Symbols), m.Sections[".text"])
					}
					if m.File != "" {
						t.Errorf("%s: file %s without any given", m.Name, m.File)
					}
				}
			})
		}
	}
}

// TestModulesProdMemory checks the kdump's modules against what crash
// 8.0.2 read from the same dump (../symbols/testdata/prodmods: sect_attrs
// and the in-memory kallsyms of every module, core_layout) and the ORC
// table's entry count (arch.num_orcs).
func TestModulesProdMemory(t *testing.T) {
	dir, _ := readProdModTruth(t)
	k := openWith(t, filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"), prodSymbolModes(dir)["System.map"])
	mods, err := k.Modules()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Module{}
	for _, m := range mods {
		byName[m.Name] = m
	}
	fh, err := os.Open("../symbols/testdata/prodmods/kdump-sysrqc.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var cur Module
	nsym, nsec := 0, 0
	sc := bufio.NewScanner(fh)
	num := func(s string) uint64 { v, _ := strconv.ParseUint(s, 0, 64); return v }
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "module":
			cur, nsym = byName[f[1]], 0
			if cur.Name == "" || cur.Base != num(f[2]) || cur.TextEnd != num(f[2])+num(f[3]) {
				t.Errorf("module %s base %s text_size %s: got %q base %#x text end %#x", f[1], f[2], f[3], cur.Name, cur.Base, cur.TextEnd)
			}
		case "section":
			if a, ok := cur.Sections[f[1]]; !ok || a != num(f[2]) {
				t.Errorf("%s section %s at %s: got %#x %v", cur.Name, f[1], f[2], a, ok)
			}
			nsec++
		case "sym":
			nsym++ // crash's list skips the null symbol 0
			if nsym >= len(cur.Symbols) {
				t.Errorf("%s: symbol %d %s beyond the %d read", cur.Name, nsym, f[5], len(cur.Symbols))
				continue
			}
			s := cur.Symbols[nsym]
			want := symbols.ModuleSymbol{Name: f[5], Value: num(f[1]), Size: num(f[2]), Section: uint16(num(f[3])), Type: f[4][0]}
			if s != want {
				t.Errorf("%s symbol %d: %+v, crash %+v", cur.Name, nsym, s, want)
			}
		}
	}
	// Every code byte is named from memory as find_kallsyms_symbol names it.
	nb := 0
	for _, m := range mods {
		tab := symbols.NewModuleTable(m.Name, m.Symbols, []uint64{m.TextEnd})
		for pc := m.Base; pc < m.TextEnd; pc++ {
			want, size := kallsymsRef(m, pc)
			got, ok := tab.LookupText(pc)
			nb++
			if got.Name != want.Name || got.Addr != want.Value || got.Size != size || got.Module != m.Name || ok != (want.Name != "") {
				t.Fatalf("%#x: %+v %v, kernel %s+%#x/%#x", pc, got, ok, want.Name, pc-want.Value, size)
			}
		}
	}
	corpus.Checked(t, nsec+nsym+nb)
	if nsec < 100 {
		t.Errorf("compared only %d sections", nsec)
	}
	if p := byName["prodcrash"]; p.ORC == nil || p.ORC.Len() != 49 {
		t.Errorf("prodcrash ORC: %v entries, arch.num_orcs is 49", p.ORC)
	}
}

// frameText renders a frame the way the kernel prints it ("func+0x1c/0x80
// [mod]"), the interrupted ones as their RIP: line.
func frameText(f unwind.Frame) string {
	s := fmt.Sprintf("%s+%#x/%#x", f.Sym.Name, f.PC-f.Sym.Addr, f.Sym.Size)
	if f.Sym.Module != "" && !strings.Contains(f.Sym.Module, "/") {
		s += " [" + f.Sym.Module + "]"
	}
	return s
}

// TestModuleFramesProd: the module frames of CPU 1 in the kdump, with every
// way of giving symbols (vmlinux or System.map, with or without the .ko
// files), are the module lines the kernel printed (truth-dev.json),
// offsets, sizes and [module] included, found and reliable; with the .ko
// they also get prodcrash.c lines.
func TestModuleFramesProd(t *testing.T) {
	dir, truth := readProdModTruth(t)
	c := truth.Captures[0]
	if c.Name != "kdump-sysrqc/vmcore.kdump-lzo" {
		t.Fatalf("first capture %s", c.Name)
	}
	var want []string
	for _, cpu := range c.CPUs {
		if cpu.CPU != 1 {
			continue
		}
		for _, l := range cpu.Printed {
			if strings.HasSuffix(l, "]") {
				want = append(want, strings.TrimPrefix(l, "RIP: 0010:"))
			}
		}
	}
	if len(want) != 3 {
		t.Fatalf("truth: CPU 1 has %d module frames: %v", len(want), want)
	}
	var wantAll []string // every frame of CPU 1, as the truth expects them
	for _, cpu := range c.CPUs {
		if cpu.CPU == 1 {
			for _, l := range cpu.Expect {
				if !strings.HasPrefix(l, "<") {
					wantAll = append(wantAll, strings.TrimPrefix(l, "RIP: 0010:"))
				}
			}
		}
	}
	for mode, opts := range prodSymbolModes(dir) {
		t.Run(mode, func(t *testing.T) {
			k := openWith(t, filepath.Join(dir, c.Name), opts)
			i := -1
			for j, th := range k.CPUs() {
				if th.CPU == 1 {
					i = j
				}
			}
			tr, err := k.UnwindCPU(i, unwind.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			withKo := strings.Contains(mode, "+ko")
			for _, f := range tr.Frames {
				if f.Sym.Module == "" || strings.Contains(f.Sym.Module, "/") {
					continue
				}
				got = append(got, frameText(f))
				// Found exactly: with the .ko's CFI, or with the module's
				// ORC from memory.
				if !f.Reliable {
					t.Errorf("%s: not reliable (%s)", frameText(f), f.Method)
				}
				lines := k.Symbols().Lines(f.LookupPC, nil)
				if withKo != (len(lines) > 0 && filepath.Base(lines[len(lines)-1].File) == "prodcrash.c") {
					t.Errorf("%s: lines %+v (with .ko: %v)", frameText(f), lines, withKo)
				}
			}
			if all := traceNames(tr); strings.Join(all, " ") != strings.Join(wantAll, " ") {
				t.Errorf("CPU 1: %v, the truth expects %v", all, wantAll)
			}
			corpus.Checked(t, len(got))
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("module frames:\n%s\nthe kernel printed:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			mods, _ := k.Modules()
			for _, m := range mods {
				if withKo != (m.File != "") && (mode != "System.map+ko2" || m.Name == "prodcrash") {
					t.Errorf("%s: file %q", m.Name, m.File)
				}
			}
			if w := k.Warnings(); len(w) > 0 && mode != "System.map+ko2" {
				t.Errorf("warnings: %q", w)
			}
		})
	}
}

// TestModuleFileMissingOrWrong shows the messages a user gets when a
// module's .ko is not where they said (--search), and when the file found
// under the module's name is not the one the module was loaded from.
func TestModuleFileMissingOrWrong(t *testing.T) {
	dir, _ := readProdModTruth(t)
	empty := t.TempDir()
	wrong := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, "kernel", "modules", "virtio.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wrong, "prodcrash.ko"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sysmap := filepath.Join(dir, "kernel", "System.map-6.1.0-47-cloud-amd64")
	vmcore := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")

	k := openWith(t, vmcore, dump.SymbolOptions{SystemMap: sysmap, SearchDirs: []string{empty}})
	want := fmt.Sprintf("module prodcrash: no prodcrash.ko in %s: its frames are named from the kernel's symbol table in memory, without source lines", empty)
	if w := k.Warnings(); len(w) != 8 || !strings.Contains(strings.Join(w, "\n"), want) {
		t.Errorf("missing files: %q, want 8 like %q", w, want)
	}

	k = openWith(t, vmcore, dump.SymbolOptions{SystemMap: sysmap, SearchDirs: []string{wrong}})
	want = fmt.Sprintf("module prodcrash: %s refused, using the symbols in memory: symbols: %[1]s is module virtio, not the loaded module prodcrash", filepath.Join(wrong, "prodcrash.ko"))
	if w := strings.Join(k.Warnings(), "\n"); !strings.Contains(w, want) {
		t.Errorf("wrong file: %q, want %q", w, want)
	}
	// The frames are still named, from memory.
	mods, _ := k.Modules()
	for _, m := range mods {
		if m.File != "" {
			t.Errorf("%s: accepted %s", m.Name, m.File)
		}
	}
	corpus.Checked(t, 2)
	if s, ok := k.Symbols().Symbol(0xffffffffc05ac11d); !ok || s.Name != "prod_spin_inner" || s.Module != "prodcrash" {
		t.Errorf("prod_spin_inner from memory: %+v", s)
	}
}

// kallsymsRef is the kernel's find_kallsyms_symbol (kernel/module/kallsyms.c,
// 6.1) for a core address of m.
func kallsymsRef(m Module, addr uint64) (symbols.ModuleSymbol, uint64) {
	nextval := m.TextEnd
	best, bestval := -1, uint64(0)
	for i, s := range m.Symbols {
		if i == 0 || s.Section == 0 || s.Name == "" || strings.HasPrefix(s.Name, ".L") || strings.HasPrefix(s.Name, "$") {
			continue
		}
		if s.Value <= addr && s.Value > bestval {
			best, bestval = i, s.Value
		}
		if s.Value > addr && s.Value < nextval {
			nextval = s.Value
		}
	}
	if best < 0 {
		return symbols.ModuleSymbol{}, 0
	}
	return m.Symbols[best], nextval - bestval
}

// TestModuleTasksProd: the prodsleep kthread (prod_thread → prod_sleep_outer
// → prod_sleep_inner → schedule_timeout, in module prodcrash) of both prod
// captures, with every way of giving symbols, prints what the kernel's
// sysrq-t printed for it, line for line with offsets, sizes and
// [prodcrash], every frame found and reliable.
func TestModuleTasksProd(t *testing.T) {
	dir, truth := readProdModTruth(t)
	for _, c := range truth.Captures {
		var want []string
		pid := 0
		for _, tk := range c.Tasks {
			if tk.Comm == "prodsleep" {
				pid = tk.PID
				for _, l := range tk.Printed {
					if !strings.HasPrefix(l, "<") {
						want = append(want, l)
					}
				}
			}
		}
		if pid == 0 || len(want) < 5 {
			t.Fatalf("%s: no prodsleep task in the truth", c.Name)
		}
		for mode, opts := range prodSymbolModes(dir) {
			t.Run(c.Name+"/"+mode, func(t *testing.T) {
				k := openWith(t, filepath.Join(dir, c.Name), opts)
				tasks, err := k.Tasks()
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, tk := range tasks {
					if tk.PID != pid {
						continue
					}
					tr, err := k.UnwindTask(tk, unwind.Options{})
					if err != nil {
						t.Fatal(err)
					}
					for _, f := range tr.Frames {
						if f.Kind == unwind.KindScan || f.Inlined {
							continue
						}
						got = append(got, frameText(f))
					}
					if !tr.Reliable {
						t.Errorf("trace not reliable: %s", tr.StopReason)
					}
				}
				corpus.Checked(t, len(got))
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("pid %d:\n%s\nthe kernel printed:\n%s", pid, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}

// TestModuleDebugDirProd: --debug-dir DIR laid out as Debian's -dbg
// package installs it (boot/vmlinux-RELEASE,
// lib/modules/RELEASE/kernel/.../NAME.ko) gives the kernel and every
// module's file, each accepted by its symbols.
func TestModuleDebugDirProd(t *testing.T) {
	dir, _ := readProdModTruth(t)
	const rel = "6.1.0-47-cloud-amd64"
	dbg := t.TempDir()
	link := func(src, dst string) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(dir, "kernel", "vmlinux-"+rel), filepath.Join(dbg, "boot", "vmlinux-"+rel))
	kos, _ := filepath.Glob(filepath.Join(dir, "kernel", "modules", "*.ko"))
	for _, ko := range kos {
		sub := "drivers/virtio"
		if strings.Contains(ko, "prodcrash") {
			sub = "extra"
		}
		link(ko, filepath.Join(dbg, "lib", "modules", rel, "kernel", sub, strings.ReplaceAll(filepath.Base(ko), "_", "-")))
	}
	k := openWith(t, filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"), dump.SymbolOptions{DebugDirs: []string{dbg}})
	mods, err := k.Modules()
	if err != nil || len(mods) != 8 {
		t.Fatalf("%d modules, %v", len(mods), err)
	}
	for _, m := range mods {
		if !strings.HasPrefix(m.File, filepath.Join(dbg, "lib", "modules", rel)) {
			t.Errorf("%s: file %q", m.Name, m.File)
		}
	}
	if w := k.Warnings(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
	lines := k.Symbols().Lines(0xffffffffc05ac11d, nil)
	if len(lines) == 0 || filepath.Base(lines[len(lines)-1].File) != "prodcrash.c" || lines[len(lines)-1].Line != 70 {
		t.Errorf("prod_spin_inner+0x4d: %+v", lines)
	}
	corpus.Checked(t, len(mods))
}
