package dump

import (
	"strconv"
	"time"
)

// Info summarises a dump for `unwind info` and the "dump" object of the
// JSON output.
type Info struct {
	Kind      Kind         `json:"kind"`
	Format    string       `json:"format"` // "elf" or "kdump"
	Release   string       `json:"release,omitempty"`
	CrashTime *time.Time   `json:"crash_time,omitempty"`
	Panic     string       `json:"panic,omitempty"` // the kernel's crash message from its log buffer
	Comm      string       `json:"comm,omitempty"`  // user core: the command
	Args      string       `json:"args,omitempty"`
	Pid       int          `json:"pid,omitempty"`
	Signal    int          `json:"signal,omitempty"`      // the fatal signal (user core)
	SigCode   int          `json:"signal_code,omitempty"` // si_code
	FaultAddr string       `json:"fault_addr,omitempty"`  // si_addr for fault signals
	Crashed   int          `json:"crashed"`               // index in Threads of the crashing thread/CPU, -1 if unknown
	Reason    string       `json:"reason,omitempty"`      // why it is the crashing one
	Threads   []ThreadInfo `json:"threads"`
	Warnings  []string     `json:"warnings,omitempty"`
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
}

// Info returns what the dump is, its threads or CPUs and the crashing one.
func (d *Dump) Info() Info {
	in := Info{Kind: d.kind, Format: "elf", Crashed: -1, Warnings: d.Warnings()}
	if d.kdump != nil {
		in.Format = "kdump"
	}
	for i, t := range d.threads {
		pc, _ := t.Regs.PC()
		sp, _ := t.Regs.SP()
		in.Threads = append(in.Threads, ThreadInfo{TID: t.TID, CPU: t.CPU, Comm: t.Comm, Signal: t.Signal, Crashed: t.Crashed,
			PC: "0x" + strconv.FormatUint(pc, 16), SP: "0x" + strconv.FormatUint(sp, 16)})
		if t.Crashed && in.Crashed < 0 {
			in.Crashed = i
		}
	}
	switch {
	case d.user != nil:
		if ps := d.user.ps; ps != nil {
			in.Comm, in.Args, in.Pid = ps.Comm, ps.Args, ps.Pid
		}
		if si := d.user.sig; si != nil {
			in.Signal, in.SigCode = si.Signo, si.Code
			switch si.Signo {
			case 4, 5, 7, 8, 11:
				in.FaultAddr = "0x" + strconv.FormatUint(si.Addr, 16)
			}
		}
		if in.Crashed >= 0 {
			in.Reason = "first thread in the core: it received signal " + strconv.Itoa(d.threads[in.Crashed].Signal)
		}
	case d.kern != nil:
		in.Release = d.Release()
		in.Panic = d.PanicMessage()
		if ct, ok := d.kern.info["CRASHTIME"]; ok {
			if s, err := strconv.ParseInt(ct, 10, 64); err == nil {
				t := time.Unix(s, 0).UTC()
				in.CrashTime = &t
			}
		} else if d.kdump != nil && d.kdump.Timestamp > 0 {
			t := time.Unix(d.kdump.Timestamp, 0).UTC()
			in.CrashTime = &t
		}
		if in.Crashed >= 0 {
			in.Reason = "panic_cpu (or crashing_cpu) names this CPU"
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
