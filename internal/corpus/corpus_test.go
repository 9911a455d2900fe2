package corpus

import (
	"os"
	"path/filepath"
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
