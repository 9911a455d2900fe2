package unwind_test

// Tests of FrameValues on fixtures/valcores: a program whose parameters
// and locals have values known by construction (src/vals.c says which),
// built in four variants and killed by SIGFPE five levels down a chain of
// level(depth, tag, parent, c, lbl, seed) calls.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

const vcDir = "../fixtures/valcores"

// vcOpen opens VARIANT/CASE.core.zst of fixtures/valcores with symbols only
// from the fixtures (its executable, and usercores/lib for libc: the same
// file, with no DWARF).
func vcOpen(t testing.TB, variant, cs string) (*dump.Dump, *symbols.Set) {
	t.Helper()
	return openZstdCore(t, filepath.Join(vcDir, variant, cs+".core.zst"), filepath.Join(vcDir, variant, "uvals"),
		[]string{filepath.Join(fxDir, "lib")})
}

func openZstdCore(t testing.TB, core, exe string, dirs []string) (*dump.Dump, *symbols.Set) {
	t.Helper()
	z, err := os.ReadFile(core)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dec.DecodeAll(z, nil)
	dec.Close()
	if err != nil {
		t.Fatalf("decompressing %s: %v", core, err)
	}
	d, err := dump.NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("open %s: %v", core, err)
	}
	t.Cleanup(func() { d.Close() })
	set, warns, err := d.Symbols(dump.SymbolOptions{Exe: exe, SearchDirs: dirs, Sysroot: t.TempDir()})
	if err != nil {
		t.Fatalf("symbols: %v", err)
	}
	for _, w := range warns {
		t.Logf("symbols warning: %s", w)
	}
	return d, set
}

// frameVals is one frame's values by name.
type frameVals struct {
	fn   string
	ok   bool
	vals map[string]symbols.Value
}

func valuesOf(t testing.TB, d *dump.Dump, set *symbols.Set, thread int, opts *symbols.ValueOptions) ([]unwind.Frame, []frameVals) {
	t.Helper()
	th := d.Threads()[thread]
	frames, err := unwind.Walk(d.Memory(), th.Regs, &unwind.Options{Code: set, Stacks: d.Stacks(thread), MaxFrames: -1})
	if err != nil {
		// The values of the frames found are still checked.
		t.Logf("thread %d: walk: %v", th.TID, err)
	}
	out := make([]frameVals, len(frames))
	for i := range frames {
		args, locals, ok := unwind.FrameValues(frames, i, d.Memory(), set, opts)
		fv := frameVals{fn: frames[i].Function, ok: ok, vals: map[string]symbols.Value{}}
		for _, v := range append(args, locals...) {
			fv.vals[v.Name] = v
		}
		out[i] = fv
	}
	return frames, out
}

// TestValuesByConstruction checks every parameter and local of the
// valcores crash against the values the program gives them: a value that
// is printed must be the true one, whatever the variant; the values each
// variant's DWARF and unwind make recoverable must be recovered; a
// variant without DWARF gives none.
func TestValuesByConstruction(t *testing.T) {
	for _, variant := range []string{"O0fp", "O2cfi", "static", "O2nocfi"} {
		t.Run(variant, func(t *testing.T) {
			d, set := vcOpen(t, variant, "crash")
			frames, fv := valuesOf(t, d, set, 0, &symbols.ValueOptions{Depth: 3})
			if variant == "O2nocfi" {
				for i := range fv {
					if fv[i].ok {
						t.Errorf("frame %d %s: values without DWARF: %v", i, fv[i].fn, fv[i].vals)
					}
				}
				return
			}
			checked := checkValTruth(t, variant, frames, fv)
			if checked < 45 {
				t.Errorf("only %d values checked", checked)
			}
			t.Logf("%s: %d values checked against the truth", variant, checked)
		})
	}
}

// truth is the expected printed value of one variable; required says the
// variant must recover it.
type truth struct {
	want     string
	prefix   bool // want is a prefix (char arrays with uninitialized tails), or a suffix when it starts with " "
	required bool
}

func checkValTruth(t *testing.T, variant string, frames []unwind.Frame, fv []frameVals) int {
	t.Helper()
	o0 := variant == "O0fp"
	// Find leaf and the five level frames, innermost first.
	li := -1
	var levels []int
	for i := range fv {
		switch fv[i].fn {
		case "leaf":
			li = i
		case "level":
			levels = append(levels, i)
		}
	}
	if li != 0 || len(levels) != 5 {
		t.Fatalf("chain: leaf at %d, %d level frames", li, len(levels))
	}
	meAddr := func(i int) string {
		v := fv[i].vals["me"]
		if v.Recovered != symbols.RecoveredStack {
			t.Fatalf("frame %d: me is %v, want on the stack", i, v.Recovered)
		}
		return v.Location
	}
	colors := []string{"RED", "GREEN", "BLUE"}
	lbl := regexpLabel
	checked := 0
	check := func(i int, name string, tr truth) {
		t.Helper()
		v, ok := fv[i].vals[name]
		if !ok {
			t.Errorf("frame %d %s: no %s (have %v)", i, fv[i].fn, name, keys(fv[i].vals))
			return
		}
		if !v.Recovered.Known() {
			if tr.required {
				t.Errorf("frame %d %s: %s %s (%s), want %q", i, fv[i].fn, name, v.Recovered, v.Reason, tr.want)
			}
			return
		}
		checked++
		got := v.Value
		match := got == tr.want || tr.prefix && strings.HasPrefix(got, tr.want) ||
			tr.prefix && strings.HasPrefix(tr.want, " ") && strings.HasSuffix(got, tr.want)
		if tr.want == lbl {
			match = labelRE.MatchString(got)
		}
		if !match {
			t.Errorf("frame %d %s: %s = %q (%s at %s), want %q", i, fv[i].fn, name, got, v.Recovered, v.Location, tr.want)
		}
	}
	// leaf(0, 1400, &me of level(0), GREEN, label, 2.5, 200, true)
	check(li, "depth", truth{"0", false, true})
	check(li, "tag", truth{"1400", false, true})
	check(li, "t", truth{meAddr(levels[0]), false, true})
	check(li, "c", truth{"GREEN", false, true})
	check(li, "lbl", truth{lbl, false, true})
	check(li, "ratio", truth{"2.5", false, o0}) // in xmm1 at -O2: vector registers are not read
	check(li, "uc", truth{`200 '\310'`, false, true})
	check(li, "flag", truth{"true", false, true})
	check(li, "arr", truth{"{0, 1, 2, 3}", false, true})
	check(li, "tp", truth{" <table+8>", true, true})
	check(li, "pt", truth{"{x = 0, y = 0}", false, true})
	for k, i := range levels {
		d := k // level(d) is the k-th level frame from the leaf
		tag := 1000 + 100*(4-d)
		parent := "0x0"
		if k+1 < len(levels) {
			parent = meAddr(levels[k+1])
		}
		// In level(0), the frame that called leaf, tag and lbl are in rsi
		// and r8 at the call (-O2): registers the call clobbers, which the
		// unwind cannot recover; in the other levels they are in
		// callee-saved registers.
		inner := k == 0
		check(i, "depth", truth{fmt.Sprint(d), false, true})
		check(i, "tag", truth{fmt.Sprint(tag), false, o0 || !inner})
		check(i, "parent", truth{parent, false, true})
		check(i, "c", truth{colors[(4-d)%3], false, true})
		check(i, "lbl", truth{lbl, false, o0 || !inner})
		// seed is dead after the call at -O2: only an entry value gives
		// it, from the caller's call site; level(4) was tail-called by
		// tramp, whose one tail call site says what it passed, in terms of
		// tramp's entry values, which main's call site gives.
		check(i, "seed", truth{fmt.Sprint(7*(4-d) + 1), false, true})
		check(i, "me", truth{fmt.Sprintf(`{level = %d, name = "lvl%d\000`, d, d), true, true})
		if v := fv[i].vals["me"]; v.Recovered.Known() && !strings.Contains(v.Value, fmt.Sprintf("cookie = %d, pt = {x = %d, y = %d}}", 3*tag, d, -d)) {
			t.Errorf("frame %d: me = %s, want cookie %d, pt {%d, %d}", i, v.Value, 3*tag, d, -d)
		}
		check(i, "mult", truth{fmt.Sprint(7 * tag), false, true})
		check(i, "ch", truth{fmt.Sprintf("%d '%c'", 'a'+d, 'a'+d), false, true})
	}
	_ = frames
	return checked
}

const regexpLabel = "<label> \"vals\""

var labelRE = regexp.MustCompile(`^0x[0-9a-f]+ <label> "vals"$`)

func keys(m map[string]symbols.Value) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
