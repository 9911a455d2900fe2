package symbols

import (
	"debug/elf"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// debugRoots returns where a --debug-dir DIR may keep its debug files:
// DIR itself laid out like /usr/lib/debug, or DIR a root (a sysroot, an
// unpacked -dbg package) holding DIR/usr/lib/debug.
func debugRoots(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		out = append(out, d, filepath.Join(d, "usr", "lib", "debug"))
	}
	return out
}

// KernelDebugCandidates lists where a kernel's debug vmlinux may be in
// directories laid out as distributions install debug files (each DIR
// like /usr/lib/debug, or a root holding DIR/usr/lib/debug), best first:
// by GNU build id (hex) DIR/.build-id/xx/rest.debug (and without
// .debug), then by release DIR/boot/vmlinux-RELEASE (Debian, Ubuntu),
// DIR/lib/modules/RELEASE/vmlinux (Fedora), DIR/vmlinux-RELEASE. Either
// may be empty. The caller checks the build id of what it opens.
func KernelDebugCandidates(dirs []string, buildID, release string) []string {
	var c []string
	buildID = strings.ToLower(buildID)
	if _, err := hex.DecodeString(buildID); err != nil {
		buildID = "" // not a build id: from a damaged or hostile dump
	}
	for _, d := range debugRoots(dirs) {
		if len(buildID) > 2 {
			c = append(c, filepath.Join(d, ".build-id", buildID[:2], buildID[2:]+".debug"),
				filepath.Join(d, ".build-id", buildID[:2], buildID[2:]))
		}
	}
	if release != "" && !strings.ContainsAny(release, "/\x00") && release != ".." {
		for _, d := range debugRoots(dirs) {
			c = append(c, filepath.Join(d, "boot", "vmlinux-"+release),
				filepath.Join(d, "lib", "modules", release, "vmlinux"),
				filepath.Join(d, "vmlinux-"+release))
		}
	}
	return c
}

// ModuleDebugDirs lists the directories under which a kernel's module
// debug files (NAME.ko, NAME.ko.debug, in subdirectories) are installed
// for release: DIR/lib/modules/RELEASE for each DIR like /usr/lib/debug
// or root holding one. Search them recursively by module name.
func ModuleDebugDirs(dirs []string, release string) []string {
	if release == "" || strings.ContainsAny(release, "/\x00") || release == ".." {
		return nil
	}
	var out []string
	for _, d := range debugRoots(dirs) {
		p := filepath.Join(d, "lib", "modules", release)
		if isDir(p) {
			out = append(out, p)
		}
	}
	return out
}

// FindKernelDebug returns the first of KernelDebugCandidates that is a
// regular ELF file whose build id is buildID (any, when buildID is ""),
// and the candidates that were there but had another build id.
func FindKernelDebug(dirs []string, buildID, release string) (string, []string) {
	var wrong []string
	for _, c := range KernelDebugCandidates(dirs, buildID, release) {
		if fileio.CheckRegular(c) != nil {
			continue
		}
		f, err := elf.Open(c)
		if err != nil {
			continue
		}
		id := hex.EncodeToString(readBuildID(f))
		f.Close()
		if buildID == "" || strings.EqualFold(id, buildID) {
			return c, wrong
		}
		wrong = append(wrong, c+" (build id "+id+")")
	}
	return "", wrong
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
