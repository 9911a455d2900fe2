package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// unwind log prints the dump's kernel log exactly as makedumpfile
// --dump-dmesg extracted it from the same dump (the corpus's dmesg.txt),
// with levels and callers on request and every record in JSON.
func TestLogMatchesMakedumpfile(t *testing.T) {
	dir := corpus.Dir(t, "prod")
	core := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	want, err := os.ReadFile(filepath.Join(dir, "kdump-sysrqc", "dmesg.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "log", core)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != string(want) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(out, "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Fatalf("line %d differs from makedumpfile's dmesg.txt:\n got %q\nwant %q", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%d lines, makedumpfile's dmesg.txt has %d", len(gl), len(wl))
	}
	corpus.Checked(t, strings.Count(out, "\n"))

	out, _, code = run(t, "log", core, "-m", "--caller")
	if code != ExitOK {
		t.Fatalf("-m: exit %d", code)
	}
	lineRE := regexp.MustCompile(`^(<\d+>\[ *\d+\.\d{6}\]\[ *[TC]\d+\] | {20,}\S)`) // a record's first line, or a further one
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !lineRE.MatchString(l) {
			t.Fatalf("-m --caller line %d: %q", i+1, l)
		}
	}
	for _, want := range []string{
		"<0>[   18.844860][  T118] Kernel panic - not syncing: sysrq triggered crash",
		"<5>[    0.000000][    T0] Linux version 6.1.0-47-cloud-amd64",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-m --caller output lacks %q", want)
		}
	}

	out, _, code = run(t, "log", core, "-o", "json")
	if code != ExitOK {
		t.Fatalf("json: exit %d", code)
	}
	var doc struct {
		Version int
		Records []struct {
			Seq      uint64
			Time     string
			TimeNS   int64 `json:"time_ns"`
			Level    int
			Facility int
			Caller   string
			Text     string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != JSONVersion || len(doc.Records) < 1000 {
		t.Fatalf("version %d, %d records", doc.Version, len(doc.Records))
	}
	for i, r := range doc.Records {
		if i > 0 && r.Seq <= doc.Records[i-1].Seq {
			t.Fatalf("record %d: seq %d after %d", i, r.Seq, doc.Records[i-1].Seq)
		}
	}
	last := doc.Records[len(doc.Records)-1]
	if last.Caller != "T118" || last.Time != "   18.848288" || last.TimeNS != 18848288000 && last.TimeNS/1000 != 18848288 {
		t.Errorf("last record %+v", last)
	}
}

// log refuses a user core and says why.
func TestLogRefusesUserCore(t *testing.T) {
	core := emulatedSnapshot(t, "nmi-irq-task", "nmi-irq-task")
	_, errOut, code := run(t, "log", core)
	if code == ExitOK || !strings.Contains(errOut, "log reads kernel dumps") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
