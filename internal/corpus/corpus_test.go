package corpus

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestDirUser(t *testing.T) {
	d := Dir(t, "user")
	if _, err := os.Stat(filepath.Join(d, "MANIFEST.md")); err != nil {
		t.Fatalf("unpacked user corpus has no MANIFEST.md: %v", err)
	}
}

func TestUnknown(t *testing.T) {
	if _, err := Find("nope"); err == nil {
		t.Fatal("Find of an unknown corpus succeeded")
	}
}

func TestDirProd(t *testing.T) {
	d := Dir(t, "prod")
	if _, err := os.Stat(filepath.Join(d, "truth-dev.json")); err != nil {
		t.Fatalf("unpacked prod corpus has no truth-dev.json: %v", err)
	}
}

// fakeTB records how a test ended: Skipf and Fatalf stop its goroutine.
type fakeTB struct {
	testing.TB
	ended string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Cleanup(func())                 {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.ended = "skip"; runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, a ...any) { f.ended = "fail"; runtime.Goexit() }

func endOf(fn func(tb testing.TB)) string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
	return f.ended
}

// TestUnusableCorpusFails: with a corpus configured (UNWIND_CORPUS_DIR set,
// here to an empty folder, so Find falls back to ../shared/corpus), a cache
// that cannot be written (a file where the cache folder should be) or a
// missing file fails the test instead of skipping it.
func TestUnusableCorpusFails(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "cache")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", blocker)
	t.Setenv("UNWIND_CORPUS_DIR", t.TempDir())
	if got := endOf(func(tb testing.TB) { Dir(tb, "user") }); got != "fail" {
		t.Errorf("Dir with an unwritable cache: test ended %q, want fail", got)
	}
	if got := endOf(func(tb testing.TB) { File(tb, "no-such-file.json") }); got != "fail" {
		t.Errorf("File of a missing file: test ended %q, want fail", got)
	}
	if got := endOf(func(tb testing.TB) { Vmcore(tb, "nmibt", "no-such") }); got != "fail" {
		t.Errorf("Vmcore of a missing dump: test ended %q, want fail", got)
	}
}

// TestUnconfiguredSkipsUnlessCI: with no corpus configured, Unavailable
// skips, except under CI=true, where it fails.
func TestUnconfiguredSkipsUnlessCI(t *testing.T) {
	t.Setenv("UNWIND_CORPUS_DIR", "")
	defer func(old string) { sharedOverride = old }(sharedOverride)
	sharedOverride = filepath.Join(t.TempDir(), "absent")
	if Configured() {
		t.Fatal("Configured with no shared dir and no UNWIND_CORPUS_DIR")
	}
	t.Setenv("CI", "")
	if got := endOf(func(tb testing.TB) { Dir(tb, "user") }); got != "skip" {
		t.Errorf("no corpus, not CI: test ended %q, want skip", got)
	}
	t.Setenv("CI", "true")
	if got := endOf(func(tb testing.TB) { Dir(tb, "user") }); got != "fail" {
		t.Errorf("no corpus under CI=true: test ended %q, want fail", got)
	}
}

// TestRemoveStale: once a corpus is unpacked, its copies from earlier
// archives (another size or time) go, with their locks and unfinished
// unpacks; the new copy, other corpora and other files stay.
func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	stale := []string{"user-10-20", "user-10-20.lock", "user-10-21.tmp", "user-11--5"}
	kept := []string{"user-30-40", "user-30-40.lock", "kernel-10-20", "kernel-10-20.lock",
		"userx-10-20", "user-dev", "user-10-x", "taskdump", "user-10"}
	for _, n := range append(append([]string{}, stale...), kept...) {
		if strings.HasSuffix(n, ".lock") {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		} else if err := os.MkdirAll(filepath.Join(dir, n, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStale(dir, "user", "user-30-40")
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s: stale copy kept", n)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: removed: %v", n, err)
		}
	}
}
