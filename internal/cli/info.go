package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/report"
)

// NewCmdInfo builds `unwind info CORE`.
func NewCmdInfo(ios *IOStreams) *cobra.Command {
	output := outputText
	sf := &symbolFlags{}
	cmd := &cobra.Command{
		Use:   "info CORE",
		Short: "Say what a dump is: kind, release, threads or CPUs, and which one crashed and why",
		Long: `info says what a dump holds without unwinding it: the kind of dump (user
core, kernel vmcore in ELF or compressed kdump format, emulator snapshot),
for a kernel its release, version, taint state, the crash message from its
log buffer and the time of its newest log record, for a user core the
command, executable, fatal signal and auxiliary vector; then every thread
or CPU with its PC and SP, and which one crashed and why.

The same symbol flags as bt help: with vmlinux (--sym) or System.map a
vmcore's CPUs get their current task and the crashing CPU is found from
panic_cpu, crashing_cpu or die_owner, from the log's caller id, or from a
CPU stopped in a crash-path function.`,
		Example: `  unwind info vmcore --sym vmlinux
  unwind info core -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, warnings, err := openInfoDump(args[0], sf)
			if err != nil {
				return err
			}
			defer d.Close()
			info := d.Info()
			if output == outputJSON {
				return writeJSON(ios.Out, map[string]any{"version": JSONVersion, "dump": info})
			}
			writeInfo(ios.Out, args[0], &info)
			if !sf.given() && info.Kind == dump.KindVmcore {
				warnings = warnings[:0]
				fmt.Fprintln(ios.ErrOut, "note: give vmlinux (--sym) or --system-map for each CPU's task, the taint state and the crashing CPU")
			}
			for _, w := range append(warnings, info.Warnings...) {
				warn(ios, w)
			}
			return nil
		},
	}
	sf.register(cmd.Flags())
	cmd.Flags().VarP(&output, "output", "o", "output format: text or json")
	return cmd
}

func writeInfo(w io.Writer, path string, info *dump.Info) {
	line := func(k, format string, args ...any) {
		fmt.Fprintf(w, "%-9s %s\n", k+":", report.Escape(fmt.Sprintf(format, args...)))
	}
	line("file", "%s", path)
	format := info.Format
	if info.Compression != "" {
		format += ", " + info.Compression + " pages"
	}
	if info.Flattened {
		format += ", flattened"
	}
	line("kind", "%s (%s)", info.Kind, format)
	if info.Excluded != "" {
		line("excluded", "%s", info.Excluded)
	}
	if info.Release != "" {
		line("release", "%s", info.Release)
	}
	if info.KernelOffsetSource != "" {
		line("kaslr", "offset %s, from %s", info.KernelOffset, info.KernelOffsetSource)
	}
	if info.Version != "" {
		line("version", "%s", info.Version)
	}
	if info.Taint != "" {
		line("taint", "%s", info.Taint)
	}
	if len(info.TaintingModules) > 0 {
		line("tainting", "%s", strings.Join(info.TaintingModules, " "))
	}
	if info.KdumpReady {
		line("kdump", "a crash kernel was loaded")
	}
	if info.CrashTime != nil {
		src := ""
		switch info.CrashTimeSource {
		case "tk_core":
			src = " (the kernel's wall clock, tk_core)"
		case "kdump header":
			src = " (kdump header)"
		}
		line("time", "%s%s", info.CrashTime.UTC().Format("Mon Jan _2 15:04:05 MST 2006"), src)
	}
	if info.LogTime != nil {
		line("log", "newest record at [%12.6f] after boot", *info.LogTime)
	}
	if info.Panic != "" {
		line("panic", "%s", info.Panic)
	}
	if info.Comm != "" {
		line("command", "%s (pid %d) %s", info.Comm, info.Pid, info.Args)
	}
	if info.Exe != "" {
		line("exe", "%s", info.Exe)
	}
	if info.Signal != 0 {
		s := fmt.Sprintf("%d %s", info.Signal, info.SigName)
		if info.CodeName != "" {
			s += fmt.Sprintf(" (%s)", info.CodeName)
		} else if info.SigCode != 0 {
			s += fmt.Sprintf(" code %d", info.SigCode)
		}
		if info.FaultAddr != "" {
			s += " at " + info.FaultAddr
		}
		if info.SigPid != 0 {
			s += fmt.Sprintf(" from pid %d", info.SigPid)
		}
		line("signal", "%s", s)
	}
	if info.Mappings > 0 {
		line("mappings", "%d files (NT_FILE)", info.Mappings)
	}
	if len(info.Auxv) > 0 {
		var parts []string
		for _, a := range info.Auxv {
			switch a.Type {
			case "AT_ENTRY", "AT_BASE", "AT_PHDR", "AT_SYSINFO_EHDR", "AT_PAGESZ", "AT_HWCAP", "AT_HWCAP2", "AT_SECURE":
				parts = append(parts, a.Type+"="+a.Value)
			}
		}
		line("auxv", "%d entries: %s", len(info.Auxv), strings.Join(parts, " "))
	}
	for i, th := range info.Threads {
		s := fmt.Sprintf("thread %d", th.TID)
		if th.CPU >= 0 {
			s = fmt.Sprintf("cpu %d", th.CPU)
			if th.TID != 0 || th.Comm != "" {
				s += fmt.Sprintf(" pid %d", th.TID)
			}
		}
		s += fmt.Sprintf(": pc %s sp %s", th.PC, th.SP)
		if th.Mode != "" {
			s += " " + th.Mode + " mode"
		}
		if th.Comm != "" {
			s += " task " + th.Comm
		}
		if i == info.Crashed {
			s += "  <- crashed"
			if info.Reason != "" {
				s += ": " + info.Reason
			}
		}
		fmt.Fprintln(w, report.Escape(s))
	}
	if info.Crashed < 0 && info.Kind != dump.KindUserCore {
		fmt.Fprintln(w, noCrashedCPU(info))
	}
}

// openInfoDump opens a dump for info: with its symbols for a kernel dump
// (they tell the CPUs' tasks and the crashing CPU), without them for a
// user core unless a symbol flag asks (info never unwinds).
func openInfoDump(path string, sf *symbolFlags) (*openedDump, []string, error) {
	if !sf.given() && sf.exe == "" && sf.sysroot == "" && len(sf.searchDirs) == 0 {
		d, err := dump.Open(path)
		if err != nil {
			return nil, nil, err
		}
		if d.Kind() == dump.KindUserCore {
			return &openedDump{Dump: d}, nil, nil
		}
		d.Close()
	}
	return openDump(path, sf)
}

// noCrashedCPU says why no CPU is marked crashed, without contradicting a
// crash message printed above it.
func noCrashedCPU(info *dump.Info) string {
	if info.Panic != "" {
		return "no CPU is known to have crashed: panic_cpu, crashing_cpu and die_owner are unset, and the log's crash message names no CPU"
	}
	return "no CPU is known to have crashed (panic_cpu, crashing_cpu and die_owner unset, no crash message in the log)"
}
