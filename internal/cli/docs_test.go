package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/unwind-dev/unwind/internal/corpus"
)

// The traces in README.md and docs/MECHANISMS.md are real output, kept so
// by TestDocTraces. A block is
//
//	<!-- run: ARGS [; show: SHOWN] -->
//	```
//	$ unwind SHOWN-or-ARGS
//	output (stdout, then stderr)
//	```
//	<!-- /run -->
//
// ARGS are the unwind command's arguments, with $TMP a folder shared by
// the blocks of one document (shown as /tmp/x) and $VMCORE(SCENARIO/NAME)
// and $KERNEL (the kernel corpus's fp folder) and $PROD (the prod corpus,
// shown as prod-dev in the output) from the reference corpus; a
// block that needs the corpus is left as it is when the corpus is absent.
// Paths under fixtures/ are relative to the repository root.
var docBlock = regexp.MustCompile("(?s)<!-- run: (.*?) -->\n```[a-z]*\n(.*?)```\n<!-- /run -->")

var docVmcore = regexp.MustCompile(`\$VMCORE\(([a-z-]+)/([a-z-]+)\)`)

const docTmp = "/tmp/x"

func TestDocTraces(t *testing.T) {
	old := Fixtures
	Fixtures = os.DirFS("../..")
	defer func() { Fixtures = old }()
	for _, doc := range []string{"README.md", "docs/MECHANISMS.md"} {
		t.Run(doc, func(t *testing.T) {
			path := filepath.Join("..", "..", doc)
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			n := 0
			var failed bool
			out := docBlock.ReplaceAllFunc(text, func(m []byte) []byte {
				sub := docBlock.FindSubmatch(m)
				spec, old := string(sub[1]), string(sub[2])
				n++
				got, ok := runDocBlock(t, spec, tmp)
				if !ok {
					return m
				}
				if got != old && !*update {
					failed = true
					t.Errorf("%s: the output of `%s` changed (go test ./internal/cli -run TestDocTraces -update, then review):\n%s",
						doc, spec, cmp.Diff(old, got))
				}
				return []byte(strings.Replace(string(m), "\n"+old, "\n"+got, 1))
			})
			if n == 0 {
				t.Fatalf("%s has no <!-- run: --> block", doc)
			}
			if *update && !failed && !bytes.Equal(out, text) {
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// runDocBlock runs one block's command and returns the text the block
// should hold; ok is false when the block needs an absent corpus.
func runDocBlock(t *testing.T, spec, tmp string) (string, bool) {
	t.Helper()
	argText, shown, _ := strings.Cut(spec, "; show: ")
	if shown == "" {
		shown = strings.ReplaceAll(argText, "$TMP", docTmp)
	}
	var missing error
	needsCorpus := false
	argText = docVmcore.ReplaceAllStringFunc(argText, func(s string) string {
		needsCorpus = true
		m := docVmcore.FindStringSubmatch(s)
		p, err := corpus.FindVmcore(m[1], m[2])
		if err != nil {
			missing = err
		}
		return p
	})
	if strings.Contains(argText, "$KERNEL") {
		needsCorpus = true
		d, err := corpus.Find("kernel")
		if err != nil {
			missing = err
		}
		argText = strings.ReplaceAll(argText, "$KERNEL", filepath.Join(d, "fp"))
	}
	prodDir := ""
	if strings.Contains(argText, "$PROD") {
		needsCorpus = true
		d, err := corpus.Find("prod")
		if err != nil {
			missing = err
		}
		prodDir = d
		argText = strings.ReplaceAll(argText, "$PROD", d)
	}
	if missing != nil {
		if corpus.Configured() || os.Getenv("CI") == "true" {
			t.Errorf("%s: the corpus is configured but this block's files cannot be had: %v", spec, missing)
		} else {
			t.Logf("left as it is (no corpus): %s", spec)
		}
		return "", false
	}
	if needsCorpus {
		corpus.Checked(t, 1)
	}
	args := strings.Fields(strings.ReplaceAll(argText, "$TMP", tmp))
	for i, a := range args {
		if strings.HasPrefix(a, "fixtures/") {
			args[i] = filepath.Join("..", "..", a)
		}
	}
	stdout, stderr, code := run(t, args...)
	if code != ExitOK && code != ExitPartial {
		t.Errorf("`unwind %s` exited %d:\n%s%s", spec, code, stdout, stderr)
	}
	got := fmt.Sprintf("$ unwind %s\n%s%s", shown, stdout, stderr)
	got = strings.ReplaceAll(got, tmp, docTmp)
	if prodDir != "" {
		got = strings.ReplaceAll(got, prodDir, "prod-dev")
	}
	if !strings.HasSuffix(got, "\n") {
		got += "\n"
	}
	return got, true
}
