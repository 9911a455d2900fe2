package ptregs

import "encoding/binary"

// UserRegs mirrors the x86-64 ELF user_regs_struct (27 words) that core files
// carry in each thread's NT_PRSTATUS note: the pt_regs layout followed by the
// segment bases and data selectors.
type UserRegs struct {
	PtRegs
	FSBase, GSBase, DS, ES, FS, GS uint64
}

// DecodeUserRegs decodes a little-endian user_regs_struct from the first
// UserRegsSize bytes of b; a shorter b gives a *ShortError.
func DecodeUserRegs(b []byte) (UserRegs, error) {
	var u UserRegs
	if len(b) < UserRegsSize {
		return u, &ShortError{What: "user_regs_struct", Need: UserRegsSize, Have: len(b)}
	}
	p, _ := DecodePtRegs(b)
	u.PtRegs = p
	le := binary.LittleEndian
	u.FSBase = le.Uint64(b[168:])
	u.GSBase = le.Uint64(b[176:])
	u.DS = le.Uint64(b[184:])
	u.ES = le.Uint64(b[192:])
	u.FS = le.Uint64(b[200:])
	u.GS = le.Uint64(b[208:])
	return u, nil
}

// Encode returns the little-endian memory image of u, the inverse of
// DecodeUserRegs.
func (u *UserRegs) Encode() [UserRegsSize]byte {
	var b [UserRegsSize]byte
	u.PtRegs.AppendEncode(b[:0])
	le := binary.LittleEndian
	le.PutUint64(b[168:], u.FSBase)
	le.PutUint64(b[176:], u.GSBase)
	le.PutUint64(b[184:], u.DS)
	le.PutUint64(b[192:], u.ES)
	le.PutUint64(b[200:], u.FS)
	le.PutUint64(b[208:], u.GS)
	return b
}

// PrStatus is the decoded descriptor of an NT_PRSTATUS note (struct
// elf_prstatus on x86-64): the signal that stopped the thread, its ids and
// its registers. Dump readers make one thread per note from it.
type PrStatus struct {
	Signal, Code, Errno  int // pr_info.si_signo, si_code, si_errno
	CurSig               int // pr_cursig (a C short): the current signal
	Pid, PPid, PGrp, Sid int
	Regs                 UserRegs
	FPValid              bool // pr_fpvalid: an NT_PRFPREG note follows

	SigPend, SigHold             uint64  // pending and blocked signal masks (bit n-1 for signal n)
	UTime, STime, CUTime, CSTime Timeval // user, system and children's CPU time
}

// Timeval is a struct __kernel_old_timeval: seconds and microseconds.
type Timeval struct {
	Sec, Usec int64
}

// Offsets inside the x86-64 elf_prstatus (include/linux/elfcore.h).
const (
	prCurSigOff  = 12 // short, after the 12-byte elf_siginfo
	prSigPendOff = 16
	prSigHoldOff = 24
	prPidOff     = 32
	prTimesOff   = 48 // four 16-byte timevals
	prFPValidOff = 328
)

// DecodePrStatus decodes a 336-byte little-endian x86-64 elf_prstatus from
// b, the descriptor of an NT_PRSTATUS note; a shorter b gives a *ShortError.
// Signed fields (ids, signal numbers, times) are sign-extended.
func DecodePrStatus(b []byte) (PrStatus, error) {
	var s PrStatus
	if len(b) < PrStatusSize {
		return s, &ShortError{What: "elf_prstatus", Need: PrStatusSize, Have: len(b)}
	}
	le := binary.LittleEndian
	i32 := func(off int) int { return int(int32(le.Uint32(b[off:]))) }
	s.Signal = i32(0)
	s.Code = i32(4)
	s.Errno = i32(8)
	s.CurSig = int(int16(le.Uint16(b[prCurSigOff:])))
	s.SigPend = le.Uint64(b[prSigPendOff:])
	s.SigHold = le.Uint64(b[prSigHoldOff:])
	s.Pid = i32(prPidOff)
	s.PPid = i32(prPidOff + 4)
	s.PGrp = i32(prPidOff + 8)
	s.Sid = i32(prPidOff + 12)
	for i, tv := range []*Timeval{&s.UTime, &s.STime, &s.CUTime, &s.CSTime} {
		off := prTimesOff + 16*i
		tv.Sec = int64(le.Uint64(b[off:]))
		tv.Usec = int64(le.Uint64(b[off+8:]))
	}
	s.Regs, _ = DecodeUserRegs(b[PrStatusRegsOffset:])
	s.FPValid = le.Uint32(b[prFPValidOff:]) != 0
	return s, nil
}

// Encode returns the 336-byte little-endian memory image of s, the inverse
// of DecodePrStatus (FPValid is stored as 1 or 0). Tests and fixture writers
// use it to build NT_PRSTATUS notes.
func (s *PrStatus) Encode() [PrStatusSize]byte {
	var b [PrStatusSize]byte
	le := binary.LittleEndian
	put32 := func(off, v int) { le.PutUint32(b[off:], uint32(int32(v))) }
	put32(0, s.Signal)
	put32(4, s.Code)
	put32(8, s.Errno)
	le.PutUint16(b[prCurSigOff:], uint16(int16(s.CurSig)))
	le.PutUint64(b[prSigPendOff:], s.SigPend)
	le.PutUint64(b[prSigHoldOff:], s.SigHold)
	put32(prPidOff, s.Pid)
	put32(prPidOff+4, s.PPid)
	put32(prPidOff+8, s.PGrp)
	put32(prPidOff+12, s.Sid)
	for i, tv := range []Timeval{s.UTime, s.STime, s.CUTime, s.CSTime} {
		le.PutUint64(b[prTimesOff+16*i:], uint64(tv.Sec))
		le.PutUint64(b[prTimesOff+16*i+8:], uint64(tv.Usec))
	}
	u := s.Regs.Encode()
	copy(b[PrStatusRegsOffset:], u[:])
	if s.FPValid {
		le.PutUint32(b[prFPValidOff:], 1)
	}
	return b
}
