package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// run executes the unwind command with args and returns stdout, stderr and
// the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return out.String(), errOut.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, d)
	}
}

// `unwind version` and `unwind --version` print the same line: the
// version, the Go toolchain and the JSON output version.
func TestVersion(t *testing.T) {
	out, _, code := run(t, "version")
	if code != ExitOK || !strings.HasPrefix(out, "unwind ") || !strings.Contains(out, "go1.") ||
		!strings.Contains(out, fmt.Sprintf("JSON output version %d", JSONVersion)) {
		t.Fatalf("version: code %d, %q", code, out)
	}
	out2, _, code := run(t, "--version")
	if code != ExitOK || out2 != out {
		t.Fatalf("--version: code %d, %q; version printed %q", code, out2, out)
	}
}

// A built binary names the commit it was built from, which Go embeds from
// the git checkout (tests run without it, so build one; the environment
// may say -buildvcs=false, and a git worktree gives Go no vcs data).
func TestVersionNamesCommit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "unwind")
	if b, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, "../../cmd/unwind").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	mod, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`vcs\.revision=([0-9a-f]{12})`).FindSubmatch(mod)
	t.Logf("%s", out)
	switch {
	case m != nil && !bytes.Contains(out, []byte(", commit "+string(m[1]))):
		t.Errorf("--version of a binary built at %s does not name it: %q", m[1], out)
	case m == nil && bytes.Contains(out, []byte("commit")):
		t.Errorf("--version names a commit Go did not embed: %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"nosuchcommand"},
		{"symbolize", "0x1000"}, // no --sym
		{"symbolize", "--sym", "../../symbols/testdata/prog", "zz"},      // neither address nor symbol
		{"symbolize", "--sym", "../../symbols/testdata/prog", "main+zz"}, // bad offset
		{"bt"},                       // no core
		{"bt", "core", "-o", "yaml"}, // bad format
		{"symbolize", "--sym", "x", "--bias", "q", "1"}, // bad bias
	} {
		_, stderr, code := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, ExitUsage, stderr)
		}
	}
}

func TestMissingFile(t *testing.T) {
	_, stderr, code := run(t, "bt", filepath.Join(t.TempDir(), "nope"))
	if code != ExitFailure || !strings.Contains(stderr, "nope") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// nmFunctions reads the saved `nm -n -S` output of symbols/testdata/prog:
// the functions with a size.
func nmFunctions(t *testing.T) map[uint64][2]string {
	f, err := os.Open("../../symbols/testdata/prog.nm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fns := map[uint64][2]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) != 4 || (fl[2] != "T" && fl[2] != "t") {
			continue
		}
		addr, _ := strconv.ParseUint(fl[0], 16, 64)
		fns[addr] = [2]string{fl[3], fl[1]}
	}
	return fns
}

// TestSymbolizeAgreesWithNm looks up every sized function of a real gcc
// binary at its start, middle and last byte, at a PIE load bias, and
// compares with nm's saved output.
func TestSymbolizeAgreesWithNm(t *testing.T) {
	const bias = 0x555555554000
	fns := nmFunctions(t)
	if len(fns) < 4 {
		t.Fatalf("only %d functions in prog.nm", len(fns))
	}
	args := []string{"symbolize", "--sym", "../../symbols/testdata/prog", "--bias", "0x555555554000", "-o", "json"}
	var want []string
	for addr, v := range fns {
		size, _ := strconv.ParseUint(v[1], 16, 64)
		for _, off := range []uint64{0, size / 2, size - 1} {
			args = append(args, "0x"+strconv.FormatUint(bias+addr+off, 16))
			want = append(want, v[0]+"+0x"+strconv.FormatUint(off, 16)+"/0x"+strconv.FormatUint(size, 16))
		}
	}
	out, stderr, code := run(t, args...)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Version   int `json:"version"`
		Addresses []struct {
			Function string `json:"function"`
			Offset   uint64 `json:"offset"`
			Size     uint64 `json:"size"`
		} `json:"addresses"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != JSONVersion || len(doc.Addresses) != len(want) {
		t.Fatalf("version %d, %d answers for %d addresses", doc.Version, len(doc.Addresses), len(want))
	}
	for i, a := range doc.Addresses {
		got := a.Function + "+0x" + strconv.FormatUint(a.Offset, 16) + "/0x" + strconv.FormatUint(a.Size, 16)
		if got != want[i] {
			t.Errorf("address %s: got %s, nm says %s", args[7+i], got, want[i])
		}
	}
}

func TestSymbolizeText(t *testing.T) {
	out, stderr, code := run(t, "symbolize", "--sym", "../../symbols/testdata/prog", "0x11b0", "0x11c8", "0x1210", "0x1")
	if code != ExitFailure { // 0x1 has no symbol
		t.Errorf("exit %d, want %d: %s", code, ExitFailure, stderr)
	}
	golden(t, "symbolize.golden", out)
}

// symbolize takes a symbol's name, with an offset or not (crash's
// `sym NAME`), as well as an address: the same answer, bias applied; an
// argument that is neither says so and names no strconv function.
func TestSymbolizeByName(t *testing.T) {
	const prog = "../../symbols/testdata/prog"
	byAddr, _, code := run(t, "symbolize", "--sym", prog, "--bias", "0x1000", "0x21c8", "0x21b0")
	if code != ExitOK {
		t.Fatalf("by address: exit %d", code)
	}
	byName, _, code := run(t, "symbolize", "--sym", prog, "--bias", "0x1000", "leaf+0x18", "leaf")
	if code != ExitOK || byName != byAddr {
		t.Errorf("by name: exit %d\n%s\nwant\n%s", code, byName, byAddr)
	}
	if !strings.Contains(byName, "leaf+0x18/") {
		t.Errorf("leaf+0x18 did not resolve to leaf+0x18:\n%s", byName)
	}
	_, stderr, code := run(t, "symbolize", "--sym", prog, "no_such_fn")
	if code != ExitUsage || !strings.Contains(stderr, `"no_such_fn" is neither an address nor the name of a symbol`) || strings.Contains(stderr, "strconv") {
		t.Errorf("unknown name: exit %d, %q", code, stderr)
	}
}
