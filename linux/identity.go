package linux

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// The KASLR offset of x86-64: the kernel image is placed at a multiple of
// CONFIG_PHYSICAL_ALIGN (2 MiB at least) inside the 1 GiB kernel image
// area above __START_KERNEL_map, and linked at 16 MiB into it.
const (
	kaslrAlign = 2 << 20
	kaslrLimit = 1<<30 - 16<<20
)

// ErrBadOffset is wrapped by the error Open returns when the dump gives a
// KASLR offset no kernel can have and none can be found from the dump
// itself.
var ErrBadOffset = errors.New("impossible KASLR offset")

// ErrWrongSymbols is wrapped by the error Open returns when a symbol file
// is not the dumped kernel's (its build id or linux_banner differs), unless
// dump.SymbolOptions.Force says to use it anyway.
var ErrWrongSymbols = errors.New("symbol file is not the dumped kernel's")

// validOffset reports whether v can be a KASLR offset.
func validOffset(v uint64) bool { return v%kaslrAlign == 0 && v < kaslrLimit }

// findOffset returns the KASLR offset and where it came from:
// VMCOREINFO's KERNELOFFSET when it is one a kernel can have; the
// run-time _stext VMCOREINFO gives minus the link-time one; else, for a
// dump with no VMCOREINFO (QEMU's dump-guest-memory without the vmcoreinfo
// device), the exception handlers the CPU's IDT points to against their
// link-time addresses. An impossible KERNELOFFSET is refused, with a
// warning when the IDT gives the offset, an error otherwise.
func (k *Kernel) findOffset(opts dump.SymbolOptions) (uint64, string, []string, error) {
	var warns []string
	if s, ok := k.info["KERNELOFFSET"]; ok {
		v, okHex := k.info.Hex("KERNELOFFSET")
		if okHex && validOffset(v) {
			return v, "VMCOREINFO KERNELOFFSET", nil, nil
		}
		why := fmt.Sprintf("VMCOREINFO KERNELOFFSET=%s is no KASLR offset a kernel can have (a multiple of 2 MiB below %#x): refused", s, uint64(kaslrLimit))
		if v, src, ok := k.idtOffset(opts); ok {
			return v, src, []string{why}, nil
		}
		return 0, "", nil, fmt.Errorf("%w: %s, and the IDT gives none", ErrBadOffset, why)
	}
	if run, ok := k.info.Symbol("_stext"); ok {
		if link, ok := linkTimeSymbol(opts, "_stext"); ok {
			v := run - link
			if validOffset(v) {
				return v, "VMCOREINFO SYMBOL(_stext) minus the symbol file's", nil, nil
			}
			warns = append(warns, fmt.Sprintf("VMCOREINFO SYMBOL(_stext)=%#x minus the symbol file's %#x is no KASLR offset: refused", run, link))
		}
	}
	if v, src, ok := k.idtOffset(opts); ok {
		return v, src, warns, nil
	}
	if len(k.info) == 0 && (len(opts.Files) > 0 || opts.SystemMap != "") {
		warns = append(warns, "the dump has no VMCOREINFO and its IDT gives no KASLR offset: symbols are used as linked")
	}
	return 0, "none (symbols as linked)", warns, nil
}

// idtVectors are exception vectors whose IDT gates point at the entry
// stub of the same name in every x86-64 kernel since 5.8.
var idtVectors = []struct {
	vec  uint64
	name string
}{{0, "asm_exc_divide_error"}, {3, "asm_exc_int3"}, {6, "asm_exc_invalid_op"}, {14, "asm_exc_page_fault"}}

// idtOffset finds the KASLR offset from CPU 0's IDT (the QEMU note's IDTR,
// read through that CPU's page tables): every gate of idtVectors must be
// its handler's link-time address plus one offset a kernel can have.
func (k *Kernel) idtOffset(opts dump.SymbolOptions) (uint64, string, bool) {
	if len(k.qemu) == 0 || k.qemu[0].IDTBase == 0 || k.qemu[0].IDTLimit < 16*15-1 {
		return 0, "", false
	}
	mem := k.d.CPUMemory(0)
	var names []string
	for _, v := range idtVectors {
		names = append(names, v.name)
	}
	links := linkTimeSymbols(opts, names...)
	var off uint64
	for i, v := range idtVectors {
		link, ok := links[v.name]
		if !ok {
			return 0, "", false
		}
		var g [16]byte
		if n, _ := mem.ReadAt(g[:], k.qemu[0].IDTBase+16*v.vec); n != len(g) {
			return 0, "", false
		}
		le := binary.LittleEndian
		target := uint64(le.Uint16(g[0:])) | uint64(le.Uint16(g[6:]))<<16 | uint64(le.Uint32(g[8:]))<<32
		if g[5]&0x80 == 0 { // not present
			return 0, "", false
		}
		o := target - link
		if i > 0 && o != off || !validOffset(o) {
			return 0, "", false
		}
		off = o
	}
	return off, fmt.Sprintf("the IDT (CPU 0's gates for vectors 0, 3, 6, 14 at %#x against the symbol file)", k.qemu[0].IDTBase), true
}

// checkSymbolFiles refuses symbol files that are not the dumped kernel's:
// a vmlinux whose GNU build id differs from VMCOREINFO's BUILD-ID, or
// (when the dump has none) whose linux_banner differs from the one in the
// dump's memory; a System.map whose linux_banner address does not hold
// the dump's banner. With opts.Force the mismatches are warnings.
func (k *Kernel) checkSymbolFiles(opts dump.SymbolOptions, bias uint64) ([]string, error) {
	var problems []string
	dumpID := strings.ToLower(k.info["BUILD-ID"])
	for _, path := range opts.Files {
		if isModuleFile(path) || fileio.CheckRegular(path) != nil {
			continue
		}
		f, err := elf.Open(path)
		if err != nil {
			continue // symbols.Open says why
		}
		id := elfBuildID(f)
		switch {
		case dumpID != "" && id != "" && id != dumpID:
			problems = append(problems, fmt.Sprintf("%s is not the dumped kernel's vmlinux: its build id is %s, the dump's kernel's (VMCOREINFO BUILD-ID) is %s", path, id, dumpID))
		case dumpID == "" || id == "":
			if p := k.checkBannerELF(f, path, bias); p != "" {
				problems = append(problems, p)
			}
		}
		f.Close()
	}
	if opts.SystemMap != "" {
		if p := k.checkBannerMap(opts, bias); p != "" {
			problems = append(problems, p)
		}
	}
	if len(problems) == 0 {
		return nil, nil
	}
	if opts.Force {
		for i := range problems {
			problems[i] += " (used anyway: --force-sym)"
		}
		return problems, nil
	}
	return nil, fmt.Errorf("%w: %s; give the matching file, or --force-sym to use it anyway", ErrWrongSymbols, strings.Join(problems, "; "))
}

// elfBuildID returns the hex GNU build id of an ELF file ("" when none).
func elfBuildID(f *elf.File) string { return hex.EncodeToString(symbols.BuildIDOf(f)) }

// maxBanner bounds the linux_banner compared.
const maxBanner = 256

// dumpBanner reads the string at the run-time address a in the dump; ok
// is false when the dump left the page out (nothing to compare). An
// address with no memory behind it reads as "".
func (k *Kernel) dumpBanner(a uint64) (string, bool) {
	b := make([]byte, maxBanner)
	n, err := k.mem.ReadAt(b, a)
	if n == 0 && (errors.Is(err, dump.ErrExcluded) || !errors.Is(err, unwind.ErrUnmapped)) {
		return "", false
	}
	b = b[:n]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), true
}

// checkBannerELF compares vmlinux's linux_banner with the dump's.
func (k *Kernel) checkBannerELF(f *elf.File, path string, bias uint64) string {
	var link uint64
	for s := range symbols.ELFSymbols(f) {
		if s.Name == "linux_banner" {
			link = s.Value
		}
	}
	if link == 0 {
		return ""
	}
	var file string
	for _, s := range f.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Addr <= link && link < s.Addr+s.Size {
			b := make([]byte, min(maxBanner, s.Addr+s.Size-link))
			if _, err := s.ReadAt(b, int64(link-s.Addr)); err != nil {
				return ""
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			file = string(b)
		}
	}
	if file == "" {
		return ""
	}
	if got, ok := k.dumpBanner(link + bias); ok && got != file {
		return fmt.Sprintf("%s is not the dumped kernel's vmlinux: its linux_banner is %q, the dump's (at %#x) is %q", path, strings.TrimSpace(file), link+bias, strings.TrimSpace(got))
	}
	return ""
}

// checkBannerMap requires the System.map's linux_banner address to hold
// the dump's banner ("Linux version RELEASE ...").
func (k *Kernel) checkBannerMap(opts dump.SymbolOptions, bias uint64) string {
	f, err := fileio.OpenRegular(opts.SystemMap)
	if err != nil {
		return ""
	}
	defer f.Close()
	t, err := symbols.ParseSystemMap(f, bias)
	if err != nil {
		return ""
	}
	s, ok := t.ByName("linux_banner")
	if !ok {
		return ""
	}
	got, ok := k.dumpBanner(s.Addr)
	if !ok {
		return ""
	}
	if len(got) > 40 {
		got = got[:40]
	}
	want := "Linux version "
	if rel := k.d.Release(); rel != "" {
		want += rel + " "
	}
	if !strings.HasPrefix(got, want) {
		return fmt.Sprintf("%s is not the dumped kernel's System.map: its linux_banner (%#x) holds %q in the dump, not %q…", opts.SystemMap, s.Addr, strings.TrimSpace(got), want)
	}
	return ""
}

// linkTimeSymbols returns the link-time addresses of names from the
// System.map or the vmlinux files of opts, reading each file once.
func linkTimeSymbols(opts dump.SymbolOptions, names ...string) map[string]uint64 {
	out := map[string]uint64{}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if opts.SystemMap != "" {
		if f, err := fileio.OpenRegular(opts.SystemMap); err == nil {
			t, err := symbols.ParseSystemMap(f, 0)
			f.Close()
			if err == nil {
				for _, n := range names {
					if s, ok := t.ByName(n); ok {
						out[n] = s.Addr
					}
				}
			}
		}
	}
	for _, path := range opts.Files {
		if len(out) == len(names) {
			break
		}
		if isModuleFile(path) || fileio.CheckRegular(path) != nil {
			continue
		}
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		for s := range symbols.ELFSymbols(f) {
			if _, done := out[s.Name]; want[s.Name] && !done {
				out[s.Name] = s.Value
			}
		}
		f.Close()
	}
	return out
}

// release is the kernel release: VMCOREINFO's OSRELEASE, else uname's
// from the dump's memory (a dump without VMCOREINFO).
func (k *Kernel) release() string {
	if r := k.info["OSRELEASE"]; r != "" {
		return r
	}
	if u, ok := k.UTSName(); ok {
		return u.Release
	}
	return ""
}

// useDebugDirs looks in opts.DebugDirs (laid out like /usr/lib/debug)
// for the dumped kernel's vmlinux, by VMCOREINFO's BUILD-ID then by its
// release, when no vmlinux was given, and adds the release's module
// directory there to where module files are searched.
func (k *Kernel) useDebugDirs(opts, modOpts *dump.SymbolOptions) {
	id, rel := k.info["BUILD-ID"], k.info["OSRELEASE"]
	if len(opts.Files) == 0 {
		p, wrong := symbols.FindKernelDebug(opts.DebugDirs, id, rel)
		for _, w := range wrong {
			k.warns = append(k.warns, fmt.Sprintf("--debug-dir: %s is not the dumped kernel's vmlinux (build id %s): skipped", w, id))
		}
		if p != "" {
			opts.Files = append(opts.Files, p)
			modOpts.Files = append(modOpts.Files, p)
		} else {
			k.warns = append(k.warns, fmt.Sprintf("--debug-dir: no vmlinux with build id %q or for release %q in %s", id, rel, strings.Join(opts.DebugDirs, ", ")))
		}
	}
	modOpts.SearchDirs = append(modOpts.SearchDirs, symbols.ModuleDebugDirs(opts.DebugDirs, rel)...)
}
