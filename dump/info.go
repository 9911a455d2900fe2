package dump

import (
	"strconv"
	"time"
)

// Info summarises a dump for `unwind info` and the "dump" object of the
// JSON output.
type Info struct {
	Kind        Kind   `json:"kind"`
	Format      string `json:"format"`                // "elf" or "kdump"
	Compression string `json:"compression,omitempty"` // kdump: "zlib", "lzo", "snappy", "zstd", "none"
	Flattened   bool   `json:"flattened,omitempty"`   // read through makedumpfile's flattened format
	// Excluded says which pages the dump's writer left out, when it left
	// some out: "dump level 31 (zero, cache, private cache, user, free
	// pages)" (makedumpfile's -d, from a kdump header), or for
	// makedumpfile's ELF output, which records no level, how many
	// PT_LOADs end their file data early. Reads of them fail with an
	// *ExcludedPageError.
	Excluded string `json:"excluded,omitempty"`
	Release  string `json:"release,omitempty"`
	// KernelOffset is the KASLR offset applied to the kernel's symbols
	// ("0x36a00000") and KernelOffsetSource where it came from
	// (VMCOREINFO, or the IDT for a dump without VMCOREINFO).
	KernelOffset       string `json:"kernel_offset,omitempty"`
	KernelOffsetSource string `json:"kernel_offset_source,omitempty"`
	// Kernel dumps: uname's version and machine (from init_uts_ns), the
	// taint state as the kernel prints it, and whether a crash kernel was
	// loaded.
	Version    string `json:"kernel_version,omitempty"`
	Machine    string `json:"machine,omitempty"`
	Taint      string `json:"taint,omitempty"`
	KdumpReady bool   `json:"kdump_loaded,omitempty"`
	// TaintingModules are the loaded modules that taint the kernel, as
	// its "Modules linked in:" line writes them: "name(LETTERS)".
	TaintingModules []string `json:"tainting_modules,omitempty"`
	// CrashTime is the wall-clock time of the crash, when the dump records
	// it: VMCOREINFO CRASHTIME (written by kdump), the diskdump header's
	// timestamp, else the kernel's own clock (tk_core, needs vmlinux);
	// CrashTimeSource says which. LogTime is the time since boot of the
	// newest kernel log record, a lower bound of the uptime at the dump.
	CrashTime       *time.Time `json:"crash_time,omitempty"`
	CrashTimeSource string     `json:"crash_time_source,omitempty"` // "CRASHTIME", "kdump header", "tk_core"
	LogTime         *float64   `json:"log_time,omitempty"`          // seconds since boot
	Panic           string     `json:"panic,omitempty"`             // the kernel's crash message from its log buffer
	// User cores.
	Comm      string    `json:"comm,omitempty"` // the command (NT_PRPSINFO)
	Args      string    `json:"args,omitempty"`
	Exe       string    `json:"exe,omitempty"` // the executable's path (NT_FILE mapping holding AT_ENTRY)
	Pid       int       `json:"pid,omitempty"`
	Signal    int       `json:"signal,omitempty"`      // the fatal signal (NT_SIGINFO, else pr_cursig)
	SigName   string    `json:"signal_name,omitempty"` // "SIGSEGV"
	SigCode   int       `json:"signal_code,omitempty"` // si_code
	CodeName  string    `json:"signal_code_name,omitempty"`
	FaultAddr string    `json:"fault_addr,omitempty"` // si_addr for fault signals
	SigPid    int       `json:"signal_pid,omitempty"` // si_pid of a signal sent by a process (kill, tkill, abort)
	Auxv      []AuxInfo `json:"auxv,omitempty"`
	Mappings  int       `json:"mappings,omitempty"` // NT_FILE entries

	Crashed  int          `json:"crashed"`          // index in Threads of the crashing thread/CPU, -1 if unknown
	Reason   string       `json:"reason,omitempty"` // why it is the crashing one
	Threads  []ThreadInfo `json:"threads"`
	Warnings []string     `json:"warnings,omitempty"`
}

// AuxInfo is one auxiliary-vector entry in Info.
type AuxInfo struct {
	Type  string `json:"type"`  // "AT_ENTRY", or "AT_<n>" when unnamed
	Value string `json:"value"` // hex
}

// ThreadInfo is one thread or CPU in Info.
type ThreadInfo struct {
	TID     int    `json:"tid"`
	CPU     int    `json:"cpu"`
	Comm    string `json:"task,omitempty"`
	Signal  int    `json:"signal,omitempty"`
	Crashed bool   `json:"crashed"`
	PC      string `json:"pc"`
	SP      string `json:"sp"`
	Mode    string `json:"mode,omitempty"` // kernel dumps: "kernel" or "user" (from CS)
}

// Info returns what the dump is, its threads or CPUs and the crashing one.
// For a kernel dump it holds what the file says (format, release, the
// crash time from VMCOREINFO or the kdump header, each CPU's registers);
// linux.Kernel.Info adds what the kernel's own data says (uname, taint,
// log, each CPU's task, the crashing CPU).
func (d *Dump) Info() Info {
	in := Info{Kind: d.kind, Format: "elf", Crashed: -1, Warnings: d.Warnings()}
	if d.kdump != nil {
		in.Format, in.Compression = "kdump", d.kdump.Compression()
	}
	in.Flattened = d.flat
	in.Excluded = d.excluded()
	for i, t := range d.threads {
		pc, _ := t.Regs.PC()
		sp, _ := t.Regs.SP()
		ti := ThreadInfo{TID: t.TID, CPU: t.CPU, Comm: t.Comm, Signal: t.Signal, Crashed: t.Crashed,
			PC: hex64(pc), SP: hex64(sp)}
		if d.kern != nil {
			ti.Mode = "kernel"
			if t.PrStatus.Regs.PtRegs.CS&3 == 3 {
				ti.Mode = "user"
			}
		}
		in.Threads = append(in.Threads, ti)
		if t.Crashed && in.Crashed < 0 {
			in.Crashed = i
		}
	}
	switch {
	case d.user != nil:
		d.userInfo(&in)
	case d.kern != nil:
		// The kernel's own data (uname, taint, log, crashing CPU)
		// is package linux's: its Kernel.Info completes this.
		in.Release = d.Release()
		if ct, ok := d.kern.info["CRASHTIME"]; ok {
			if s, err := strconv.ParseInt(ct, 10, 64); err == nil {
				t := time.Unix(s, 0).UTC()
				in.CrashTime, in.CrashTimeSource = &t, "CRASHTIME"
			}
		}
		if in.CrashTime == nil && d.kdump != nil && d.kdump.Timestamp > 0 {
			t := time.Unix(d.kdump.Timestamp, 0).UTC()
			in.CrashTime, in.CrashTimeSource = &t, "kdump header"
		}
	case d.emu != nil:
		if info := d.emu.info; info != nil {
			in.Release = info.Scenario + "/" + info.Snapshot
			if in.Crashed >= 0 {
				in.Reason = "the snapshot's trigger CPU"
			}
		}
	}
	return in
}

func (d *Dump) userInfo(in *Info) {
	u := d.user
	if ps := u.ps; ps != nil {
		in.Comm, in.Args, in.Pid = ps.Comm, ps.Args, ps.Pid
	}
	entry := uint64(0)
	for _, a := range u.auxv {
		if a.Tag == 0 {
			break
		}
		if a.Tag == atEntry {
			entry = a.Val
		}
		in.Auxv = append(in.Auxv, AuxInfo{Type: AuxName(a.Tag), Value: hex64(a.Val)})
	}
	in.Mappings = len(u.maps)
	for _, m := range u.maps {
		if entry != 0 && m.Start <= entry && entry < m.End {
			in.Exe = m.Path
		}
	}
	if si := u.sig; si != nil {
		in.Signal, in.SigCode = si.Signo, si.Code
		in.CodeName = SigCodeName(si.Signo, si.Code)
		if si.faultSignal() {
			in.FaultAddr = hex64(si.Addr)
		} else if si.Code <= 0 {
			in.SigPid = si.Pid
		}
	} else if in.Crashed >= 0 {
		in.Signal = d.threads[in.Crashed].Signal
	}
	if in.Signal != 0 {
		in.SigName = SignalName(in.Signal)
	}
	if in.Crashed >= 0 {
		why := "the kernel writes the thread that took the fatal signal first"
		if u.sig != nil {
			why = "NT_SIGINFO: " + SignalName(u.sig.Signo)
			if in.CodeName != "" {
				why += " (" + in.CodeName + ")"
			}
			if in.FaultAddr != "" {
				why += " at " + in.FaultAddr
			}
			if in.SigPid != 0 {
				why += " from pid " + strconv.Itoa(in.SigPid)
			}
			why += "; the kernel writes the thread that took it first"
		}
		in.Reason = why
	}
}

func hex64(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

// Auxiliary-vector tags (<elf.h>).
const (
	atEntry = 9
)

var auxNames = map[uint64]string{
	0: "AT_NULL", 3: "AT_PHDR", 4: "AT_PHENT", 5: "AT_PHNUM", 6: "AT_PAGESZ", 7: "AT_BASE",
	8: "AT_FLAGS", 9: "AT_ENTRY", 11: "AT_UID", 12: "AT_EUID", 13: "AT_GID", 14: "AT_EGID",
	15: "AT_PLATFORM", 16: "AT_HWCAP", 17: "AT_CLKTCK", 23: "AT_SECURE", 24: "AT_BASE_PLATFORM",
	25: "AT_RANDOM", 26: "AT_HWCAP2", 27: "AT_RSEQ_FEATURE_SIZE", 28: "AT_RSEQ_ALIGN",
	31: "AT_EXECFN", 33: "AT_SYSINFO_EHDR", 51: "AT_MINSIGSTKSZ",
}

// AuxName is the <elf.h> name of an auxiliary-vector tag ("AT_ENTRY"),
// "AT_<n>" for tags it does not know.
func AuxName(tag uint64) string {
	if n, ok := auxNames[tag]; ok {
		return n
	}
	return "AT_" + strconv.FormatUint(tag, 10)
}

var signalNames = []string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF",
	28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}

// SignalName is the x86-64 Linux name of a signal number ("SIGSEGV"),
// "SIGRTMIN+n" for real-time signals and "signal n" otherwise.
func SignalName(sig int) string {
	switch {
	case sig > 0 && sig < len(signalNames):
		return signalNames[sig]
	case sig >= 34 && sig <= 64:
		return "SIGRTMIN+" + strconv.Itoa(sig-34)
	}
	return "signal " + strconv.Itoa(sig)
}

// SigCodeName names a si_code value as <asm-generic/siginfo.h> does:
// the generic codes (SI_USER, SI_KERNEL, SI_TKILL…) for any signal and
// the per-signal ones for SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGTRAP. It
// returns "" for codes it does not know.
func SigCodeName(sig, code int) string {
	generic := map[int]string{0: "SI_USER", 0x80: "SI_KERNEL", -1: "SI_QUEUE", -2: "SI_TIMER",
		-3: "SI_MESGQ", -4: "SI_ASYNCIO", -5: "SI_SIGIO", -6: "SI_TKILL", -7: "SI_DETHREAD", -60: "SI_ASYNCNL"}
	if n, ok := generic[code]; ok {
		return n
	}
	var names []string
	switch sig {
	case 11:
		names = []string{"", "SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR", "SEGV_ACCADI",
			"SEGV_ADIDERR", "SEGV_ADIPERR", "SEGV_MTEAERR", "SEGV_MTESERR", "SEGV_CPERR"}
	case 7:
		names = []string{"", "BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR", "BUS_MCEERR_AR", "BUS_MCEERR_AO"}
	case 4:
		names = []string{"", "ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC",
			"ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK", "ILL_BADIADDR"}
	case 8:
		names = []string{"", "FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND",
			"FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB", "FPE_FLTUNK", "FPE_CONDTRAP"}
	case 5:
		names = []string{"", "TRAP_BRKPT", "TRAP_TRACE", "TRAP_BRANCH", "TRAP_HWBKPT", "TRAP_UNK", "TRAP_PERF"}
	}
	if code > 0 && code < len(names) {
		return names[code]
	}
	return ""
}

// excluded describes the pages the dump's writer left out ("" when none).
func (d *Dump) excluded() string {
	if d.kdump != nil {
		if d.kdump.DumpLevel <= 0 {
			return ""
		}
		return "dump level " + strconv.Itoa(d.kdump.DumpLevel) + " (" + dumpLevelPages(d.kdump.DumpLevel) + ")"
	}
	if d.kern == nil || d.elf == nil {
		return ""
	}
	n := 0
	for _, p := range d.elf.progs {
		if p.Type == ptLoad && p.Filesz < p.Memsz {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n) + " PT_LOADs end their file data early (makedumpfile's ELF output, which records no dump level)"
}

// dumpLevelPages names the page kinds a makedumpfile dump level excludes.
func dumpLevelPages(level int) string {
	var s string
	for i, name := range []string{"zero", "cache", "private cache", "user", "free"} {
		if level&(1<<i) != 0 {
			if s != "" {
				s += ", "
			}
			s += name
		}
	}
	if s == "" {
		return "no pages"
	}
	return s + " pages"
}
