package verify

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	unwindfixtures "github.com/unwind-dev/unwind"
	"github.com/unwind-dev/unwind/internal/report"
)

var update = flag.Bool("update", false, "rewrite fixtures/golden from the current output")

const goldenDir = "../../fixtures/golden"

// TestGolden prints every built-in scenario's snapshots the way `unwind bt`
// does (kernel-style text with Code: lines, and the JSON document) and
// compares them with fixtures/golden/SCENARIO/SNAPSHOT.{txt,json}.
// Regenerate with: go test ./internal/verify -run Golden -update
func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range unwindfixtures.Scenarios() {
		sc, k := loadScenario(t, name)
		traces, err := SnapshotTraces(sc, k, "")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, st := range traces {
			var txt, js bytes.Buffer
			if err := report.WriteText(&txt, st.Doc, report.TextOptions{Code: st.Memory}); err != nil {
				t.Fatal(err)
			}
			if err := report.WriteJSON(&js, st.Doc); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(goldenDir, name, st.Snapshot.Name)
			for _, g := range []struct {
				path string
				data []byte
			}{{base + ".txt", txt.Bytes()}, {base + ".json", js.Bytes()}} {
				seen[g.path] = true
				if *update {
					if err := os.MkdirAll(filepath.Dir(g.path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(g.path, g.data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(g.path)
				if err != nil {
					t.Errorf("%s: %v (run go test ./internal/verify -run Golden -update)", g.path, err)
					continue
				}
				if !bytes.Equal(want, g.data) {
					t.Errorf("%s differs from the current output (-update to accept):\n%s", g.path, firstDiff(want, g.data))
				}
			}
		}
	}
	// Golden files of snapshots that no longer exist.
	_ = filepath.WalkDir(goldenDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if ext := filepath.Ext(p); (ext == ".txt" || ext == ".json") && !seen[p] {
			if *update {
				_ = os.Remove(p)
			} else {
				t.Errorf("%s: no snapshot produces it any more (-update removes it)", p)
			}
		}
		return nil
	})
}

// firstDiff shows the first differing line of two outputs.
func firstDiff(want, got []byte) string {
	wl := bytes.Split(want, []byte("\n"))
	gl := bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return "line " + itoa(i+1) + ":\n  want: " + string(w) + "\n  got:  " + string(g)
		}
	}
	return "(lengths differ)"
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}
