package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/internal/verify"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// demoScenario is the built-in scenario `unwind demo` runs.
const demoScenario = "demo"

// NewCmdDemo builds `unwind demo`: it runs the built-in demo scenario on the
// embedded fixture kernel — a task interrupted by a timer IRQ, interrupted
// by an NMI whose handler hits a hardware breakpoint — and prints the
// kernel-style backtrace of the #DB handler, the emulator's ground truth
// beside it frame by frame, and a one-line verdict.
func NewCmdDemo(ios *IOStreams) *cobra.Command {
	var scenario string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Unwind through #DB, NMI and IRQ entries on the built-in emulator and check it",
		Long: `demo runs a built-in scenario on the embedded x86-64 emulator and fixture
kernel: a task (task_loop -> task_chain_1..9 -> spin) takes a timer IRQ; on
the IRQ stack an NMI arrives; the NMI handler runs into a hardware breakpoint
(DR0 at nmi_chain_3) and the #DB handler is where the machine is stopped.

It prints the backtrace the way the kernel prints its own — <#DB>, <NMI>,
<IRQ> and <TASK> sections, a RIP: line, Code: line and register dump for
each pt_regs — then the emulator's shadow stack (the ground truth) beside
the unwound frames with a check mark per frame, and a one-line verdict.
Exit status 1 when the trace differs from the truth.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(ios, scenario)
		},
	}
	cmd.Flags().StringVar(&scenario, "scenario", demoScenario, "built-in scenario (or scenario file) to run instead")
	_ = cmd.Flags().MarkHidden("scenario")
	return cmd
}

func runDemo(ios *IOStreams, name string) error {
	sc, err := loadScenario(name)
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	kpath := "fixtures/kernel/build/kernel-" + sc.Kernel + ".elf"
	kernel, _, err := readFixture(kpath)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("kernel: %w", err)}
	}
	traces, err := verify.SnapshotTraces(sc, kernel, kpath)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: err}
	}
	if len(traces) == 0 {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("scenario %s took no snapshot", sc.Name)}
	}
	code, err := verify.KernelCode(kernel, kpath)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: err}
	}
	st := traces[0]
	cpu := st.Snapshot.CPU
	if cpu >= len(st.Doc.Threads) || cpu >= len(st.Truth) {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("snapshot %s has no cpu %d", st.Snapshot.Name, cpu)}
	}
	th := st.Doc.Threads[cpu]
	out := ios.Out
	fmt.Fprintf(out, "unwind demo: scenario %q on the embedded fixture kernel (%s)\n", sc.Name, kpath)
	fmt.Fprintf(out, "snapshot %s: %s\n\n", st.Snapshot.Name, st.Snapshot.Where)
	doc := &report.Document{Dump: st.Doc.Dump, Threads: []report.Thread{th}}
	if err := report.WriteText(out, doc, report.TextOptions{Code: st.Memory}); err != nil {
		return err
	}
	ok, reason := verify.FrameCheck(th.Frames, st.Truth[cpu], code)
	fmt.Fprintln(out)
	writeSideBySide(out, th.Frames, st.Truth[cpu], ok, code)
	fmt.Fprintln(out)
	entries := 0
	var names []string
	for i := range th.Frames {
		if th.Frames[i].Interrupted() {
			entries++
			names = append(names, th.Frames[i].Entry)
		}
	}
	physical := 0
	for i := range th.Frames {
		if !th.Frames[i].Inlined {
			physical++
		}
	}
	rel := "reliable"
	if !th.Reliable {
		rel = "flagged unreliable"
	}
	if reason == "" {
		fmt.Fprintf(out, "verdict: ✓ the unwound trace equals the ground truth: %d frames across %d entries (%s), %s, stopped at %s\n",
			physical, entries, strings.Join(names, " ← "), rel, th.StopReason)
		return nil
	}
	fmt.Fprintf(out, "verdict: ✗ the unwound trace differs from the ground truth (%s): %s\n", rel, reason)
	return &ExitError{Code: ExitFailure, Err: errors.New("demo: the trace differs from the ground truth")}
}

// writeSideBySide prints the unwound frames and the truth in two columns
// with ✓ or ✗ per frame.
func writeSideBySide(w io.Writer, frames []unwind.Frame, truth []emu.Frame, ok []bool, code *symbols.Set) {
	const col = 48
	fmt.Fprintln(w, "Each unwound frame beside the emulator's own record of it (✓: same PC, CFA, entry")
	fmt.Fprintln(w, "and saved registers; \"← X\": interrupted by X; [stack]: the stack it runs on).")
	fmt.Fprintf(w, "  %-*s  %s\n", col, "unwound (all strategies)", "ground truth (emulator shadow stack)")
	n := 0
	for i := range frames {
		f := &frames[i]
		if f.Inlined {
			continue
		}
		left := demoFrame(f)
		right := ""
		if n < len(truth) {
			right = demoTruth(&truth[n], code)
		}
		mark := "✓"
		if !ok[i] {
			mark = "✗"
		}
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%s %-*s  %s", mark, col, left, right), " "))
		n++
	}
	for ; n < len(truth); n++ {
		fmt.Fprintf(w, "✗ %-*s  %s\n", col, "(missing)", demoTruth(&truth[n], code))
	}
}

func demoFrame(f *unwind.Frame) string {
	s := fmt.Sprintf("#%-2d ", f.Index)
	if !f.Reliable {
		s += "? "
	}
	if f.SymOK {
		s += fmt.Sprintf("%s+%#x", f.Sym.Name, f.PC-f.Sym.Addr)
	} else {
		s += fmt.Sprintf("%#x", f.PC)
	}
	if f.Interrupted() {
		s += fmt.Sprintf(" ← %s", f.Entry)
	}
	return s + " [" + f.Stack.Kind.String() + "]"
}

func demoTruth(t *emu.Frame, code *symbols.Set) string {
	s := fmt.Sprintf("%#x", t.PC)
	if sym, ok := code.ByName(t.Function); ok && t.PC >= sym.Addr {
		s = fmt.Sprintf("%s+%#x", t.Function, t.PC-sym.Addr)
	}
	if t.Entry != "" {
		s += " ← " + t.Entry
	}
	return s + " [" + t.Stack.String() + "]"
}
