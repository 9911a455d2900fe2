package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/linux"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// sortedTasks lists the kernel's tasks by pid (the idle tasks, pid 0,
// first, in CPU order), as ps does.
func sortedTasks(k *linux.Kernel) ([]linux.Task, error) {
	ts, err := k.Tasks()
	if err != nil && len(ts) == 0 {
		return nil, err
	}
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].PID != ts[j].PID {
			return ts[i].PID < ts[j].PID
		}
		return ts[i].CPU < ts[j].CPU
	})
	return ts, err
}

// selectTasks picks the tasks bt's --pid and --tasks ask for.
func selectTasks(k *linux.Kernel, pids []int, all bool) ([]linux.Task, error) {
	ts, err := sortedTasks(k)
	if err != nil && len(ts) == 0 {
		return nil, err
	}
	if all {
		return ts, err
	}
	var out []linux.Task
	for _, pid := range pids {
		n := 0
		for _, t := range ts {
			if t.PID == pid {
				out = append(out, t)
				n++
			}
		}
		if n == 0 {
			return nil, usagef("no task with pid %d; `unwind ps` lists them", pid)
		}
	}
	return out, err
}

// taskHeading is the line a task that is not running is printed under, in
// the spirit of the kernel's sched_show_task: "task:NAME state:S pid:…".
func taskHeading(t *linux.Task) string {
	kt := ""
	if t.KThread {
		kt = " kthread"
	}
	return fmt.Sprintf("task:%-15.15s state:%s pid:%-5d tgid:%-5d ppid:%-5d cpu:%d task_struct:%#x%s",
		t.Comm, t.State, t.PID, t.TGID, t.PPID, t.CPU, t.Addr, kt)
}

// runningTasks maps the index of each CPU of a kernel dump to the task
// object of the task running on it, for the JSON "task" of a CPU's trace;
// nil when the dump is no vmcore or its tasks cannot be listed.
func runningTasks(d *openedDump) map[int]*report.Task {
	if d.k == nil {
		return nil
	}
	ts, _ := d.k.Tasks()
	m := map[int]*report.Task{}
	for i := range ts {
		if ts[i].Running && ts[i].OnCPU >= 0 {
			m[ts[i].OnCPU] = reportTask(&ts[i])
		}
	}
	return m
}

func reportTask(t *linux.Task) *report.Task {
	return &report.Task{PID: t.PID, TGID: t.TGID, PPID: t.PPID, Comm: t.Comm, State: t.State, CPU: t.CPU, KThread: t.KThread, Address: t.Addr}
}

// taskThreads unwinds the tasks and returns their report threads, with
// how many stopped on an error, are unreliable, and could not be unwound
// at all (each named on stderr, and by a line of its own in the output).
func taskThreads(ios *IOStreams, d *openedDump, tasks []linux.Task, uo unwind.Options, info *dump.Info, opts *btOptions) (out []report.Thread, stopped, unreliable, unreadable int) {
	cpus := d.k.CPUs()
	stackHeader, hardware := d.k.StackHeader(), d.k.HardwareName()
	for i := range tasks {
		t := &tasks[i]
		th := report.Thread{TID: t.PID, CPU: -1, Comm: t.Comm, Task: reportTask(t), Kernel: true, Unwalked: -1}
		if t.Running && t.OnCPU >= 0 && t.OnCPU < len(cpus) {
			c := cpus[t.OnCPU]
			th.CPU, th.Crashed, th.Regs = c.CPU, c.Crashed, c.Regs
			th.StackHeader, th.Hardware = stackHeader, hardware
			if c.Crashed {
				th.CrashReason = info.Reason
				if q, ok := d.QEMUState(c.CPU); ok {
					th.Control = &ptregs.ControlRegs{FSBase: q.FSBase, GSBase: q.GSBase, KernelGSBase: q.KernelGSBase,
						FS: q.FS, GS: q.GS, DS: q.DS, ES: q.ES, CR0: q.CR0, CR2: q.CR2, CR3: q.CR3, CR4: q.CR4}
				}
			}
		} else {
			th.Heading = taskHeading(t)
		}
		tr, err := d.k.UnwindTask(*t, uo)
		if err != nil {
			// One clear line for this task; the others go on.
			fmt.Fprintf(ios.ErrOut, "unwind: pid %d (%s): %s\n", t.PID, report.Escape(t.Comm), report.Escape(err.Error()))
			th.StopReason = "error: " + err.Error()
			unreadable++
			out = append(out, th)
			continue
		}
		switch {
		case tr.Err != nil:
			stopped++
		case !tr.Reliable:
			unreliable++
		}
		th.Frames, th.Reliable, th.StopReason = tr.Frames, tr.Reliable, tr.StopReason
		th.Truncated, th.Code = tr.Truncated, tr.Mem
		th.Values = opts.values.compute(tr.Frames, tr.Mem, d.set)
		out = append(out, th)
	}
	return out, stopped, unreliable, unreadable
}

// groupKey is what makes two tasks' traces print the same: every frame's
// pc, kind, entry, verdict and (interrupted frames) saved registers, and
// how the walk ended. Running tasks (a CPU's trace) and tasks that could
// not be unwound are never grouped.
func groupKey(t *report.Thread) string {
	if t.Heading == "" || len(t.Frames) == 0 {
		return ""
	}
	var b strings.Builder
	for i := range t.Frames {
		f := &t.Frames[i]
		fmt.Fprintf(&b, "%x/%d/%s/%v/%v;", f.PC, f.Kind, f.Entry, f.Reliable, f.Inlined)
		if f.Interrupted() {
			fmt.Fprintf(&b, "%v;", f.PtRegs)
		}
	}
	fmt.Fprintf(&b, "|%v|%s|%v", t.Reliable, t.StopReason, t.Truncated)
	return b.String()
}

// groupThreads folds the tasks whose traces are identical frame for frame
// into one, headed by how many and which, as grouped goroutine dumps do;
// the first task of each group stands for it, in order of first
// appearance.
func groupThreads(ths []report.Thread) []report.Thread {
	type group struct {
		idx     int
		members []int
	}
	var order []*group
	byKey := map[string]*group{}
	for i := range ths {
		k := groupKey(&ths[i])
		if g, ok := byKey[k]; ok && k != "" {
			g.members = append(g.members, i)
			continue
		}
		g := &group{idx: i, members: []int{i}}
		if k != "" {
			byKey[k] = g
		}
		order = append(order, g)
	}
	out := make([]report.Thread, 0, len(order))
	for _, g := range order {
		th := ths[g.idx]
		if len(g.members) > 1 {
			var comms, pids []string
			for _, m := range g.members {
				comms = append(comms, ths[m].Comm)
				pids = append(pids, strconv.Itoa(ths[m].TID))
			}
			th.Heading = fmt.Sprintf("%d tasks: %s\npids: %s", len(g.members), strings.Join(comms, " "), strings.Join(pids, " "))
		}
		out = append(out, th)
	}
	return out
}

// NewCmdPs builds `unwind ps VMCORE`.
func NewCmdPs(ios *IOStreams) *cobra.Command {
	output := outputText
	sf := &symbolFlags{}
	cmd := &cobra.Command{
		Use:   "ps VMCORE",
		Short: "List every task of a kernel dump, as crash's ps does",
		Long: `ps lists every task of a kernel vmcore: the processes on init_task's task
list, every thread of each, and the idle tasks (swapper/N) of the CPUs. For
each: pid, tgid, parent (the tgid of its real_parent), the CPU it runs on
or last ran on, its task_struct, its state as ps and the kernel's sysrq-t
print show it (R running, S sleeping, D uninterruptible, T stopped,
t traced, Z zombie, X dead, P parked, I idle) and its command; ">" marks a
task running on a CPU, [brackets] a kernel thread.

It needs vmlinux with its DWARF (--sym) for the task_struct layout.
bt --pid N and bt --tasks print the tasks' stacks.`,
		Example: `  unwind ps vmcore --sym vmlinux
  unwind ps vmcore --sym vmlinux -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, warnings, err := openDump(args[0], sf)
			if err != nil {
				return err
			}
			defer d.Close()
			for _, w := range warnings {
				warn(ios, w)
			}
			if d.k == nil {
				return usagef("%s is a %s: ps lists the tasks of a kernel vmcore", args[0], d.Kind())
			}
			ts, err := sortedTasks(d.k)
			if err != nil && len(ts) == 0 {
				return err
			}
			if output == outputJSON {
				info := d.Info()
				if werr := writePsJSON(ios.Out, args[0], &info, ts); werr != nil {
					return werr
				}
			} else {
				writePs(ios.Out, ts)
			}
			if err != nil {
				return &ExitError{Code: ExitPartial, Err: fmt.Errorf("the task list is incomplete: %w", err)}
			}
			return nil
		},
	}
	sf.register(cmd.Flags())
	cmd.Flags().VarP(&output, "output", "o", "output format: text or json")
	return cmd
}

func writePs(w io.Writer, ts []linux.Task) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tPID\tTGID\tPPID\tCPU\tTASK\tST\t\tCOMM")
	for i := range ts {
		t := &ts[i]
		mark := ""
		if t.Running {
			mark = ">"
		}
		comm := report.Escape(t.Comm)
		if t.KThread {
			comm = "[" + comm + "]"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%x\t%s\t\t%s\n", mark, t.PID, t.TGID, t.PPID, t.CPU, t.Addr, t.State, comm)
	}
	tw.Flush()
}

type psTask struct {
	PID     int    `json:"pid"`
	TGID    int    `json:"tgid"`
	PPID    int    `json:"ppid"`
	Comm    string `json:"comm"`
	State   string `json:"state"`
	CPU     int    `json:"cpu"`
	KThread bool   `json:"kthread"`
	Address string `json:"address"`
	Running bool   `json:"running"`
	Idle    bool   `json:"idle,omitempty"`
	Stack   string `json:"stack,omitempty"`
}

func writePsJSON(w io.Writer, path string, info *dump.Info, ts []linux.Task) error {
	out := struct {
		Version int               `json:"version"`
		Dump    map[string]string `json:"dump"`
		Tasks   []psTask          `json:"tasks"`
	}{Version: JSONVersion, Dump: map[string]string{"kind": string(info.Kind), "path": path, "release": info.Release}, Tasks: []psTask{}}
	for i := range ts {
		t := &ts[i]
		p := psTask{PID: t.PID, TGID: t.TGID, PPID: t.PPID, Comm: t.Comm, State: t.State, CPU: t.CPU, KThread: t.KThread,
			Address: fmt.Sprintf("%#x", t.Addr), Running: t.Running, Idle: t.Idle}
		if t.Stack != 0 {
			p.Stack = fmt.Sprintf("%#x", t.Stack)
		}
		out.Tasks = append(out.Tasks, p)
	}
	return writeJSON(w, out)
}

// errNoTasksFlag is the usage error for --pid/--tasks on a dump that is not
// a kernel vmcore.
var errNoTasksFlag = errors.New("--pid and --tasks select tasks of a kernel vmcore")
