package cli

import (
	"bufio"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/linux"
)

type logOptions struct {
	output outputFormat
	levels bool
	caller bool
}

// NewCmdLog builds `unwind log VMCORE`: the kernel log from the dump.
func NewCmdLog(ios *IOStreams) *cobra.Command {
	opts := &logOptions{output: outputText}
	cmd := &cobra.Command{
		Use:   "log VMCORE",
		Short: "Print the kernel log (the printk ring buffer) from a kernel dump",
		Long: `log prints the kernel's log buffer as it was when the dump was taken, every
record the ring buffer still holds, oldest first, with the timestamps the
kernel prints ("[    1.234567] text", as dmesg and crash's log do). It needs
no symbol files: the printk ring buffer's layout comes from the dump's
VMCOREINFO (Linux 5.10 and later).

-m prefixes each line with its level as dmesg -r and crash's log -m do
("<6>"; facility*8+level for non-kernel facilities), --caller with the task
or CPU that printed it ("[T118]", "[C1]", as CONFIG_PRINTK_CALLER prints).
-o json gives every record with seq, time, level, facility, caller and text.`,
		Example: `  unwind log vmcore
  unwind log vmcore -m | grep '^<[0-3]>'
  unwind log vmcore -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLog(ios, opts, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.levels, "levels", "m", false, "prefix each line with its log level, <N>")
	f.BoolVar(&opts.caller, "caller", false, "add the task or CPU that printed each record, [T118] or [C1]")
	f.VarP(&opts.output, "output", "o", "output format: text or json")
	return cmd
}

type logRecordJSON struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"` // seconds since boot, as the kernel prints them
	TimeNS   int64  `json:"time_ns"`
	Level    uint8  `json:"level"`
	Facility uint8  `json:"facility"`
	Caller   string `json:"caller,omitempty"`
	Text     string `json:"text"`
}

func runLog(ios *IOStreams, opts *logOptions, path string) error {
	d, err := dump.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if d.Kind() != dump.KindVmcore {
		return usagef("%s is a %s: log reads kernel dumps", path, d.Kind())
	}
	k, err := linux.Open(d, dump.SymbolOptions{})
	if err != nil {
		return err
	}
	recs := k.Log(-1)
	if len(recs) == 0 {
		return fmt.Errorf("%s: no kernel log found (its VMCOREINFO describes no printk ring buffer, which Linux has since 5.10, or the buffer is not in the dump)", path)
	}
	if opts.output == outputJSON {
		out := make([]logRecordJSON, len(recs))
		for i := range recs {
			r := &recs[i]
			out[i] = logRecordJSON{r.Seq, logTime(r.Time), int64(r.Time), r.Level, r.Facility, r.CallerString(), r.Text}
		}
		return writeJSON(ios.Out, map[string]any{"version": JSONVersion, "records": out})
	}
	w := bufio.NewWriter(ios.Out)
	for i := range recs {
		r := &recs[i]
		prefix := ""
		if opts.levels {
			prefix = fmt.Sprintf("<%d>", int(r.Facility)<<3|int(r.Level))
		}
		prefix += "[" + logTime(r.Time) + "]"
		if opts.caller {
			prefix += fmt.Sprintf("[%6s]", r.CallerString())
		}
		// A record of several lines prints its further lines indented
		// under the first, as dmesg and makedumpfile --dump-dmesg do.
		for j, line := range strings.Split(strings.TrimSuffix(r.Text, "\n"), "\n") {
			if j == 1 {
				prefix = strings.Repeat(" ", len(prefix))
			}
			fmt.Fprintf(w, "%s %s\n", prefix, report.Escape(line))
		}
	}
	return w.Flush()
}

// logTime formats a time since boot as printk does: "%5lu.%06lu".
func logTime(t time.Duration) string {
	us := t.Microseconds()
	return fmt.Sprintf("%5d.%06d", us/1e6, us%1e6)
}
