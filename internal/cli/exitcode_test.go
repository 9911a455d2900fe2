package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes: bt's exit codes as DESIGN.md "Exit codes", root --help,
// bt --help and README.md give them. 0: every trace printed and reliable,
// or cut only by --max-frames; 1: nothing useful printed; 2: usage error;
// 3: printed, but a trace is unreliable or stopped on an error.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := run(t, "emulate", "../../fixtures/scenarios/demo.scenario", "-o", dir, "-q"); code != ExitOK {
		t.Fatalf("emulate: exit %d: %s", code, stderr)
	}
	core := filepath.Join(dir, "db-nmi-irq-task.core")
	if out, stderr, code := run(t, "bt", core); code != ExitOK || !strings.Contains(out, ", reliable, ") {
		t.Errorf("a reliable trace: exit %d, want 0: %s\n%s", code, stderr, out)
	}
	if out, stderr, code := run(t, "bt", core, "--max-frames", "2"); code != ExitOK || !strings.Contains(out, "frame limit") {
		t.Errorf("a trace cut by --max-frames: exit %d, want 0: %s\n%s", code, stderr, out)
	}
	// Entry frames and the stack scan alone: printed to the end of the
	// stack, unreliable.
	if out, stderr, code := run(t, "bt", core, "--methods", "ptregs,scan"); code != ExitPartial || !strings.Contains(out, "UNRELIABLE, stopped: end of stack") ||
		!strings.Contains(stderr, "1 trace(s) unreliable") {
		t.Errorf("an unreliable trace: exit %d, want 3: %s\n%s", code, stderr, out)
	}
	// Frame pointers alone stop on an error in this snapshot's #DB entry.
	if out, stderr, code := run(t, "bt", core, "--methods", "fp"); code != ExitPartial || !strings.Contains(out, "stopped: error:") ||
		!strings.Contains(stderr, "1 trace(s) stopped on an error") {
		t.Errorf("a trace stopped on an error: exit %d, want 3: %s\n%s", code, stderr, out)
	}
	raw, err := os.ReadFile(core)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, "bt", core, "--methods", "bogus"); code != ExitUsage {
		t.Errorf("a usage error: exit %d, want 2: %s", code, stderr)
	}
	if _, stderr, code := run(t, "bt", core, "--no-such-flag"); code != ExitUsage {
		t.Errorf("an unknown flag: exit %d, want 2: %s", code, stderr)
	}
	bad := filepath.Join(dir, "truncated.core")
	if err := os.WriteFile(bad, raw[:40], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := run(t, "bt", bad); code != ExitFailure || out != "" {
		t.Errorf("an unreadable core: exit %d, want 1: %s\n%s", code, stderr, out)
	}
	if _, stderr, code := run(t, "bt", core, "--cpu", "7"); code != ExitFailure {
		t.Errorf("no CPU selected: exit %d, want 1: %s", code, stderr)
	}
	// The help texts say the same.
	for _, args := range [][]string{{"--help"}, {"bt", "--help"}} {
		out, _, _ := run(t, args...)
		flat := strings.Join(strings.Fields(out), " ")
		for _, want := range []string{"0 ", "1 ", "2 ", "3 ", "--max-frames", "unreliable"} {
			if !strings.Contains(flat, want) {
				t.Errorf("%v does not say %q:\n%s", args, want, out)
			}
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 3 | traces were printed, but some trace is unreliable", "| 0 | success; `bt`: every requested trace was printed and is reliable, or was cut only by `--max-frames` |"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
}
