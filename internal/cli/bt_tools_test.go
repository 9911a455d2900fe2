package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// The corpus holds, beside each vmcore, what crash 8.0.2, drgn 0.0.22 and
// gdb 13 made of it (kernel/SCENARIO_NOTES.md, "Tool status"). The project
// differs from each of them on purpose; TestBtVersusOtherTools checks both
// that the tool really does what the notes say and that we do not:
//
//   - crash, at every switch from the IRQ stack back to the task stack,
//     invents an exception frame ("WARNING: possibly bogus exception
//     frame", RIP 0 or another non-text value) and resumes by scanning; it also drops callers whose
//     return address is the first byte of the next function (a noreturn
//     call at a function's end: rest_init, start_secondary,
//     sysrq_handle_crash), and prints ORIG_RAX for every exception frame.
//     We cross the IRQ pt_regs with its real RIP, list those callers as
//     the kernel's %pB (address-1) does, and print ORIG_RAX only where the
//     kernel does (orig_ax != -1: syscalls; TestBtMatchesSerialLog checks
//     it line by line).
//   - drgn cannot open the physical (paging=false) dumps at all; we read
//     them through the page tables and get the same traces as from the
//     paging=true dumps of the same stop.
//   - gdb (and drgn on the paging dumps) stops at the first asm entry
//     stub (asm_exc_nmi, asm_sysvec_*, entry_SYSCALL_64) and shows garbage
//     beyond it; we cross every pt_regs into the interrupted context.

type toolTruthCPU struct {
	Frames      []string `json:"frames"`
	Interrupted []struct {
		Entry    string `json:"entry"`
		UserMode bool   `json:"user_mode"`
	} `json:"interrupted"`
	Notes []string `json:"notes"`
}

func loadToolTruth(t *testing.T) map[string]map[string]toolTruthCPU {
	raw, err := os.ReadFile(corpus.File(t, "kernel-truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]toolTruthCPU{}
	for name, m := range all {
		if strings.HasPrefix(name, "_") {
			continue
		}
		var c struct {
			Scenario string                  `json:"scenario"`
			CPUs     map[string]toolTruthCPU `json:"cpus"`
		}
		if err := json.Unmarshal(m, &c); err != nil {
			t.Fatal(err)
		}
		out[c.Scenario+"/"+name] = c.CPUs
	}
	return out
}

// ourTrace is one CPU of `bt -o json`, reduced to what the comparisons use.
type ourTrace struct {
	funcs   []string // physical frames' symbols, innermost first
	ripZero bool     // an interrupted frame with RIP 0
	entries []string // interrupted frames' entry kinds
}

func ourTraces(t *testing.T, core, vmlinux string) map[int]ourTrace {
	out, stderr, code := run(t, "bt", core, "--sym", vmlinux, "-o", "json")
	if code != ExitOK && code != ExitPartial { // printed; some traces unreliable
		t.Fatalf("bt %s: exit %d: %s", core, code, stderr)
	}
	var doc btJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	m := map[int]ourTrace{}
	for _, th := range doc.Threads {
		var tr ourTrace
		for _, f := range th.Frames {
			if f.Inlined {
				continue
			}
			tr.funcs = append(tr.funcs, f.Symbol)
			if f.Kind == "interrupted" {
				tr.entries = append(tr.entries, f.Entry)
				if f.Regs["rip"] == "0x0" && f.Stack != "user" {
					tr.ripZero = true
				}
			}
		}
		m[th.CPU] = tr
	}
	return m
}

var (
	crashCPU     = regexp.MustCompile(`^PID: \d+\s+TASK: \S+\s+CPU: (\d+)`)
	crashFrame   = regexp.MustCompile(`^\s*#\d+ \[[0-9a-f]+\] (\S+) at `)
	crashMissing = regexp.MustCompile(`crash differs: missing \[([^\]]*)\]`)
	gdbThread    = regexp.MustCompile(`^Thread \d+ \(Thread \S+ \(CPU#(\d+) `)
	gdbFrame     = regexp.MustCompile(`^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(`)
	drgnCPU      = regexp.MustCompile(`^CPU (\d+): `)
	drgnFrame    = regexp.MustCompile(`^\s+#\d+\s+pc=\S+ sp=\S+ .*\[(\S+)\+0x`)
)

// crashSections splits crash's `bt -a` by CPU.
func crashSections(t *testing.T, path string) map[int][]string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secs := map[int][]string{}
	cpu := -1
	for _, l := range strings.Split(string(b), "\n") {
		if m := crashCPU.FindStringSubmatch(l); m != nil {
			cpu, _ = strconv.Atoi(m[1])
		}
		if cpu >= 0 {
			secs[cpu] = append(secs[cpu], l)
		}
	}
	return secs
}

func isEntryStub(fn string) bool {
	return strings.HasPrefix(fn, "asm_") || strings.HasPrefix(fn, "entry_SYSCALL_64") || fn == "end_repeat_nmi"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if sameFunction(x, s) {
			return true
		}
	}
	return false
}

func TestBtVersusOtherTools(t *testing.T) {
	truth := loadToolTruth(t)
	kdir := corpus.Dir(t, "kernel")
	vmlinux := filepath.Join(kdir, "fp", "vmlinux")
	var keys []string
	for k := range truth {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Totals over all captures: each tool's documented failure must be seen
	// somewhere in the corpus files, not only logged.
	var bogusTotal, drgnTotal, gdbTotal int
	defer func() {
		if t.Failed() {
			return
		}
		if bogusTotal == 0 || drgnTotal == 0 || gdbTotal == 0 {
			t.Errorf("crash's bogus frames %d, drgn stopped at a stub on %d CPUs, gdb on %d: the corpus files must show each", bogusTotal, drgnTotal, gdbTotal)
		}
		corpus.Checked(t, bogusTotal+drgnTotal+gdbTotal)
	}()
	for _, key := range keys {
		scenario, name, _ := strings.Cut(key, "/")
		cpus := truth[key]
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(kdir, "fp", scenario)
			ours := ourTraces(t, corpus.Vmcore(t, scenario, name), vmlinux)
			crash := crashSections(t, filepath.Join(dir, name+".crash.txt"))
			bogus := 0
			for c, want := range cpus {
				cpu, _ := strconv.Atoi(c)
				if len(crash[cpu]) == 0 {
					t.Errorf("cpu %d: crash.txt has no trace of it", cpu)
				}
				sec := strings.Join(crash[cpu], "\n")
				noted := false // the truth says crash invents a frame here
				for _, note := range want.Notes {
					noted = noted || strings.Contains(note, "crash printed a bogus RIP-0 exception frame")
				}
				i := strings.Index(sec, "WARNING: possibly bogus exception frame")
				if (i >= 0) != noted {
					t.Errorf("cpu %d: crash.txt shows a bogus exception frame: %v; the truth's notes say so: %v", cpu, i >= 0, noted)
				}
				if i >= 0 {
					bogus++
					j := strings.LastIndex(sec[:i], "    RIP: ")
					rip, err := strconv.ParseUint(strings.Fields(sec[j:])[1], 16, 64)
					if j < 0 || err != nil || rip >= 0xffffffff80000000 {
						t.Errorf("cpu %d: crash's bogus exception frame has a text RIP", cpu)
					}
					if ours[cpu].ripZero || !contains(ours[cpu].entries, "irq:236") {
						t.Errorf("cpu %d: crash invents a frame at the IRQ->task switch; we must cross the real IRQ pt_regs (entries %v)", cpu, ours[cpu].entries)
					}
				}
				var crashFuncs []string
				for _, l := range crash[cpu] {
					if m := crashFrame.FindStringSubmatch(l); m != nil {
						crashFuncs = append(crashFuncs, m[1])
					}
				}
				for _, note := range want.Notes {
					m := crashMissing.FindStringSubmatch(note)
					if m == nil {
						continue
					}
					for _, fn := range strings.Split(m[1], ", ") {
						fn = strings.Trim(fn, "'")
						if contains(crashFuncs, fn) && !strings.Contains(note, "duplicated") {
							t.Errorf("cpu %d: the truth says crash misses %s, but crash.txt lists it", cpu, fn)
						}
						if !contains(ours[cpu].funcs, fn) {
							t.Errorf("cpu %d: crash misses %s, and so do we: %v", cpu, fn, ours[cpu].funcs)
						}
					}
				}
			}
			t.Logf("crash: %d CPU(s) with a bogus exception frame", bogus)
			bogusTotal += bogus

			// drgn: the physical dumps do not open; the paging dumps stop
			// at the first entry stub.
			drgn, err := os.ReadFile(filepath.Join(dir, name+".drgn.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(name, "-paging") {
				if !strings.Contains(string(drgn), "recursive address translation") {
					t.Errorf("drgn.txt of a physical dump does not show drgn failing")
				}
				if _, ok := truth[scenario+"/"+name+"-paging"]; ok {
					paging := ourTraces(t, corpus.Vmcore(t, scenario, name+"-paging"), vmlinux)
					for cpu, tr := range ours {
						if fmt.Sprint(tr) != fmt.Sprint(paging[cpu]) {
							t.Errorf("cpu %d: physical %v, paging %v", cpu, tr.funcs, paging[cpu].funcs)
						}
					}
				}
			} else {
				n := checkStopsAtEntry(t, "drgn", drgnStacks(string(drgn)), cpus, ours)
				t.Logf("drgn: %d CPU(s) stop at an entry stub", n)
				drgnTotal += n
			}

			// gdb: stops at the first entry stub. The corpus has one gdb.txt
			// per stop (a -paging dump shares its twin's).
			gdb, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(name, "-paging")+".gdb.txt"))
			if err != nil {
				t.Fatal(err)
			}
			n := checkStopsAtEntry(t, "gdb", gdbStacks(string(gdb)), cpus, ours)
			t.Logf("gdb: %d CPU(s) stop at an entry stub", n)
			gdbTotal += n
		})
	}
}

// drgnStacks reads drgn_trace.py's "from this CPU's NT_PRSTATUS" traces:
// the symbol of each frame, "?" for frames it could not name.
func drgnStacks(text string) map[int][]string {
	out := map[int][]string{}
	cpu, in := -1, false
	for _, l := range strings.Split(text, "\n") {
		if m := drgnCPU.FindStringSubmatch(l); m != nil {
			cpu, _ = strconv.Atoi(m[1])
			in = false
			continue
		}
		if strings.HasPrefix(l, "crashed_thread") {
			cpu = -1
		}
		if strings.Contains(l, "NT_PRSTATUS") {
			in = cpu >= 0
			continue
		}
		if !in || !strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if m := drgnFrame.FindStringSubmatch(l); m != nil {
			if !strings.Contains(l, "(inline)") {
				out[cpu] = append(out[cpu], m[1])
			}
		} else {
			out[cpu] = append(out[cpu], "?")
		}
	}
	return out
}

// gdbStacks reads `thread apply all bt` per vCPU.
func gdbStacks(text string) map[int][]string {
	out := map[int][]string{}
	cpu := -1
	for _, l := range strings.Split(text, "\n") {
		if m := gdbThread.FindStringSubmatch(l); m != nil {
			cpu, _ = strconv.Atoi(m[1])
			out[cpu] = nil // the bt comes after the register dump
			continue
		}
		if m := gdbFrame.FindStringSubmatch(l); m != nil && cpu >= 0 {
			out[cpu] = append(out[cpu], m[1])
		}
	}
	return out
}

// checkStopsAtEntry: on every CPU whose true chain crosses a kernel-mode
// pt_regs, the tool's frames after its first entry stub name none of the
// true frames there (it stops, or prints garbage), while ours has them all.
func checkStopsAtEntry(t *testing.T, tool string, stacks map[int][]string, cpus map[string]toolTruthCPU, ours map[int]ourTrace) int {
	t.Helper()
	checked := 0
	for c, want := range cpus {
		cpu, _ := strconv.Atoi(c)
		kernelCrossing := false
		for _, x := range want.Interrupted {
			kernelCrossing = kernelCrossing || !x.UserMode
		}
		if !kernelCrossing {
			continue
		}
		frames, ok := stacks[cpu]
		if !ok {
			t.Errorf("%s: no trace of cpu %d", tool, cpu)
			continue
		}
		stub := -1
		for i, f := range frames {
			if isEntryStub(f) {
				stub = i
				break
			}
		}
		if stub < 0 {
			t.Errorf("%s: cpu %d trace %v reaches no entry stub", tool, cpu, frames)
			continue
		}
		var beyond []string // true frames after the first entry stub
		for i, f := range want.Frames {
			if isEntryStub(f) {
				beyond = want.Frames[i+1:]
				break
			}
		}
		checked++
		for _, f := range frames[stub+1:] {
			if f != "<user>" && contains(beyond, f) {
				t.Errorf("%s: cpu %d crosses %s into %s: the notes say it cannot", tool, cpu, frames[stub], f)
			}
		}
		for _, f := range beyond {
			if f != "<user>" && !strings.HasPrefix(f, "<unknown") && !contains(ours[cpu].funcs, f) {
				t.Errorf("cpu %d: %s stops at %s, and we miss %s too", cpu, tool, frames[stub], f)
			}
		}
	}
	return checked
}
