package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// serialCase pairs one CPU of a corpus vmcore with a trace the kernel
// printed of the same state in serial.log (kernel/SCENARIO_NOTES.md says
// which: at most stops the stopped CPU was made to call dump_stack(), the
// NMI backtrace and the oops print the interrupted context with show_regs).
type serialCase struct {
	scenario, capture string
	cpu               int
	serial            string // scenario folder whose serial.log holds the trace
	header            string // start of the kernel's "CPU: N PID: P Comm: C" line
	nth               int    // which block with that header (0 = first)
	// anchor is the first line from which the kernel's trace and ours
	// must agree: the kernel's trace is of the same state from there on.
	anchor string
	// ripFrame0: our frame 0 is the RIP of the pt_regs the kernel printed
	// before the anchor (the kernel trace has an NMI on top of our state).
	ripFrame0 bool
	why       string
	// kdump: the capture is in the kdump corpus (kdump/fp/SCENARIO), read
	// from each of its four files: the ELF dump and the zlib, LZO and
	// snappy diskdump files of the same stop.
	kdump bool
}

var serialCases = []serialCase{
	{scenario: "idle", capture: "idle", cpu: 0, serial: "idle", header: "CPU: 0 PID: 0 Comm: swapper/0", anchor: " <TASK>",
		why: "dump_stack() of exactly the captured state"},
	{scenario: "idle", capture: "idle", cpu: 1, serial: "idle", header: "CPU: 1 PID: 0 Comm: swapper/1", anchor: " <TASK>",
		why: "dump_stack() of exactly the captured state"},
	{scenario: "nmibt", capture: "nmibt", cpu: 1, serial: "nmibt", header: "CPU: 1 PID: 37 Comm: dd", anchor: " <NMI>",
		why: "dump_stack() of exactly the captured state"},
	{scenario: "nmibt", capture: "nmibt-paging", cpu: 1, serial: "nmibt", header: "CPU: 1 PID: 37 Comm: dd", anchor: " <NMI>",
		why: "the -paging dump of the same stop"},
	{scenario: "nmibt", capture: "nmibt", cpu: 1, serial: "nmibt", header: "CPU: 1 PID: 37 Comm: dd", nth: 1, anchor: " <IRQ>",
		why: "the NMI backtrace's show_regs of the context the NMI interrupted"},
	{scenario: "nmibt", capture: "nmibt", cpu: 0, serial: "nmibt", header: "CPU: 0 PID: 39 Comm: sh", anchor: " arch_trigger_cpumask_backtrace+0x14/0x20",
		why: "CPU 0's own NMI backtrace, printed just before the stop from the same caller chain"},
	{scenario: "nmibt", capture: "nmibt-paging", cpu: 0, serial: "nmibt", header: "CPU: 0 PID: 39 Comm: sh", anchor: " arch_trigger_cpumask_backtrace+0x14/0x20",
		why: "CPU 0's own NMI backtrace, printed just before the stop from the same caller chain"},
	{scenario: "qnmi", capture: "qnmi", cpu: 0, serial: "qnmi", header: "CPU: 0 PID: 0 Comm: swapper/0", anchor: " <NMI>",
		why: "dump_stack() of exactly the captured state"},
	{scenario: "qnmi", capture: "qnmi", cpu: 1, serial: "idle", header: "CPU: 1 PID: 0 Comm: swapper/1", anchor: " <TASK>",
		why: "the idle CPU's stack is the same as in the idle capture (no KASLR)"},
	{scenario: "pf", capture: "pf-kernel", cpu: 1, serial: "pf", header: "CPU: 1 PID: 38 Comm: dd", anchor: " <TASK>",
		why: "dump_stack() of exactly the captured state"},
	{scenario: "pf", capture: "pf-kernel", cpu: 0, serial: "idle", header: "CPU: 0 PID: 0 Comm: swapper/0", anchor: " <TASK>",
		why: "the idle CPU's stack is the same as in the idle capture (no KASLR)"},
	{scenario: "irq", capture: "irq", cpu: 0, serial: "irq", header: "CPU: 0 PID: 37 Comm: dd", anchor: " <IRQ>", ripFrame0: true,
		why: "dump_stack() of irq-nested-nmi: this state with an NMI on top, whose pt_regs is our frame 0"},
	{scenario: "irq", capture: "irq-paging", cpu: 0, serial: "irq", header: "CPU: 0 PID: 37 Comm: dd", anchor: " <IRQ>", ripFrame0: true,
		why: "dump_stack() of irq-nested-nmi: this state with an NMI on top, whose pt_regs is our frame 0"},
	{scenario: "oops", capture: "oops-die", cpu: 0, serial: "oops", header: "CPU: 0 PID: 38 Comm: sh", anchor: "RIP: 0010:0x0",
		why: "the oops's show_regs of the #PF pt_regs (we are stopped in __die, above it)"},
	{scenario: "panic", capture: "panic-entry", cpu: 0, serial: "panic", header: "CPU: 0 PID: 38 Comm: sh", anchor: " sysrq_handle_crash+0x10/0x10",
		why: "panic()'s dump_stack, printed later from panic+0xf9 over the same callers"},
	// The kdump corpus: new boots of the same kernel, other addresses.
	{kdump: true, scenario: "idle", capture: "idle", cpu: 0, serial: "idle", header: "CPU: 0 PID: 0 Comm: swapper/0", anchor: " <TASK>",
		why: "dump_stack() of exactly the captured state"},
	{kdump: true, scenario: "idle", capture: "idle", cpu: 1, serial: "idle", header: "CPU: 1 PID: 0 Comm: swapper/1", anchor: " <TASK>",
		why: "dump_stack() of exactly the captured state"},
	{kdump: true, scenario: "nmibt", capture: "nmibt", cpu: 1, serial: "nmibt", header: "CPU: 1 PID: 36 Comm: dd", anchor: " <NMI>",
		why: "dump_stack() of exactly the captured state"},
	{kdump: true, scenario: "nmibt", capture: "nmibt", cpu: 1, serial: "nmibt", header: "CPU: 1 PID: 36 Comm: dd", nth: 1,
		anchor: "RIP: 0010:clear_user_rep_good+0xe/0x30",
		why:    "the NMI backtrace's show_regs of the task context the NMI interrupted (this boot's NMI came straight over the task)"},
	{kdump: true, scenario: "nmibt", capture: "nmibt", cpu: 0, serial: "nmibt", header: "CPU: 0 PID: 38 Comm: sh", anchor: " arch_trigger_cpumask_backtrace+0x14/0x20",
		why: "CPU 0's own NMI backtrace, printed just before the stop from the same caller chain"},
}

var serialTime = regexp.MustCompile(`\[\s*\d+\.\d+\] (.*)$`)

// serialBlock returns the nth kernel trace in serial.log whose header line
// starts with header: its lines from the header to the closing </TASK>,
// without timestamps and trailing blanks.
func serialBlock(t *testing.T, path, header string, nth int) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var block []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := serialTime.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		line := strings.TrimRight(m[1], " ")
		if !in && strings.HasPrefix(line, header+" ") {
			if nth > 0 {
				nth--
				continue
			}
			in = true
		}
		if in {
			block = append(block, line)
			if line == " </TASK>" {
				return block
			}
		}
	}
	t.Fatalf("%s: no trace %q", path, header)
	return nil
}

// kernelOnly are lines the kernel prints that a bt of a pt_regs crossing
// does not: the extra registers of show_regs(SHOW_REGS_ALL) below the
// interrupted context's block, and the dump_stack frames the stopped CPU
// was made to call.
func kernelOnly(line string) bool {
	for _, p := range []string{"FS:", "CS:", "CR2:", "DR0:", "DR3:", "DR6:", "PKRU:", "Call Trace:",
		" dump_stack_lvl+", " dump_stack+"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

var frameText = regexp.MustCompile(`^ (\S+)\+0x([0-9a-f]+)/0x([0-9a-f]+)$`)

// sameFrame0 compares the kernel's view of the stopped function (the
// frame dump_stack() returned to) with our frame 0. The kernel looks a
// return address up at address-1 (%pB): a stop at FUNC+0 shows as the
// previous symbol's end, "PREV+0xN/0xN". A later dump_stack() from the
// same function shows a different offset.
func sameFrame0(kernel, ours string) bool {
	if kernel == ours {
		return true
	}
	k, o := frameText.FindStringSubmatch(kernel), frameText.FindStringSubmatch(ours)
	if k == nil || o == nil {
		return false
	}
	return k[2] == k[3] && o[2] == "0" || k[1] == o[1]
}

// TestBtMatchesSerialLog puts our text output of every corpus capture and
// CPU the kernel printed a trace of beside that trace, as a kernel
// engineer would: the header line, the section markers, the frames, and
// at each pt_regs the RIP:, Code: and register lines, ORIG_RAX included,
// must be the same lines in the same order. Where the kernel prints a
// "? " guess that is a real caller (its return address is at [rsp] of a
// function stopped before it set up rbp, see kernel-truth-dev.json's
// frames_inclusion) we print it without "? "; other "? " lines are stale
// words left on the stack, which we do not print. The CPUs the kernel
// printed nothing for (irq CPU 1, oops-die CPU 1, panic-entry CPU 1) are
// checked against kernel-truth-dev.json only, by TestBtKernelTruth.
func TestBtMatchesSerialLog(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	for _, c := range serialCases {
		type file struct{ name, path, serial string }
		var files []file
		if c.kdump {
			ddir := corpus.Dir(t, "kdump")
			d := filepath.Join(ddir, "fp", c.scenario)
			for _, f := range []string{".vmcore", ".kdump-zlib", ".kdump-lzo", ".kdump-snappy"} {
				files = append(files, file{"kdump/" + c.capture + f, filepath.Join(d, c.capture+f), filepath.Join(ddir, "fp", c.serial, "serial.log")})
			}
		} else {
			files = []file{{c.capture, "", filepath.Join(kdir, "fp", c.serial, "serial.log")}}
		}
		for _, f := range files {
			t.Run(fmt.Sprintf("%s/cpu%d/%s.%d", f.name, c.cpu, c.serial, c.nth), func(t *testing.T) {
				core := f.path
				if core == "" {
					core = corpus.Vmcore(t, c.scenario, c.capture)
				}
				out, stderr, code := run(t, "bt", core, "--sym", vmlinux, "--cpu", fmt.Sprint(c.cpu))
				if code != ExitOK && code != ExitPartial {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				var ours []string
				for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					// The crashed CPU's show_regs lines are compared with
					// the oops print by TestBtControlRegs (the kernel prints
					// them for every kernel-mode block, we for the crashed
					// CPU's first).
					if !strings.HasPrefix(l, "FS:  ") && !strings.HasPrefix(l, "CS:  ") && !strings.HasPrefix(l, "CR2: ") {
						ours = append(ours, l)
					}
				}
				kern := serialBlock(t, f.serial, c.header, c.nth)
				if ours[0] != kern[0] {
					t.Errorf("header:\n ours   %q\n kernel %q", ours[0], kern[0])
				}
				if err := compareTraces(ours, kern, c); err != "" {
					t.Errorf("%s (%s)\nours:\n%s\nkernel:\n%s", err, c.why, strings.Join(ours, "\n"), strings.Join(kern, "\n"))
				}
				corpus.Checked(t, 1)
			})
		}
	}
}

func compareTraces(ours, kern []string, c serialCase) string {
	index := func(lines []string, s string) int {
		for i, l := range lines {
			if l == s {
				return i
			}
		}
		return -1
	}
	oi, ki := index(ours, c.anchor), index(kern, c.anchor)
	if oi < 0 || ki < 0 {
		return fmt.Sprintf("anchor %q: ours at %d, kernel at %d", c.anchor, oi, ki)
	}
	var o, k []string
	for _, l := range ours[oi:] {
		if !strings.HasPrefix(l, "(") && !strings.HasPrefix(l, "? (") { // our annotations: entry kind, pt_regs address, trace summary
			o = append(o, l)
		}
	}
	frame0 := -1 // index in k of the frame dump_stack() returned to
	for _, l := range kern[ki:] {
		if kernelOnly(l) {
			if strings.HasPrefix(l, " dump_stack+") {
				frame0 = len(k)
			}
			continue
		}
		k = append(k, l)
	}
	if c.ripFrame0 {
		// Our frame 0 (the first frame line after the anchor) is the RIP
		// of the kernel's pt_regs block before the anchor.
		j := 1
		m := frameText.FindStringSubmatch(o[j])
		if m == nil || index(kern[:ki], "RIP: 0010:"+strings.TrimPrefix(o[j], " ")) < 0 {
			return fmt.Sprintf("our frame 0 %q is not the RIP of the kernel's pt_regs before %q", o[j], c.anchor)
		}
		o = append(o[:j], o[j+1:]...)
	}
	section := func(lines []string) string {
		open := ""
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, " </"):
				open = ""
			case strings.HasPrefix(l, " <"):
				open = strings.Trim(l, " <>")
			}
		}
		return open
	}
	open := section(ours[:oi+1])  // the section open in our output
	kopen := section(kern[:ki+1]) // the section open in the kernel's trace
	i, j := 0, 0
	for i < len(o) && j < len(k) {
		ol, kl := o[i], k[j]
		switch {
		case strings.HasPrefix(ol, " </") && strings.Trim(ol, " </>") != kopen && kl != ol:
			// We close a section the kernel's trace did not open: its
			// show_regs block comes before its "Call Trace:".
			i++
			continue
		case j == frame0:
			if !sameFrame0(kl, ol) {
				return fmt.Sprintf("stopped function: ours %q, kernel %q", ol, kl)
			}
		case ol == kl:
		case strings.HasPrefix(kl, " ? ") && ol == " "+kl[3:]:
			// A caller the kernel could only guess, which we prove.
		case strings.HasPrefix(kl, " ? "):
			j++ // a stale guess: not a frame
			continue
		case strings.HasPrefix(kl, " <") && kl == " <"+open+">":
			j++ // the kernel reopens the section after show_regs' "Call Trace:"
			continue
		default:
			return fmt.Sprintf("line %d after %q: ours %q, kernel %q", i, c.anchor, ol, kl)
		}
		if strings.HasPrefix(ol, " <") && !strings.HasPrefix(ol, " </") {
			open = strings.Trim(ol, " <>")
		}
		if strings.HasPrefix(kl, " <") && !strings.HasPrefix(kl, " </") {
			kopen = strings.Trim(kl, " <>")
		}
		i++
		j++
	}
	for j < len(k) && strings.HasPrefix(k[j], " ? ") {
		j++
	}
	if i < len(o) || j < len(k) {
		return fmt.Sprintf("ours has %q left, the kernel %q", o[i:], k[j:])
	}
	return ""
}

// TestCompareTracesRejects makes sure the serial.log comparison fails on
// the differences it exists to catch. (A kernel "? " line we print as a
// frame passes it: whether that word is a real caller is for
// TestBtKernelTruth, against kernel-truth-dev.json, to say.)
func TestCompareTracesRejects(t *testing.T) {
	kern := []string{"CPU: 1 PID: 37 Comm: dd Not tainted 6.1.192 #3", "Call Trace:", " <TASK>", " dump_stack_lvl+0x3a/0x4c",
		" dump_stack+0x10/0x12", " default_idle+0x13/0x20", " ? arch_cpu_idle+0xa/0x10", " ? stale+0x1/0x10",
		"RIP: 0033:0x47b6fd", "RSP: 002b:00007ffcd135b7e8 EFLAGS: 00000246 ORIG_RAX: 0000000000000000", " </TASK>"}
	good := []string{"CPU: 1 PID: 37 Comm: dd Not tainted 6.1.192 #3", "Call Trace:", " <TASK>", " default_idle+0x13/0x20",
		" arch_cpu_idle+0xa/0x10", "RIP: 0033:0x47b6fd", "RSP: 002b:00007ffcd135b7e8 EFLAGS: 00000246 ORIG_RAX: 0000000000000000",
		"(syscall entry, pt_regs at 0xffffc90000123f58)", " </TASK>", "(3 frames, reliable, stopped: user mode)"}
	c := serialCase{anchor: " <TASK>"}
	if err := compareTraces(good, kern, c); err != "" {
		t.Fatalf("the matching trace fails: %s", err)
	}
	for name, edit := range map[string]func([]string) []string{
		"wrong caller":   func(l []string) []string { l[4] = " cpu_idle+0xa/0x10"; return l },
		"no ORIG_RAX":    func(l []string) []string { l[6] = "RSP: 002b:00007ffcd135b7e8 EFLAGS: 00000246"; return l },
		"missing RIP":    func(l []string) []string { return append(l[:5:5], l[6:]...) },
		"extra frame":    func(l []string) []string { return append(l[:5:5], append([]string{" extra+0x1/0x2"}, l[5:]...)...) },
		"wrong frame 0":  func(l []string) []string { l[3] = " other_idle+0x13/0x20"; return l },
		"section marker": func(l []string) []string { l[2] = " <IRQ>"; return l },
	} {
		bad := edit(append([]string(nil), good...))
		if err := compareTraces(bad, kern, c); err == "" {
			t.Errorf("%s: not detected", name)
		}
	}
}
