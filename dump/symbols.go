package dump

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// SymbolOptions says where to find the binaries a dump was made from.
type SymbolOptions struct {
	Exe        string   // the user core's executable (as given on the command line)
	Sysroot    string   // prefix for the paths recorded in the core ("/" when empty)
	SearchDirs []string // directories searched by file name and build id (--sym DIR)
	Files      []string // explicit files: for a vmcore, vmlinux; for a user core, any binaries (matched by build id or name)
	SystemMap  string   // a kernel System.map, used when vmlinux has no symbols or is not given
	// DebugDirs are directories laid out as distributions install debug
	// files (/usr/lib/debug, or a root holding one): a kernel's vmlinux is
	// found there by build id (.build-id/xx/rest.debug) or release
	// (boot/vmlinux-RELEASE, lib/modules/RELEASE/vmlinux), its modules under
	// lib/modules/RELEASE (symbols.KernelDebugCandidates, ModuleDebugDirs).
	DebugDirs []string
	// Force uses a kernel symbol file whose build id or linux_banner
	// differs from the dump's (linux.Open refuses it otherwise).
	Force bool
}

// Symbols finds and opens the binaries the dump's code came from and returns
// them as one symbols.Set, relocated to where they ran, plus warnings for
// the modules it could not find or verify.
//
// For a user core each NT_FILE mapping's ELF file is looked for at its path
// under Sysroot, then by name in SearchDirs and Files; when the core holds
// the mapped file's first page its GNU build id must match the candidate's.
// The load bias is the mapping with file offset 0 minus the ELF's first
// PT_LOAD address. A separate debug file (found through the build id under
// a .build-id directory, .gnu_debuglink, or NAME.debug beside the file or in
// SearchDirs) is added to the set after the main file with the same bias:
// the main file keeps .eh_frame, the debug file adds the full symbol table,
// DWARF and .debug_frame. The vDSO is read from the core's memory.
//
// For an emulator snapshot the Files (its kernel) and SystemMap are opened
// as linked. A kernel vmcore's symbols are the kernel model's: Symbols
// returns ErrKernelDump, and linux.Open takes the same SymbolOptions.
func (d *Dump) Symbols(opts SymbolOptions) (*symbols.Set, []string, error) {
	set := &symbols.Set{}
	var warns []string
	if d.kind == KindUserCore {
		warns = d.userSymbols(set, opts)
		return set, warns, nil
	}
	if d.kind == KindVmcore {
		return nil, nil, ErrKernelDump
	}
	bias := uint64(0)
	opened := 0
	for _, f := range opts.Files {
		sf, err := symbols.Open(f, bias)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		set.Add(sf)
		opened++
	}
	if opts.SystemMap != "" {
		f, err := fileio.OpenRegular(opts.SystemMap)
		if err != nil {
			return set, warns, err
		}
		t, err := symbols.ParseSystemMap(f, bias)
		f.Close()
		if err != nil {
			return set, warns, fmt.Errorf("%s: %w", opts.SystemMap, err)
		}
		set.AddTable(t, "")
		opened++
	}
	if opened == 0 {
		warns = append(warns, "no kernel symbols given (vmlinux or System.map)")
	}
	return set, warns, nil
}

// module is one file-backed object of a user core.
type module struct {
	path    string // as recorded in the core
	base    uint64 // start of the mapping at file offset 0
	buildID []byte // from the core's copy of the first page, if present
}

func (d *Dump) userModules() []module {
	var mods []module
	seen := map[string]bool{}
	for _, m := range d.user.maps {
		if m.Off != 0 || seen[m.Path] || !strings.HasPrefix(m.Path, "/") {
			continue
		}
		seen[m.Path] = true
		mod := module{path: m.Path, base: m.Start}
		mod.buildID = memBuildID(d.mem, m.Start)
		if mod.buildID == nil && strings.HasPrefix(m.Path, "/dev/") {
			continue
		}
		mods = append(mods, mod)
	}
	return mods
}

func (d *Dump) userSymbols(set *symbols.Set, opts SymbolOptions) []string {
	var warns []string
	exeBase := uint64(0)
	for _, a := range d.user.auxv {
		if a.Tag == 9 { // AT_ENTRY
			exeBase = a.Val
		}
	}
	for _, mod := range d.userModules() {
		isExe := false
		for _, m := range d.user.maps {
			if m.Path == mod.path && m.Start <= exeBase && exeBase < m.End {
				isExe = true
			}
		}
		cands, refused := candidatePaths(mod.path, isExe, opts)
		if refused != nil {
			warns = append(warns, refused.Error())
		}
		path, why := "", ""
		var fh *os.File
		var ef *elf.File
		for _, c := range cands {
			h, e, id, err := openELF(c)
			if errors.Is(err, fileio.ErrNotRegular) && why == "" {
				why = fmt.Sprintf("%v: refused", err)
			}
			if err != nil {
				continue
			}
			if mod.buildID != nil && id != nil && !bytes.Equal(id, mod.buildID) {
				why = fmt.Sprintf("%s has build id %x, core wants %x", c, id, mod.buildID)
				h.Close()
				continue
			}
			path, fh, ef = c, h, e
			break
		}
		if path == "" {
			if why == "" {
				why = "not found"
			}
			if !isUninteresting(mod.path) {
				warns = append(warns, fmt.Sprintf("%s: %s", mod.path, why))
			}
			continue
		}
		// The file is opened and its headers parsed once: the build id
		// above, the load bias, the symbols and the core's file-backed
		// memory all come from fh and ef.
		bias, err := loadBias(ef, mod.base)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: %v", path, err))
			fh.Close()
			continue
		}
		f, dbg, dbgErr, err := symbols.NewFileWithDebug(fh, ef, path, bias, debugDirs(opts))
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: %v", path, err))
			fh.Close()
			continue
		}
		d.syms = append(d.syms, f)
		d.files = append(d.files, fh) // f reads it; Close closes it after f
		if dbgErr != nil {
			warns = append(warns, fmt.Sprintf("%s: %v", dbg, dbgErr))
		}
		set.Add(f)
		d.backWithFile(mod.path, fh)
	}
	// The vDSO is not a file: read it from the core.
	for _, a := range d.user.auxv {
		if a.Tag == 33 && a.Val != 0 { // AT_SYSINFO_EHDR
			r := &memReaderAt{m: d.mem, base: a.Val}
			if memBuildID(d.mem, a.Val) == nil && !isELFAt(d.mem, a.Val) {
				continue
			}
			if ef, err := elf.NewFile(r); err == nil {
				if bias, err := loadBias(ef, a.Val); err == nil {
					if f, err := symbols.NewFile(r, "[vdso]", bias); err == nil {
						set.Add(f)
					}
				}
			}
		}
	}
	return warns
}

func isUninteresting(p string) bool {
	return strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/memfd:") || strings.HasSuffix(p, " (deleted)")
}

// candidatePaths lists where a mapped file may be found, best first, and
// says why the path the core records was refused (under /proc or /sys,
// or leading out of the sysroot), if it was.
func candidatePaths(path string, isExe bool, opts SymbolOptions) ([]string, error) {
	var c []string
	base := filepath.Base(path)
	if isExe && opts.Exe != "" {
		c = append(c, opts.Exe)
	}
	for _, f := range opts.Files {
		if filepath.Base(f) == base {
			c = append(c, f)
		}
	}
	for _, dir := range opts.SearchDirs {
		c = append(c, filepath.Join(dir, base))
	}
	recorded, refused := recordedPath(path, opts.Sysroot)
	if refused == nil {
		c = append(c, recorded)
	}
	// Explicit files under another name last: the build id decides.
	for _, f := range opts.Files {
		if filepath.Base(f) != base {
			c = append(c, f)
		}
	}
	return c, refused
}

// recordedPath returns where the file a core's NT_FILE note names is
// read from: path under sysroot ("/" when empty). It refuses paths under
// /proc and /sys (the analysing machine's own processes and devices, not
// the dumped one's) and paths whose ".." lead out of the sysroot onto the
// analysing machine's files. (Symbolic links inside the sysroot are the
// user's own and are followed.)
func recordedPath(path, sysroot string) (string, error) {
	clean := filepath.Clean("/" + path)
	for _, dir := range []string{"/proc", "/sys"} {
		if clean == dir || strings.HasPrefix(clean, dir+"/") {
			return "", fmt.Errorf("%s: a mapped file under %s is not read: refused", path, dir)
		}
	}
	if sysroot == "" {
		return path, nil
	}
	joined := filepath.Join(sysroot, path)
	if rel, err := filepath.Rel(filepath.Clean(sysroot), joined); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s: leads out of the sysroot %s (to %s): refused", path, sysroot, joined)
	}
	return joined, nil
}

// debugDirs lists where separate debug files are looked for, beyond the
// main file's own folder: the search directories and the sysroot's
// /usr/lib/debug (with its .build-id tree).
func debugDirs(opts SymbolOptions) []string {
	dirs := append([]string(nil), opts.SearchDirs...)
	sys := opts.Sysroot
	if sys == "" {
		sys = "/"
	}
	return append(dirs, filepath.Join(sys, "usr/lib/debug"))
}

// openELF opens the regular file at path and parses its ELF headers; id
// is its GNU build id (nil when it has none). The caller closes fh.
func openELF(path string) (fh *os.File, ef *elf.File, id []byte, err error) {
	fh, err = fileio.OpenRegular(path)
	if err != nil {
		return nil, nil, nil, err
	}
	if ef, err = elf.NewFile(fh); err != nil {
		fh.Close()
		return nil, nil, nil, err
	}
	return fh, ef, fileBuildID(ef), nil
}

// fileBuildID returns the GNU build id of an ELF file (nil when it has
// none).
func fileBuildID(f *elf.File) []byte {
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > 1<<16 {
			continue
		}
		b, err := s.Data()
		if err != nil {
			continue
		}
		if id := buildIDFromNotes(b); id != nil {
			return id
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz > 1<<16 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			continue
		}
		if id := buildIDFromNotes(b); id != nil {
			return id
		}
	}
	return nil
}

func buildIDFromNotes(b []byte) []byte {
	notes, _ := ParseNotes(b, 0)
	for _, n := range notes {
		if n.Name == "GNU" && n.Type == ntGNUBuild && len(n.Desc) > 0 {
			return append([]byte(nil), n.Desc...)
		}
	}
	return nil
}

// memBuildID reads an ELF image's build id from memory at base (the first
// page of a mapped file, when the core holds it).
func memBuildID(m unwind.Memory, base uint64) []byte {
	var page [4096]byte
	if n, _ := m.ReadAt(page[:], base); n < elfHeaderSize || string(page[:4]) != "\x7fELF" {
		return nil
	}
	le := binary.LittleEndian
	phoff := le.Uint64(page[32:])
	phnum := uint64(le.Uint16(page[56:]))
	if le.Uint16(page[54:]) != progHdrSize || phoff > uint64(len(page)) || phnum > (uint64(len(page))-phoff)/progHdrSize {
		return nil
	}
	for i := uint64(0); i < phnum; i++ {
		p := page[phoff+i*progHdrSize:]
		if le.Uint32(p) != ptNote {
			continue
		}
		off, sz := le.Uint64(p[8:]), le.Uint64(p[32:])
		if sz > 4096 {
			continue
		}
		b := make([]byte, sz)
		if n, _ := m.ReadAt(b, base+off); uint64(n) != sz {
			continue
		}
		if id := buildIDFromNotes(b); id != nil {
			return id
		}
	}
	return nil
}

func isELFAt(m unwind.Memory, a uint64) bool {
	var b [4]byte
	n, _ := m.ReadAt(b[:], a)
	return n == 4 && string(b[:]) == "\x7fELF"
}

// loadBias computes the load bias of the ELF file f mapped (from file
// offset 0) at base.
func loadBias(f *elf.File, base uint64) (uint64, error) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			align := max(p.Align, 1)
			if align&(align-1) != 0 {
				align = 4096
			}
			return base - ((p.Vaddr - p.Off) &^ (align - 1)), nil
		}
	}
	return 0, errors.New("no PT_LOAD segment")
}

// memReaderAt reads an in-memory image (the vDSO) through io.ReaderAt.
type memReaderAt struct {
	m    unwind.Memory
	base uint64
}

func (r *memReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > 1<<32 {
		return 0, io.EOF
	}
	n, err := r.m.ReadAt(p, r.base+uint64(off))
	if n < len(p) && err != nil {
		return n, io.EOF
	}
	return n, nil
}

// backWithFile makes the parts of the core's segments that the kernel did
// not dump (file-backed text) readable from fh, the ELF file found for the
// file the core maps at corePath.
func (d *Dump) backWithFile(corePath string, fh io.ReaderAt) {
	sm, ok := d.mem.(*segMemory)
	if !ok {
		return
	}
	for _, m := range d.user.maps {
		if m.Path == corePath && m.End > m.Start {
			sm.addBacking(m.Start, m.End, m.Off, fh)
		}
	}
}
