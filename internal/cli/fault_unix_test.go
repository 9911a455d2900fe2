//go:build unix

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
)

// TestFaultExit: a mapped file truncated under the reader faults on the
// pages it lost; Run's guard reports that as an error with exit 1, not a
// runtime crash (the symbols package maps ELF and debug files).
func TestFaultExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mapped")
	if err := os.WriteFile(path, make([]byte, 1<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := syscall.Mmap(int(f.Fd()), 0, 1<<17, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(b)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	code := func() (code int) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer faultExit(&errOut, &code)
		return int(b[1<<16]) + 100 // faults: the page is past the file's end
	}()
	if code != ExitFailure || !strings.Contains(errOut.String(), "truncated or changed while unwind read it") {
		t.Fatalf("code %d, stderr %q; want %d and the fault reported", code, errOut.String(), ExitFailure)
	}
}

// TestFaultExitPassesOtherPanics: the guard recovers faults only.
func TestFaultExitPassesOtherPanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "other" {
			t.Fatalf("recovered %v, want the panic passed on", r)
		}
	}()
	var code int
	func() {
		defer faultExit(new(bytes.Buffer), &code)
		panic("other")
	}()
}

// TestFaultExitPassesNilDereference: a nil dereference under the guard is
// a bug in unwind, not a truncated file: it is not reported as one.
func TestFaultExitPassesNilDereference(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("the nil dereference was swallowed")
		}
	}()
	var code int
	var p *[1 << 10]byte
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer faultExit(new(bytes.Buffer), &code)
		code = int(p[100])
	}()
	t.Fatalf("no panic, code %d", code)
}
