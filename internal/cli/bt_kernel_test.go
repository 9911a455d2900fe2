package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// kernelTruth is one capture of ../shared/corpus/kernel-truth-dev.json.
type kernelTruth struct {
	Scenario string `json:"scenario"`
	CPUs     map[string]struct {
		Frames      []string `json:"frames"`
		Sections    []string `json:"sections"`
		Interrupted []struct {
			After    string `json:"after"`
			Entry    string `json:"entry"`
			RIP      string `json:"rip"`
			RSP      string `json:"rsp"`
			UserMode bool   `json:"user_mode"`
		} `json:"interrupted"`
	} `json:"cpus"`
}

type btJSON struct {
	Version int `json:"version"`
	Threads []struct {
		CPU        int    `json:"cpu"`
		Reliable   bool   `json:"reliable"`
		StopReason string `json:"stop_reason"`
		Frames     []struct {
			PC       string            `json:"pc"`
			Symbol   string            `json:"symbol"`
			Inlined  bool              `json:"inlined"`
			Kind     string            `json:"kind"`
			Entry    string            `json:"entry"`
			Stack    string            `json:"stack"`
			Reliable bool              `json:"reliable"`
			Regs     map[string]string `json:"regs"`
		} `json:"frames"`
	} `json:"threads"`
}

var suffixRE = regexp.MustCompile(`\.(cold|isra\.\d+|constprop\.\d+|part\.\d+)$`)

// sameFunction applies the truth file's name aliases: optimisation suffixes,
// and asm labels versus the ELF function that contains them.
func sameFunction(got, want string) bool {
	if got == want || suffixRE.ReplaceAllString(got, "") == suffixRE.ReplaceAllString(want, "") {
		return true
	}
	alias := map[string]string{
		"end_repeat_nmi":                 "asm_exc_nmi",
		"entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64",
		"secondary_startup_64_no_verify": "secondary_startup_64",
	}
	return alias[got] == want || alias[want] == got
}

// TestBtKernelTruth unwinds every CPU of every developer vmcore and compares
// with the stated ground truth: the same functions in the same order, each
// on the same stack, and at each pt_regs crossed the same entry kind, RIP
// and RSP. It also requires every frame to be reliable (the truth holds only
// frames a good unwinder proves).
func TestBtKernelTruth(t *testing.T) {
	raw, err := os.ReadFile(corpus.File(t, "kernel-truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	var names []string
	for name := range all {
		if !strings.HasPrefix(name, "_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var truth kernelTruth
		if err := json.Unmarshal(all[name], &truth); err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			core := corpus.Vmcore(t, truth.Scenario, name)
			out, stderr, code := run(t, "bt", core, "--sym", vmlinux, "-o", "json")
			if code != ExitOK && code != ExitPartial {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var doc btJSON
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			// Loop over the truth: exactly one trace for each CPU it names.
			var cpus []string
			for c := range truth.CPUs {
				cpus = append(cpus, c)
			}
			sort.Strings(cpus)
			for _, c := range cpus {
				want := truth.CPUs[c]
				var traces []int
				for i, th := range doc.Threads {
					if fmt.Sprint(th.CPU) == c {
						traces = append(traces, i)
					}
				}
				if len(traces) != 1 {
					t.Errorf("cpu %s of the truth: %d traces in bt's output, want exactly 1", c, len(traces))
					continue
				}
				th := doc.Threads[traces[0]]
				corpus.Checked(t, 1)
				var got, gotStacks []string
				type crossing struct{ entry, rip, rsp string }
				var gotX []crossing
				unreliable := 0
				scans := 0
				nullCalls := 0
				for _, f := range th.Frames {
					if f.Kind == "interrupted" && f.PC == "0x0" {
						// A call through NULL: an interrupted RIP must
						// lie in text (DESIGN.md), so the frame and the
						// trace are unreliable; the frames above are not.
						nullCalls++
						unreliable--
					}
					if f.Kind == "scan" {
						// The truth leaves out the stale words the
						// kernel prints as "? " guesses.
						scans++
						continue
					}
					if f.Inlined {
						continue
					}
					if !f.Reliable {
						unreliable++
					}
					n := f.Symbol
					if f.Stack == "user" {
						n = "<user>"
					} else if n == "" {
						n = "<unknown:" + f.PC + ">"
					}
					got = append(got, n)
					gotStacks = append(gotStacks, f.Stack)
					if f.Kind == "interrupted" {
						gotX = append(gotX, crossing{f.Entry, f.Regs["rip"], f.Regs["rsp"]})
					}
				}
				ok := len(got) == len(want.Frames)
				for i := 0; ok && i < len(got); i++ {
					ok = sameFunction(got[i], want.Frames[i]) && gotStacks[i] == want.Sections[i]
				}
				if !ok {
					t.Errorf("cpu %d frames:\n got  %v\n      %v\n want %v\n      %v", th.CPU, got, gotStacks, want.Frames, want.Sections)
				}
				var wantX []crossing
				for _, x := range want.Interrupted {
					entry := x.Entry
					if entry == "irq" {
						entry = "irq:236" // the truth names the timer interrupt "irq"
					}
					wantX = append(wantX, crossing{entry, x.RIP, x.RSP})
				}
				if fmt.Sprint(gotX) != fmt.Sprint(wantX) {
					t.Errorf("cpu %d pt_regs crossed:\n got  %v\n want %v", th.CPU, gotX, wantX)
				}
				if scans > 0 {
					t.Errorf("cpu %d: %d stack-scan frames, the truth has none", th.CPU, scans)
				}
				if unreliable > 0 || th.Reliable == (nullCalls > 0) {
					t.Errorf("cpu %d: %d unreliable frames, trace reliable=%v (%s)", th.CPU, unreliable, th.Reliable, th.StopReason)
				}
			}
			// The exit code says whether every trace is reliable.
			want := ExitOK
			for _, th := range doc.Threads {
				if !th.Reliable {
					want = ExitPartial
				}
			}
			if code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
		})
	}
}

// TestBtKernelNullCallRIP: a call through a NULL function pointer prints
// "RIP: 0010:0x0" as the kernel does, with or without System.map (whose
// per-cpu symbol fixed_percpu_data lies at address 0), and the walk goes on
// from [sp] into the caller.
func TestBtKernelNullCallRIP(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	core := corpus.Vmcore(t, "oops", "oops-die")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	for _, extra := range [][]string{nil, {"--system-map", filepath.Join(kdir, "fp", "System.map")}} {
		args := append([]string{"bt", core, "--sym", vmlinux}, extra...)
		out, stderr, code := run(t, args...)
		if code != ExitPartial { // the frame at RIP 0 is no text: the trace is unreliable
			t.Fatalf("%v: exit %d, want %d: %s", extra, code, ExitPartial, stderr)
		}
		if !strings.Contains(out, "RIP: 0010:0x0\n") || strings.Contains(out, "fixed_percpu_data") {
			t.Errorf("%v: no 'RIP: 0010:0x0' line:\n%s", extra, out)
		}
		if !strings.Contains(out, "(page_fault entry") || !strings.Contains(out, "\n __handle_sysrq.cold+0x3f/0x10c\n") {
			t.Errorf("%v: the walk does not cross the page fault into __handle_sysrq.cold:\n%s", extra, out)
		}
	}
}

// bt -l adds the source file and line to every kernel frame the vmlinux
// DWARF covers, and a line for each inlined function, as crash's bt -l;
// without -l the kernel's own layout is unchanged.
func TestBtKernelLines(t *testing.T) {
	core := corpus.Vmcore(t, "nmibt", "nmibt")
	vmlinux := filepath.Join(corpus.Dir(t, "kernel"), "fp", "vmlinux")
	plain, errOut, code := run(t, "bt", core, "--sym", vmlinux, "--cpu", "1")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	withLines, errOut, code := run(t, "bt", core, "--sym", vmlinux, "--cpu", "1", "-l")
	if code != ExitOK {
		t.Fatalf("-l: exit %d: %s", code, errOut)
	}
	if strings.Contains(plain, ".c:") {
		t.Errorf("source lines without -l:\n%s", plain)
	}
	lineRE := regexp.MustCompile(`^ (\S+\+0x[0-9a-f]+/0x[0-9a-f]+) \((\S+\.[cSh]):(\d+)\)$`)
	frames, withLine := 0, 0
	for _, l := range strings.Split(withLines, "\n") {
		if strings.HasPrefix(l, " ") && strings.Contains(l, "+0x") && !strings.Contains(l, "RIP") {
			frames++
			if lineRE.MatchString(l) {
				withLine++
			}
		}
	}
	corpus.Checked(t, 1)
	if frames < 15 || withLine != frames {
		t.Errorf("-l: %d of %d frames have a source line:\n%s", withLine, frames, withLines)
	}
	for _, want := range []string{
		`(?m)^ read_zero\+0x59/0x100 \(\S*/drivers/char/mem\.c:521\)$`,
		`(?m)^ \(inlined\) clear_user \(\S*/arch/x86/include/asm/uaccess_64\.h:124\)$`,
		`(?m)^ ksys_read\+0x5f/0xd0 \(\S*/fs/read_write\.c:613\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(withLines) {
			t.Errorf("-l output lacks %s:\n%s", want, withLines)
		}
	}
}

// The crashed CPU's first kernel-mode register block carries show_regs'
// FS/GS/CS/CR lines from the dump's QEMU notes, as the kernel's own oops
// print has them: equal to serial.log's, but for CR2, which the kernel
// printed after a second fault (reading the Code: bytes at RIP-42 =
// 0xffffffffffffffd6) while the dump holds the NULL call's own fault, 0.
func TestBtControlRegs(t *testing.T) {
	core := corpus.Vmcore(t, "oops", "oops-die")
	kdir := corpus.Dir(t, "kernel")
	out, errOut, code := run(t, "bt", core, "--sym", filepath.Join(kdir, "fp", "vmlinux"))
	if code == ExitFailure || code == ExitUsage {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	serial, err := os.ReadFile(filepath.Join(kdir, "fp", "oops", "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	var printed []string
	for _, l := range strings.Split(string(serial), "\n") {
		if i := strings.Index(l, "] "); i > 0 && (strings.Contains(l, "] FS:  ") || strings.Contains(l, "] CS:  ")) {
			printed = append(printed, strings.TrimRight(l[i+2:], "\r"))
		}
	}
	if len(printed) < 2 {
		t.Fatalf("serial.log has no FS:/CS: lines")
	}
	cpus := strings.Split(out, "\nCPU: ")
	if len(cpus) != 2 {
		t.Fatalf("%d CPUs in output", len(cpus))
	}
	for _, want := range append(printed[:2], "CR2: 0000000000000000 CR3: 0000000000966000 CR4: 00000000000006f0") {
		if strings.Count(cpus[0], "\n"+want+"\n") != 1 {
			t.Errorf("crashed CPU 0 lacks %q once:\n%s", want, cpus[0])
		}
	}
	if strings.Contains(cpus[1], "\nFS:  ") || strings.Contains(cpus[1], "\nCR2: ") {
		t.Errorf("CPU 1, which did not crash, has control registers:\n%s", cpus[1])
	}
	corpus.Checked(t, 1)
}
