package cli

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

const valcores = "../../fixtures/valcores"

// valCore decompresses fixtures/valcores/VARIANT/CASE.core.zst into a
// temporary file.
func valCore(tb testing.TB, variant, cs string) string {
	tb.Helper()
	z, err := os.ReadFile(filepath.Join(valcores, variant, cs+".core.zst"))
	if err != nil {
		tb.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(z, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), "core")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func valArgs(core, variant string, extra ...string) []string {
	return append([]string{"bt", core, "--exe", filepath.Join(valcores, variant, "uvals"),
		"--search", "../../fixtures/usercores/lib", "--sysroot", "/nonexistent"}, extra...)
}

// bt --args puts the parameters on the frame line as gdb's bt does,
// --locals adds the locals under it as bt full does, and -o json gives
// both per frame with how each value was recovered.
func TestBtArgsLocals(t *testing.T) {
	core := valCore(t, "O2cfi", "crash")
	out, errOut, code := run(t, valArgs(core, "O2cfi", "--args")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`leaf+0x41/0x9a (depth=0, tag=1400, t=0x7ffc11ff41a0, c=GREEN, lbl=0x55b0e96a3009 <label> "vals", ratio=<not recovered>, uc=200 '\310', flag=true) (uvals) at src/vals.c:50`,
		`level+0x96/0x138 (depth=0, tag=<not recovered>, parent=0x7ffc11ff4210, c=GREEN, lbl=<not recovered>, seed=29) (uvals)`,
		`level+0x12c/0x138 (depth=4, tag=1000, parent=0x0, c=RED, lbl=0x55b0e96a3009 <label> "vals", seed=1) (uvals)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bt --args lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mult = ") {
		t.Errorf("bt --args prints locals:\n%s", out)
	}
	out, _, _ = run(t, valArgs(core, "O2cfi", "--locals")...)
	for _, want := range []string{
		"        arr = {0, 1, 2, 3}\n        tp = 0x55b0e96a5048 <table+8>\n        pt = {x = 0, y = 0}\n        r = <optimized out>\n",
		"        me = {level = 4, name = \"lvl4\\000\\000\\000\", cookie = 3000, pt = {...}}\n        mult = 7000\n        ch = 101 'e'\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bt --locals lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = run(t, valArgs(core, "O2cfi", "--locals", "--depth", "2")...)
	if !strings.Contains(out, "pt = {x = 4, y = -4}}") {
		t.Errorf("--depth 2 does not expand nested structs:\n%s", out)
	}
	out, _, _ = run(t, valArgs(core, "O2cfi", "--locals", "-o", "json")...)
	var doc struct {
		Threads []struct {
			Frames []struct {
				Function     string
				Args, Locals []struct {
					Name, Type, Location, Recovered string
					Value                           *string
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	f := doc.Threads[0].Frames[1]
	if f.Function != "level" || len(f.Args) != 6 || len(f.Locals) != 4 {
		t.Fatalf("frame 1: %+v", f)
	}
	tag, mult := f.Args[1], f.Locals[1]
	if tag.Name != "tag" || tag.Value != nil || tag.Recovered != "not_recovered" || tag.Location != "rsi" || tag.Type != "long int" {
		t.Errorf("tag: %+v", tag)
	}
	if mult.Name != "mult" || mult.Value == nil || *mult.Value != "9800" || mult.Recovered != "register" {
		t.Errorf("mult: %+v", mult)
	}
}

// The --locals benchmark: a 10,005-frame core (deep(10000) recursing to
// deep(0)), the whole command path (open, symbols, walk, values, write),
// with and without --locals.
func BenchmarkBtDeep(b *testing.B)       { benchBtDeep(b) }
func BenchmarkBtDeepLocals(b *testing.B) { benchBtDeep(b, "--locals") }

func benchBtDeep(b *testing.B, extra ...string) {
	core := valCore(b, "O2cfi", "deep")
	args := valArgs(core, "O2cfi", append([]string{"--max-frames", "0"}, extra...)...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if code := Run(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}, args); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
