package symbols

import (
	"strings"
	"testing"
)

// kallsymsIgnoredRef is kallsymsIgnored's plain definition: the prefixes
// scripts/mksysmap and scripts/kallsyms drop.
func kallsymsIgnoredRef(name string) bool {
	if name == "L0" || strings.HasPrefix(name, "$") || strings.HasPrefix(name, ".L") {
		return true
	}
	for _, p := range [...]string{"__crc_", "__kstrtab_", "__kstrtabns_", "__kcfi_typeid_", "__efistub_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func TestKallsymsIgnored(t *testing.T) {
	names := []string{"", "$", "$x", "L", "L0", "L01", ".", ".L", ".Ltmp1", ".text", "_", "__", "__crc", "__crc_foo",
		"__kstrtab_x", "__kstrtabns_x", "__kcfi_typeid_f", "__efistub_memcpy", "__efistub", "_stext", "schedule", "__schedule"}
	for _, n := range names {
		if got, want := kallsymsIgnored(n), kallsymsIgnoredRef(n); got != want {
			t.Errorf("kallsymsIgnored(%q) = %v, want %v", n, got, want)
		}
	}
}

func FuzzKallsymsIgnored(f *testing.F) {
	for _, n := range []string{"$x", "L0", ".Ltmp", "__crc_x", "__kstrtabns_y", "_stext", "schedule"} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n string) {
		if got, want := kallsymsIgnored(n), kallsymsIgnoredRef(n); got != want {
			t.Fatalf("kallsymsIgnored(%q) = %v, want %v", n, got, want)
		}
	})
}
