package unwind

import "github.com/unwind-dev/unwind/symbols"

// ValueSource is what FrameValues needs of the symbols: the DWARF
// variables of a source-level frame. *symbols.Set implements it.
type ValueSource interface {
	FrameValues(fr *symbols.VarFrame, inline int, mem symbols.MemoryReader, opts *symbols.ValueOptions, args, locals []symbols.Value) ([]symbols.Value, []symbols.Value, bool)
}

// FrameValues returns the parameters (args) and the local variables in
// scope (locals, innermost block first) of frames[i], a frame of a walk
// (frames as Walk or Next gave them, in order, inlined frames included).
// Each value says how it was recovered (symbols.Recovery): from frames[i]'s
// stack slot, from a register the unwind recovered for that frame, as an
// entry value from the caller's call site, or not at all. A register
// nothing recovered (a caller-saved register in a caller frame) gives
// NotRecovered, never the stale value the register holds. ok is false when
// no DWARF describes the frame's function. mem is the memory the walk read;
// opts may be nil.
//
//	frames, _ := unwind.Walk(mem, regs, &unwind.Options{Code: set})
//	for i := range frames {
//		args, locals, _ := unwind.FrameValues(frames, i, mem, set, nil)
//		...
//	}
func FrameValues(frames []Frame, i int, mem Memory, src ValueSource, opts *symbols.ValueOptions) (args, locals []symbols.Value, ok bool) {
	if i < 0 || i >= len(frames) || src == nil {
		return nil, nil, false
	}
	// The inline depth: how many inlined frames at this pc come before
	// frames[i] (Lines orders them innermost first, as the walk does).
	g := i
	for g > 0 && frames[g-1].Inlined && frames[g-1].PC == frames[i].PC {
		g--
	}
	var vf [maxValueChain]symbols.VarFrame
	n := valueChain(frames, i, vf[:])
	if n == 0 {
		return nil, nil, false
	}
	var m symbols.MemoryReader
	if mem != nil {
		m = mem
	}
	return src.FrameValues(&vf[0], i-g, m, opts, nil, nil)
}

// maxValueChain is how many physical frames (the frame and its callers)
// entry values may reach through.
const maxValueChain = 40

// valueChain fills vf with the physical frame of frames[i] and its callers
// reached by calls, each linked to the next; it returns how many.
func valueChain(frames []Frame, i int, vf []symbols.VarFrame) int {
	p := physical(frames, i)
	n := 0
	for p >= 0 && n < len(vf) {
		f := &frames[p]
		if f.Kind == KindScan {
			break
		}
		vf[n] = symbols.VarFrame{PC: f.PC, LookupPC: f.LookupPC, Regs: &f.Regs}
		q := physical(frames, p+1)
		if q >= 0 && frames[q].Kind == KindCall && frames[q].PC != 0 {
			// The caller's SP after the return is this frame's CFA.
			vf[n].CFA = frames[q].SP
		}
		if n > 0 {
			vf[n-1].Caller = &vf[n]
		}
		n++
		if q < 0 || frames[q].Kind != KindCall {
			break
		}
		p = q
	}
	return n
}

// physical returns the index of the frame holding the machine code of
// frames[i] (the first frame from i on that is not inlined), -1 if none.
func physical(frames []Frame, i int) int {
	for ; i < len(frames); i++ {
		if !frames[i].Inlined {
			return i
		}
	}
	return -1
}
