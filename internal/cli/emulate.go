package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/emu"
)

// Fixtures holds the built-in scenarios and fixture kernels, laid out as in
// the repository: fixtures/scenarios/NAME.scenario and
// fixtures/kernel/build/kernel-VARIANT.elf (paths without the leading
// "fixtures/" are accepted too). The unwind command sets it to the
// embedded fixtures; when nil, only files on disk are found.
var Fixtures fs.FS

type emulateOptions struct {
	outDir     string
	kernel     string
	quiet      bool
	noSweep    bool
	sweepEvery uint64
}

// NewCmdEmulate builds `unwind emulate SCENARIO -o DIR`: it runs a scenario
// (a file path, or the name of a built-in scenario) on the emulator, writes
// each snapshot as DIR/NAME.core plus DIR/NAME.truth.json, and prints the
// console output and a summary. A failed invariant is reported with its
// name and place, and the command exits with ExitFailure.
func NewCmdEmulate(ios *IOStreams) *cobra.Command {
	opts := &emulateOptions{}
	cmd := &cobra.Command{
		Use:   "emulate SCENARIO -o DIR",
		Short: "Run an emulator scenario and write its snapshots",
		Long: `Run a scenario on the embedded x86-64 entry-path emulator.

SCENARIO is a scenario file or the name of a built-in scenario
(fixtures/scenarios/NAME.scenario). Each snapshot is written to DIR as an ELF
core file (NAME.core) with its ground truth (NAME.truth.json); gdb opens the
core next to the fixture kernel ELF. Exit status 1 when an invariant fails.

An invariant marked expect=fail documents the bug a scenario demonstrates:
it is listed as an "expected failure" and the exit status stays 0 when it
fails as expected (1 if it holds). A scenario's sweep directives repeat the
run once per instruction of a window, the event arriving at each in turn,
and report every invariant per point (--no-sweep skips them).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runEmulate(ios, opts, args[0])
		},
	}
	cmd.Flags().StringVarP(&opts.outDir, "output", "o", ".", "directory for snapshot files")
	cmd.Flags().StringVar(&opts.kernel, "kernel", "", "kernel ELF to run instead of the scenario's fixture kernel")
	cmd.Flags().BoolVarP(&opts.quiet, "quiet", "q", false, "do not print the console output")
	cmd.Flags().BoolVar(&opts.noSweep, "no-sweep", false, "skip the scenario's sweep directives")
	cmd.Flags().Uint64Var(&opts.sweepEvery, "sweep-every", 1, "run only every Nth arrival point of each sweep (and the last)")
	return cmd
}

// readFixture reads name from disk, else from Fixtures.
func readFixture(name string) ([]byte, string, error) {
	if b, err := os.ReadFile(name); err == nil {
		return b, name, nil
	}
	if Fixtures != nil {
		for _, p := range []string{name, strings.TrimPrefix(name, "fixtures/")} {
			if b, err := fs.ReadFile(Fixtures, path.Clean(p)); err == nil {
				return b, p, nil
			}
		}
	}
	return nil, "", fmt.Errorf("%s: not found", name)
}

func loadScenario(arg string) (*emu.Scenario, error) {
	text, _, err := readFixture(arg)
	if err != nil && !strings.ContainsAny(arg, "/\\") {
		name := strings.TrimSuffix(arg, ".scenario")
		text, _, err = readFixture("fixtures/scenarios/" + name + ".scenario")
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: not a file or a built-in scenario", arg)
	}
	name := strings.TrimSuffix(filepath.Base(arg), ".scenario")
	return emu.ParseScenario(name, text)
}

func runEmulate(ios *IOStreams, opts *emulateOptions, arg string) error {
	sc, err := loadScenario(arg)
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	kpath := opts.kernel
	if kpath == "" {
		kpath = "fixtures/kernel/build/kernel-" + sc.Kernel + ".elf"
	}
	kernel, kname, err := readFixture(kpath)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("kernel: %w", err)}
	}
	if err := os.MkdirAll(opts.outDir, 0o755); err != nil {
		return &ExitError{Code: ExitFailure, Err: err}
	}
	var written []string
	res, err := emu.RunScenario(sc, kernel, emu.RunOptions{
		KernelPath: kname,
		OnSnapshot: func(s *emu.Snapshot) error {
			core := filepath.Join(opts.outDir, s.Name+".core")
			if err := os.WriteFile(core, s.Core, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(opts.outDir, s.Name+".truth.json"), s.Truth, 0o644); err != nil {
				return err
			}
			written = append(written, fmt.Sprintf("snapshot %s: %s -> %s", s.Name, s.Where, core))
			return nil
		},
	})
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: err}
	}
	out := ios.Out
	fmt.Fprintf(out, "scenario %s (kernel %s, %d cpu(s)): %s after %d steps, %d instructions\n",
		sc.Name, sc.Kernel, sc.CPUs, res.StopReason, res.Steps, res.Instructions)
	if con := res.Machine.Console(); len(con) > 0 && !opts.quiet {
		fmt.Fprintf(out, "console:\n%s", con)
		if con[len(con)-1] != '\n' {
			fmt.Fprintln(out)
		}
	}
	for _, w := range written {
		fmt.Fprintln(out, w)
	}
	for _, f := range res.Expected {
		fmt.Fprintf(out, "expected failure (the bug this scenario shows): %s\n", f)
	}
	fmt.Fprintf(out, "invariants: %d checked, %d failed\n", len(sc.Invariants), len(res.Failures))
	failures := res.Failures
	if len(sc.Sweeps) > 0 && !opts.noSweep {
		srs, err := emu.SweepScenario(sc, kernel, emu.SweepOptions{RunOptions: emu.RunOptions{KernelPath: kname}, Every: opts.sweepEvery})
		if err != nil {
			return &ExitError{Code: ExitFailure, Err: err}
		}
		for _, sr := range srs {
			fmt.Fprint(out, sr.String())
			failures = append(failures, sr.Failures...)
		}
		if len(srs) > 0 {
			fmt.Fprintf(out, "sweeps: %d run, %d invariant failures\n", len(srs), len(failures)-len(res.Failures))
		}
	}
	if len(failures) == 0 {
		return nil
	}
	var msgs []string
	for _, f := range failures {
		fmt.Fprintln(ios.ErrOut, f.String())
		msgs = append(msgs, f.Invariant)
	}
	return &ExitError{Code: ExitFailure, Err: errors.New("failed invariants: " + strings.Join(msgs, ", "))}
}
