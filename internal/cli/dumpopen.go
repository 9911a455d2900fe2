package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/linux"
	"github.com/unwind-dev/unwind/symbols"
)

// symbolFlags are the flags that say where a dump's binaries are, shared by
// bt and info.
type symbolFlags struct {
	syms       []string
	exe        string
	sysroot    string
	searchDirs []string
	systemMap  string
	forceSym   bool
	debugDirs  []string
}

func (s *symbolFlags) register(f *pflag.FlagSet) {
	stringsVar(f, &s.syms, "sym", "symbol `FILE` (vmlinux, an executable, a library); repeatable")
	f.StringVar(&s.exe, "exe", "", "the crashed executable (user cores)")
	f.StringVar(&s.sysroot, "sysroot", "", "root directory under which the core's mapped file paths are found")
	stringsVar(f, &s.searchDirs, "search", "`DIR` searched for mapped files by name; repeatable")
	f.StringVar(&s.systemMap, "system-map", "", "System.map of the dumped kernel")
	stringsVar(f, &s.debugDirs, "debug-dir", "`DIR` laid out like /usr/lib/debug (or a root holding usr/lib/debug): the kernel's vmlinux found by build id or release, its modules under lib/modules/RELEASE; repeatable")
	f.BoolVar(&s.forceSym, "force-sym", false, "use a vmlinux or System.map whose build id or linux_banner differs from the dump's")
}

func (s *symbolFlags) options() dump.SymbolOptions {
	return dump.SymbolOptions{Exe: s.exe, Sysroot: s.sysroot, SearchDirs: s.searchDirs, Files: s.syms, SystemMap: s.systemMap, Force: s.forceSym, DebugDirs: s.debugDirs}
}

func (s *symbolFlags) given() bool {
	return len(s.syms) > 0 || s.systemMap != "" || len(s.debugDirs) > 0
}

// check makes sure every symbol file named on the command line is there and
// is what its flag says, before anything is opened: a missing file is an
// error, not a silent skip; a System.map given to --sym is used as
// --system-map, and an ELF file (vmlinux) given to --system-map as --sym,
// since their contents say what they are; anything else is refused, naming
// what the file seems to be.
func (s *symbolFlags) check(kernel bool) error {
	if !kernel && s.systemMap != "" {
		return usagef("--system-map is for kernel dumps; this is a user core")
	}
	var syms []string
	for _, p := range s.syms {
		k, err := sniffSymbolFile(p)
		if err != nil {
			return fmt.Errorf("--sym %s: %w", p, err)
		}
		switch {
		case k == symFileELF:
			syms = append(syms, p)
		case (k == symFileMap || k == symFileKallsyms) && !kernel:
			return usagef("--sym %s is a kernel symbol list (%s); a user core needs ELF files", p, k)
		case (k == symFileMap || k == symFileKallsyms) && s.systemMap == "":
			s.systemMap = p
		case k == symFileMap || k == symFileKallsyms:
			return usagef("--sym %s is a System.map (kernel symbol list), and --system-map %s was given too", p, s.systemMap)
		default:
			return usagef("--sym %s is neither an ELF file nor a System.map: %s", p, k)
		}
	}
	s.syms = syms
	if s.systemMap != "" {
		k, err := sniffSymbolFile(s.systemMap)
		if err != nil {
			return fmt.Errorf("--system-map %s: %w", s.systemMap, err)
		}
		switch k {
		case symFileMap, symFileKallsyms:
		case symFileELF:
			s.syms, s.systemMap = append(s.syms, s.systemMap), ""
		default:
			return usagef("--system-map %s is not a System.map: %s", s.systemMap, k)
		}
	}
	return nil
}

// symFileKind is what sniffSymbolFile found a file to be; other values
// describe an unusable file.
type symFileKind string

const (
	symFileELF      symFileKind = "ELF"
	symFileMap      symFileKind = "System.map"
	symFileKallsyms symFileKind = "kallsyms"
)

// sniffSymbolFile says from its first bytes whether path is an ELF file,
// a System.map ("ffffffff81000000 T _text") or /proc/kallsyms text (which
// may carry a "\t[module]" column). Only regular files are read, so a FIFO
// or a device cannot block the command.
func sniffSymbolFile(path string) (symFileKind, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("no such file")
		}
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	f, err := fileio.OpenRegular(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("\x7fELF")) {
		return symFileELF, nil
	}
	line, _, _ := bytes.Cut(head, []byte("\n"))
	if fs := strings.Fields(string(line)); len(fs) >= 3 && len(fs[1]) == 1 && isHexWord(fs[0]) && len(fs[0]) >= 8 {
		if bytes.Contains(head, []byte("\t[")) || strings.Contains(path, "kallsyms") {
			return symFileKallsyms, nil
		}
		return symFileMap, nil
	}
	switch {
	case n == 0:
		return "an empty file", nil
	case bytes.HasPrefix(head, []byte("KDUMP   ")):
		return "a kdump-compressed dump", nil
	case bytes.IndexByte(head, 0) >= 0:
		return "binary data", nil
	}
	if len(line) > 60 {
		line = append(line[:60:60], "…"...)
	}
	return symFileKind(fmt.Sprintf("text starting %q", line)), nil
}

// openedDump is a dump with its symbols and, for a kernel vmcore, its
// kernel model.
type openedDump struct {
	*dump.Dump
	set *symbols.Set
	k   *linux.Kernel // nil unless the dump is a kernel vmcore
}

// Close closes the kernel model's symbol files, then the dump.
func (o *openedDump) Close() error {
	var err error
	if o.k != nil {
		err = o.k.Close()
	}
	return errors.Join(err, o.Dump.Close())
}

// Info is the dump's summary, the kernel model's for a vmcore.
func (o *openedDump) Info() dump.Info {
	if o.k != nil {
		return o.k.Info()
	}
	return o.Dump.Info()
}

// openDump opens a dump and its symbols: a kernel vmcore through
// linux.Open, any other dump through its Symbols. An emulator snapshot
// opened without --sym gets the fixture kernel its UNWIND note names (the
// file on disk, else the embedded copy), provided its build id matches.
// The warnings are for the user; the Dump is the caller's to close.
func openDump(path string, sf *symbolFlags) (*openedDump, []string, error) {
	d, err := dump.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if err := sf.check(d.Kind() != dump.KindUserCore); err != nil {
		d.Close()
		return nil, nil, err
	}
	if d.Kind() == dump.KindVmcore {
		k, err := linux.Open(d, sf.options())
		if err != nil {
			d.Close()
			return nil, nil, err
		}
		return &openedDump{d, k.Symbols(), k}, k.Warnings(), nil
	}
	if d.Kind() == dump.KindEmulator && !sf.given() {
		set, err := fixtureKernel(d.EmulatorInfo())
		if err != nil {
			d.Close()
			return nil, nil, usagef("%v: give the snapshot's kernel with --sym", err)
		}
		return &openedDump{d, set, nil}, nil, nil
	}
	set, warnings, err := d.Symbols(sf.options())
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	if info := d.EmulatorInfo(); info != nil && info.KernelBuildID != "" {
		match := false
		for _, f := range set.Modules() {
			match = match || fmt.Sprintf("%x", f.BuildID()) == info.KernelBuildID
		}
		if !match {
			warnings = append(warnings, fmt.Sprintf("no --sym file has the build id of the snapshot's kernel %s (%s)", info.KernelPath, info.KernelBuildID))
		}
	}
	return &openedDump{d, set, nil}, warnings, nil
}

// fixtureKernel loads the kernel an emulator snapshot ran.
func fixtureKernel(info *dump.EmulatorInfo) (*symbols.Set, error) {
	if info == nil {
		return nil, fmt.Errorf("the snapshot has no UNWIND note naming its kernel")
	}
	name := info.KernelPath
	if name == "" {
		name = "fixtures/kernel/build/kernel-" + info.Kernel + ".elf"
	}
	var tried []string
	for _, p := range []string{name, "fixtures/kernel/build/kernel-" + info.Kernel + ".elf"} {
		var b []byte
		var where string
		if fb, err := fileio.ReadRegular(p); err == nil {
			b, where = fb, p
		} else if fb, fp, err := readFixture(p); err == nil {
			b, where = fb, "embedded "+fp
		} else {
			continue
		}
		f, err := symbols.NewFile(bytes.NewReader(b), p, 0)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", where, err))
			continue
		}
		if info.KernelBuildID != "" && fmt.Sprintf("%x", f.BuildID()) != info.KernelBuildID {
			tried = append(tried, fmt.Sprintf("%s has build id %x, the snapshot's kernel %s", where, f.BuildID(), info.KernelBuildID))
			continue
		}
		set := &symbols.Set{}
		set.Add(f)
		return set, nil
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("kernel %s not found", name)
	}
	return nil, fmt.Errorf("no matching kernel: %v", tried)
}
