package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// emulatedSnapshot writes the snapshots of a built-in scenario and returns
// the path of the one named snap.
func emulatedSnapshot(t *testing.T, scenario, snap string) string {
	t.Helper()
	old := Fixtures
	Fixtures = os.DirFS("../..")
	t.Cleanup(func() { Fixtures = old })
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	cmd := NewCmdEmulate(&IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{scenario, "-o", dir, "-q"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	p := filepath.Join(dir, snap+".core")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// --max-frames cuts a trace without making it an error: exit 0, the text
// says it was truncated, the JSON has "truncated": true and keeps the
// verdict; 0 means no limit.
func TestMaxFramesTruncates(t *testing.T) {
	core := emulatedSnapshot(t, "nmi-irq-task", "nmi-irq-task")
	out, errOut, code := run(t, "bt", core, "--max-frames", "3")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "(3 frames, reliable, truncated at the frame limit: more not walked)") {
		t.Errorf("text does not say the trace was truncated:\n%s", out)
	}
	out, errOut, code = run(t, "bt", core, "--max-frames", "3", "-o", "json")
	if code != 0 {
		t.Fatalf("json: exit %d\n%s", code, errOut)
	}
	var doc struct {
		Version int
		Threads []struct {
			CPU       *int
			Reliable  bool
			Truncated bool
			Unwalked  *int
			Frames    []json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 2 || len(doc.Threads) != 1 {
		t.Fatalf("version %d, %d threads", doc.Version, len(doc.Threads))
	}
	th := doc.Threads[0]
	if !th.Truncated || !th.Reliable || len(th.Frames) != 3 || th.Unwalked != nil || th.CPU == nil || *th.CPU != 0 {
		t.Errorf("thread: truncated %v reliable %v frames %d unwalked %v cpu %v", th.Truncated, th.Reliable, len(th.Frames), th.Unwalked, th.CPU)
	}
	out, _, code = run(t, "bt", core, "--max-frames", "0")
	if code != 0 || strings.Contains(out, "truncated") || !strings.Contains(out, "reliable, stopped: end of stack") {
		t.Errorf("--max-frames 0: exit %d\n%s", code, out)
	}
}
