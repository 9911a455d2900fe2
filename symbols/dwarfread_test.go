package symbols

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// compressedCopies makes copies of testdata/prog with its debug sections
// compressed each way binutils can (SHF_COMPRESSED zlib and zstd, GNU
// .zdebug_), as distributions ship separate debug files.
func compressedCopies(t *testing.T) map[string]string {
	t.Helper()
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Fatalf("objcopy (binutils) is needed to make compressed debug sections: %v", err)
	}
	dir := t.TempDir()
	out := map[string]string{}
	for _, c := range []string{"zlib", "zstd", "zlib-gnu"} {
		p := filepath.Join(dir, "prog-"+c)
		if b, err := exec.Command(objcopy, "--compress-debug-sections="+c, "testdata/prog", p).CombinedOutput(); err != nil {
			t.Fatalf("objcopy --compress-debug-sections=%s: %v\n%s", c, err, b)
		}
		out[c] = p
	}
	return out
}

// linesEverywhere looks up every text address of f.
func linesEverywhere(t *testing.T, f *File) [][]Line {
	t.Helper()
	var all [][]Line
	text := f.ef.Section(".text")
	for pc := text.Addr; pc < text.Addr+text.Size; pc++ {
		all = append(all, append([]Line(nil), f.Lines(pc, nil)...))
	}
	return all
}

// progLines opens testdata/prog afresh, through the debug cache the test
// set (UNWIND_DEBUG_CACHE), and returns linesEverywhere of it.
func progLines(t *testing.T) [][]Line {
	t.Helper()
	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return linesEverywhere(t, f)
}

// noLines fails t, saying what went unused, when any pc of lines has one.
func noLines(t *testing.T, lines [][]Line, unused string) {
	t.Helper()
	for _, l := range lines {
		if len(l) > 0 {
			t.Fatalf("%s not used: %+v", unused, l)
		}
	}
}

// Compressed debug sections give the same lines as plain ones, whether
// decompressed on the spot or mapped from the debug cache, and a cached
// section of the wrong size is not used.
func TestCompressedDebugSections(t *testing.T) {
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	plain, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := linesEverywhere(t, plain)
	n := 0
	for _, l := range want {
		n += len(l)
	}
	if n == 0 {
		t.Fatal("testdata/prog has no lines")
	}
	for codec, path := range compressedCopies(t) {
		for _, run := range []string{"cold", "warm"} {
			f, err := Open(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := linesEverywhere(t, f); !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s: lines differ from the uncompressed file's", codec, run)
			}
			if f.dwErr != nil {
				t.Errorf("%s, %s: %v", codec, run, f.dwErr)
			}
		}
	}
	// The cache holds each file's sections under its build id.
	f, _ := Open("testdata/prog", 0)
	c := debugCacheFor(f.ef, "testdata/prog")
	info := filepath.Join(string(c), "info")
	fi, err := os.Stat(info)
	if err != nil {
		t.Fatalf("no cached .debug_info: %v", err)
	}
	if b := c.load("info", uint64(fi.Size())+1); b != nil {
		t.Error("a cached section of the wrong size was used")
	}
	// A damaged cache entry (cut short) is decompressed again.
	if err := os.Truncate(info, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	g, err := Open(compressedCopies(t)["zlib"], 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := linesEverywhere(t, g); !reflect.DeepEqual(got, want) {
		t.Error("with a damaged cache entry, lines differ")
	}
	if fi2, _ := os.Stat(info); fi2 == nil || fi2.Size() != fi.Size() {
		t.Error("the damaged cache entry was not rewritten")
	}
}

// With the cache off nothing is written.
func TestDebugCacheOff(t *testing.T) {
	t.Setenv("UNWIND_DEBUG_CACHE", "off")
	if DebugCacheDir() != "" {
		t.Fatal("UNWIND_DEBUG_CACHE=off still names a folder")
	}
	f, err := Open(compressedCopies(t)["zstd"], 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(linesEverywhere(t, f)) == 0 || f.dwErr != nil {
		t.Errorf("no lines without the cache: %v", f.dwErr)
	}
}

// FuzzFile opens random ELF files (seeded with the test program, plain,
// with .debug_frame, and with each kind of compressed debug section) and
// looks up symbols, lines, CFI and code: errors are fine, panics and
// unbounded allocations are not.
func FuzzFile(f *testing.F) {
	seeds := []string{"testdata/prog", "testdata/prog-df"}
	if objcopy, err := exec.LookPath("objcopy"); err == nil {
		dir := f.TempDir()
		for _, c := range []string{"zlib", "zstd", "zlib-gnu"} {
			p := filepath.Join(dir, "prog-"+c)
			if exec.Command(objcopy, "--compress-debug-sections="+c, "testdata/prog", p).Run() == nil {
				seeds = append(seeds, p)
			}
		}
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		t.Setenv("UNWIND_DEBUG_CACHE", "off")
		file, err := NewFile(bytes.NewReader(data), "fuzz", 0)
		if (file == nil) == (err == nil) {
			t.Fatalf("file %v, err %v", file, err)
		}
		// The same file made from headers the caller parsed (a directory
		// that does not exist: no debug file is found).
		if ef, perr := elf.NewFile(bytes.NewReader(data)); perr == nil {
			g, _, _, gerr := NewFileWithDebug(bytes.NewReader(data), ef, "/nonexistent-fuzz-dir/fuzz", 0, nil)
			if (g == nil) == (gerr == nil) || (g == nil) != (file == nil) {
				t.Fatalf("NewFileWithDebug: file %v, err %v; NewFile: %v", g != nil, gerr, err)
			}
			if g != nil && g.Syms.Len() != file.Syms.Len() {
				t.Fatalf("NewFileWithDebug: %d symbols, NewFile %d", g.Syms.Len(), file.Syms.Len())
			}
		}
		if err != nil {
			return
		}
		var row CFIRow
		var buf []Line
		for i := range min(file.Syms.Len(), 64) {
			s := file.Syms.At(i)
			for _, pc := range []uint64{s.Addr, s.Addr + s.Size/2} {
				buf = file.Lines(pc, buf)
				_ = file.FindCFI(pc, &row)
				_ = file.CodeAt(pc)
			}
		}
	})
}

// A truncated or damaged ELF file is reported with its name, once, and
// what is wrong: its size when cut short, debug/elf's offset otherwise.
func TestOpenDamagedELF(t *testing.T) {
	b, err := os.ReadFile("testdata/prog")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut")
	if err := os.WriteFile(cut, b[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(cut, 0)
	if err == nil || !strings.Contains(err.Error(), "truncated ELF: the file (1000 bytes)") || strings.Count(err.Error(), cut) != 1 {
		t.Errorf("cut file: %v", err)
	}
	bad := append([]byte(nil), b...)
	bad[54], bad[55] = 0, 0 // e_phentsize
	damaged := filepath.Join(dir, "damaged")
	if err := os.WriteFile(damaged, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(damaged, 0)
	if err == nil || !strings.Contains(err.Error(), "malformed ELF") || !strings.Contains(err.Error(), "at byte 0x") {
		t.Errorf("damaged file: %v", err)
	}
	// A kernel module says the same.
	ko, err := os.ReadFile("testdata/hello-mod.ko")
	if err != nil {
		t.Fatal(err)
	}
	cutKo := filepath.Join(dir, "cut.ko")
	if err := os.WriteFile(cutKo, ko[:40], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenModule(cutKo, Placement{})
	if err == nil || !strings.Contains(err.Error(), "truncated ELF: the file (40 bytes)") || strings.Count(err.Error(), cutKo) != 1 {
		t.Errorf("cut module: %v", err)
	}
}
