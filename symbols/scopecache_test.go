package symbols

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// scopeText describes the scope chains at pcs spread over f's functions
// (DIE offset, name, kind and call site of each scope), and counts the
// functions among them that have nested scopes.
func scopeText(t *testing.T, path string) (string, int) {
	f, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.dwarfOnce.Do(f.loadDWARF)
	if f.dw == nil {
		t.Fatalf("%s: no DWARF: %v", path, f.dwErr)
	}
	text, nested := "", 0
	step := max(1, f.Syms.Len()/400)
	for i := 0; i < f.Syms.Len(); i += step {
		s := f.Syms.At(i)
		for _, pc := range []uint64{s.Addr, s.Addr + s.Size/3, s.Addr + s.Size*2/3} {
			_, chain := f.dw.scopeChain(pc, nil)
			for _, sc := range chain {
				text += fmt.Sprintf("%#x %s %v %d:%d; ", sc.off, sc.name, sc.inlined, sc.callFile, sc.callLine)
			}
			if len(chain) > 1 {
				nested++
			}
			text += "\n"
		}
	}
	return text, nested
}

// A function's scopes are stored when first read and read back by a later
// run with the same chains; the cached scopes are what that run uses; a
// damaged or foreign entry is ignored.
func TestScopeCache(t *testing.T) {
	paths := []string{"testdata/prog"}
	if dir, err := corpus.Find("kernel"); err == nil {
		paths = append(paths, filepath.Join(dir, "fp", "vmlinux"))
	}
	for _, path := range paths {
		t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
		cold, nested := scopeText(t, path)
		f, err := Open(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var files []string
		for name := range packEntries(t, debugCacheFor(f.ef, f.Path)) {
			if strings.HasPrefix(name, "scope-") {
				files = append(files, name)
			}
		}
		if len(files) == 0 || nested == 0 {
			t.Fatalf("%s: %d cached functions, %d pcs in nested scopes", path, len(files), nested)
		}
		if warm, _ := scopeText(t, path); warm != cold {
			t.Errorf("%s: cached scopes differ:\n%s\nwant\n%s", path, warm, cold)
		}
		t.Logf("%s: %d functions cached, %d pcs in nested scopes", path, len(files), nested)
	}

	// On testdata/prog: a valid entry renaming a function is used, a
	// damaged one is not.
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	leaf, _ := f.Syms.ByName("leaf")
	want := f.Lines(leaf.Addr, nil)
	u, chain := f.dw.scopeChain(leaf.Addr, nil)
	if len(want) == 0 || len(chain) == 0 || want[len(want)-1].Function != "leaf" {
		t.Fatalf("leaf: lines %+v, %d scopes", want, len(chain))
	}
	fn := chain[0]
	name := scopesName(fn.off)
	good := packEntries(t, f.dw.cache)[name]
	if good == nil {
		t.Fatalf("%s not stored", name)
	}
	if s := (&scope{off: fn.off}); !decodeScopes(good, f.dw.key, u, s) || s.name != "leaf" {
		t.Fatalf("stored scopes of leaf not read back: %+v", s)
	}
	renamed := &scope{off: fn.off, name: "cached_leaf", children: fn.children}
	setPackEntry(t, f.dw.cache, name, encodeScopes(renamed, f.dw.key))
	if got := linesOf(t, leaf.Addr); got[len(got)-1].Function != "cached_leaf" {
		t.Errorf("cached scopes not used: %+v", got)
	}
	other := append([]byte(nil), f.dw.key...)
	other[0]++
	if decodeScopes(good, other, u, &scope{off: fn.off}) || decodeScopes(good, f.dw.key, u, &scope{off: fn.off + 1}) {
		t.Error("scopes of other sections or another function used")
	}
	for i := 0; i < len(good); i++ {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x10
		if decodeScopes(bad, f.dw.key, u, &scope{off: fn.off}) {
			t.Errorf("scopes with byte %d changed used", i)
		}
		if decodeScopes(good[:i], f.dw.key, u, &scope{off: fn.off}) {
			t.Errorf("scopes cut to %d bytes used", i)
		}
	}
	setPackEntry(t, f.dw.cache, name, good[:len(good)-1])
	if got := linesOf(t, leaf.Addr); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("with damaged cached scopes: %+v, want %+v", got, want)
	}
}

// linesOf returns testdata/prog's lines at pc, from a new File.
func linesOf(t *testing.T, pc uint64) []Line {
	f, err := Open("testdata/prog", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Lines(pc, nil)
}

// FuzzScopes decodes cached function scopes (the fuzzer's bytes with a
// valid CRC) for testdata/prog's functions and looks scope chains up
// with what comes back: never a panic or a hang.
func FuzzScopes(f *testing.F) {
	x, u, _ := progDetail(f)
	var fn *scope
	for _, r := range u.top {
		u.scopeOf(x, r.s)
		if len(r.s.children) > 0 || fn == nil {
			fn = r.s
		}
	}
	b := encodeScopes(fn, x.key)
	f.Add(b[:len(b)-4])
	e := encodeScopes(&scope{off: fn.off, name: "f"}, x.key)
	f.Add(e[:len(e)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, castagnoli))
		s := &scope{off: fn.off}
		if !decodeScopes(data, x.key, u, s) {
			return
		}
		s.loaded.Store(true)
		v := &cuInfo{off: u.off, end: u.end, top: scopeLevel{{lo: 0, hi: ^uint64(0), s: s}}}
		var pcs []uint64
		var walk func(l scopeLevel, depth int)
		walk = func(l scopeLevel, depth int) {
			for _, r := range l {
				pcs = append(pcs, r.lo, r.hi-1)
				if depth < 4 {
					walk(r.s.children, depth+1)
				}
			}
		}
		walk(s.children, 0)
		var chain []*scope
		for _, pc := range pcs {
			chain = v.scopesAt(x, pc, chain[:0])
		}
	})
}
