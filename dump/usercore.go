package dump

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/unwind-dev/unwind/ptregs"
)

// Mapping is one file mapping of a user process, from the NT_FILE note:
// [Start, End) maps the file at Path from file offset Off.
type Mapping struct {
	Start, End uint64
	Off        uint64 // file offset in bytes
	Path       string
}

// SigInfo is the NT_SIGINFO note of a user core: the signal that killed the
// process, its code and, for fault signals, the faulting address.
type SigInfo struct {
	Signo, Errno, Code int
	Addr               uint64 // si_addr for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP
	Pid, UID           int    // si_pid, si_uid of a signal a process sent (si_code <= 0: kill, tkill, sigqueue)
}

// faultSignal reports whether the signal carries a fault address: one of
// SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV raised by the kernel (si_code > 0).
func (s *SigInfo) faultSignal() bool {
	switch s.Signo {
	case 4, 5, 7, 8, 11:
		return s.Code > 0
	}
	return false
}

// AuxEntry is one auxiliary-vector entry (AT_* tag and value) from NT_AUXV.
type AuxEntry struct {
	Tag, Val uint64
}

// PsInfo is the NT_PRPSINFO note of a user core.
type PsInfo struct {
	Pid, PPid int
	Comm      string // pr_fname: the command name (16 bytes at most)
	Args      string // pr_psargs: the start of the command line
}

type userCore struct {
	maps   []Mapping
	sig    *SigInfo
	auxv   []AuxEntry
	ps     *PsInfo
	pageSz uint64
}

const (
	prpsinfoSize = 136
	siginfoSize  = 128
	maxMappings  = 1 << 20
)

func (d *Dump) initUser() error {
	u := &userCore{}
	d.user = u
	sm := newSegMemory(d.r, d.size, d.elf.progs, false)
	sm.strict = true
	d.mem = sm
	for _, n := range d.notes {
		if n.Name != "CORE" && n.Name != "LINUX" {
			continue
		}
		switch n.Type {
		case ntPrStatus:
			if n.Name != "CORE" {
				continue
			}
			ps, err := ptregs.DecodePrStatus(n.Desc)
			if err != nil {
				d.warnf("NT_PRSTATUS at offset %#x: %v", n.Off, err)
				continue
			}
			d.threads = append(d.threads, Thread{
				TID:      ps.Pid,
				CPU:      -1,
				Regs:     ps.Regs.PtRegs.Regs(),
				PrStatus: ps,
				Signal:   ps.CurSig,
			})
		case ntPrPsInfo:
			if len(n.Desc) < prpsinfoSize {
				d.warnf("NT_PRPSINFO at offset %#x: %d bytes, want %d", n.Off, len(n.Desc), prpsinfoSize)
				continue
			}
			le := binary.LittleEndian
			u.ps = &PsInfo{
				Pid:  int(int32(le.Uint32(n.Desc[24:]))),
				PPid: int(int32(le.Uint32(n.Desc[28:]))),
				Comm: trimNUL(n.Desc[40:56]),
				Args: string(bytes.TrimRight(bytes.TrimRight(n.Desc[56:136], "\x00"), " ")),
			}
		case ntSigInfo:
			if len(n.Desc) < 24 {
				d.warnf("NT_SIGINFO at offset %#x: %d bytes", n.Off, len(n.Desc))
				continue
			}
			u.sig = decodeSigInfo(n.Desc)
		case ntAuxv:
			for i := 0; i+16 <= len(n.Desc); i += 16 {
				e := AuxEntry{binary.LittleEndian.Uint64(n.Desc[i:]), binary.LittleEndian.Uint64(n.Desc[i+8:])}
				u.auxv = append(u.auxv, e)
				if e.Tag == 0 {
					break
				}
			}
		case ntFile:
			maps, pg, err := parseNTFile(n.Desc, n.Off)
			if err != nil {
				d.warnf("%v", err)
			}
			u.maps, u.pageSz = maps, pg
		}
	}
	comm := ""
	if u.ps != nil {
		comm = u.ps.Comm
	}
	for i := range d.threads {
		d.threads[i].Comm = comm
	}
	// The kernel writes the thread that took the fatal signal first.
	if len(d.threads) > 0 && (d.threads[0].Signal != 0 || u.sig != nil) {
		d.threads[0].Crashed = true
		if d.threads[0].Signal == 0 && u.sig != nil {
			d.threads[0].Signal = u.sig.Signo
		}
	}
	return nil
}

func decodeSigInfo(b []byte) *SigInfo {
	le := binary.LittleEndian
	s := &SigInfo{
		Signo: int(int32(le.Uint32(b[0:]))),
		Errno: int(int32(le.Uint32(b[4:]))),
		Code:  int(int32(le.Uint32(b[8:]))),
	}
	if s.faultSignal() {
		s.Addr = le.Uint64(b[16:])
	} else if s.Code <= 0 {
		s.Pid = int(int32(le.Uint32(b[16:])))
		s.UID = int(int32(le.Uint32(b[20:])))
	}
	return s
}

// parseNTFile decodes an NT_FILE descriptor: count, page size, count
// (start, end, page offset) triples, then count NUL-terminated paths.
func parseNTFile(b []byte, off int64) ([]Mapping, uint64, error) {
	le := binary.LittleEndian
	if len(b) < 16 {
		return nil, 0, formatErr(off, nil, "NT_FILE note of %d bytes", len(b))
	}
	count := le.Uint64(b)
	pg := le.Uint64(b[8:])
	if count > maxMappings || count > uint64(len(b)-16)/24 {
		return nil, pg, formatErr(off, nil, "NT_FILE count %d does not fit in %d bytes", count, len(b))
	}
	names := b[16+24*count:]
	maps := make([]Mapping, 0, count)
	for i := uint64(0); i < count; i++ {
		e := b[16+24*i:]
		m := Mapping{Start: le.Uint64(e), End: le.Uint64(e[8:]), Off: le.Uint64(e[16:]) * pg}
		j := bytes.IndexByte(names, 0)
		if j < 0 {
			m.Path = string(names)
			names = nil
		} else {
			m.Path = string(names[:j])
			names = names[j+1:]
		}
		maps = append(maps, m)
	}
	return maps, pg, nil
}

// Mappings returns the file mappings of a user core (NT_FILE), in address
// order; nil for other dumps.
func (d *Dump) Mappings() []Mapping {
	if d.user == nil {
		return nil
	}
	return append([]Mapping(nil), d.user.maps...)
}

// SigInfo returns the NT_SIGINFO note of a user core: the fatal signal and
// fault address. ok is false when the core has none.
func (d *Dump) SigInfo() (s SigInfo, ok bool) {
	if d.user == nil || d.user.sig == nil {
		return SigInfo{}, false
	}
	return *d.user.sig, true
}

// Auxv returns the auxiliary vector of a user core (NT_AUXV).
func (d *Dump) Auxv() []AuxEntry {
	if d.user == nil {
		return nil
	}
	return append([]AuxEntry(nil), d.user.auxv...)
}

// PsInfo returns the NT_PRPSINFO note of a user core (command name and
// arguments); ok is false when it is absent.
func (d *Dump) PsInfo() (p PsInfo, ok bool) {
	if d.user == nil || d.user.ps == nil {
		return PsInfo{}, false
	}
	return *d.user.ps, true
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
