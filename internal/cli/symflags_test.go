package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The symbol files named on the command line are checked before use: a
// missing one is an error naming it, a FIFO is refused without blocking,
// a System.map given to --sym is used as one (and an ELF file given to
// --system-map as --sym), and a file that is neither says what it is.
func TestSymbolFlagsChecked(t *testing.T) {
	dir := t.TempDir()
	smap := filepath.Join(dir, "System.map")
	if err := os.WriteFile(smap, []byte("ffffffff81000000 T _text\nffffffff81000010 T startup_64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kallsyms := filepath.Join(dir, "ksyms")
	if err := os.WriteFile(kallsyms, []byte("ffffffffc0000000 t foo\t[mod]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(junk, []byte("hello world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	const elfFile = "../../symbols/testdata/prog"
	for _, c := range []struct {
		in      symbolFlags
		kernel  bool
		err     string
		syms    []string
		sysMap  string
		isUsage bool
	}{
		{in: symbolFlags{syms: []string{filepath.Join(dir, "vmlinux")}}, kernel: true, err: "vmlinux: no such file"},
		{in: symbolFlags{syms: []string{fifo}}, kernel: true, err: "not a regular file"},
		{in: symbolFlags{systemMap: fifo}, kernel: true, err: "not a regular file"},
		{in: symbolFlags{syms: []string{smap}}, kernel: true, sysMap: smap},
		{in: symbolFlags{syms: []string{kallsyms}}, kernel: true, sysMap: kallsyms},
		{in: symbolFlags{systemMap: elfFile}, kernel: true, syms: []string{elfFile}},
		{in: symbolFlags{syms: []string{elfFile}, systemMap: smap}, kernel: true, syms: []string{elfFile}, sysMap: smap},
		{in: symbolFlags{syms: []string{smap}, systemMap: smap}, kernel: true, err: "was given too", isUsage: true},
		{in: symbolFlags{syms: []string{junk}}, kernel: true, err: `neither an ELF file nor a System.map: text starting "hello world"`, isUsage: true},
		{in: symbolFlags{systemMap: junk}, kernel: true, err: "is not a System.map", isUsage: true},
		{in: symbolFlags{syms: []string{smap}}, err: "a user core needs ELF files", isUsage: true},
		{in: symbolFlags{systemMap: smap}, err: "for kernel dumps", isUsage: true},
	} {
		sf := c.in
		err := sf.check(c.kernel)
		if c.err != "" {
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), c.err) || (c.isUsage != errors.As(err, &ue)) {
				t.Errorf("%+v: err %v, want %q (usage %v)", c.in, err, c.err, c.isUsage)
			}
			continue
		}
		if err != nil || strings.Join(sf.syms, ",") != strings.Join(c.syms, ",") || sf.systemMap != c.sysMap {
			t.Errorf("%+v: err %v, syms %q system map %q; want %q %q", c.in, err, sf.syms, sf.systemMap, c.syms, c.sysMap)
		}
	}
}

// A warning that joins several errors prints a line for each, escaped.
func TestWarnLines(t *testing.T) {
	var out bytes.Buffer
	warn(&IOStreams{ErrOut: &out}, "modules: a\nno BTF \x1b[2J\n")
	if got, want := out.String(), "warning: modules: a\nwarning: no BTF \\x1b[2J\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
