// Package corpus finds the project's outside reference dumps for tests: the
// archives in ../shared/corpus (beside the repository), unpacked once into a
// cache directory. Tests call Dir and are skipped, with a message, when the
// archives are absent, as they are in a user's fresh clone.
package corpus

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// Dir returns the unpacked folder of the named corpus ("user", "kernel",
// "kdump" or "prod"), unpacking it on first use, or skips tb when it cannot be had.
// The environment variable UNWIND_CORPUS_DIR names a folder that already
// holds the unpacked corpora.
func Dir(tb testing.TB, name string) string {
	tb.Helper()
	d, err := Find(name)
	if err != nil {
		tb.Skipf("corpus %q not available: %v", name, err)
	}
	return d
}

// SharedDir returns ../shared/corpus relative to the repository root, or ""
// when it does not exist.
func SharedDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	d := filepath.Join(root, "..", "shared", "corpus")
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
	return out, nil
}
