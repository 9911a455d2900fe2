package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/internal/verify"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

type btOptions struct {
	symbolFlags
	cpu       int
	thread    int
	methods   string
	output    outputFormat
	maxFrames int
	lines     bool
	values    valueFlags
	pids      []int
	tasks     bool
	noGroup   bool
}

// NewCmdBt builds `unwind bt CORE`.
func NewCmdBt(ios *IOStreams) *cobra.Command {
	opts := &btOptions{output: outputText, cpu: -1, thread: -1}
	cmd := &cobra.Command{
		Use:   "bt CORE",
		Short: "Print the backtrace of every thread or CPU in a crash dump",
		Long: `bt unwinds every thread of a user core, or every CPU of a kernel vmcore or an
emulator snapshot, across interrupt, exception, NMI and syscall entries.

Kernel traces are printed the way the kernel prints its own ("Call Trace:",
<NMI> <IRQ> <TASK> sections, a RIP: line and register block at each pt_regs,
"? " for entries found only by scanning the stack). User threads are printed
as a numbered list like gdb's. -o json prints the versioned JSON document.

Exit status: 0 when every requested trace was printed and is reliable (or
cut only by --max-frames); 1 when nothing useful was printed (unreadable or
refused input); 2 on a usage error; 3 when traces were printed but some
trace is unreliable or stopped on an error (an excluded page, a corrupt
stack), or some requested thread, CPU or task could not be read.`,
		Example: `  unwind bt vmcore --sym vmlinux
  unwind bt core --exe ./prog --search ./lib -o json
  unwind bt snapshot.core --sym fixtures/kernel/build/kernel-fp.elf --cpu 0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBt(ios, opts, args[0])
		},
	}
	f := cmd.Flags()
	opts.register(f)
	f.IntVar(&opts.cpu, "cpu", -1, "only this CPU (kernel dumps)")
	f.IntVar(&opts.thread, "thread", -1, "only this thread id (user cores)")
	f.IntSliceVar(&opts.pids, "pid", nil, "the task with this pid (kernel dumps; repeatable, or a comma list; 0: the idle tasks)")
	f.BoolVar(&opts.tasks, "tasks", false, "every task of a kernel dump, not just each CPU's; identical stacks print once (text)")
	f.BoolVar(&opts.noGroup, "no-group", false, "with --tasks: print every task's stack, even when identical to another's")
	f.BoolVarP(&opts.lines, "lines", "l", false, "kernel frames: add the source file and line, and inlined functions (crash's bt -l)")
	f.StringVar(&opts.methods, "methods", "all", "unwind strategies: all, or a comma list of orc,cfi,fp,ptregs,signal,scan")
	f.IntVar(&opts.maxFrames, "max-frames", unwind.DefaultMaxFrames, "stop a walk after this many frames, counting inlined ones (0: no limit); a trace cut there says so and is no error")
	f.VarP(&opts.output, "output", "o", "output format: text or json")
	opts.values.register(f)
	return cmd
}

// parseMethods turns "cfi,fp" into the unwinder's strategy set.
func parseMethods(s string) (unwind.Method, error) {
	if s == "" || s == "all" {
		return 0, nil
	}
	var m unwind.Method
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "orc":
			m |= unwind.MethodORC
		case "cfi":
			m |= unwind.MethodCFI
		case "fp":
			m |= unwind.MethodFP
		case "ptregs":
			m |= unwind.MethodPtRegs
		case "signal":
			m |= unwind.MethodSignal
		case "scan":
			m |= unwind.MethodScan
		default:
			return 0, fmt.Errorf("unknown method %q (want orc, cfi, fp, ptregs, signal, scan)", p)
		}
	}
	return m, nil
}

func runBt(ios *IOStreams, opts *btOptions, path string) error {
	methods, err := parseMethods(opts.methods)
	if err != nil {
		return usageError{err}
	}
	d, warnings, err := openDump(path, &opts.symbolFlags)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, w := range warnings {
		warn(ios, w)
	}
	info := d.Info()
	doc := &report.Document{Dump: report.DumpInfo{Kind: string(info.Kind), Path: path, Release: info.Release, Extra: dumpFacts(&info)}}
	kernel := info.Kind != "user-core"
	var stackHeader, hardware string
	threads := d.Threads()
	if d.k != nil {
		stackHeader, hardware = d.k.StackHeader(), d.k.HardwareName()
		threads = d.k.CPUs()
	}
	if err := d.ThreadsErr(); err != nil {
		return err // the notes hold no registers: say where they end
	}
	if len(opts.pids) > 0 || opts.tasks {
		return runBtTasks(ios, opts, d, doc, &info, methods)
	}
	stopped, unreliable, unreadable := 0, 0, 0
	cpuTasks := runningTasks(d)
	// Each trace is printed as soon as it is walked and then dropped:
	// memory is one trace's, whatever the number of threads.
	var out *report.Writer
	if opts.output == outputJSON {
		out = report.NewJSONWriter(ios.Out, doc.Dump)
	} else {
		out = report.NewTextWriter(ios.Out, report.TextOptions{Lines: opts.lines, Locals: opts.values.locals})
	}
	printed := 0
	for i, th := range threads {
		if opts.cpu >= 0 && th.CPU != opts.cpu {
			continue
		}
		if opts.thread >= 0 && th.TID != opts.thread {
			continue
		}
		maxFrames := opts.maxFrames
		if maxFrames == 0 {
			maxFrames = -1 // the library's "no limit"
		}
		uo := unwind.Options{Methods: methods, MaxFrames: maxFrames}
		var tr dump.Trace
		var rec *unwind.Recording
		switch {
		case d.k != nil:
			tr, err = d.k.UnwindCPU(i, uo)
		case opts.values.wanted():
			if info.Kind == dump.KindEmulator {
				emu.EntryConventions(&uo, verify.SymbolAddr(d.set))
			}
			tr, err = d.Unwind(i, d.set, uo)
		default:
			if info.Kind == dump.KindEmulator {
				emu.EntryConventions(&uo, verify.SymbolAddr(d.set))
			}
			// The frames stay compact until they are printed (a deep
			// recursion would need 560 bytes a frame): only JSON prints
			// each frame's registers.
			rec, err = d.Record(i, d.set, uo, opts.output == outputJSON)
			if err == nil {
				tr = dump.Trace{Reliable: rec.Reliable(), StopReason: rec.StopReason(), Err: rec.Err(), Truncated: rec.Truncated(), Mem: d.Memory()}
			}
		}
		if err != nil {
			// The others may still be read: say which one was not.
			fmt.Fprintf(ios.ErrOut, "unwind: %s: %s\n", threadName(th, kernel), report.Escape(err.Error()))
			unreadable++
			continue
		}
		switch {
		case tr.Err != nil:
			stopped++
		case !tr.Reliable:
			unreliable++
		}
		values := opts.values.compute(tr.Frames, tr.Mem, d.set)
		t := &report.Thread{
			TID: th.TID, CPU: th.CPU, Crashed: th.Crashed, Signal: th.Signal, Comm: th.Comm,
			Kernel: kernel, Regs: th.Regs, Frames: tr.Frames, Record: rec, Reliable: tr.Reliable, StopReason: tr.StopReason,
			Truncated: tr.Truncated, Unwalked: -1, Code: tr.Mem, StackHeader: stackHeader, Hardware: hardware,
			Values: values, Task: cpuTasks[i],
		}
		if th.Crashed && info.Kind == dump.KindVmcore {
			t.CrashReason = info.Reason
			if q, ok := d.QEMUState(th.CPU); ok {
				t.Control = &ptregs.ControlRegs{FSBase: q.FSBase, GSBase: q.GSBase, KernelGSBase: q.KernelGSBase,
					FS: q.FS, GS: q.GS, DS: q.DS, ES: q.ES, CR0: q.CR0, CR2: q.CR2, CR3: q.CR3, CR4: q.CR4}
			}
		}
		if err := out.Thread(t); err != nil {
			return err
		}
		printed++
	}
	if printed == 0 {
		if unreadable > 0 {
			return fmt.Errorf("no trace could be read (%d failed)", unreadable)
		}
		return fmt.Errorf("no thread or CPU matches the selection (the dump has %d: %s)", len(d.Threads()), threadList(d.Threads()))
	}
	if err := out.Close(); err != nil {
		return err
	}
	return partialExit(stopped, unreliable, unreadable)
}

// partialExit is bt's verdict once traces were printed: nil (exit 0) when
// every one is reliable or cut only by the frame limit, else ExitPartial
// with a summary of what is wrong.
func partialExit(stopped, unreliable, unreadable int) error {
	var why []string
	if stopped > 0 {
		why = append(why, fmt.Sprintf("%d trace(s) stopped on an error", stopped))
	}
	if unreliable > 0 {
		why = append(why, fmt.Sprintf("%d trace(s) unreliable", unreliable))
	}
	if unreadable > 0 {
		why = append(why, fmt.Sprintf("%d requested trace(s) could not be read", unreadable))
	}
	if len(why) == 0 {
		return nil
	}
	return &ExitError{Code: ExitPartial, Err: errors.New(strings.Join(why, ", "))}
}

// threadName names a thread or CPU in a message.
func threadName(th dump.Thread, kernel bool) string {
	if kernel {
		return fmt.Sprintf("cpu %d", th.CPU)
	}
	return fmt.Sprintf("thread %d", th.TID)
}

// runBtTasks prints the tasks --pid and --tasks select.
func runBtTasks(ios *IOStreams, opts *btOptions, d *openedDump, doc *report.Document, info *dump.Info, methods unwind.Method) error {
	if d.k == nil {
		return usageError{fmt.Errorf("%w; this dump is a %s", errNoTasksFlag, d.Kind())}
	}
	if opts.cpu >= 0 || opts.thread >= 0 {
		return usagef("--pid and --tasks select tasks: give --cpu or --thread without them")
	}
	tasks, listErr := selectTasks(d.k, opts.pids, opts.tasks)
	if tasks == nil && listErr != nil {
		return listErr
	}
	maxFrames := opts.maxFrames
	if maxFrames == 0 {
		maxFrames = -1 // the library's "no limit"
	}
	ths, stopped, unreliable, unreadable := taskThreads(ios, d, tasks, unwind.Options{Methods: methods, MaxFrames: maxFrames}, info, opts)
	doc.Threads = ths
	var err error
	switch {
	case opts.output == outputJSON:
		err = report.WriteJSON(ios.Out, doc)
	case opts.tasks && !opts.noGroup:
		grouped := *doc
		grouped.Threads = groupThreads(ths)
		err = report.WriteText(ios.Out, &grouped, report.TextOptions{Lines: opts.lines, Locals: opts.values.locals})
	default:
		err = report.WriteText(ios.Out, doc, report.TextOptions{Lines: opts.lines, Locals: opts.values.locals})
	}
	if err != nil {
		return err
	}
	if listErr != nil {
		// Tasks the list could not reach are requested tasks not read.
		fmt.Fprintf(ios.ErrOut, "unwind: the task list is incomplete: %s\n", report.Escape(listErr.Error()))
		unreadable++
	}
	return partialExit(stopped, unreliable, unreadable)
}

// threadList names a dump's CPUs (kernel dumps) or thread ids, for a
// selection that matched none.
func threadList(ths []dump.Thread) string {
	var b strings.Builder
	for i, th := range ths {
		if i == 8 {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if th.CPU >= 0 {
			fmt.Fprintf(&b, "CPU %d", th.CPU)
		} else {
			fmt.Fprintf(&b, "thread %d", th.TID)
		}
	}
	return b.String()
}

// dumpFacts are the Info fields bt's JSON carries in "dump"."extra".
func dumpFacts(in *dump.Info) map[string]string {
	m := map[string]string{"format": in.Format}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("compression", in.Compression)
	set("kernel_version", in.Version)
	set("taint", in.Taint)
	set("panic", in.Panic)
	if in.CrashTime != nil {
		set("crash_time", in.CrashTime.UTC().Format(time.RFC3339))
		set("crash_time_source", in.CrashTimeSource)
	}
	set("exe", in.Exe)
	set("signal_name", in.SigName)
	set("signal_code_name", in.CodeName)
	set("fault_addr", in.FaultAddr)
	if in.Crashed >= 0 {
		set("crashed_reason", in.Reason)
	}
	return m
}
