package dump

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/symbols"
)

func TestUserCoreSymbolFilesFound(t *testing.T) {
	dir := corpus.Dir(t, "user")
	core := filepath.Join(dir, "b_abort", "O2cfi", "core")
	d, err := Open(core)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	set, warns, err := d.Symbols(SymbolOptions{
		Exe:        filepath.Join(filepath.Dir(core), "bin"),
		SearchDirs: []string{filepath.Join(dir, "lib")},
		Sysroot:    t.TempDir(), // nothing there: the search dir must be used
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %q", warns)
	}
	var got []string
	for _, f := range set.Modules() {
		got = append(got, filepath.Base(f.Path))
		if f.DebugPath != "" {
			got = append(got, filepath.Base(f.DebugPath)+"(attached)")
		}
		if strings.HasPrefix(filepath.Base(f.Path), "libc.so.6") && f.Bias%4096 != 0 {
			t.Errorf("%s bias %#x not page aligned", f.Path, f.Bias)
		}
	}
	sort.Strings(got)
	want := "[[vdso] bin ld-linux-x86-64.so.2 ld-linux-x86-64.so.2.debug(attached) libc.so.6 libc.so.6.debug(attached)]"
	if s := "[" + strings.Join(got, " ") + "]"; s != want {
		t.Errorf("modules %s, want %s", s, want)
	}
}

// TestUserCoreCrashPCSymbol checks that the crashing PC of each dynamic core
// resolves, through the found modules, to the function gdb names in frame 0.
func TestUserCoreCrashPCSymbol(t *testing.T) {
	dir := corpus.Dir(t, "user")
	for _, c := range []struct{ core, fn string }{
		{"a_deepchain/O2cfi", "f24"},
		{"b_abort/O2cfi", "__pthread_kill_implementation"},
		{"c_sighandler/O0fp", "h3"},
	} {
		core := filepath.Join(dir, c.core, "core")
		d, err := Open(core)
		if err != nil {
			t.Fatal(err)
		}
		set, _, err := d.Symbols(SymbolOptions{Exe: filepath.Join(dir, c.core, "bin"), SearchDirs: []string{filepath.Join(dir, "lib")}})
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
		pc, _ := d.Threads()[0].Regs.PC()
		s, ok := set.Symbol(pc)
		if !ok || s.Name != c.fn {
			t.Errorf("%s: pc %#x is %+v (%v), want %s", c.core, pc, s, ok, c.fn)
		}
	}
}

// TestUserCoreFilesOpenedOnce checks that Symbols keeps one descriptor per
// mapped file it found (the symbols and the core's file-backed memory read
// the same one) and one per debug file, and that Close closes them all.
func TestUserCoreFilesOpenedOnce(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	dir := corpus.Dir(t, "user")
	core := filepath.Join(dir, "b_abort", "O2cfi", "core")
	d, err := Open(core)
	if err != nil {
		t.Fatal(err)
	}
	before := fds()
	set, warns, err := d.Symbols(SymbolOptions{
		Exe:        filepath.Join(filepath.Dir(core), "bin"),
		SearchDirs: []string{filepath.Join(dir, "lib")},
		Sysroot:    t.TempDir(),
	})
	if err != nil || len(warns) != 0 {
		t.Fatalf("Symbols: %v %q", err, warns)
	}
	// bin, libc.so.6 and ld-linux-x86-64.so.2, and the two debug files.
	if n := fds() - before; n != 5 {
		t.Errorf("%d files open after Symbols, want 5", n)
	}
	// The executable's text is read from the file (the core has only its
	// first page), through the descriptor the File reads.
	var exe *symbols.File
	for _, f := range set.Modules() {
		if filepath.Base(f.Path) == "bin" {
			exe = f
		}
	}
	if exe == nil {
		t.Fatal("no bin")
	}
	text, ok := exe.Syms.ByName("main")
	if !ok {
		t.Fatal("no main")
	}
	want := exe.CodeAt(text.Addr)
	got := make([]byte, min(len(want), 16))
	if n, err := d.Memory().ReadAt(got, text.Addr); n != len(got) || !bytes.Equal(got, want[:len(got)]) {
		t.Errorf("main's code from the core: % x (%v), from the file: % x", got[:n], err, want[:len(got)])
	}
	d.Close()
	if n := fds() - before; n != -1 { // the core's own descriptor too
		t.Errorf("%d files open after Close, want -1 (the core's closed)", n)
	}
}
