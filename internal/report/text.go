package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// TextOptions tune the text output.
type TextOptions struct {
	// Code, when set, supplies text bytes for the kernel's "Code:" line under
	// each interrupted frame's RIP.
	Code CodeReader
	// Lines adds the source file and line to kernel frames, and a line for
	// each inlined function (crash's bt -l); user frames always have them.
	Lines bool
	// Locals prints each frame's local variables under it, as gdb's bt
	// full does (Thread.Values must be set; the parameters go on the
	// frame line whenever Values is set).
	Locals bool
}

// WriteText prints every thread: kernel threads (CPUs of a vmcore or the
// emulator) in the kernel's own "Call Trace:" layout, user threads in a
// gdb-like numbered list.
func WriteText(w io.Writer, doc *Document, opts TextOptions) error {
	sw := NewTextWriter(w, opts)
	for i := range doc.Threads {
		if err := sw.Thread(&doc.Threads[i]); err != nil {
			return err
		}
	}
	return sw.Close()
}

// sectionName is the kernel's name of a stack in "<NAME>" markers
// (arch/x86/kernel/dumpstack_64.c stack_type_name).
func sectionName(k unwind.StackKind) string {
	switch k {
	case unwind.StackNMI:
		return "NMI"
	case unwind.StackDB:
		return "#DB"
	case unwind.StackDF:
		return "#DF"
	case unwind.StackMC:
		return "#MC"
	case unwind.StackVC:
		return "#VC"
	case unwind.StackEntry:
		return "ENTRY_TRAMPOLINE"
	case unwind.StackIRQ:
		return "IRQ"
	case unwind.StackSoftIRQ:
		return "SOFTIRQ"
	case unwind.StackTask:
		return "TASK"
	case unwind.StackUser, unwind.StackAltSignal:
		return "USER"
	}
	return "UNKNOWN"
}

func writeKernelThread(w *errWriter, t *Thread, opts TextOptions) {
	if t.Code != nil {
		opts.Code = t.Code
	}
	head := fmt.Sprintf("CPU: %d", t.CPU)
	task := t.TID != 0 || t.Comm != ""
	if task {
		head += fmt.Sprintf(" PID: %d Comm: %s", t.TID, t.Comm)
	}
	if t.Heading != "" {
		for _, l := range strings.Split(t.Heading, "\n") {
			w.printf("%s\n", l)
		}
		w.printf("Call Trace:\n")
	} else if t.StackHeader != "" && task {
		// lib/dump_stack.c: "CPU: %d PID: %d Comm: %.20s %s%s %s %.*s".
		w.printf("%s %s\n", head, t.StackHeader)
		if t.Hardware != "" {
			w.printf("Hardware name: %s\n", t.Hardware)
		}
		if t.Crashed {
			if t.CrashReason != "" {
				w.printf("(crashed: %s)\n", t.CrashReason)
			} else {
				w.printf("(crashed)\n")
			}
		}
		w.printf("Call Trace:\n")
	} else {
		switch {
		case t.Crashed && t.CrashReason != "":
			head += " (crashed: " + t.CrashReason + ")"
		case t.Crashed:
			head += " (crashed)"
		}
		w.printf("%s\nCall Trace:\n", head)
	}
	open := unwind.StackUnknown
	opened := false
	enter := func(k unwind.StackKind) {
		if opened && k == open {
			return
		}
		if opened {
			w.printf(" </%s>\n", sectionName(open))
		}
		open, opened = k, true
		w.printf(" <%s>\n", sectionName(k))
	}
	shownControl := false
	var buf unwind.Frame
	for i, n := 0, t.NumFrames(); i < n; i++ {
		f := t.frame(i, &buf)
		if f.Inlined {
			// The kernel prints no inlined frames (-o json has them), and
			// an interrupted frame's register block once, with the
			// function that holds the code. With Lines, each inlined
			// function gets a line of its own before that function.
			if opts.Lines && !f.Interrupted() {
				enter(f.Stack.Kind)
				w.printf(" %s(inlined) %s%s%s\n", unreliableMark(f), orUnknown(f.Function), argsText(t, i), lineSuffix(f))
				if opts.Locals {
					writeLocals(w, t, i, "    ")
				}
			}
			continue
		}
		if f.Interrupted() {
			// The register block is printed where the pt_regs lies (the
			// stack of the entry code that saved it), as the kernel does;
			// the frames after it are on the interrupted stack.
			if !opened {
				enter(f.Stack.Kind)
			}
			ctl := t.Control
			if f.PtRegs.CS&3 != 0 || f.Partial || shownControl {
				ctl = nil // the oops layout: for the first kernel-mode pt_regs only
			}
			shownControl = shownControl || ctl != nil
			writeRegsBlock(w, f, ctl, opts)
			continue
		}
		enter(f.Stack.Kind)
		if opts.Lines {
			w.printf(" %s%s%s\n", kernelFrameText(f), argsText(t, i), lineSuffix(f))
		} else {
			w.printf(" %s%s\n", kernelFrameText(f), argsText(t, i))
		}
		if opts.Locals {
			writeLocals(w, t, i, "    ")
		}
	}
	if opened {
		w.printf(" </%s>\n", sectionName(open))
	}
	w.printf("%s\n", stopLine(t))
}

// kernelFrameText renders one frame as the kernel's %pB does:
// "func+0x12/0x40", with "? " for an unreliable entry and " [module]".
func kernelFrameText(f *unwind.Frame) string {
	var b strings.Builder
	if !f.Reliable {
		b.WriteString("? ")
	}
	if f.SymOK {
		fmt.Fprintf(&b, "%s+%#x/%#x", f.Sym.Name, f.PC-f.Sym.Addr, f.Sym.Size)
		if f.Sym.Module != "" && !strings.HasSuffix(f.Sym.Module, "vmlinux") && !strings.HasSuffix(f.Sym.Module, ".elf") {
			fmt.Fprintf(&b, " [%s]", f.Sym.Module)
		}
	} else {
		fmt.Fprintf(&b, "%#x", f.PC)
	}
	return b.String()
}

// lineSuffix is " (FILE:LINE)" for a frame whose source line is known,
// as the kernel's scripts/decode_stacktrace.sh adds it; "" otherwise.
func lineSuffix(f *unwind.Frame) string {
	if f.File == "" {
		return ""
	}
	return fmt.Sprintf(" (%s:%d)", f.File, f.Line)
}

func unreliableMark(f *unwind.Frame) string {
	if f.Reliable {
		return ""
	}
	return "? "
}

func symFunc(f *unwind.Frame) ptregs.SymbolFunc {
	return func(addr uint64) (string, uint64, uint64, bool) {
		if f.SymOK && addr == f.PC {
			return Escape(f.Sym.Name), addr - f.Sym.Addr, f.Sym.Size, true
		}
		return "", 0, 0, false
	}
}

// writeRegsBlock prints an interrupted frame: the RIP line, the Code: line
// when text is readable, and the registers (only RIP/RSP/EFLAGS when the
// frame is partial), as ptregs formats them, then a line naming the entry,
// which starts with "? " when the frame is unreliable (the register block
// itself keeps the kernel's format).
func writeRegsBlock(w *errWriter, f *unwind.Frame, ctl *ptregs.ControlRegs, opts TextOptions) {
	var b strings.Builder
	var code ptregs.CodeFunc
	if opts.Code != nil {
		code = func(addr uint64, p []byte) bool {
			n, err := opts.Code.ReadAt(p, addr)
			return err == nil && n == len(p)
		}
	}
	if f.Partial {
		iret := f.PtRegs.Iret()
		_ = ptregs.FormatIretCode(&b, &iret, symFunc(f), code)
	} else {
		_ = ptregs.FormatPtRegsCode(&b, &f.PtRegs, symFunc(f), code)
		if ctl != nil {
			_ = ptregs.FormatControlRegs(&b, ctl, f.PtRegs.CS)
		}
	}
	w.raw(b.String())
	mark := ""
	if !f.Reliable {
		mark = "? "
	}
	switch {
	case f.Partial && f.RegsAddr == 0:
		// SYSCALL pushes no frame: before the stub saves them, the
		// interrupted RIP and RFLAGS are in rcx and r11, RSP is the
		// caller's (or in a per-CPU slot).
		w.printf("%s(%s entry, no pt_regs saved yet: registers as the CPU left them)\n", mark, entryText(f.Entry))
	case f.Partial:
		w.printf("%s(%s entry, iret frame at %#x)\n", mark, entryText(f.Entry), f.RegsAddr)
	case f.Entry != "" || f.RegsAddr != 0:
		w.printf("%s(%s entry, pt_regs at %#x)\n", mark, entryText(f.Entry), f.RegsAddr)
	default:
		if mark != "" {
			w.printf("%s(interrupted)\n", mark)
		}
	}
}

func entryText(e string) string {
	if e == "" {
		return "unknown"
	}
	return e
}

func stopLine(t *Thread) string {
	rel := "reliable"
	if !t.Reliable {
		rel = "UNRELIABLE"
	}
	if t.Truncated {
		more := "more not walked"
		if t.Unwalked > 0 {
			more = fmt.Sprintf("%d more not walked", t.Unwalked)
		}
		return fmt.Sprintf("(%d frames, %s, truncated at the frame limit: %s)", t.NumFrames(), rel, more)
	}
	return fmt.Sprintf("(%d frames, %s, stopped: %s)", t.NumFrames(), rel, t.StopReason)
}

// writeUserThread prints a numbered list like gdb's bt:
// "#1  0x0000000000401136 in func+0x6/0x20 (a.out) at t.c:12".
func writeUserThread(w *errWriter, t *Thread, opts TextOptions) {
	head := fmt.Sprintf("Thread %d", t.TID)
	if t.Comm != "" {
		head += fmt.Sprintf(" (%s)", t.Comm)
	}
	if t.Crashed {
		head += fmt.Sprintf(": crashed, signal %d (%s)", t.Signal, SignalName(t.Signal))
	}
	w.printf("%s\n", head)
	var line, next []byte
	var fb, gb unwind.Frame
	nf := t.NumFrames()
	for i := 0; i < nf; {
		f := t.frame(i, &fb)
		if f.Kind == unwind.KindSignal {
			w.printf("    <signal handler called>\n")
		}
		line = appendUserFrame(line[:0], f, argsText(t, i))
		// A run of identical frames (a deep recursion) prints its first
		// frame, then one line for the rest, as Python folds repeated
		// traceback lines; -o json keeps every frame. Locals are printed
		// for every frame: no folding then.
		j := i + 1
		for ; j < nf && !opts.Locals; j++ {
			if t.repeats(i, j) {
				continue // the same line, without formatting it
			}
			g := t.frame(j, &gb)
			if !foldable(f, g) {
				break
			}
			if next = appendUserFrame(next[:0], g, argsText(t, j)); string(next) != string(line) {
				break
			}
		}
		w.userLine(f.Index, line)
		if opts.Locals {
			writeLocals(w, t, i, "        ")
		}
		if n := j - i - 1; n >= minFold {
			first := t.frame(i+1, &gb).Index
			w.printf("#%d … #%d  %s … (repeated %s times)\n", first, t.frame(j-1, &gb).Index, string(line), groupDigits(n))
		} else {
			for k := i + 1; k < j; k++ {
				w.userLine(t.frame(k, &gb).Index, line)
			}
		}
		i = j
	}
	w.printf("%s\n", stopLine(t))
}

// minFold is the shortest run of repeated frames that text output folds
// into one line.
const minFold = 3

// foldable says whether frame g may be folded into a run that f starts:
// both plain calls, neither a signal frame.
func foldable(f, g *unwind.Frame) bool {
	return f.Kind == unwind.KindCall && g.Kind == unwind.KindCall && f.PC == g.PC && f.Inlined == g.Inlined
}

// appendUserFrame appends a user frame's gdb-style line after its number
// (not yet escaped) to dst.
func appendUserFrame(dst []byte, f *unwind.Frame, args string) []byte {
	if !f.Reliable {
		dst = append(dst, "? "...)
	}
	if f.Inlined {
		dst = append(dst, "(inlined) "...)
	} else {
		dst = append(dst, "0x"...)
		dst = appendHexPad(dst, f.PC, 16)
		dst = append(dst, " in "...)
	}
	switch {
	case f.Inlined:
		dst = append(dst, orUnknown(f.Function)...)
		dst = append(dst, args...)
	case f.SymOK && f.Function != "" && f.Function != f.Sym.Name:
		// The innermost source function is inlined into the symbol.
		dst = append(dst, f.Function...)
		dst = append(dst, args...)
		dst = append(dst, " (in "...)
		dst = appendSymOff(dst, f)
		dst = append(dst, ", "...)
		dst = append(dst, baseName(f.Sym.Module)...)
		dst = append(dst, ')')
	case f.SymOK:
		dst = appendSymOff(dst, f)
		dst = append(dst, args...)
		if f.Sym.Module != "" {
			dst = append(dst, " ("...)
			dst = append(dst, baseName(f.Sym.Module)...)
			dst = append(dst, ')')
		}
	default:
		dst = append(dst, "??"...)
		dst = append(dst, args...)
	}
	if f.File != "" {
		dst = append(dst, " at "...)
		dst = append(dst, f.File...)
		dst = append(dst, ':')
		dst = strconv.AppendInt(dst, int64(f.Line), 10)
	}
	return dst
}

// appendSymOff appends "sym+0x12/0x40" as %s+%#x/%#x prints it.
func appendSymOff(dst []byte, f *unwind.Frame) []byte {
	dst = append(dst, f.Sym.Name...)
	dst = append(dst, '+')
	dst = appendHash(dst, f.PC-f.Sym.Addr)
	dst = append(dst, '/')
	return appendHash(dst, f.Sym.Size)
}

// appendHash appends v as %#x does: "0x12", and "0x0" for zero.
func appendHash(dst []byte, v uint64) []byte {
	dst = append(dst, "0x"...)
	return strconv.AppendUint(dst, v, 16)
}

// appendHexPad appends v in lower-case hex padded with zeros to width
// digits, as %0*x does.
func appendHexPad(dst []byte, v uint64, width int) []byte {
	var b [16]byte
	d := strconv.AppendUint(b[:0], v, 16)
	for i := len(d); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// groupDigits writes n with thousands separators: 99,976.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "??"
	}
	return s
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// SignalName is the conventional name of a Linux signal number.
func SignalName(sig int) string {
	names := map[int]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
		7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
		14: "SIGALRM", 15: "SIGTERM", 31: "SIGSYS"}
	if n, ok := names[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", sig)
}

type errWriter struct {
	w   *outBuf
	err error
	buf []byte
}

// userLine writes "#N  LINE\n" as "#%-2d %s\n" does, LINE escaped.
func (e *errWriter) userLine(index int, line []byte) {
	if e.err != nil {
		return
	}
	b := append(e.buf[:0], '#')
	b = strconv.AppendInt(b, int64(index), 10)
	if index >= 0 && index < 10 {
		b = append(b, ' ')
	}
	b = append(b, ' ')
	b = appendEscaped(b, line)
	b = append(b, '\n')
	e.buf = b
	_, e.err = e.w.Write(b)
}

// raw writes text that is already escaped or holds nothing from the dump.
func (e *errWriter) raw(s string) {
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

// printf writes formatted text; every string argument, which may come
// from the dump (comm, symbol and file names, the log), is escaped first so
// that it cannot write control characters to a terminal.
func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = Escape(s)
		}
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
