package unwind

import "golang.org/x/arch/x86/x86asm"

// frameState is what prologue/epilogue analysis learns about a function at
// one instruction: where its CFA is and where it saved the caller's rbp.
type frameState struct {
	ok       bool
	rbpFrame bool  // CFA = rbp + cfaOff (the function set up rbp); else CFA = rsp + cfaOff
	rbpSaved bool  // the caller's rbp is saved at CFA + rbpSlot
	cfaOff   int32 // distance from rsp (or rbp) to the CFA (at most 1 MiB)
	rbpSlot  int32
}

// maxAnalysis bounds the bytes of a function that are decoded.
const maxAnalysis = 16 << 10

// analyzeFrame decodes code (the function, starting at its first byte) up
// to offset target and tracks the stack pointer linearly: pushes, pops,
// rsp adjustments, "mov %rsp,%rbp", "leave". At a ret or jmp that ends an
// epilogue it restores the state from before the epilogue, since the code
// that follows is reached with the frame still set up. It gives up on
// anything it cannot follow (not ok). int3Before says the live code has
// an int3 at target-1 where code (the file's bytes) has the first byte of a
// longer instruction: code patched the Linux text_poke_bp way; the int3
// leaves the stack alone.
func analyzeFrame(code []byte, target uint64, int3Before bool) frameState {
	if target > maxAnalysis || uint64(len(code)) < target {
		return frameState{}
	}
	type st struct {
		sp       int64
		rbpSaved bool
		rbpSlot  int64
		rbpFrame bool
		rbpCFA   int64
		spLost   bool
	}
	s := st{sp: 8}
	var snap st
	inEpi := false
	off := uint64(0)
	for off < target {
		b := code[off:]
		if len(b) >= 4 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && (b[3] == 0xfa || b[3] == 0xfb) {
			off += 4 // endbr64/endbr32
			inEpi = false
			continue
		}
		inst, err := x86asm.Decode(b, 64)
		if err != nil || inst.Len == 0 {
			return frameState{}
		}
		if int3Before && off+1 == target && off+uint64(inst.Len) > target {
			off = target
			break
		}
		before := s
		dst, _ := inst.Args[0].(x86asm.Reg)
		src, _ := inst.Args[1].(x86asm.Reg)
		imm, hasImm := inst.Args[1].(x86asm.Imm)
		epi := false
		end := false
		switch inst.Op {
		case x86asm.PUSH, x86asm.PUSHFQ:
			s.sp += 8
			if dst == x86asm.RBP && !s.rbpSaved && inst.Op == x86asm.PUSH {
				s.rbpSaved, s.rbpSlot = true, -s.sp
			}
		case x86asm.POP, x86asm.POPFQ:
			epi = true
			if dst == x86asm.RSP {
				return frameState{}
			}
			s.sp -= 8
			if dst == x86asm.RBP {
				s.rbpSaved, s.rbpFrame = false, false
			}
		case x86asm.LEAVE:
			epi = true
			if !s.rbpFrame {
				return frameState{}
			}
			s.sp = s.rbpCFA - 8
			s.rbpSaved, s.rbpFrame, s.spLost = false, false, false
		case x86asm.RET, x86asm.JMP, x86asm.UD2:
			end = true
		case x86asm.SUB, x86asm.ADD:
			if dst == x86asm.RSP {
				if !hasImm {
					if !s.rbpFrame {
						return frameState{}
					}
					s.spLost = true
					break
				}
				if inst.Op == x86asm.SUB {
					s.sp += int64(imm)
				} else {
					s.sp -= int64(imm)
					epi = true
				}
			}
		case x86asm.LEA:
			if dst == x86asm.RSP {
				m, _ := inst.Args[1].(x86asm.Mem)
				switch {
				case m.Base == x86asm.RSP && m.Index == 0:
					s.sp -= m.Disp
				case m.Base == x86asm.RBP && m.Index == 0 && s.rbpFrame:
					s.sp = s.rbpCFA - m.Disp
					s.spLost = false
				default:
					if !s.rbpFrame {
						return frameState{}
					}
					s.spLost = true
				}
				epi = true
			}
		case x86asm.MOV:
			if dst == x86asm.RBP && src == x86asm.RSP && !s.spLost {
				s.rbpFrame, s.rbpCFA = true, s.sp
			} else if dst == x86asm.RSP {
				if src == x86asm.RBP && s.rbpFrame {
					s.sp, s.spLost = s.rbpCFA, false
					epi = true
				} else if s.rbpFrame {
					s.spLost = true
				} else {
					return frameState{}
				}
			}
		default:
			if dst == x86asm.RSP {
				if !s.rbpFrame {
					return frameState{}
				}
				s.spLost = true
			}
		}
		if epi && !inEpi {
			snap, inEpi = before, true
		}
		if end {
			if inEpi {
				s = snap
			}
			inEpi = false
		} else if !epi {
			inEpi = false
		}
		off += uint64(inst.Len)
		if s.sp < 8 || s.sp > 1<<20 {
			return frameState{}
		}
	}
	if off != target {
		return frameState{}
	}
	if s.rbpFrame {
		return frameState{ok: true, rbpFrame: true, cfaOff: int32(s.rbpCFA), rbpSaved: s.rbpSaved, rbpSlot: int32(s.rbpSlot)}
	}
	if s.spLost {
		return frameState{}
	}
	return frameState{ok: true, cfaOff: int32(s.sp), rbpSaved: s.rbpSaved, rbpSlot: int32(s.rbpSlot)}
}
