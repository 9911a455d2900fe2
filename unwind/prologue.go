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
	var a analysis
	return a.run(code, target, int3Before)
}

// spState is the stack tracking of analyzeFrame at one instruction.
type spState struct {
	sp       int64
	rbpSaved bool
	rbpSlot  int64
	rbpFrame bool
	rbpCFA   int64
	spLost   bool
}

// analysis is analyzeFrame's position in a function: run continues from
// it when the next target lies further on, so that stepping through a
// function instruction by instruction (a verify loop's frame 0) decodes
// each instruction once instead of the whole prefix at every PC.
type analysis struct {
	started bool
	dead    bool // decoding stopped (undecodable or unfollowable code): no resuming
	off     uint64
	s, snap spState
	inEpi   bool
}

// run is analyzeFrame for code and target, continuing from a when a lies
// at or before target on the same code (the zero analysis starts at the
// function's first byte, and so does a dead one). It leaves a at target,
// or dead.
func (a *analysis) run(code []byte, target uint64, int3Before bool) frameState {
	if target > maxAnalysis || uint64(len(code)) < target {
		return frameState{}
	}
	if !a.started || a.dead || a.off > target {
		*a = analysis{started: true, s: spState{sp: 8}}
	}
	st := a.step(code, target, int3Before)
	if a.off != target {
		a.dead = true // stopped inside an instruction
	}
	return st
}

// step decodes from a.off up to target.
func (a *analysis) step(code []byte, target uint64, int3Before bool) frameState {
	s, snap, inEpi, off := a.s, a.snap, a.inEpi, a.off
	defer func() { a.s, a.snap, a.inEpi, a.off = s, snap, inEpi, off }()
	for off < target {
		b := code[off:]
		if len(b) >= 4 && b[0] == 0xf3 && b[1] == 0x0f && b[2] == 0x1e && (b[3] == 0xfa || b[3] == 0xfb) {
			off += 4 // endbr64/endbr32
			inEpi = false
			continue
		}
		inst, err := x86asm.Decode(b, 64)
		if err != nil || inst.Len == 0 {
			a.dead = true
			return frameState{}
		}
		if int3Before && off+1 == target && off+uint64(inst.Len) > target {
			// The int3 replaced this instruction's first byte: the
			// analysis ends here, and cannot go on past it.
			a.dead = true
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
				a.dead = true
				return frameState{}
			}
			s.sp -= 8
			if dst == x86asm.RBP {
				s.rbpSaved, s.rbpFrame = false, false
			}
		case x86asm.LEAVE:
			epi = true
			if !s.rbpFrame {
				a.dead = true
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
						a.dead = true
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
						a.dead = true
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
					a.dead = true
					return frameState{}
				}
			}
		default:
			if dst == x86asm.RSP {
				if !s.rbpFrame {
					a.dead = true
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
			a.dead = true
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
