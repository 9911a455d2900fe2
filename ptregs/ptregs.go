package ptregs

import (
	"encoding/binary"
	"fmt"
)

// Sizes and offsets of the x86-64 frame layouts this package decodes.
const (
	// PtRegsSize is the size in bytes of the kernel's struct pt_regs (21 words).
	PtRegsSize = 168
	// IretFrameSize is the size in bytes of the hardware iret frame (ip, cs,
	// flags, sp, ss), which is also the last five words of a pt_regs.
	IretFrameSize = 40
	// UserRegsSize is the size in bytes of the ELF user_regs_struct (27 words)
	// found in an NT_PRSTATUS note.
	UserRegsSize = 216
	// PrStatusSize is the size in bytes of the x86-64 struct elf_prstatus, the
	// descriptor of an NT_PRSTATUS note.
	PrStatusSize = 336
	// PrStatusRegsOffset is the offset of pr_reg (a user_regs_struct) inside
	// an elf_prstatus.
	PrStatusRegsOffset = 112

	// PtRegsIretOffset is the offset of the iret frame (ip) inside a pt_regs:
	// an iret frame found at address A belongs to a pt_regs at A-128.
	PtRegsIretOffset = 128
)

// PtRegs mirrors the x86-64 kernel's struct pt_regs, in memory order: the
// registers the entry code pushes, orig_ax (the syscall number or error code),
// then the hardware iret frame. Decode one from stack memory with
// DecodePtRegs and turn it into an unwinder register set with Regs.
type PtRegs struct {
	R15, R14, R13, R12, BP, BX, R11, R10, R9, R8, AX, CX, DX, SI, DI, OrigAX, IP, CS, Flags, SP, SS uint64
}

// ShortError reports that a decoder was given fewer bytes than the structure
// it decodes; callers can test for it with errors.As.
type ShortError struct {
	What string // the structure, e.g. "pt_regs"
	Need int    // bytes required
	Have int    // bytes given
}

// Error returns "ptregs: short <what>: need N bytes, have M".
func (e *ShortError) Error() string {
	return fmt.Sprintf("ptregs: short %s: need %d bytes, have %d", e.What, e.Need, e.Have)
}

// words returns pointers to the fields of p in memory order.
func (p *PtRegs) words() [PtRegsSize / 8]*uint64 {
	return [...]*uint64{&p.R15, &p.R14, &p.R13, &p.R12, &p.BP, &p.BX, &p.R11, &p.R10,
		&p.R9, &p.R8, &p.AX, &p.CX, &p.DX, &p.SI, &p.DI, &p.OrigAX,
		&p.IP, &p.CS, &p.Flags, &p.SP, &p.SS}
}

// DecodePtRegs decodes a little-endian struct pt_regs from the first
// PtRegsSize bytes of b (extra bytes are ignored). It returns a *ShortError if
// b is shorter. It does not judge plausibility: call Check for that.
func DecodePtRegs(b []byte) (PtRegs, error) {
	var p PtRegs
	if len(b) < PtRegsSize {
		return p, &ShortError{What: "pt_regs", Need: PtRegsSize, Have: len(b)}
	}
	for i, w := range p.words() {
		*w = binary.LittleEndian.Uint64(b[i*8:])
	}
	return p, nil
}

// Encode returns the little-endian memory image of p, the inverse of
// DecodePtRegs; tests and the emulator use it to build stacks.
func (p *PtRegs) Encode() [PtRegsSize]byte {
	var b [PtRegsSize]byte
	p.AppendEncode(b[:0])
	return b
}

// AppendEncode appends the little-endian memory image of p to b and returns
// the extended slice.
func (p *PtRegs) AppendEncode(b []byte) []byte {
	for _, w := range p.words() {
		b = binary.LittleEndian.AppendUint64(b, *w)
	}
	return b
}

// Regs returns the register set p describes: all 17 DWARF registers valid,
// with RIP taken from IP and RSP from SP. OrigAX and the selectors are not
// part of it.
func (p *PtRegs) Regs() Regs {
	var r Regs
	r.Set(RAX, p.AX)
	r.Set(RDX, p.DX)
	r.Set(RCX, p.CX)
	r.Set(RBX, p.BX)
	r.Set(RSI, p.SI)
	r.Set(RDI, p.DI)
	r.Set(RBP, p.BP)
	r.Set(RSP, p.SP)
	r.Set(R8, p.R8)
	r.Set(R9, p.R9)
	r.Set(R10, p.R10)
	r.Set(R11, p.R11)
	r.Set(R12, p.R12)
	r.Set(R13, p.R13)
	r.Set(R14, p.R14)
	r.Set(R15, p.R15)
	r.Set(RIP, p.IP)
	return r
}

// Iret returns the hardware iret frame part of p (its last five words).
func (p *PtRegs) Iret() IretFrame {
	return IretFrame{IP: p.IP, CS: p.CS, Flags: p.Flags, SP: p.SP, SS: p.SS}
}

// PtRegsFromRegs is the inverse of PtRegs.Regs: it fills a PtRegs from the
// known registers of r, leaving unknown registers, OrigAX, CS, Flags and SS
// zero. Set those fields yourself before encoding a frame the CPU would accept.
func PtRegsFromRegs(r *Regs) PtRegs {
	g := func(reg Reg) uint64 { v, _ := r.Get(reg); return v }
	return PtRegs{
		R15: g(R15), R14: g(R14), R13: g(R13), R12: g(R12),
		BP: g(RBP), BX: g(RBX), R11: g(R11), R10: g(R10),
		R9: g(R9), R8: g(R8), AX: g(RAX), CX: g(RCX),
		DX: g(RDX), SI: g(RSI), DI: g(RDI),
		IP: g(RIP), SP: g(RSP),
	}
}
