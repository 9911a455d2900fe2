package unwind

// FillCFA sets Frame.CFA on the frames of one walk, in the order Next
// yielded them: each frame's own CFA, computed by the step from it to its
// caller. Call it on the whole trace (or on a prefix: the last frame's
// CFA needs the frame after it). Inlined frames share the CFA of the
// physical frame they are part of. A frame whose caller was not reached by
// a call step (an interrupted or signal frame, found through a pt_regs or
// a signal frame, or a scan) keeps CFA 0, as does the last frame.
func FillCFA(frames []Frame) {
	for i := range frames {
		frames[i].CFA = 0
	}
	start := 0 // first frame of the current physical frame's group
	for i := range frames {
		if frames[i].Inlined {
			continue
		}
		// frames[start..i] are one physical frame (inlined callees, then
		// the function they were inlined into); the next frame is its caller.
		if j := i + 1; j < len(frames) && frames[j].Kind == KindCall && frames[j].calleeCFA != 0 {
			for k := start; k <= i; k++ {
				frames[k].CFA = frames[j].calleeCFA
			}
		}
		start = i + 1
	}
}

// CalleeCFA is the CFA the step that found f computed for the frame before
// it (its callee), 0 when that step did not know it. A consumer that
// streams frames without keeping them gets the previous frame's own CFA
// from it, as FillCFA would set it: when f.Kind is KindCall and the
// previous frame is not an inlined one.
func (f *Frame) CalleeCFA() uint64 { return f.calleeCFA }
