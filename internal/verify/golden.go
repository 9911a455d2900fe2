package verify

import (
	"bytes"
	"fmt"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// SnapshotTrace is the backtrace of one scenario snapshot as `unwind bt`
// prints it: the snapshot's ELF core read back with dump, unwound with
// every strategy and the fixture kernel's symbols, CFI and lines.
type SnapshotTrace struct {
	Scenario string
	Snapshot *emu.Snapshot
	Doc      *report.Document
	Memory   unwind.Memory
	// Truth is the ground truth per CPU, from the snapshot's UNWIND note.
	Truth [][]emu.Frame
}

// SnapshotTraces runs sc on kernel and returns the trace of every snapshot
// it takes. kernelPath names the kernel in symbols.
func SnapshotTraces(sc *emu.Scenario, kernel []byte, kernelPath string) ([]SnapshotTrace, error) {
	if kernelPath == "" {
		kernelPath = "fixtures/kernel/build/kernel-" + sc.Kernel + ".elf"
	}
	set, err := KernelCode(kernel, kernelPath)
	if err != nil {
		return nil, err
	}
	res, err := emu.RunScenario(sc, kernel, emu.RunOptions{KernelPath: kernelPath})
	if err != nil {
		return nil, err
	}
	var out []SnapshotTrace
	for _, s := range res.Snapshots {
		d, err := dump.NewFile(bytes.NewReader(s.Core), int64(len(s.Core)))
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", s.Name, err)
		}
		doc := &report.Document{Dump: report.DumpInfo{
			Kind: string(d.Info().Kind), Path: sc.Name + "/" + s.Name + ".core", Release: kernelPath,
			Extra: map[string]string{"scenario": sc.Name, "snapshot": s.Name, "where": s.Where},
		}}
		st := SnapshotTrace{Scenario: sc.Name, Snapshot: s, Doc: doc, Memory: d.Memory()}
		for i, th := range d.Threads() {
			o := &unwind.Options{Code: set, Stacks: d.Stacks(i), Kernel: true}
			emu.EntryConventions(o, SymbolAddr(set))
			u := unwind.New(d.Memory(), th.Regs, o)
			var frames []unwind.Frame
			for u.Next() {
				frames = append(frames, u.Frame())
			}
			unwind.FillCFA(frames)
			invalidate(frames, u)
			doc.Threads = append(doc.Threads, report.Thread{
				TID: th.TID, CPU: th.CPU, Crashed: th.Crashed, Signal: th.Signal, Comm: th.Comm,
				Kernel: true, Regs: th.Regs, Frames: frames, Reliable: u.Reliable(), StopReason: u.StopReason(),
				Truncated: u.Truncated(), Unwalked: -1,
			})
		}
		if info := d.EmulatorInfo(); info != nil {
			for _, c := range info.CPUs {
				st.Truth = append(st.Truth, TruthFrames(c.Truth))
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// TruthFrames converts the ground truth of a snapshot's UNWIND note back
// into emulator frames.
func TruthFrames(tf []dump.TruthFrame) []emu.Frame {
	out := make([]emu.Frame, 0, len(tf))
	for _, t := range tf {
		f := emu.Frame{Function: t.Function, PC: uint64(t.PC), CFA: uint64(t.CFA), SP: uint64(t.SP),
			Entry: t.Entry, Vector: -1, RegsAddr: uint64(t.RegsAddr)}
		switch t.Kind {
		case "interrupted":
			f.Kind = emu.FrameInterrupted
		case "user":
			f.Kind = emu.FrameUser
		}
		f.Stack, _ = unwind.ParseStackKind(t.Stack)
		if t.Vector != nil {
			f.Vector = *t.Vector
		}
		for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
			if v, ok := t.Regs[r.String()]; ok {
				f.Regs.Set(r, uint64(v))
			}
		}
		out = append(out, f)
	}
	return out
}

// nextPhysical returns the index of the first frame after frames[i]'s
// physical frame (its inlined callees and itself), or -1.
func nextPhysical(frames []unwind.Frame, i int) int {
	for j := i; j < len(frames); j++ {
		if !frames[j].Inlined {
			if j+1 < len(frames) {
				return j + 1
			}
			return -1
		}
	}
	return -1
}

// FrameCheck compares an unwound trace with the truth frame by frame, the
// way Run does: ok[i] says frame i matches, reason is the first difference
// ("" when the trace is exact).
func FrameCheck(frames []unwind.Frame, truth []emu.Frame, code unwind.Code) (ok []bool, reason string) {
	c := comparison{code: code, explain: true}
	ok = make([]bool, len(frames))
	n := 0
	for i := range frames {
		f := &frames[i]
		if f.Inlined {
			ok[i] = true
			continue
		}
		// The frame's own CFA: 0 only where FillCFA cannot know it (the
		// caller was not reached by a call step, or no caller).
		cfa := int64(f.CFA)
		if next := nextPhysical(frames, i); f.CFA == 0 && next >= 0 && frames[next].Kind == unwind.KindCall {
			ok[i] = false
			if c.reason == "" {
				c.reason = fmt.Sprintf("frame %d: %s: no cfa, though its caller was reached by a call step", n, frameName(f))
			}
			n++
			continue
		}
		if f.CFA == 0 {
			cfa = -1
		}
		ok[i] = n < len(truth) && c.frameOK(n, f, &truth[n], cfa)
		if !ok[i] && n >= len(truth) && c.reason == "" {
			c.reason = fmt.Sprintf("frame %d: %s beyond the truth's %d frames", n, frameName(f), len(truth))
		}
		n++
	}
	if need := userEnd(truth); n < need && c.reason == "" {
		c.reason = fmt.Sprintf("trace ends after %d frames, the truth has %d", n, need)
	}
	return ok, c.reason
}
