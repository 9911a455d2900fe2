package ptregs

import "encoding/binary"

// IretFrame is the five-word frame the CPU pushes on an interrupt or
// exception (and that iretq pops): the interrupted RIP, CS, RFLAGS, RSP and
// SS, in memory order. It is all that is valid in a partial pt_regs, for
// example at the top of an IST stack before the entry code saved the rest.
type IretFrame struct {
	IP, CS, Flags, SP, SS uint64
}

// DecodeIretFrame decodes a little-endian iret frame from the first
// IretFrameSize bytes of b; a shorter b gives a *ShortError.
func DecodeIretFrame(b []byte) (IretFrame, error) {
	var f IretFrame
	if len(b) < IretFrameSize {
		return f, &ShortError{What: "iret frame", Need: IretFrameSize, Have: len(b)}
	}
	le := binary.LittleEndian
	f.IP = le.Uint64(b[0:])
	f.CS = le.Uint64(b[8:])
	f.Flags = le.Uint64(b[16:])
	f.SP = le.Uint64(b[24:])
	f.SS = le.Uint64(b[32:])
	return f, nil
}

// Encode returns the little-endian memory image of f, the inverse of
// DecodeIretFrame.
func (f *IretFrame) Encode() [IretFrameSize]byte {
	var b [IretFrameSize]byte
	le := binary.LittleEndian
	le.PutUint64(b[0:], f.IP)
	le.PutUint64(b[8:], f.CS)
	le.PutUint64(b[16:], f.Flags)
	le.PutUint64(b[24:], f.SP)
	le.PutUint64(b[32:], f.SS)
	return b
}

// Regs returns the register set an iret frame describes: only RIP and RSP are
// valid; every general-purpose register is unknown.
func (f *IretFrame) Regs() Regs {
	var r Regs
	r.Set(RIP, f.IP)
	r.Set(RSP, f.SP)
	return r
}
