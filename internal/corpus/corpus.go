// Package corpus finds the project's outside reference dumps for tests: the
// archives in ../shared/corpus (beside the repository), unpacked once into a
// cache directory. Tests call Dir. They are skipped, with a message, only when
// no corpus is configured at all (no ../shared/corpus and no
// UNWIND_CORPUS_DIR), as in a user's fresh clone, and never when the
// environment variable CI is "true". Any other failure to get the corpus (a
// failed unpack, an unwritable cache, a full disk, a missing file) fails the
// test.
//
// Each test that got a corpus folder is recorded, with the number of cases it
// checked (Checked), in the file named by UNWIND_CORPUS_REPORT when that is
// set: .ci/run prints the total, so CI shows the corpus tests ran.
package corpus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// archives maps a corpus name to its archive file and the folder it unpacks to.
var archives = map[string]struct{ file, dir string }{
	"user":   {"user-dev.tar.zst", "user"},
	"kernel": {"kernel-dev.tar.zst", "kernel"},
	"kdump":  {"kernel-kdump-dev.tar.zst", "kdump"},
	"prod":   {"prod-dev.tar.zst", "prod-dev"},
}

var mu sync.Mutex

// sharedOverride replaces ../shared/corpus in tests of this package.
var sharedOverride string

// Dir returns the unpacked folder of the named corpus ("user", "kernel",
// "kdump" or "prod"), unpacking it on first use. It skips tb when no corpus
// is configured (see Configured) and fails it when the corpus is configured
// but cannot be had. The environment variable UNWIND_CORPUS_DIR names a
// folder that already holds the unpacked corpora.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	d, err := Find(name)
	if err != nil {
		Unavailable(tb, fmt.Sprintf("corpus %q", name), err)
	}
	track(tb)
	return d
}

// File returns the path of a file that sits beside the archives (such as
// kernel-truth-dev.json): in UNWIND_CORPUS_DIR when that holds it, else in
// ../shared/corpus. It skips or fails tb as Dir does.
func File(tb testing.TB, name string) string {
	tb.Helper()
	p, err := FindFile(name)
	if err != nil {
		Unavailable(tb, name, err)
	}
	track(tb)
	return p
}

// FindFile is File without a testing.TB.
func FindFile(name string) (string, error) {
	if env := os.Getenv("UNWIND_CORPUS_DIR"); env != "" {
		p := filepath.Join(env, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	shared := SharedDir()
	if shared == "" {
		return "", fmt.Errorf("%s: no corpus configured (../shared/corpus absent, UNWIND_CORPUS_DIR does not hold it)", name)
	}
	p := filepath.Join(shared, name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// Configured reports whether a reference corpus is configured at all:
// ../shared/corpus exists beside the repository or UNWIND_CORPUS_DIR is set.
func Configured() bool {
	return os.Getenv("UNWIND_CORPUS_DIR") != "" || SharedDir() != ""
}

// Unavailable ends tb because what could not be had: a skip when no corpus
// is configured and CI is not "true", a failure otherwise. Tests call it for
// any corpus file they cannot open.
func Unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if !Configured() && os.Getenv("CI") != "true" {
		tb.Skipf("%s: no reference corpus configured (../shared/corpus absent, UNWIND_CORPUS_DIR unset): %v", what, err)
	}
	tb.Fatalf("%s: reference corpus configured but not usable: %v", what, err)
}

// SharedDir returns ../shared/corpus relative to the repository root, or ""
// when it does not exist.
func SharedDir() string {
	d := sharedOverride
	if d == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			return ""
		}
		root := filepath.Join(filepath.Dir(file), "..", "..")
		d = filepath.Join(root, "..", "shared", "corpus")
	}
	if fi, err := os.Stat(d); err == nil && fi.IsDir() {
		return d
	}
	return ""
}

// Find is Dir without a testing.TB: it returns the folder or an error.
func Find(name string) (string, error) {
	arch, ok := archives[name]
	if !ok {
		return "", fmt.Errorf("unknown corpus %q", name)
	}
	if env := os.Getenv("UNWIND_CORPUS_DIR"); env != "" {
		d := filepath.Join(env, arch.dir)
		if _, err := os.Stat(d); err == nil {
			return d, nil
		}
	}
	shared := SharedDir()
	if shared == "" {
		return "", fmt.Errorf("../shared/corpus not found")
	}
	src := filepath.Join(shared, arch.file)
	fi, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	// Key the cache on the archive's size and time so a rewritten archive is
	// unpacked again.
	dest := filepath.Join(cache, "unwind-corpus", fmt.Sprintf("%s-%d-%d", name, fi.Size(), fi.ModTime().Unix()))
	out := filepath.Join(dest, arch.dir)
	mu.Lock()
	defer mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(dest + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dest, ".done")); err == nil {
		return out, nil
	}
	tmp := dest + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("tar", "--zstd", "-xSf", src, "-C", tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpacking %s: %v: %s", src, err, b)
	}
	os.RemoveAll(dest)
	if err := os.Rename(tmp, dest); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dest, ".done"), nil, 0o644); err != nil {
		return "", err
	}
	removeStale(filepath.Dir(dest), name, filepath.Base(dest))
	return out, nil
}

// removeStale removes the unpacked copies of the named corpus in dir other
// than keep, with their lock files: copies of an archive that has since
// been rewritten (a new size or time), which nothing reads any more. Each
// is about a GB unpacked, and ../shared is rewritten from outside, so
// without this a developer's cache grows by a copy per rewrite.
func removeStale(dir, name, keep string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		base := strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".lock"), ".tmp")
		if base == keep || !isCopyOf(base, name) {
			continue
		}
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// isCopyOf reports whether base names an unpacked copy of the named
// corpus: name-SIZE-TIME, as Find names them.
func isCopyOf(base, name string) bool {
	size, mtime, ok := strings.Cut(strings.TrimPrefix(base, name+"-"), "-")
	if !ok || !strings.HasPrefix(base, name+"-") {
		return false
	}
	_, err1 := strconv.ParseUint(size, 10, 64)
	_, err2 := strconv.ParseInt(mtime, 10, 64)
	return err1 == nil && err2 == nil
}

// Tool returns the path of an outside program a test compares with (gdb,
// gcc...). When it is not installed the test is skipped, except under
// CI=true, where .ci/run installs it: there a missing tool fails the test.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is needed by this test and not installed (.ci/run installs it): %v", name, err)
		}
		tb.Skipf("%s not installed: %v", name, err)
	}
	return p
}
