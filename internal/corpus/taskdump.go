package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// taskDumpNames are the dump files scripts/make-taskdump.sh may leave, in
// the order they are preferred (the format QEMU offered, re-laid out by
// makedumpfile -R or left flattened).
var taskDumpNames = []string{
	"vmcore.kdump-lzo", "vmcore.kdump-zlib",
	"vmcore.kdump-lzo.flat", "vmcore.kdump-zlib.flat",
	"vmcore.elf",
}

// TaskDumpDir returns the folder where scripts/make-taskdump.sh leaves
// its dump: UNWIND_TASKDUMP when set, else unwind-corpus/taskdump in the
// user's cache directory (~/.cache/unwind-corpus/taskdump, the script's
// default).
func TaskDumpDir() string {
	if d := os.Getenv("UNWIND_TASKDUMP"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "unwind-corpus", "taskdump")
}

// FindTaskDump returns the ~300-task dump of Debian 12's 6.1 kernel that
// scripts/make-taskdump.sh made in TaskDumpDir, and the debug vmlinux of
// that build: the folder's vmlinux link, else the prod corpus's vmlinux
// (the same build, which the script checked). The error says what is
// missing and how to make it.
func FindTaskDump() (dump, vmlinux string, err error) {
	dir := TaskDumpDir()
	for _, n := range taskDumpNames {
		if p := filepath.Join(dir, n); isFile(p) {
			dump = p
			break
		}
	}
	if dump == "" {
		return "", "", fmt.Errorf("no dump in %s (make one with scripts/make-taskdump.sh, or set UNWIND_TASKDUMP)", dir)
	}
	if p := filepath.Join(dir, "vmlinux"); isFile(p) {
		return dump, p, nil
	}
	prod, perr := Find("prod")
	if perr == nil {
		if p := filepath.Join(prod, "kernel", "vmlinux-6.1.0-47-cloud-amd64"); isFile(p) {
			return dump, p, nil
		}
	}
	return "", "", fmt.Errorf("%s: no vmlinux beside it and none in the prod corpus (%v)", dump, perr)
}

// TaskDump is FindTaskDump for a test or benchmark: it skips tb, naming
// the folder, when the dump is absent. The dump is made on request (the
// script needs root, network and QEMU), never by the suite, so it skips
// under CI=true too.
func TaskDump(tb testing.TB) (dump, vmlinux string) {
	tb.Helper()
	d, v, err := FindTaskDump()
	if err != nil {
		tb.Skipf("task dump: %v", err)
	}
	return d, v
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
