package symbols

import (
	"reflect"
	"testing"
)

func TestKernelDebugCandidates(t *testing.T) {
	got := KernelDebugCandidates([]string{"/d"}, "4F61d8", "6.1.0-47")
	want := []string{
		"/d/.build-id/4f/61d8.debug", "/d/.build-id/4f/61d8",
		"/d/usr/lib/debug/.build-id/4f/61d8.debug", "/d/usr/lib/debug/.build-id/4f/61d8",
		"/d/boot/vmlinux-6.1.0-47", "/d/lib/modules/6.1.0-47/vmlinux", "/d/vmlinux-6.1.0-47",
		"/d/usr/lib/debug/boot/vmlinux-6.1.0-47", "/d/usr/lib/debug/lib/modules/6.1.0-47/vmlinux", "/d/usr/lib/debug/vmlinux-6.1.0-47",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	if c := KernelDebugCandidates([]string{"/d"}, "4f/../../../etc/passwd", ""); len(c) != 0 {
		t.Errorf("a build id that is no hex: %q", c)
	}
	// A release from a hostile dump never leaves the directory.
	for _, rel := range []string{"../../etc", "..", "a\x00b"} {
		if c := KernelDebugCandidates([]string{"/d"}, "", rel); len(c) != 0 {
			t.Errorf("release %q: %q", rel, c)
		}
		if c := ModuleDebugDirs([]string{"/"}, rel); len(c) != 0 {
			t.Errorf("module dirs for %q: %q", rel, c)
		}
	}
}
