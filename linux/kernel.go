package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

const (
	startKernelMap = 0xffffffff80000000 // __START_KERNEL_map
	pageSize       = 4096
)

// ErrNotKernel is returned by Open for a dump that is not a kernel vmcore
// (a user core or an emulator snapshot: package dump unwinds those).
var ErrNotKernel = errors.New("not a kernel vmcore")

// Kernel is the Linux kernel of a vmcore: its CPUs with their current
// tasks and stacks, its log, uname and taint state, and its symbols. Make
// it with Open; its methods are safe for concurrent use.
type Kernel struct {
	d       *dump.Dump
	mem     unwind.Memory
	info    dump.VMCoreInfo
	qemu    []dump.QEMUCPUState
	threads []dump.Thread
	set     *symbols.Set
	warns   []string

	syms    map[string]uint64 // kernel symbols this package uses
	symSize map[string]uint64 // their ELF sizes, when read from vmlinux
	bias    uint64            // KASLR offset
	// biasSource says where bias came from (VMCOREINFO, the IDT...).
	biasSource string
	layout     Layout // structure layouts (vmlinux DWARF), nil when unknown
	offsets    kernelOffsets
	// crashWhy says why a CPU is marked Crashed ("" when none is).
	crashWhy string

	tasksOnce sync.Once
	tasks     []Task
	tasksErr  error

	lc *layoutCache // the debug cache of vmlinux's layouts, nil when unused
	// symFiles are the symbol files (vmlinux) Open opened, by path, while
	// Open runs: moduleLayouts reads the .BTF from their mapping.
	symFiles map[string]*symbols.File

	modules []Module // loadable modules (modules.go)
	modErr  error    // why the modules list could not be read

	codeCache unwind.CodeCache // shared by every walk of this kernel's code
	vmFiles   []*symbols.File  // the vmlinux files Open opened, closed by Close
	modFiles  []*symbols.File  // accepted .ko files, closed by Close
}

// Open builds the kernel model of the vmcore d from the binaries opts
// names: vmlinux (opts.Files) and/or a System.map, relocated by the KASLR
// offset (VMCOREINFO's KERNELOFFSET, else the difference between the
// run-time and link-time _stext). Missing or unusable symbol files are
// warnings (Warnings), not errors: without them the model knows what
// VMCOREINFO says. The Kernel reads d until d is closed; Close closes the
// symbol files it opened.
//
//	d, _ := dump.Open("vmcore")
//	k, err := linux.Open(d, dump.SymbolOptions{Files: []string{"vmlinux"}})
//	defer k.Close()
//	for i := range k.CPUs() {
//		tr, _ := k.UnwindCPU(i, unwind.Options{})
//		...
//	}
func Open(d *dump.Dump, opts dump.SymbolOptions) (*Kernel, error) {
	if d.Kind() != dump.KindVmcore {
		return nil, fmt.Errorf("%w: the dump is a %s", ErrNotKernel, d.Kind())
	}
	k := &Kernel{d: d, mem: d.Memory(), info: d.VMCoreInfo(), threads: d.Threads(), set: &symbols.Set{}}
	modOpts := opts
	opts.Files = slices.DeleteFunc(slices.Clone(opts.Files), isModuleFile) // .ko files are modules' (loadModules)
	if len(opts.DebugDirs) > 0 {
		k.useDebugDirs(&opts, &modOpts)
	}
	for i := range k.threads {
		s, ok := d.QEMUState(i)
		if !ok {
			break
		}
		k.qemu = append(k.qemu, s)
	}
	k.offsets = noOffsets()
	k.detectCrash(nil)
	bias, src, warns, err := k.findOffset(opts)
	if err != nil {
		return nil, err
	}
	k.bias, k.biasSource = bias, src
	k.warns = append(k.warns, warns...)
	if warns, err = k.checkSymbolFiles(opts, bias); err != nil {
		return nil, err
	}
	k.warns = append(k.warns, warns...)
	// The symbol files are opened first so that loadKernelSyms reads
	// their symbol tables and DWARF sections from them (no second read);
	// the warnings keep their order.
	opened := 0
	var openWarns []string
	files := make([]*symbols.File, len(opts.Files))
	for i, f := range opts.Files {
		sf, err := symbols.Open(f, bias)
		if err != nil {
			openWarns = append(openWarns, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		files[i] = sf
		k.vmFiles = append(k.vmFiles, sf)
		opened++
		if k.symFiles == nil {
			k.symFiles = map[string]*symbols.File{}
		}
		k.symFiles[f] = sf
	}
	k.warns = append(k.warns, k.loadKernelSyms(opts, files, bias)...)
	k.fillCurrentTasks()
	k.warns = append(k.warns, openWarns...)
	for _, sf := range files {
		if sf != nil {
			k.set.Add(sf)
		}
	}
	if opts.SystemMap != "" {
		f, err := fileio.OpenRegular(opts.SystemMap)
		if err != nil {
			return nil, err
		}
		t, err := symbols.ParseSystemMap(f, bias)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opts.SystemMap, err)
		}
		k.set.AddTable(t, "")
		opened++
	}
	if opened == 0 {
		k.warns = append(k.warns, "no kernel symbols given (vmlinux or System.map)")
	} else if !k.set.HasORC() {
		// No vmlinux with ORC sections: the running kernel's tables,
		// where System.map says they are (a kernel without ORC has
		// none, and says nothing).
		if _, ok := k.set.ByName("__start_orc_unwind_ip"); ok {
			if err := k.loadORC(); err != nil {
				k.warns = append(k.warns, "ORC tables in the dump: "+err.Error())
			}
		}
	}
	if opened > 0 && k.layout == nil {
		// No vmlinux DWARF: the kernel's BTF (vmlinux's .BTF, or the
		// dump's own between __start_BTF and __stop_BTF) gives the
		// layouts, and with them each CPU's current task.
		if l, err := k.moduleLayouts(modOpts); err == nil {
			k.layout = l
			k.offsetsFromLayout()
			k.fillCurrentTasks()
		}
	}
	if opened > 0 {
		k.warns = append(k.warns, k.loadModules(modOpts)...)
	}
	k.lc.store()
	k.lc = nil
	k.symFiles = nil
	k.detectCrash(k.set)
	return k, nil
}

// Dump returns the dump the kernel was read from.
func (k *Kernel) Dump() *dump.Dump { return k.d }

// Close closes the symbol files Open opened (vmlinux, the modules' .ko
// files), which keeps in the debug cache what their lookups learned (the
// inflated part of a compressed vmlinux's DWARF sections; units and
// functions first read by this Kernel's walks are kept as they are read).
// Call it when done with the Kernel: afterwards neither it nor its Symbols
// may be used, though traces already made stay valid. The Dump stays open,
// the caller's to close.
func (k *Kernel) Close() error {
	var errs []error
	for _, f := range append(k.vmFiles, k.modFiles...) {
		errs = append(errs, f.Close())
	}
	k.vmFiles, k.modFiles = nil, nil
	return errors.Join(errs...)
}

// Symbols returns the kernel's symbols (vmlinux, System.map), relocated
// to where they ran.
func (k *Kernel) Symbols() *symbols.Set { return k.set }

// Warnings returns what Open could not find or use (a symbol file, the
// DWARF of vmlinux), to show the user.
func (k *Kernel) Warnings() []string { return append([]string(nil), k.warns...) }

// Offset returns the KASLR offset applied to the symbols.
func (k *Kernel) Offset() uint64 { return k.bias }

// OffsetSource says where Offset came from: "VMCOREINFO KERNELOFFSET",
// the run-time _stext against the symbol file's, or the IDT's gates
// against the handlers' link-time addresses (a dump without VMCOREINFO).
func (k *Kernel) OffsetSource() string { return k.biasSource }

// CPUs returns the dump's CPUs, in the order of their NT_PRSTATUS notes,
// with the pid and comm of each CPU's current task (when vmlinux's DWARF
// gave the task_struct layout) and the crashing CPU marked. The slice is
// the caller's to modify.
func (k *Kernel) CPUs() []dump.Thread { return append([]dump.Thread(nil), k.threads...) }

// Stacks returns the stack-bounds oracle of CPU i (an index into CPUs):
// the task, IRQ, exception (IST) and entry stacks found from the kernel's
// per-CPU data and the CPU's TSS. An unknown index gives nil.
func (k *Kernel) Stacks(i int) unwind.Stacks {
	if i < 0 || i >= len(k.threads) {
		return nil
	}
	return k.kernelStacks(i)
}

// Info returns the dump's summary (dump.Dump.Info) completed with what
// the kernel's data says: uname, taint, whether a crash kernel was loaded,
// the crash message and the time of the newest log record, the wall clock
// when the dump has no crash time, each CPU's task and the crashing CPU.
func (k *Kernel) Info() dump.Info {
	in := k.d.Info()
	in.Crashed = -1
	in.KernelOffset, in.KernelOffsetSource = fmt.Sprintf("%#x", k.bias), k.biasSource
	for i := range in.Threads {
		if i < len(k.threads) {
			t := k.threads[i]
			in.Threads[i].TID, in.Threads[i].Comm, in.Threads[i].Crashed = t.TID, t.Comm, t.Crashed
			if t.Crashed && in.Crashed < 0 {
				in.Crashed = i
			}
		}
	}
	ct, cts := in.CrashTime, in.CrashTimeSource
	in.CrashTime, in.CrashTimeSource = nil, ""
	if uts, ok := k.UTSName(); ok {
		if in.Release == "" {
			in.Release = uts.Release
		}
		in.Version, in.Machine = uts.Version, uts.Machine
	}
	in.Taint, _ = k.Taint()
	in.TaintingModules = k.taintingModules()
	if a, ok := k.kernelSym("kexec_crash_image"); ok && k.syms != nil {
		p, _ := k.readU64(a)
		in.KdumpReady = p != 0
	}
	in.Panic = k.PanicMessage()
	in.CrashTime, in.CrashTimeSource = ct, cts
	if in.CrashTime == nil {
		if t, ok := k.WallClock(); ok {
			in.CrashTime, in.CrashTimeSource = &t, "tk_core"
		}
	}
	if recs := k.Log(1); len(recs) == 1 {
		s := recs[0].Time.Seconds()
		in.LogTime = &s
	}
	if in.Crashed >= 0 {
		in.Reason = k.crashWhy
	}
	return in
}

// UnwindCPU unwinds CPU i (an index into CPUs) from its registers in the
// dump, across its IRQ, exception and entry stacks, with the kernel's
// symbols and the machine code of the dump. opts may set Methods and
// MaxFrames; Code, Stacks and Kernel are the kernel's. Frames that a
// corrupt stack invalidated after they were found are marked unreliable.
// A CPU the dump caught in user mode (its saved CS a user selector, RIP
// and RSP in the user half) has no kernel frames: its trace is the one
// interrupted user context, reliable, stopped at "user mode", as the
// kernel prints such a CPU (registers, no call trace).
func (k *Kernel) UnwindCPU(i int, opts unwind.Options) (dump.Trace, error) {
	if i < 0 || i >= len(k.threads) {
		return dump.Trace{}, fmt.Errorf("no CPU index %d (the dump has %d)", i, len(k.threads))
	}
	th := k.threads[i]
	mem := k.d.CPUMemory(th.CPU)
	if tr, ok := userModeCPU(th, mem); ok {
		return tr, nil
	}
	opts.Code = Code{k.set, mem}
	opts.Stacks = k.Stacks(i)
	opts.Kernel = true
	if opts.CodeCache == nil {
		opts.CodeCache = &k.codeCache
	}
	return dump.Walk(mem, th.Regs, &opts), nil
}

// userModeCPU is the trace of a CPU whose saved registers are a user-mode
// context: one interrupted frame holding them. ok is false for a kernel-
// mode CPU, and for a user CS with a RIP or RSP outside the user half
// (impossible registers, left to the walk to reject).
func userModeCPU(th dump.Thread, mem unwind.Memory) (dump.Trace, bool) {
	pr := th.PrStatus.Regs.PtRegs
	const userTop = 1 << 47 // the lowest non-canonical address of 4-level paging
	pc, okPC := th.Regs.PC()
	sp, okSP := th.Regs.SP()
	if !ptregs.UserMode(pr.CS) || !okPC || !okSP || pc != pr.IP || sp != pr.SP || pc >= userTop || sp >= userTop {
		return dump.Trace{}, false
	}
	f := unwind.Frame{
		PC: pc, LookupPC: pc, SP: sp,
		Regs:     th.Regs,
		Kind:     unwind.KindInterrupted,
		Method:   unwind.MethodRegs,
		Reliable: true,
		PtRegs:   pr,
		Stack:    unwind.Stack{Kind: unwind.StackUser, CPU: -1},
	}
	return dump.Trace{Frames: []unwind.Frame{f}, Reliable: true, StopReason: unwind.StopUserMode, Mem: mem}, true
}

// kernelSym returns a kernel symbol's run-time address: from the symbols
// loaded by Open, else from VMCOREINFO.
func (k *Kernel) kernelSym(name string) (uint64, bool) {
	if a, ok := k.syms[name]; ok {
		return a, true
	}
	return k.info.Symbol(name)
}

func (k *Kernel) readKernelInt32(sym string) (int32, bool) {
	a, ok := k.kernelSym(sym)
	if !ok {
		return 0, false
	}
	var b [4]byte
	if n, _ := k.mem.ReadAt(b[:], a); n != 4 {
		return 0, false
	}
	return int32(binary.LittleEndian.Uint32(b[:])), true
}

func trimNUL(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// linkTimeSymbol finds a symbol's link-time address in the System.map or
// the vmlinux files of opts.
func linkTimeSymbol(opts dump.SymbolOptions, name string) (uint64, bool) {
	a, ok := linkTimeSymbols(opts, name)[name]
	return a, ok
}

// Code is the unwinder's Code for a kernel: the symbols' own, with the
// machine code read from the dump's memory where no file has it (a
// kernel opened with only System.map: the kernel's text is in the
// dump). It reads from pc to the end of pc's symbol, at most maxDumpCode
// bytes, so prologue analysis works as with vmlinux.
type Code struct {
	*symbols.Set
	Mem unwind.Memory
}

const maxDumpCode = 64 << 10

// Freed implements unwind.FreedCode: addr lies in the kernel's init text
// (_sinittext to _einittext), which the kernel frees after boot, and a
// symbol file (vmlinux) has its bytes. With only System.map the image is
// memory itself, and freed init text stays unverifiable.
func (c Code) Freed(addr uint64) bool {
	lo, ok1 := c.Set.ByName("_sinittext")
	hi, ok2 := c.Set.ByName("_einittext")
	return ok1 && ok2 && lo.Addr <= addr && addr < hi.Addr && c.Set.CodeAt(addr) != nil
}

// CodeAt implements unwind.Code.
func (c Code) CodeAt(pc uint64) []byte {
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
	got, _ := c.Mem.ReadAt(b, pc)
	if got == 0 {
		return nil
	}
	return b[:got]
}
