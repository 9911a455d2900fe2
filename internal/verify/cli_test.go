package verify_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/cli"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(&cli.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return code, out.String(), errOut.String()
}

// TestDemoCommand runs `unwind demo` and checks the parts a reader relies
// on: the sections, the RIP lines, the truth column and the verdict.
func TestDemoCommand(t *testing.T) {
	code, out, errOut := run(t, "demo")
	for _, want := range []string{"<#DB>", "<NMI>", "<IRQ>", "<TASK>", "RIP: 0010:nmi_chain_3+0x0/", "Code:",
		"ground truth (emulator shadow stack)", "verdict: "} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if code != 0 || !strings.Contains(out, "verdict: ✓") {
		t.Errorf("demo exit %d, stderr %q; the unwound trace does not match the truth:\n%s", code, errOut, out)
	}
}

// TestVerifyCommandJSON checks the JSON contract of `unwind verify -o json`
// and that the counts add up.
func TestVerifyCommandJSON(t *testing.T) {
	code, out, errOut := run(t, "verify", "demo", "--every", "50", "-o", "json")
	if code != 0 && code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Version   int `json:"version"`
		Scenarios []struct {
			Name       string                       `json:"name"`
			Boundaries uint64                       `json:"boundaries"`
			Corrupts   *bool                        `json:"corrupts"`
			Strategies map[string]map[string]uint64 `json:"strategies"`
		} `json:"scenarios"`
		Totals map[string]map[string]uint64 `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Version != 1 || len(doc.Scenarios) != 1 || doc.Scenarios[0].Name != "demo" || doc.Scenarios[0].Corrupts == nil {
		t.Fatalf("bad document: %s", out)
	}
	s := doc.Scenarios[0]
	for _, st := range []string{"cfi", "fp", "combined"} {
		c, ok := s.Strategies[st]
		if !ok {
			t.Fatalf("no strategy %s", st)
		}
		if sum := c["exact"] + c["flagged"] + c["wrong_reliable"] + c["wrong_flagged"]; sum != s.Boundaries || s.Boundaries == 0 {
			t.Errorf("%s: verdicts add up to %d, %d boundaries", st, sum, s.Boundaries)
		}
		if doc.Totals[st]["exact"] != c["exact"] {
			t.Errorf("%s: totals differ from the only scenario", st)
		}
	}
	wantCode := 0
	for _, st := range []string{"cfi", "fp", "combined"} {
		if s.Strategies[st]["wrong_reliable"] > 0 {
			wantCode = 1
		}
	}
	if s.Strategies["cfi"]["exact"] != s.Boundaries {
		wantCode = 1
	}
	if code != wantCode {
		t.Errorf("exit %d, want %d", code, wantCode)
	}
}

// TestVerifyCommandUsage checks the argument rules.
func TestVerifyCommandUsage(t *testing.T) {
	if code, _, _ := run(t, "verify"); code != cli.ExitUsage {
		t.Errorf("no scenario: exit %d, want %d", code, cli.ExitUsage)
	}
	if code, _, _ := run(t, "verify", "--all", "demo"); code != cli.ExitUsage {
		t.Errorf("--all with a name: exit %d, want %d", code, cli.ExitUsage)
	}
	if code, _, _ := run(t, "verify", "no-such-scenario"); code != cli.ExitUsage {
		t.Errorf("unknown scenario: exit %d, want %d", code, cli.ExitUsage)
	}
}
