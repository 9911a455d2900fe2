package ptregs

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

var (
	regsSource  = regexp.MustCompile(`^# source: kernel-dev\.tar\.zst kernel/fp/([a-z-]+)/serial\.log `)
	serialStamp = regexp.MustCompile(`^\[\s*\d+\.\d+\] `)
)

// TestLinuxRegsFromSerialLog holds testdata/linux-6.1: each *.regs file's
// register block is, word for word, lines the kernel printed in the
// serial.log its "# source:" line names (timestamps and CRs stripped), and
// the files of a scenario are that log's register blocks, all of them, in
// order (SCENARIO-N.regs is the Nth "RIP:" block).
func TestLinuxRegsFromSerialLog(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	files, _ := filepath.Glob("testdata/linux-6.1/*.regs")
	if len(files) != 17 {
		t.Fatalf("%d register dumps in testdata/linux-6.1, the README says 17", len(files))
	}
	sort.Strings(files)
	byScenario := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		m := regsSource.FindStringSubmatch(lines[0])
		if m == nil {
			t.Errorf("%s: no # source: line naming a kernel/fp serial.log", f)
			continue
		}
		var block []string
		for _, l := range lines {
			if !strings.HasPrefix(l, "#") {
				block = append(block, l)
			}
		}
		if len(block) == 0 || !strings.HasPrefix(block[0], "RIP: ") {
			t.Errorf("%s: the block does not start with RIP:", f)
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".regs")
		if want := m[1] + "-" + name[strings.LastIndex(name, "-")+1:]; want != name {
			t.Errorf("%s: cites %s's serial.log", f, m[1])
		}
		byScenario[m[1]] = append(byScenario[m[1]], strings.Join(block, "\n"))
	}
	for scenario, blocks := range byScenario {
		raw, err := os.ReadFile(filepath.Join(kdir, "fp", scenario, "serial.log"))
		if err != nil {
			t.Fatal(err)
		}
		var log []string
		for _, l := range strings.Split(strings.ReplaceAll(string(raw), "\r", ""), "\n") {
			log = append(log, serialStamp.ReplaceAllString(l, ""))
		}
		// The log's register blocks, in order: from each "RIP: " line on,
		// as many lines as the testdata block has.
		var starts []int
		for i, l := range log {
			if strings.HasPrefix(l, "RIP: ") {
				starts = append(starts, i)
			}
		}
		if len(starts) != len(blocks) {
			t.Errorf("%s: serial.log prints %d register blocks, testdata has %d", scenario, len(starts), len(blocks))
			continue
		}
		for k, want := range blocks {
			n := strings.Count(want, "\n") + 1
			if starts[k]+n > len(log) {
				t.Errorf("%s-%d: serial.log ends inside the block", scenario, k+1)
				continue
			}
			if got := strings.Join(log[starts[k]:starts[k]+n], "\n"); got != want {
				t.Errorf("%s-%d.regs is not serial.log's block %d word for word:\n got (serial.log)\n%s\n want (testdata)\n%s", scenario, k+1, k+1, got, want)
			}
		}
		corpus.Checked(t, len(blocks))
	}
}
