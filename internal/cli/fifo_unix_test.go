//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// runWithin runs the command and fails the test if it takes more than 20
// seconds: a blocked open of a named pipe never returns.
func runWithin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	type res struct {
		out, errOut string
		code        int
	}
	ch := make(chan res, 1)
	go func() {
		o, e, c := run(t, args...)
		ch <- res{o, e, c}
	}()
	select {
	case r := <-ch:
		return r.out, r.errOut, r.code
	case <-time.After(20 * time.Second):
		t.Fatalf("%v: still running after 20 s (blocked on a named pipe?)", args)
	}
	return "", "", 0
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

// TestNamedPipesRefused: a named pipe given as the dump, as a symbol
// file, or found where a core's NT_FILE note points is refused at once
// (it would block open forever), with a warning that says so.
func TestNamedPipesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)

	_, stderr, code := runWithin(t, "bt", fifo)
	if code != ExitFailure || !strings.Contains(stderr, "not a regular file: it is a named pipe") {
		t.Errorf("bt FIFO: exit %d: %s", code, stderr)
	}
	_, stderr, code = runWithin(t, "symbolize", "--sym", fifo, "0x1000")
	if code == ExitOK || !strings.Contains(stderr, "not a regular file") {
		t.Errorf("symbolize --sym FIFO: exit %d: %s", code, stderr)
	}
	_, stderr, code = runWithin(t, "info", fifo)
	if code != ExitFailure || !strings.Contains(stderr, "named pipe") {
		t.Errorf("info FIFO: exit %d: %s", code, stderr)
	}

	// A user core whose executable and libc paths lead to named pipes.
	z, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "usercores", "O2cfi", "abort.core.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	b, err := dec.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	core := filepath.Join(dir, "abort.core")
	if err := os.WriteFile(core, b, 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	mkfifo(t, filepath.Join(root, "tmp/ucore-run/O2cfi/ucore"))
	mkfifo(t, filepath.Join(root, "usr/lib/x86_64-linux-gnu/libc.so.6"))
	_, stderr, _ = runWithin(t, "bt", core, "--sysroot", root)
	for _, want := range []string{
		"warning: /tmp/ucore-run/O2cfi/ucore: open " + root + "/tmp/ucore-run/O2cfi/ucore: not a regular file: it is a named pipe: refused",
		"warning: /usr/lib/x86_64-linux-gnu/libc.so.6: open " + root + "/usr/lib/x86_64-linux-gnu/libc.so.6: not a regular file: it is a named pipe: refused",
	} {
		if !strings.Contains(stderr, want+"\n") {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	// --exe naming a pipe is not opened either.
	_, stderr, _ = runWithin(t, "bt", core, "--exe", fifo, "--sysroot", dir)
	if !strings.Contains(stderr, "warning: /tmp/ucore-run/O2cfi/ucore: open "+fifo+": not a regular file: it is a named pipe: refused") {
		t.Errorf("--exe FIFO: %s", stderr)
	}

	// The recorded libc path rewritten (same length) to climb out of the
	// sysroot, and into /proc: both refused, with a warning.
	for _, c := range []struct{ path, want string }{
		{"/../../../../../../../etc/libc.so.6", "leads out of the sysroot " + root + " (to /etc/libc.so.6): refused"},
		{"/proc/1/root/usr/lib/x86_64/libc.so", "a mapped file under /proc is not read: refused"},
	} {
		mut := []byte(strings.ReplaceAll(string(b), "/usr/lib/x86_64-linux-gnu/libc.so.6\x00", c.path+"\x00"))
		p := filepath.Join(dir, "mut.core")
		if err := os.WriteFile(p, mut, 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, _ = runWithin(t, "bt", p, "--sysroot", root)
		if !strings.Contains(stderr, "warning: "+c.path+": "+c.want+"\n") {
			t.Errorf("%s: stderr\n%s", c.path, stderr)
		}
	}
}
