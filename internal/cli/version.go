package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release of the unwind command; set at link time with
// -ldflags "-X github.com/unwind-dev/unwind/internal/cli.Version=v1.2.3".
// Left as "devel", the module version Go embedded is used when there is one.
var Version = "devel"

// versionLine says which unwind this is: its version, the commit it was
// built from (and whether the tree had uncommitted changes), when Go's
// embedded build information has them, the Go toolchain and the JSON
// output version. `unwind version` and `unwind --version` print it.
func versionLine() string {
	v, goVer, commit := Version, "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVer = bi.GoVersion
		if v == "devel" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			commit = ", commit " + rev
			if modified == "true" {
				commit += " with local changes"
			}
		}
	}
	return fmt.Sprintf("unwind %s (%s%s, JSON output version %d)", v, goVer, commit, JSONVersion)
}

// NewCmdVersion builds `unwind version`.
func NewCmdVersion(ios *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of unwind, the commit and the Go toolchain that built it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(ios.Out, versionLine())
			return nil
		},
	}
}
