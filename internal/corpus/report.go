package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// cases counts, per test that used the corpus, the cases it checked.
var (
	casesMu sync.Mutex
	cases   = map[testing.TB]*int{}
)

// track registers tb as a corpus test: when it ends without skipping, it is
// logged with its case count and appended to the UNWIND_CORPUS_REPORT file.
func track(tb testing.TB) {
	casesMu.Lock()
	defer casesMu.Unlock()
	if _, ok := cases[tb]; ok {
		return
	}
	n := new(int)
	cases[tb] = n
	tb.Cleanup(func() {
		casesMu.Lock()
		c := *n
		delete(cases, tb)
		casesMu.Unlock()
		if tb.Skipped() {
			return
		}
		status := "ok"
		if tb.Failed() {
			status = "FAIL"
		}
		tb.Logf("corpus: %d cases checked", c)
		if err := appendReport(tb.Name(), c, status); err != nil {
			tb.Errorf("corpus report: %v", err)
		}
	})
}

// Checked adds n to the number of corpus cases (dumps, threads, truth
// entries...) that tb checked. tb must have called Dir, File or Vmcore.
func Checked(tb testing.TB, n int) {
	tb.Helper()
	casesMu.Lock()
	c, ok := cases[tb]
	if ok {
		*c += n
	}
	casesMu.Unlock()
	if !ok {
		track(tb)
		Checked(tb, n)
	}
}

var reportMu sync.Mutex

// appendReport appends one line "package<TAB>test<TAB>cases<TAB>status" to
// the file UNWIND_CORPUS_REPORT names, if any.
func appendReport(test string, n int, status string) error {
	path := os.Getenv("UNWIND_CORPUS_REPORT")
	if path == "" {
		return nil
	}
	pkg, _ := os.Getwd()
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if rel, err := filepath.Rel(root, pkg); err == nil {
			pkg = rel
		}
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s\t%s\t%d\t%s\n", pkg, test, n, status); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
