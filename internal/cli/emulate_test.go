package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEmulateWritesSnapshots(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	cmd := NewCmdEmulate(&IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"../../emu/testdata/mini-irq.scenario", "--kernel", "../../emu/testdata/mini.elf", "-o", dir})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, f := range []string{"in-irq.core", "in-irq.truth.json", "in-syscall.core"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(out.String(), "user ok") || !strings.Contains(out.String(), "0 failed") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestEmulateFailedInvariant(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "bad.scenario")
	os.WriteFile(sc, []byte("invariant console-contains \"never printed\"\n"), 0o644)
	var out, errOut bytes.Buffer
	cmd := NewCmdEmulate(&IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{sc, "--kernel", "../../emu/testdata/mini.elf", "-o", dir})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitFailure {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(errOut.String(), "invariant console-contains (line 1) failed at end of run") {
		t.Errorf("stderr: %s", errOut.String())
	}
}

func TestEmulateBuiltinScenario(t *testing.T) {
	old := Fixtures
	Fixtures = os.DirFS("../..")
	defer func() { Fixtures = old }()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	cmd := NewCmdEmulate(&IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"nmi-irq-task", "-o", dir, "-q"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	truth, err := os.ReadFile(filepath.Join(dir, "nmi-irq-task.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"scenario": "nmi-irq-task"`, `"kernel_build_id": "`, `"entry": "nmi"`, `"entry": "irq:236"`} {
		if !strings.Contains(string(truth), want) {
			t.Errorf("truth lacks %s", want)
		}
	}
	if !strings.Contains(out.String(), "snapshot nmi-irq-task: cpu 0 insn") {
		t.Errorf("output:\n%s", out.String())
	}
}

// A buggy-variant scenario whose bug shows exits 0 (expect=fail), and its
// sweep is reported per invariant.
func TestEmulateExpectedFailureAndSweep(t *testing.T) {
	old := Fixtures
	Fixtures = os.DirFS("../..")
	defer func() { Fixtures = old }()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	cmd := NewCmdEmulate(&IOStreams{Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"idt-swap-buggy", "-o", dir, "-q", "--sweep-every", "50"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"expected failure (the bug this scenario shows): invariant idt-restored",
		"sweep (line ", "idt-restored           FAILED at 12 of 12 points (expect=fail)",
		"db-frame-survives      held at every point",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
