package symbols

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// DebugLink returns the file name and CRC-32 recorded in the file's
// .gnu_debuglink section, which names its separate debug file; ok is false
// when there is no such section or it is malformed.
func (f *File) DebugLink() (name string, crc uint32, ok bool) {
	return debugLink(f.ef)
}

func debugLink(ef *elf.File) (name string, crc uint32, ok bool) {
	s := ef.Section(".gnu_debuglink")
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > 4096 {
		return "", 0, false
	}
	b, err := s.Data()
	if err != nil {
		return "", 0, false
	}
	n := bytes.IndexByte(b, 0)
	if n <= 0 {
		return "", 0, false
	}
	off := (n + 4) &^ 3 // the name, its NUL and padding to 4 bytes
	if off+4 > len(b) {
		return "", 0, false
	}
	return string(b[:n]), ef.ByteOrder.Uint32(b[off:]), true
}

// AttachDebug adds the separate debug file at path (made by objcopy
// --only-keep-debug, found with FindDebugFile) to f, so that one File
// answers with the main file's text bytes, .eh_frame and dynamic symbols
// and the debug file's .symtab, DWARF lines and inlines and .debug_frame,
// all at f's bias. Symbols keep the main file's Module (f.Path).
//
// When both files have a build id they must be equal; otherwise, when f
// has a .gnu_debuglink, the debug file's CRC-32 must match it. A second call
// replaces the debug file. AttachDebug must not run concurrently with other
// uses of f; Close closes the debug file too.
func (f *File) AttachDebug(path string) error {
	fh, err := fileio.OpenRegular(path)
	if err != nil {
		return err
	}
	if err := f.attachDebug(fh, path, fh); err != nil {
		fh.Close()
		return err
	}
	return nil
}

// OpenWithDebug opens the ELF file at path with load bias bias as Open
// does, looks for its separate debug file as FindDebugFile(f, dirs) does
// and attaches the one found as AttachDebug does, building the symbol
// table once, from both files (Open then AttachDebug build it twice). It
// returns the debug file found (debugPath, "" when none was) and, when it
// could not be attached, debugErr, the error AttachDebug gives; f is then
// as Open gives it. err is Open's error, with f nil.
func OpenWithDebug(path string, bias uint64, dirs []string) (f *File, debugPath string, debugErr error, err error) {
	fh, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, "", nil, err
	}
	f, debugPath, debugErr, err = NewFileWithDebug(fh, nil, path, bias, dirs)
	if err != nil {
		fh.Close()
		return nil, "", nil, err
	}
	f.closer = fh
	return f, debugPath, debugErr, nil
}

// NewFileWithDebug is OpenWithDebug for a file the caller has opened
// itself: it makes a File of r as NewFile(r, path, bias) does, then finds
// and attaches its debug file as OpenWithDebug does. ef, when not nil, is
// the caller's own elf.NewFile(r), used instead of parsing r again: a
// debugger that reads a mapped file's build id (BuildIDOf) and program
// headers (to compute the load bias from where a core maps it) before it
// knows the bias passes ef, so that the file is parsed once. Like NewFile,
// the File does not close r (Close closes the debug file it opened), and r
// must stay readable while the File is used.
func NewFileWithDebug(r io.ReaderAt, ef *elf.File, path string, bias uint64, dirs []string) (f *File, debugPath string, debugErr error, err error) {
	f, err = newFileELF(r, ef, path, bias, false)
	if err != nil {
		return nil, "", nil, err
	}
	if d, ok := findDebugFile(f, dirs); ok {
		debugPath = d.path
		// Attached as AttachDebug would, from the file findDebugFile
		// opened and parsed (it has checked it is f's debug file).
		if debugErr = f.attachDebugELF(d.fh, d.ef, d.path, d.fh, false); debugErr != nil {
			d.fh.Close()
		}
	}
	if f.Syms == nil {
		if f.dbg != nil {
			// The debug file made building the table panic: f without it.
			f.dbgClose.Close()
			f.dbg, f.dbgR, f.dbgMapped, f.dbgClose, f.DebugPath = nil, nil, nil, nil, ""
		}
		if err := f.buildSymbols(); err != nil {
			f.Close()
			return nil, "", nil, err
		}
	}
	return f, debugPath, debugErr, nil
}

// buildSymbols sets f.Syms to the table readSymbols builds, with
// NewFile's error for a file that makes debug/elf panic.
func (f *File) buildSymbols() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("symbols: %s: malformed ELF: %v", f.Path, p)
		}
	}()
	f.Syms = f.readSymbols()
	return nil
}

func (f *File) attachDebug(r io.ReaderAt, path string, closer io.Closer) (err error) {
	return f.attachDebugELF(r, nil, path, closer, true)
}

// attachDebugELF is attachDebug for r already parsed as ef (nil: parse r
// here); check is false when r is known to be f's debug file (isDebugFile).
func (f *File) attachDebugELF(r io.ReaderAt, ef *elf.File, path string, closer io.Closer, check bool) (err error) {
	if f.reloc != nil {
		return fmt.Errorf("symbols: %s: a kernel module opened with OpenModule takes its debug info from the .ko it was opened from; open the debug .ko (%s) with OpenModule instead", f.Path, path)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("symbols: %s: malformed ELF: %v", path, p)
		}
	}()
	if ef == nil {
		if ef, err = elf.NewFile(r); err != nil {
			return fmt.Errorf("symbols: %s: %w", path, err)
		}
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return fmt.Errorf("symbols: %s: not an x86-64 ELF (%v %v)", path, ef.Class, ef.Machine)
	}
	if check {
		if err := f.checkDebug(ef, r, path); err != nil {
			return err
		}
	}
	if f.dbgClose != nil {
		f.dbgClose.Close()
	}
	f.dbg, f.dbgR, f.dbgClose, f.DebugPath = ef, r, closer, path
	f.dbgMapped = mapReader(r)
	f.Syms = f.readSymbols()
	// Forget CFI and DWARF read without the debug file.
	f.cfiOnce, f.debugCFI, f.ehCFI, f.cfiErr = sync.Once{}, nil, nil, nil
	f.dwarfOnce, f.dw, f.dwErr = sync.Once{}, nil, nil
	return nil
}

// checkDebug verifies that ef (read from r) is f's debug file.
func (f *File) checkDebug(ef *elf.File, r io.ReaderAt, path string) error {
	id := readBuildID(ef)
	if f.buildID != nil && id != nil {
		if !bytes.Equal(id, f.buildID) {
			return fmt.Errorf("symbols: %s: build id %x, %s has %x", path, id, f.Path, f.buildID)
		}
		return nil
	}
	if _, crc, ok := f.DebugLink(); ok {
		got, err := crcOf(r)
		if err != nil {
			return fmt.Errorf("symbols: %s: %w", path, err)
		}
		if got != crc {
			return fmt.Errorf("symbols: %s: CRC %08x, %s's .gnu_debuglink wants %08x", path, got, f.Path, crc)
		}
	}
	return nil
}

// crcOf returns the CRC-32 (IEEE, as .gnu_debuglink uses) of all of r.
func crcOf(r io.ReaderAt) (uint32, error) {
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, 1<<62)); err != nil {
		return 0, err
	}
	return h.Sum32(), nil
}

// FindDebugFile looks for f's separate debug file and returns its path. It
// tries, in order: for each dir, dir/.build-id/ab/cdef….debug (from f's
// build id); then, for the .gnu_debuglink name, the main file's own
// directory and its .debug subdirectory, and for each dir, dir/name,
// dir/.debug/name and dir/<main file's directory>/name (the layout of
// /usr/lib/debug); last, for each dir and the main file's directory,
// dir/<main file name>.debug. A candidate counts only if it is not the main
// file itself and its build id matches f's (or, when either has none, its
// CRC-32 matches the .gnu_debuglink). No system directory is searched
// unless it is in dirs.
func FindDebugFile(f *File, dirs []string) (string, bool) {
	d, ok := findDebugFile(f, dirs)
	if ok {
		d.fh.Close()
	}
	return d.path, ok
}

// debugFile is a debug file findDebugFile found: its path, the file
// opened and its headers parsed.
type debugFile struct {
	path string
	fh   *os.File
	ef   *elf.File
}

// findDebugFile is FindDebugFile, returning the file found open and
// parsed for the caller to attach or close.
func findDebugFile(f *File, dirs []string) (debugFile, bool) {
	if f == nil {
		return debugFile{}, false
	}
	var cands []string
	if len(f.buildID) >= 2 {
		h := hex.EncodeToString(f.buildID)
		for _, d := range dirs {
			cands = append(cands, filepath.Join(d, ".build-id", h[:2], h[2:]+".debug"))
		}
	}
	own := filepath.Dir(f.Path)
	if name, _, ok := f.DebugLink(); ok && filepath.Base(name) == name {
		cands = append(cands, filepath.Join(own, name), filepath.Join(own, ".debug", name))
		abs, _ := filepath.Abs(own)
		for _, d := range dirs {
			cands = append(cands, filepath.Join(d, name), filepath.Join(d, ".debug", name))
			if abs != "" {
				cands = append(cands, filepath.Join(d, abs, name))
			}
		}
	}
	base := filepath.Base(f.Path) + ".debug"
	for _, d := range append(slices.Clone(dirs), own) {
		cands = append(cands, filepath.Join(d, base))
	}
	mainInfo, _ := os.Stat(f.Path)
	seen := make(map[string]bool)
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		if fh, ef := f.isDebugFile(c, mainInfo); fh != nil {
			return debugFile{c, fh, ef}, true
		}
	}
	return debugFile{}, false
}

// isDebugFile returns the file at path, opened and parsed, when it is f's
// debug file; else nil.
func (f *File) isDebugFile(path string, mainInfo os.FileInfo) (_ *os.File, _ *elf.File) {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || (mainInfo != nil && os.SameFile(fi, mainInfo)) {
		return nil, nil
	}
	fh, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, nil
	}
	ok := false
	defer func() {
		if recover() != nil {
			ok = false
		}
		if !ok {
			fh.Close()
		}
	}()
	ef, err := elf.NewFile(fh)
	if err != nil {
		return nil, nil
	}
	id := readBuildID(ef)
	if f.buildID != nil && id != nil {
		ok = bytes.Equal(id, f.buildID)
	} else if _, crc, link := f.DebugLink(); link {
		got, err := crcOf(fh)
		ok = err == nil && got == crc
	}
	if !ok {
		return nil, nil
	}
	return fh, ef
}
