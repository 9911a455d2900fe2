package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

type infoJSON struct {
	Version int `json:"version"`
	Dump    struct {
		Kind        string  `json:"kind"`
		Format      string  `json:"format"`
		Compression string  `json:"compression"`
		Release     string  `json:"release"`
		Taint       string  `json:"taint"`
		CrashTime   string  `json:"crash_time"`
		LogTime     float64 `json:"log_time"`
		Panic       string  `json:"panic"`
		Comm        string  `json:"comm"`
		Exe         string  `json:"exe"`
		Signal      int     `json:"signal"`
		SigName     string  `json:"signal_name"`
		CodeName    string  `json:"signal_code_name"`
		Auxv        []struct {
			Type, Value string
		} `json:"auxv"`
		Crashed int    `json:"crashed"`
		Reason  string `json:"reason"`
		Threads []struct {
			TID     int    `json:"tid"`
			CPU     int    `json:"cpu"`
			Task    string `json:"task"`
			Crashed bool   `json:"crashed"`
		} `json:"threads"`
	} `json:"dump"`
}

func runInfo(t *testing.T, args ...string) (infoJSON, string) {
	t.Helper()
	out, stderr, code := run(t, append([]string{"info", "-o", "json"}, args...)...)
	if code != ExitOK {
		t.Fatalf("info %v: exit %d: %s", args, code, stderr)
	}
	var doc infoJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	text, stderr, code := run(t, append([]string{"info"}, args...)...)
	if code != ExitOK || !strings.HasPrefix(text, "file:") {
		t.Fatalf("info %v text: exit %d: %s%s", args, code, text, stderr)
	}
	return doc, text
}

// TestInfoKernelCorpus runs info, text and JSON, on every vmcore of both
// kernel corpora: the kernel dumps (ELF physical and paging) and the
// kdump files in each compression.
func TestInfoKernelCorpus(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	truth := loadToolTruth(t)
	type file struct{ name, path, format, compression string }
	var files []file
	for key := range truth {
		sc, name, _ := strings.Cut(key, "/")
		files = append(files, file{name, corpus.Vmcore(t, sc, name), "elf", ""})
	}
	if ddir := corpus.Dir(t, "kdump"); ddir != "" {
		for _, sc := range []string{"idle", "nmibt"} {
			files = append(files, file{"kdump/" + sc, filepath.Join(ddir, "fp", sc, sc+".vmcore"), "elf", ""})
			for _, c := range []string{"zlib", "lzo", "snappy"} {
				files = append(files, file{"kdump/" + sc + "." + c, filepath.Join(ddir, "fp", sc, sc+".kdump-"+c), "kdump", c})
			}
		}
	}
	crashed := map[string]string{"oops-die": "die_owner", "panic-entry": "stopped in panic()"}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			doc, text := runInfo(t, f.path, "--sym", vmlinux)
			d := doc.Dump
			if doc.Version != JSONVersion || d.Kind != "kernel-vmcore" || d.Format != f.format || d.Compression != f.compression ||
				d.Release != "6.1.192" || d.Taint != "Not tainted" || d.CrashTime == "" || d.LogTime <= 0 || len(d.Threads) != 2 {
				t.Errorf("info: %+v", d)
			}
			for _, th := range d.Threads {
				if th.Task == "" || th.CPU < 0 {
					t.Errorf("cpu %d has no task: %+v", th.CPU, th)
				}
			}
			if why, ok := crashed[f.name]; ok {
				if d.Crashed != 0 || !strings.Contains(d.Reason, why) || !strings.Contains(text, "<- crashed: ") {
					t.Errorf("crashed %d (%q), want CPU 0 (%s)", d.Crashed, d.Reason, why)
				}
			} else if d.Crashed != -1 || !strings.Contains(text, "no CPU is known to have crashed") {
				t.Errorf("crashed %d (%q) on a dump with no crash", d.Crashed, d.Reason)
			}
			if f.name == "oops-die" && !strings.Contains(text, "panic:    BUG: kernel NULL pointer dereference") {
				t.Errorf("no crash message:\n%s", text)
			}
			// Without symbols info still says what the dump is.
			bare, _ := runInfo(t, f.path)
			if bare.Dump.Release != "6.1.192" || len(bare.Dump.Threads) != 2 || bare.Dump.LogTime <= 0 {
				t.Errorf("info without symbols: %+v", bare.Dump)
			}
		})
	}
}

// userCases are the user corpus's programs with the signal that killed
// them (user/MANIFEST.md).
var userCases = map[string]string{
	"a_deepchain": "SIGSEGV", "b_abort": "SIGABRT", "c_sighandler": "SIGSEGV", "f_nullfnptr": "SIGSEGV",
	"g_entry": "SIGSEGV", "g_push": "SIGSEGV", "h_threads": "SIGSEGV",
}

// TestInfoUserCorpus runs info on every user core.
func TestInfoUserCorpus(t *testing.T) {
	dir := corpus.Dir(t, "user")
	cores, _ := filepath.Glob(filepath.Join(dir, "*", "*", "core"))
	if len(cores) == 0 {
		t.Fatalf("no user cores in %s", dir)
	}
	for _, core := range cores {
		rel, _ := filepath.Rel(dir, filepath.Dir(core))
		t.Run(rel, func(t *testing.T) {
			doc, text := runInfo(t, core)
			d := doc.Dump
			sig := userCases[strings.Split(rel, "/")[0]]
			if d.Kind != "user-core" || d.Comm != "bin" || d.Exe != "/corpus/user/"+rel+"/bin" || d.SigName != sig ||
				d.Crashed != 0 || !d.Threads[0].Crashed || !strings.Contains(d.Reason, "NT_SIGINFO: "+sig) {
				t.Errorf("info: %+v", d)
			}
			if sig == "SIGSEGV" && (d.CodeName != "SEGV_MAPERR" && d.CodeName != "SEGV_ACCERR") {
				t.Errorf("si_code %q", d.CodeName)
			}
			if sig == "SIGABRT" && (d.CodeName != "SI_TKILL" || !strings.Contains(text, "from pid ")) {
				t.Errorf("abort: si_code %q\n%s", d.CodeName, text)
			}
			want := 1
			if strings.HasPrefix(rel, "h_threads") {
				want = 5
			}
			entry := false
			for _, a := range d.Auxv {
				entry = entry || a.Type == "AT_ENTRY"
			}
			if len(d.Threads) != want || !entry {
				t.Errorf("%d threads, AT_ENTRY %v", len(d.Threads), entry)
			}
		})
	}
}

// sysroot builds a root directory holding the user corpus's files at the
// paths the cores recorded (NT_FILE): the program at
// /corpus/user/CASE/VARIANT/bin and glibc in /usr/lib/x86_64-linux-gnu,
// each with its separate debug file beside it.
func sysroot(t testing.TB, dir string) string {
	root := t.TempDir()
	link := func(src, dst string) {
		dst = filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	link(dir, "corpus/user")
	lib := filepath.Join(dir, "lib")
	for _, f := range []string{"libc.so.6", "libc.so.6.debug", "ld-linux-x86-64.so.2", "ld-linux-x86-64.so.2.debug"} {
		link(filepath.Join(lib, f), "usr/lib/x86_64-linux-gnu/"+f)
	}
	return root
}

var userFrameRE = regexp.MustCompile(`^#\d+\s+(?:\? )?(?:0x[0-9a-f]+ in |\(inlined\) )([^\s+]+)`)

// TestBtUserCoreSysroot unwinds the signal-handler core with its files
// found only by the paths recorded in NT_FILE under --sysroot: the
// program's and libc's symbols (libc's from its separate debug file), the
// kernel's signal frame between the handler and the interrupted code, and
// the threads of h_threads each with its own chain.
func TestBtUserCoreSysroot(t *testing.T) {
	dir := corpus.Dir(t, "user")
	root := sysroot(t, dir)
	for _, c := range []struct {
		core  string
		want  [][]string // per thread, the program's functions innermost first
		libc  []string   // libc functions that must show
		frame string     // a line that must appear
	}{
		{"c_sighandler/O2cfi", [][]string{{"h3", "h2", "h1", "on_alarm", "__restore_rt", "spin3", "spin2", "spin1", "main"}},
			[]string{"__restore_rt", "__libc_start_call_main"}, "    <signal handler called>"},
		{"c_sighandler/O0fp", [][]string{{"h3", "h2", "h1", "on_alarm", "__restore_rt", "spin3", "spin2", "spin1", "main"}},
			[]string{"__restore_rt"}, "    <signal handler called>"},
		{"b_abort/O2cfi", [][]string{{"__pthread_kill_implementation", "raise", "abort", "b4", "b3", "b2", "b1", "main"}},
			[]string{"abort"}, "crashed, signal 6 (SIGABRT)"},
		{"h_threads/O2cfi", [][]string{{"td3", "td2", "td1", "td", "start_thread"}, {"tc3", "tc2", "tc1", "tc", "start_thread"},
			{"ta3", "ta2", "ta1", "ta", "start_thread"}, {"tb3", "tb2", "tb1", "tb", "start_thread"}, {"main"}},
			[]string{"start_thread"}, "crashed, signal 11 (SIGSEGV)"},
	} {
		t.Run(c.core, func(t *testing.T) {
			out, stderr, code := run(t, "bt", filepath.Join(dir, c.core, "core"), "--sysroot", root)
			if code != ExitOK {
				t.Fatalf("exit %d: %s\n%s", code, stderr, out)
			}
			if strings.Contains(stderr, "warning") {
				t.Errorf("warnings: %s", stderr)
			}
			if !strings.Contains(out, "\n"+c.frame+"\n") && !strings.Contains(out, c.frame) {
				t.Errorf("no %q line:\n%s", c.frame, out)
			}
			threads := strings.Split(out, "\nThread ")
			if len(threads) != len(c.want) {
				t.Fatalf("%d threads, want %d:\n%s", len(threads), len(c.want), out)
			}
			for i, th := range threads {
				var got []string
				for _, l := range strings.Split(th, "\n") {
					if m := userFrameRE.FindStringSubmatch(l); m != nil {
						got = append(got, strings.TrimPrefix(m[1], "__GI_"))
					}
				}
				if !subsequence(c.want[i], got) {
					t.Errorf("thread %d: frames %v, want in order %v", i, got, c.want[i])
				}
			}
			for _, fn := range c.libc {
				if !strings.Contains(out, " "+fn) || !strings.Contains(out, "(libc.so.6)") {
					t.Errorf("no libc frame %s:\n%s", fn, out)
				}
			}
			if !strings.Contains(out, "at ../") {
				t.Errorf("no source lines from libc's debug file:\n%s", out)
			}
		})
	}
}

// subsequence reports whether want appears in got in order.
func subsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestEmulatorSnapshotBt writes the demo scenario's snapshot with
// `emulate` and reads it back with `bt` and `info`, the path any core
// takes, with no --sym: the fixture kernel named in the snapshot's note
// is found by its build id. The trace equals the golden one that
// internal/verify keeps for that snapshot.
func TestEmulatorSnapshotBt(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := run(t, "emulate", "../../fixtures/scenarios/demo.scenario", "-o", dir, "-q"); code != ExitOK {
		t.Fatalf("emulate: exit %d: %s", code, stderr)
	}
	core := filepath.Join(dir, "db-nmi-irq-task.core")
	out, stderr, code := run(t, "bt", core)
	if code != ExitOK {
		t.Fatalf("bt: exit %d: %s\n%s", code, stderr, out)
	}
	want, err := os.ReadFile("../../fixtures/golden/demo/db-nmi-irq-task.txt")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("bt of the snapshot differs from the golden trace:\n%s", out)
	}
	with, _, _ := run(t, "bt", core, "--sym", "../../fixtures/kernel/build/kernel-fp.elf")
	if with != out {
		t.Errorf("bt with --sym differs from bt finding the kernel itself")
	}
	doc, _ := runInfo(t, core)
	if doc.Dump.Kind != "emulator" || doc.Dump.Crashed != 0 || len(doc.Dump.Threads) == 0 {
		t.Errorf("info: %+v", doc.Dump)
	}
	// The wrong kernel is flagged, by build id.
	if _, stderr, _ := run(t, "bt", core, "--sym", "../../fixtures/kernel/build/kernel-nofp.elf"); !strings.Contains(stderr, "build id of the snapshot's kernel") {
		t.Errorf("bt with the other kernel does not warn: %s", stderr)
	}
}

// TestBtUserCoreFileOptions: the three ways of pointing bt at a core's
// files (--sysroot with the recorded paths, --exe with --search DIR, --sym
// for each file, matched by build id) give the same trace.
func TestBtUserCoreFileOptions(t *testing.T) {
	dir := corpus.Dir(t, "user")
	root := sysroot(t, dir)
	for _, c := range []string{"c_sighandler/O2cfi", "f_nullfnptr/O2nodbg", "h_threads/static"} {
		t.Run(c, func(t *testing.T) {
			core := filepath.Join(dir, c, "core")
			bin, lib := filepath.Join(dir, c, "bin"), filepath.Join(dir, "lib")
			var outs []string
			for _, args := range [][]string{
				{"--sysroot", root},
				{"--exe", bin, "--search", lib},
				{"--sym", bin, "--sym", filepath.Join(lib, "libc.so.6"), "--sym", filepath.Join(lib, "ld-linux-x86-64.so.2"), "--search", lib},
			} {
				out, stderr, code := run(t, append([]string{"bt", core}, args...)...)
				if code != ExitOK || strings.Contains(stderr, "warning") {
					t.Fatalf("%v: exit %d: %s", args, code, stderr)
				}
				outs = append(outs, out)
			}
			if outs[0] != outs[1] || outs[0] != outs[2] {
				t.Errorf("the traces differ:\n--sysroot:\n%s\n--exe/--search:\n%s\n--sym:\n%s", outs[0], outs[1], outs[2])
			}
		})
	}
}

// TestBtSystemMapOnly: with System.map and no vmlinux (no CFI, no DWARF,
// no text file) the kernel's code is read from the dump itself, and every
// CPU of every capture unwinds through the same functions as with
// vmlinux. Frames the walk cannot prove without CFI (after a .cold
// fragment, in freed .init.text) may be marked "? ", never dropped.
func TestBtSystemMapOnly(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux, sysmap := filepath.Join(kdir, "fp", "vmlinux"), filepath.Join(kdir, "fp", "System.map")
	for key := range loadToolTruth(t) {
		sc, name, _ := strings.Cut(key, "/")
		t.Run(name, func(t *testing.T) {
			core := corpus.Vmcore(t, sc, name)
			chains := func(args ...string) map[int]string {
				out, stderr, code := run(t, append([]string{"bt", core, "-o", "json"}, args...)...)
				if code != ExitOK && code != ExitPartial { // printed; "? " frames make exit 3
					t.Fatalf("%v: exit %d: %s", args, code, stderr)
				}
				var doc btJSON
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatal(err)
				}
				m := map[int]string{}
				for _, th := range doc.Threads {
					var fs []string
					for _, f := range th.Frames {
						if !f.Inlined {
							fs = append(fs, f.Symbol+"@"+f.PC)
						}
					}
					m[th.CPU] = strings.Join(fs, " ")
				}
				return m
			}
			want, got := chains("--sym", vmlinux), chains("--system-map", sysmap)
			for cpu, w := range want {
				if got[cpu] != w {
					t.Errorf("cpu %d:\n System.map %s\n vmlinux    %s", cpu, got[cpu], w)
				}
			}
		})
	}
}
