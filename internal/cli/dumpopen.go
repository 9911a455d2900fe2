package cli

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/unwind-dev/unwind/dump"
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
}

func (s *symbolFlags) register(f *pflag.FlagSet) {
	f.StringArrayVar(&s.syms, "sym", nil, "symbol `FILE` (vmlinux, an executable, a library); repeatable")
	f.StringVar(&s.exe, "exe", "", "the crashed executable (user cores)")
	f.StringVar(&s.sysroot, "sysroot", "", "root directory under which the core's mapped file paths are found")
	f.StringArrayVar(&s.searchDirs, "search", nil, "`DIR` searched for mapped files by name; repeatable")
	f.StringVar(&s.systemMap, "system-map", "", "System.map of the dumped kernel")
}

func (s *symbolFlags) options() dump.SymbolOptions {
	return dump.SymbolOptions{Exe: s.exe, Sysroot: s.sysroot, SearchDirs: s.searchDirs, Files: s.syms, SystemMap: s.systemMap}
}

func (s *symbolFlags) given() bool { return len(s.syms) > 0 || s.systemMap != "" }

// openDump opens a dump and its symbols. An emulator snapshot opened
// without --sym gets the fixture kernel its UNWIND note names (the file
// on disk, else the embedded copy), provided its build id matches. The
// warnings are for the user; the Dump is the caller's to close.
func openDump(path string, sf *symbolFlags) (*dump.Dump, *symbols.Set, []string, error) {
	d, err := dump.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	if d.Kind() == dump.KindEmulator && !sf.given() {
		set, err := fixtureKernel(d.EmulatorInfo())
		if err != nil {
			d.Close()
			return nil, nil, nil, usagef("%v: give the snapshot's kernel with --sym", err)
		}
		return d, set, nil, nil
	}
	set, warnings, err := d.Symbols(sf.options())
	if err != nil {
		d.Close()
		return nil, nil, nil, err
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
	return d, set, warnings, nil
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
		if fb, err := os.ReadFile(p); err == nil {
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

// dumpCode is the unwinder's Code for a dump: the symbols' own, with the
// machine code read from the dump's memory where no file has it (a
// kernel dump opened with only System.map or kallsyms: the kernel's text
// is in the dump). It reads from pc to the end of pc's symbol, at most
// maxDumpCode bytes, so prologue analysis works as with vmlinux.
type dumpCode struct {
	*symbols.Set
	mem interface {
		ReadAt(p []byte, addr uint64) (int, error)
	}
}

const maxDumpCode = 64 << 10

// CodeAt implements unwind.Code.
func (c dumpCode) CodeAt(pc uint64) []byte {
	if b := c.Set.CodeAt(pc); b != nil {
		return b
	}
	if !c.Set.IsText(pc) {
		return nil
	}
	s, ok := c.Set.Symbol(pc)
	if !ok || s.Size == 0 || pc-s.Addr >= s.Size {
		return nil
	}
	n := min(s.Addr+s.Size-pc, maxDumpCode)
	b := make([]byte, n)
	k, _ := c.mem.ReadAt(b, pc)
	if k == 0 {
		return nil
	}
	return b[:k]
}
