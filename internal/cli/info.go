package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/report"
)

// NewCmdInfo builds `unwind info CORE`.
func NewCmdInfo(ios *IOStreams) *cobra.Command {
	output := outputText
	cmd := &cobra.Command{
		Use:   "info CORE",
		Short: "Say what a dump is: kind, release, threads or CPUs, and which one crashed and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := dump.Open(args[0])
			if err != nil {
				return err
			}
			defer d.Close()
			info := d.Info()
			if output == outputJSON {
				return writeJSON(ios.Out, map[string]any{"version": JSONVersion, "dump": info})
			}
			fmt.Fprintf(ios.Out, "file:     %s\nkind:     %s (%s)\n", args[0], info.Kind, info.Format)
			if info.Release != "" {
				fmt.Fprintf(ios.Out, "release:  %s\n", info.Release)
			}
			if info.CrashTime != nil {
				fmt.Fprintf(ios.Out, "crashed:  %s\n", info.CrashTime.UTC().Format("2006-01-02 15:04:05 MST"))
			}
			if info.Comm != "" {
				fmt.Fprintf(ios.Out, "command:  %s (pid %d) %s\n", info.Comm, info.Pid, info.Args)
			}
			if info.Signal != 0 {
				fmt.Fprintf(ios.Out, "signal:   %d %s code %d", info.Signal, report.SignalName(info.Signal), info.SigCode)
				if info.FaultAddr != "" {
					fmt.Fprintf(ios.Out, " at %s", info.FaultAddr)
				}
				fmt.Fprintln(ios.Out)
			}
			for i, th := range info.Threads {
				line := fmt.Sprintf("thread %d", th.TID)
				if th.CPU >= 0 {
					line = fmt.Sprintf("cpu %d", th.CPU)
				}
				line += fmt.Sprintf(": pc %s sp %s", th.PC, th.SP)
				if th.Comm != "" {
					line += " task " + th.Comm
				}
				if i == info.Crashed {
					line += "  <- crashed"
					if info.Reason != "" {
						line += ": " + info.Reason
					}
				}
				fmt.Fprintln(ios.Out, line)
			}
			for _, w := range info.Warnings {
				fmt.Fprintln(ios.ErrOut, "warning:", w)
			}
			return nil
		},
	}
	cmd.Flags().VarP(&output, "output", "o", "output format: text or json")
	return cmd
}
