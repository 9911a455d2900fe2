package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/internal/report"
)

// Main runs the unwind command with os.Args and returns the process exit
// code (see the Exit constants).
func Main() int {
	setProcessGC()
	return Run(System(), os.Args[1:])
}

// processGCPercent is the garbage collector's target for the command as a
// process: heap growth of 400% of the live heap between collections, where
// Go's default is 100%. A run's live heap is small (10-17 MB for every
// task of a ~300-task dump with an empty debug cache, under 10 MB for a
// 100,000-frame core, whose frames are streamed), so the peak stays a few
// tens of MB, while a first kernel run collects twice instead of eight
// times: 3.4 instead of 14-17 ms of collector CPU (GODEBUG=gctrace=1).
const processGCPercent = 400

// setProcessGC sets processGCPercent unless the user set GOGC. Only Main
// does this: a program that links the packages keeps its own setting.
func setProcessGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(processGCPercent)
	}
}

// Run runs the unwind command with args against ios and returns the exit
// code. Tests call it with buffers.
func Run(ios *IOStreams, args []string) (code int) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer faultExit(ios.ErrOut, &code)
	root := NewCmdRoot(ios)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(ios.ErrOut, "unwind:", report.Escape(ee.Err.Error()))
		}
		return ee.Code
	}
	fmt.Fprintln(ios.ErrOut, "unwind:", report.Escape(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// faultExit, deferred with the goroutine's faults turned into panics
// (debug.SetPanicOnFault), reports a memory fault as an error and sets
// *code to ExitFailure instead of letting the runtime crash: symbol and
// debug files are read through read-only mappings, and a file another
// process truncates while unwind reads it faults (SIGBUS) on access to
// the pages it no longer has. Any other panic goes on.
func faultExit(errOut io.Writer, code *int) {
	r := recover()
	if r == nil {
		return
	}
	// A nil dereference is a bug, not a file: those fault in the first
	// pages (and panic whether or not faults are turned into panics).
	fault, ok := r.(interface{ Addr() uintptr })
	if !ok || fault.Addr() < 1<<16 {
		panic(r)
	}
	fmt.Fprintf(errOut, "unwind: reading a mapped file faulted at %#x: a symbol or debug file was truncated or changed while unwind read it\n", fault.Addr())
	*code = ExitFailure
}

// usageError marks an error caused by the command line itself.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func init() {
	if Fixtures == nil {
		Fixtures = unwindfixtures.FS()
	}
}

// NewCmdRoot builds the root command with every subcommand attached.
func NewCmdRoot(ios *IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "unwind",
		Short: "x86-64 stack unwinder and crash-dump analyzer",
		Long: `unwind finds the true call chain in x86-64 stack memory, across the pt_regs
frames that interrupt, exception, NMI and syscall entry leave on the stack.

Exit codes: 0 success (bt: every requested trace printed and reliable, or
cut only by --max-frames); 1 failure, nothing useful printed (unreadable
or refused input; verify: a wrong frame marked reliable; emulate: a failed
invariant); 2 usage error; 3 traces printed, but some trace is unreliable
or stopped on an error, or some requested thread or task could not be read.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetIn(ios.In)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(
		NewCmdVersion(ios),
		NewCmdSymbolize(ios),
		NewCmdBt(ios),
		NewCmdPs(ios),
		NewCmdInfo(ios),
		NewCmdMods(ios),
		NewCmdLog(ios),
		NewCmdEmulate(ios),
		NewCmdVerify(ios),
		NewCmdDemo(ios),
	)
	addCompletions(root)
	return root
}

// isCobraUsage reports errors cobra raises for argument-count and unknown
// command problems, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
