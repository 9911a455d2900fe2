package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/unwind"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"sh":                      "sh",
		"kworker/0:1H":            "kworker/0:1H",
		"héllo wörld":             "héllo wörld",
		"a\x1b[2Jb":               `a\x1b[2Jb`,
		"two\nlines":              `two\nlines`,
		"tab\there":               "tab\there",
		"del\x7f":                 `del\x7f`,
		"c1\u0085":                `c1\u0085`,
		"bad\xffutf8":             `bad\xffutf8`,
		"\x00":                    `\x00`,
		"line\u2028separator":     `line\u2028separator`,
		"\x1b]0;title\x07visible": `\x1b]0;title\avisible`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Escape("swapper/0") }); n != 0 {
		t.Errorf("Escape of a clean string allocates %v times", n)
	}
}

// Strings from a dump (comm, symbol names) never put control characters
// on the terminal in text output.
func TestTextEscapesDumpStrings(t *testing.T) {
	doc := recursion()
	th := &doc.Threads[0]
	th.Comm = "evil\x1b[2J\ncomm"
	th.Frames = th.Frames[:2]
	th.Frames[0].Sym.Name = "fn\x1b]0;pwned\x07"
	th.Frames[0].Function = th.Frames[0].Sym.Name
	th.Frames[1].File, th.Frames[1].Line = "a\rb.c", 3
	var out bytes.Buffer
	if err := WriteText(&out, doc, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, c := range s {
		if c != '\n' && c < 0x20 || c == 0x7f {
			t.Fatalf("control character %q in text output:\n%q", c, s)
		}
	}
	if strings.Count(s, "\n") != 4 || !strings.Contains(s, `evil\x1b[2J\ncomm`) || !strings.Contains(s, `fn\x1b]0;pwned\a`) {
		t.Errorf("text output:\n%s", s)
	}
	// Kernel layout, with an interrupted frame's register block.
	th.Kernel = true
	th.Frames[1].Kind = unwind.KindInterrupted
	out.Reset()
	if err := WriteText(&out, doc, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range out.String() {
		if c != '\n' && c < 0x20 || c == 0x7f {
			t.Fatalf("control character %q in kernel text output:\n%q", c, out.String())
		}
	}
}
