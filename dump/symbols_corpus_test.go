package dump

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
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
