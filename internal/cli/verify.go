package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/internal/verify"
)

type verifyOptions struct {
	all        bool
	every      uint64
	output     outputFormat
	mismatches int
}

// NewCmdVerify builds `unwind verify SCENARIO... | --all`: it runs each
// scenario on the emulator and, at every instruction boundary of every CPU
// (or every N-th), unwinds the live state with three strategy sets (CFI
// only, frame pointers, combined) and compares each trace with the
// emulator's shadow stack.
func NewCmdVerify(ios *IOStreams) *cobra.Command {
	opts := &verifyOptions{output: outputText, every: 1, mismatches: 3}
	cmd := &cobra.Command{
		Use:   "verify SCENARIO... | --all",
		Short: "Check the unwinder against the emulator's ground truth at every instruction",
		Long: `verify runs emulator scenarios and, at every instruction boundary of every
CPU (or every N-th with --every), unwinds the live machine state three ways —
cfi (DWARF CFI alone), fp (frame pointers plus pt_regs detection) and
combined (every strategy) — and compares each trace with the emulator's
shadow stack: per frame the PC, the CFA, whether and by what it was
interrupted, and the interrupted registers.

Each boundary is counted, per strategy, as
  exact           the trace equals the truth
  flagged         it does not, and says so (unreliable or stopped on an
                  error) without marking a wrong frame reliable
  wrong_reliable  it does not, yet claims to be reliable (must be 0)
  wrong_flagged   flagged as a whole, but a frame marked reliable is wrong
                  (must be 0)

A frame counts as marked reliable unless the trace says otherwise, the
frames a corrupt stack invalidates included (the walk names them when it
finds the stack inconsistent). Scenarios that declare that their bug
destroys what an unwinder reads (a "corrupts stack|code" line) need not be
exact with CFI, but must miss somewhere. The first mismatches are shown
with disassembly and both traces. Exit status 1 when any wrong_reliable or
wrong_flagged > 0, when a scenario that declares no corruption is not 100%
exact with CFI, or when one that declares it is.`,
		Example: `  unwind verify nmi-irq-task
  unwind verify --all --every 10
  unwind verify --all -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(ios, opts, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.all, "all", false, "verify every built-in scenario")
	f.Uint64Var(&opts.every, "every", 1, "check every `N`-th boundary of each CPU")
	f.IntVar(&opts.mismatches, "mismatches", 3, "mismatches shown per strategy and verdict")
	f.VarP(&opts.output, "output", "o", "output format: text or json")
	return cmd
}

func runVerify(ios *IOStreams, opts *verifyOptions, args []string) error {
	if opts.all == (len(args) > 0) {
		return usagef("give scenario names or files, or --all")
	}
	if opts.every == 0 {
		return usagef("--every must be at least 1")
	}
	if opts.all {
		args = unwindfixtures.Scenarios()
	}
	var results []*verify.Result
	bar := newProgress(ios, len(args))
	for i, arg := range args {
		sc, err := loadScenario(arg)
		if err != nil {
			bar.done()
			return &ExitError{Code: ExitUsage, Err: err}
		}
		kernel, _, err := readFixture("fixtures/kernel/build/kernel-" + sc.Kernel + ".elf")
		if err != nil {
			bar.done()
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("kernel: %w", err)}
		}
		bar.update(i, sc.Name, 0)
		mm := opts.mismatches
		if mm == 0 || opts.output == outputJSON {
			mm = -1
		}
		r, err := verify.Run(sc, kernel, verify.Options{
			Every: opts.every, MaxMismatches: mm,
			Progress: func(n uint64) { bar.update(i, sc.Name, n) },
		})
		if err != nil {
			bar.done()
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%s: %w", sc.Name, err)}
		}
		results = append(results, r)
	}
	bar.done()
	var err error
	if opts.output == outputJSON {
		err = verify.WriteJSON(ios.Out, results)
	} else {
		err = verify.WriteText(ios.Out, results)
	}
	if err != nil {
		return err
	}
	var problems []string
	for _, r := range results {
		problems = append(problems, r.Problems()...)
	}
	if len(problems) > 0 {
		where := "the FAIL lines above"
		if opts.output == outputJSON {
			where = `"problems" in the JSON`
		}
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("the unwinder misses the bar in %d place(s) (%s)", len(problems), where)}
	}
	return nil
}

// progress draws a one-line progress bar on stderr when stdout is a
// terminal (the report goes to stdout; the bar never mixes into a pipe).
type progress struct {
	ios   *IOStreams
	total int
	on    bool
	last  time.Time
}

func newProgress(ios *IOStreams, total int) *progress {
	return &progress{ios: ios, total: total, on: ios.IsTerminal && isTTY(ios.ErrOut)}
}

// isTTY reports whether w is a terminal: a character device other than
// the null device (IOStreams.IsTerminal alone counts stdout = /dev/null).
func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

func (p *progress) update(i int, name string, boundaries uint64) {
	if !p.on {
		return
	}
	now := time.Now()
	if boundaries != 0 && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	fill := width * i / max(p.total, 1)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	fmt.Fprintf(p.ios.ErrOut, "\r\x1b[K%s %d/%d %s: %d boundaries", bar, i, p.total, name, boundaries)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.ios.ErrOut, "\r\x1b[K")
		p.on = false
	}
}
