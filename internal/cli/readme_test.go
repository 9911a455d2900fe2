package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The README's CLI reference names every command and every flag that
// --help shows, so the two cannot drift apart.
func TestReadmeCLIReference(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "\n## The CLI\n")
	if start < 0 {
		t.Fatal("README.md has no \"## The CLI\" section")
	}
	section := readme[start:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	rows := map[string]string{}
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(l, "| `unwind ") {
			name := strings.Fields(strings.TrimPrefix(l, "| `unwind "))[0]
			name = strings.TrimSuffix(strings.TrimSuffix(name, "`,"), "`")
			rows[name] += l
		}
	}
	root := NewCmdRoot(&IOStreams{})
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		row, ok := rows[c.Name()]
		if !ok {
			t.Errorf("README's CLI reference has no row for `unwind %s`", c.Name())
			continue
		}
		// info takes bt's symbol flags ("same symbol flags").
		inherit := ""
		if strings.Contains(row, "same symbol flags") {
			inherit = rows["bt"]
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			long, short := "--"+f.Name, ""
			if f.Shorthand != "" {
				short = "-" + f.Shorthand
			}
			if !mentions(row, long, short) && !mentions(inherit, long, short) {
				t.Errorf("README's row for `unwind %s` does not name %s", c.Name(), long)
			}
		})
	}
}

// mentions says whether row names the flag by its long or short form,
// as a whole word.
func mentions(row, long, short string) bool {
	for _, f := range []string{long, short} {
		if f == "" {
			continue
		}
		for i := strings.Index(row, f); i >= 0; {
			end := i + len(f)
			if end == len(row) || !isFlagChar(row[end]) {
				return true
			}
			j := strings.Index(row[end:], f)
			if j < 0 {
				break
			}
			i = end + j
		}
	}
	return false
}

func isFlagChar(c byte) bool {
	return c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
