package symbols

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDebugLinkAndFind(t *testing.T) {
	lib := filepath.Join(corpus.Dir(t, "user"), "lib")
	libc := filepath.Join(lib, "libc.so.6")
	f, err := Open(libc, 0x7f0000000000)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name, crc, ok := f.DebugLink()
	if !ok || name != "ac61ec5a8eb1396f9fbd350e3169a558528a40.debug" || crc == 0 {
		t.Errorf("DebugLink: %q %#x %v", name, crc, ok)
	}
	// The CRC is the debug file's, as shipped.
	if fh, err := os.Open(libc + ".debug"); err == nil {
		got, err := crcOf(fh)
		fh.Close()
		if err != nil || got != crc {
			t.Errorf("CRC of libc.so.6.debug %#x (%v), .gnu_debuglink %#x", got, err, crc)
		}
	}
	// Beside the library, as <name>.debug.
	if got, ok := FindDebugFile(f, nil); !ok || got != libc+".debug" {
		t.Errorf("FindDebugFile(nil) = %q, %v", got, ok)
	}
	// By build id, in a .build-id tree.
	tmp := t.TempDir()
	byID := filepath.Join(tmp, "debug", ".build-id", "93", "ac61ec5a8eb1396f9fbd350e3169a558528a40.debug")
	copyFile(t, libc+".debug", byID)
	main := filepath.Join(tmp, "lib", "libc.so.6")
	copyFile(t, libc, main)
	g, err := Open(main, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got, ok := FindDebugFile(g, []string{filepath.Join(tmp, "debug")}); !ok || got != byID {
		t.Errorf("FindDebugFile(build-id) = %q, %v", got, ok)
	}
	// By debuglink name, in the library's .debug directory.
	link := filepath.Join(tmp, "lib", ".debug", name)
	copyFile(t, libc+".debug", link)
	if got, ok := FindDebugFile(g, nil); !ok || got != link {
		t.Errorf("FindDebugFile(.debug) = %q, %v", got, ok)
	}
	// A wrong file under the right name is refused, by build id.
	wrong := filepath.Join(tmp, "other")
	copyFile(t, filepath.Join(lib, "ld-linux-x86-64.so.2.debug"), filepath.Join(wrong, name))
	os.Remove(link)
	if got, ok := FindDebugFile(g, []string{wrong}); ok {
		t.Errorf("FindDebugFile found the wrong file %q", got)
	}
	if err := g.AttachDebug(filepath.Join(wrong, name)); err == nil {
		t.Error("AttachDebug accepted ld-linux's debug file for libc")
	}
	// Nothing to find.
	if got, ok := FindDebugFile(g, []string{filepath.Join(tmp, "none")}); ok {
		t.Errorf("FindDebugFile found %q in an empty tree", got)
	}
}

func TestAttachDebugLibc(t *testing.T) {
	lib := filepath.Join(corpus.Dir(t, "user"), "lib")
	libc := filepath.Join(lib, "libc.so.6")
	const bias = 0x7ffff7d80000
	f, err := Open(libc, bias)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.Syms.ByName("__libc_start_call_main"); ok {
		t.Fatal("stripped libc has __libc_start_call_main already")
	}
	nStripped := f.Syms.Len()
	dbgPath, ok := FindDebugFile(f, nil)
	if !ok {
		t.Fatal("no debug file")
	}
	if err := f.AttachDebug(dbgPath); err != nil {
		t.Fatal(err)
	}
	if f.DebugPath != dbgPath {
		t.Errorf("DebugPath %q", f.DebugPath)
	}
	t.Logf("%d symbols stripped, %d with the debug file", nStripped, f.Syms.Len())
	// The debug file alone, the way it had to be opened before.
	d, err := Open(dbgPath, bias)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	start, ok := f.Syms.ByName("__libc_start_call_main")
	if !ok || start.Size == 0 {
		t.Fatalf("__libc_start_call_main: %+v %v", start, ok)
	}
	pc := start.Addr + start.Size/2
	sym, ok := f.Syms.Lookup(pc)
	if !ok || sym.Name != "__libc_start_call_main" || sym.Module != libc {
		t.Errorf("Lookup(%#x) = %+v, want __libc_start_call_main in %s", pc, sym, libc)
	}
	var set Set
	set.Add(f)
	if s, ok := set.Symbol(pc); !ok || s != sym {
		t.Errorf("Set.Symbol = %+v", s)
	}
	lines := set.Lines(pc, nil)
	// gdb's "info line" and llvm-addr2line agree (binutils addr2line 2.40
	// names libc-start.c, the file that includes the header).
	if len(lines) != 1 || lines[0].Function != "__libc_start_call_main" ||
		!strings.HasSuffix(lines[0].File, "sysdeps/nptl/libc_start_call_main.h") || lines[0].Line != 55 {
		t.Errorf("Lines(%#x) = %+v", pc, lines)
	}
	t.Logf("%#x: %+v", pc, lines)
	if got := d.Lines(pc, nil); len(got) != len(lines) || (len(got) > 0 && got[0] != lines[0]) {
		t.Errorf("debug file alone: %+v, attached: %+v", got, lines)
	}
	// CFI from the main file's .eh_frame (the debug file's is NOBITS), code
	// from the main file's text.
	var row CFIRow
	if err := f.FindCFI(pc, &row); err != nil {
		t.Errorf("FindCFI: %v", err)
	}
	if err := d.FindCFI(pc, &row); !errors.Is(err, ErrNoFDE) {
		t.Errorf("debug file alone: FindCFI: %v, want ErrNoFDE", err)
	}
	if len(f.CodeAt(pc)) == 0 {
		t.Error("no code at pc")
	}
	// Every text symbol of the debug file symbolizes the same (but for
	// Module) in the attached file.
	n, bad := 0, 0
	for i := 0; i < d.Syms.Len(); i++ {
		ds := d.Syms.At(i)
		if !f.IsText(ds.Addr) || ds.Size == 0 {
			continue
		}
		want, _ := d.Syms.Lookup(ds.Addr)
		got, ok := f.Syms.Lookup(ds.Addr)
		n++
		if !ok || got.Addr != want.Addr || got.Size != want.Size || got.Module != libc {
			if bad++; bad <= 10 {
				t.Errorf("%#x: attached %+v, debug file %+v", ds.Addr, got, want)
			}
		}
	}
	t.Logf("%d text symbols compared, %d differ", n, bad)
}

// TestOpenWithDebug checks that OpenWithDebug gives the File that Open
// and AttachDebug of the debug file FindDebugFile finds give, symbol for
// symbol: for libc (the user corpus's, with its debug file) and for a
// program without one.
func TestOpenWithDebug(t *testing.T) {
	libc := filepath.Join(corpus.Dir(t, "user"), "lib", "libc.so.6")
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	for _, c := range []struct {
		path    string
		withDbg bool
	}{{libc, true}, {"testdata/prog", false}} {
		const bias = 0x7f1234560000
		want, err := Open(c.path, bias)
		if err != nil {
			t.Fatal(err)
		}
		defer want.Close()
		wantDbg, ok := FindDebugFile(want, nil)
		if ok != c.withDbg {
			t.Fatalf("%s: FindDebugFile = %q %v", c.path, wantDbg, ok)
		}
		if ok {
			if err := want.AttachDebug(wantDbg); err != nil {
				t.Fatal(err)
			}
		}
		f, dbg, dbgErr, err := OpenWithDebug(c.path, bias, nil)
		if err != nil || dbgErr != nil {
			t.Fatalf("%s: OpenWithDebug: %v, %v", c.path, err, dbgErr)
		}
		defer f.Close()
		if dbg != wantDbg || f.DebugPath != want.DebugPath {
			t.Errorf("%s: debug file %q (DebugPath %q), want %q (%q)", c.path, dbg, f.DebugPath, wantDbg, want.DebugPath)
		}
		if f.Syms.Len() != want.Syms.Len() {
			t.Fatalf("%s: %d symbols, want %d", c.path, f.Syms.Len(), want.Syms.Len())
		}
		for i := range f.Syms.Len() {
			if g, w := f.Syms.At(i), want.Syms.At(i); g != w {
				t.Fatalf("%s: symbol %d: %+v, want %+v", c.path, i, g, w)
			}
		}
	}
	if _, _, _, err := OpenWithDebug("testdata/prog.c", 0, nil); err == nil {
		t.Error("OpenWithDebug opened a C file")
	}
}

// TestNewFileWithDebug checks that NewFileWithDebug, given the file and
// its headers parsed by the caller, gives the File OpenWithDebug gives,
// reads the caller's descriptor and leaves it open.
func TestNewFileWithDebug(t *testing.T) {
	libc := filepath.Join(corpus.Dir(t, "user"), "lib", "libc.so.6")
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	const bias = 0x7f1234560000
	want, wantDbg, _, err := OpenWithDebug(libc, bias, nil)
	if err != nil || wantDbg == "" {
		t.Fatalf("OpenWithDebug: %q %v", wantDbg, err)
	}
	defer want.Close()
	fh, err := os.Open(libc)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ef, err := elf.NewFile(fh)
	if err != nil {
		t.Fatal(err)
	}
	for _, parsed := range []*elf.File{ef, nil} {
		f, dbg, dbgErr, err := NewFileWithDebug(fh, parsed, libc, bias, nil)
		if err != nil || dbgErr != nil {
			t.Fatalf("NewFileWithDebug: %v, %v", err, dbgErr)
		}
		if parsed != nil && f.ef != ef {
			t.Error("the caller's headers were parsed again")
		}
		if dbg != wantDbg || f.DebugPath != wantDbg || !bytes.Equal(f.BuildID(), want.BuildID()) {
			t.Errorf("debug file %q (DebugPath %q), build id %x; want %q, %x", dbg, f.DebugPath, f.BuildID(), wantDbg, want.BuildID())
		}
		if f.Syms.Len() != want.Syms.Len() {
			t.Fatalf("%d symbols, want %d", f.Syms.Len(), want.Syms.Len())
		}
		for i := range f.Syms.Len() {
			if g, w := f.Syms.At(i), want.Syms.At(i); g != w {
				t.Fatalf("symbol %d: %+v, want %+v", i, g, w)
			}
		}
		s, ok := f.Syms.ByName("abort")
		if !ok {
			t.Fatal("no abort")
		}
		if g, w := f.CodeAt(s.Addr), want.CodeAt(s.Addr); len(g) == 0 || !bytes.Equal(g, w) {
			t.Errorf("abort's code: %d bytes, want %d", len(g), len(w))
		}
		if g, w := f.Lines(s.Addr+8, nil), want.Lines(s.Addr+8, nil); len(g) == 0 || fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("lines at abort+8: %v, want %v", g, w)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		var b [4]byte
		if _, err := fh.ReadAt(b[:], 0); err != nil || string(b[:]) != "\x7fELF" {
			t.Errorf("the caller's file after Close: %q %v", b, err)
		}
	}
	// A 32-bit ELF parsed by the caller is refused as NewFile refuses it.
	ef32 := *ef
	ef32.Class = elf.ELFCLASS32
	if f, _, _, err := NewFileWithDebug(fh, &ef32, libc, bias, nil); f != nil || err == nil || !strings.Contains(err.Error(), "not an x86-64 ELF") {
		t.Errorf("32-bit: File %v, error %v", f != nil, err)
	}
}
