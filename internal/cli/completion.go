package cli

import (
	"strings"

	"github.com/spf13/cobra"

	unwindfixtures "github.com/unwind-dev/unwind"
)

// addCompletions makes `unwind completion SHELL` complete flag values and
// arguments, not only flag names: -o/--output (text, json), --methods (the
// strategies bt knows, comma-separated), scenario names for emulate and
// verify, and files for the commands that take a dump.
func addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup("output"); f != nil {
			_ = c.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
		}
		if f := c.Flags().Lookup("methods"); f != nil {
			_ = c.RegisterFlagCompletionFunc("methods", completeMethods)
		}
		switch c.Name() {
		case "emulate", "verify":
			c.ValidArgsFunction = completeScenarios
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func fixedCompletion(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, v := range values {
			if strings.HasPrefix(v, toComplete) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// methodCandidates are the names --methods may take; completion offers
// those parseMethods accepts, so a strategy added there appears here once
// it is listed.
var methodCandidates = []string{"all", "orc", "cfi", "fp", "ptregs", "signal", "scan"}

// completeMethods completes the last item of a comma-separated --methods
// value.
func completeMethods(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	done, last := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		done, last = toComplete[:i+1], toComplete[i+1:]
	}
	var out []cobra.Completion
	for _, m := range methodCandidates {
		if m == "all" && done != "" {
			continue
		}
		if strings.HasPrefix(m, last) && !strings.Contains(","+done, ","+m+",") {
			if _, err := parseMethods(m); err == nil {
				out = append(out, done+m)
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completeScenarios offers the built-in scenario names, and files (a
// scenario may be a file).
func completeScenarios(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, s := range unwindfixtures.Scenarios() {
		if strings.HasPrefix(s, toComplete) {
			out = append(out, s)
		}
	}
	return out, cobra.ShellCompDirectiveDefault
}
