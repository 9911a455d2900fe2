// Package unwindfixtures embeds the project's fixtures — the built fixture
// kernels and the emulator scenarios — so that `unwind demo`, `unwind
// emulate NAME` and `unwind verify --all` run on a fresh machine with no
// compiler and no checkout beside the binary. The fixtures/ folder itself
// holds data only.
package unwindfixtures

import (
	"embed"
	"io/fs"
)

//go:embed fixtures/kernel/build/kernel-fp.elf fixtures/kernel/build/kernel-nofp.elf fixtures/scenarios/*.scenario
var files embed.FS

// FS returns the embedded fixtures, rooted at the repository root: paths are
// "fixtures/kernel/build/kernel-fp.elf", "fixtures/scenarios/NAME.scenario".
func FS() fs.FS { return files }

// Kernel returns the fixture kernel ELF of a variant ("fp" or "nofp").
func Kernel(variant string) ([]byte, error) {
	return files.ReadFile("fixtures/kernel/build/kernel-" + variant + ".elf")
}

// Scenario returns the text of the built-in scenario NAME.
func Scenario(name string) ([]byte, error) {
	return files.ReadFile("fixtures/scenarios/" + name + ".scenario")
}

// Scenarios lists the built-in scenario names, sorted.
func Scenarios() []string {
	ents, _ := fs.ReadDir(files, "fixtures/scenarios")
	var names []string
	for _, e := range ents {
		n := e.Name()
		if len(n) > 9 && n[len(n)-9:] == ".scenario" {
			names = append(names, n[:len(n)-9])
		}
	}
	return names
}
