package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release of the unwind command; set at link time with
// -ldflags "-X github.com/unwind-dev/unwind/internal/cli.Version=v1.2.3".
var Version = "devel"

// NewCmdVersion builds `unwind version`.
func NewCmdVersion(ios *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of unwind and of the Go toolchain that built it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := Version
			goVer := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVer = bi.GoVersion
				if v == "devel" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v = bi.Main.Version
				}
			}
			fmt.Fprintf(ios.Out, "unwind %s (%s, JSON output version %d)\n", v, goVer, JSONVersion)
			return nil
		},
	}
}
