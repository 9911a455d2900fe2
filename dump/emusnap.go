package dump

import (
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// emuState is what a snapshot's UNWIND note says.
type emuState struct {
	info *EmulatorInfo
}

// initEmulator reads an emulator snapshot: virtual PT_LOADs, one
// NT_PRSTATUS per CPU and the UNWIND note with stack bounds and the truth.
func (d *Dump) initEmulator() error {
	d.emu = &emuState{}
	sm := newSegMemory(d.r, d.size, d.elf.progs, false)
	sm.zeroTail = true
	d.mem = sm
	cpu := 0
	for _, n := range d.notes {
		switch {
		case n.Name == "CORE" && n.Type == ntPrStatus:
			ps, err := ptregs.DecodePrStatus(n.Desc)
			if err != nil {
				d.warnf("NT_PRSTATUS at offset %#x: %v", n.Off, err)
				continue
			}
			d.threads = append(d.threads, Thread{CPU: cpu, Regs: ps.Regs.PtRegs.Regs(), PrStatus: ps, Signal: ps.CurSig})
			cpu++
		case n.Name == EmulatorNoteOwner && n.Type == EmulatorNoteType:
			info, err := ParseEmulatorInfo(n.Desc)
			if err != nil {
				d.warnf("UNWIND note at offset %#x: %v", n.Off, err)
				continue
			}
			d.emu.info = info
		}
	}
	if info := d.emu.info; info != nil && info.TriggerCPU >= 0 && info.TriggerCPU < len(d.threads) {
		d.threads[info.TriggerCPU].Crashed = true
	}
	return nil
}

// EmulatorInfo returns the UNWIND note of an emulator snapshot (the stack
// bounds and ground truth); nil for other dumps or when the note is bad.
func (d *Dump) EmulatorInfo() *EmulatorInfo {
	if d.emu == nil {
		return nil
	}
	return d.emu.info
}

func (d *Dump) emulatorStacks(cpu int) unwind.Stacks {
	info := d.emu.info
	if info == nil {
		return nil
	}
	for _, c := range info.CPUs {
		if c.CPU != cpu {
			continue
		}
		var ss unwind.Stacks
		for _, s := range c.Stacks {
			k, _ := unwind.ParseStackKind(s.Kind)
			ss = append(ss, unwind.Stack{Kind: k, Lo: uint64(s.Lo), Hi: uint64(s.Hi), CPU: cpu, Name: s.Kind})
		}
		return ss
	}
	return nil
}
