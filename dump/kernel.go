package dump

import (
	"encoding/binary"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

const (
	startKernelMap = 0xffffffff80000000 // __START_KERNEL_map
	cr4LA57        = 1 << 12
	qemuNoteMin    = 432 // QEMUCPUState up to and including cr[4]
)

// QEMUCPUState is the part of QEMU's per-vCPU "QEMU" note (QEMUCPUState in
// target/i386/arch_dump.c) that an unwinder needs: control registers and the
// bases of the segment and descriptor-table registers.
type QEMUCPUState struct {
	Version         uint32
	RIP, RSP, Flags uint64
	GSBase          uint64 // gs.base: the kernel's per-CPU base in kernel mode
	KernelGSBase    uint64 // MSR_KERNEL_GS_BASE (version ≥ 1 notes; 0 otherwise)
	TRBase          uint64 // task register base: this CPU's TSS
	GDTBase         uint64
	IDTBase         uint64
	IDTLimit        uint32
	CR0, CR2, CR3   uint64
	CR4             uint64
	// The segment registers' selectors and the FS base, as the kernel's
	// show_regs prints them ("FS:  base(sel) GS:base(sel)", "CS: DS: ES:").
	FSBase             uint64
	CS, DS, ES, FS, GS uint16
}

func decodeQEMUNote(b []byte) (QEMUCPUState, bool) {
	var s QEMUCPUState
	if len(b) < qemuNoteMin {
		return s, false
	}
	le := binary.LittleEndian
	// QEMUCPUSegment: selector, limit, flags, pad (u32 each), base (u64);
	// the order is cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt.
	seg := func(i int) uint64 { return le.Uint64(b[152+24*i+16:]) }
	sel := func(i int) uint16 { return uint16(le.Uint32(b[152+24*i:])) }
	s.Version = le.Uint32(b)
	s.RSP = le.Uint64(b[56:])
	s.RIP = le.Uint64(b[136:])
	s.Flags = le.Uint64(b[144:])
	s.GSBase = seg(4)
	s.FSBase = seg(3)
	s.CS, s.DS, s.ES, s.FS, s.GS = sel(0), sel(1), sel(2), sel(3), sel(4)
	s.TRBase = seg(7)
	s.GDTBase = seg(8)
	s.IDTBase = seg(9)
	s.IDTLimit = le.Uint32(b[152+24*9+4:])
	s.CR0 = le.Uint64(b[392:])
	s.CR2 = le.Uint64(b[408:])
	s.CR3 = le.Uint64(b[416:])
	s.CR4 = le.Uint64(b[424:])
	if len(b) >= 440 {
		s.KernelGSBase = le.Uint64(b[432:])
	}
	return s, true
}

type kernel struct {
	info   VMCoreInfo
	phys   unwind.Memory
	virt   *segMemory // virtual PT_LOADs (paging / kdump dumps), nil when all are physical
	qemu   []QEMUCPUState
	walker *PageWalker
	cpuMem []unwind.Memory
}

func (d *Dump) initKernel() error {
	// A dump has virtual PT_LOADs when some segment's p_vaddr differs from
	// its p_paddr. QEMU's paging=false dumps set p_vaddr = p_paddr (or 0):
	// those addresses are physical, and reading them as virtual would turn
	// a user address such as 0x47b7a0 into a read of physical RAM.
	var virt *segMemory
	for _, p := range d.elf.progs {
		if p.Type == ptLoad && p.Vaddr != 0 && p.Vaddr != p.Paddr {
			virt = newSegMemory(d.r, d.size, d.elf.progs, false)
			break
		}
	}
	d.initKernelFrom(newSegMemory(d.r, d.size, d.elf.progs, true), virt)
	return nil
}

// initKernelFrom sets a kernel dump up from its physical memory, its
// virtual PT_LOADs (nil if none) and d.notes.
func (d *Dump) initKernelFrom(phys unwind.Memory, virt *segMemory) {
	k := &kernel{info: VMCoreInfo{}, phys: phys, virt: virt}
	d.kern = k
	cpu := 0
	for _, n := range d.notes {
		switch {
		case n.Name == "CORE" && n.Type == ntPrStatus:
			ps, err := ptregs.DecodePrStatus(n.Desc)
			if err != nil {
				d.warnf("NT_PRSTATUS at offset %#x: %v", n.Off, err)
				continue
			}
			d.threads = append(d.threads, Thread{
				TID:      ps.Pid,
				CPU:      cpu,
				Regs:     ps.Regs.PtRegs.Regs(),
				PrStatus: ps,
				Signal:   ps.CurSig,
			})
			cpu++
		case n.Name == "QEMU":
			s, ok := decodeQEMUNote(n.Desc)
			if !ok {
				d.warnf("QEMU note at offset %#x: %d bytes, want at least %d", n.Off, len(n.Desc), qemuNoteMin)
			}
			k.qemu = append(k.qemu, s)
		case n.Name == "VMCOREINFO":
			k.info = parseVMCoreInfo(n.Desc)
		}
	}
	// QEMU numbers vCPUs pr_pid = cpu+1; that is not a task id.
	if len(k.qemu) > 0 {
		for i := range d.threads {
			if d.threads[i].TID == i+1 {
				d.threads[i].TID = 0
			}
		}
	}
	k.walker = d.kernelWalker(-1)
	d.mem = &walkedMemory{virt: k.virt, w: k.walker}
	k.cpuMem = make([]unwind.Memory, len(d.threads))
	for i := range d.threads {
		if i < len(k.qemu) && k.qemu[i].CR3 != 0 {
			k.cpuMem[i] = &walkedMemory{virt: k.virt, w: d.kernelWalker(i)}
		} else {
			k.cpuMem[i] = d.mem
		}
	}
}

// kernelWalker builds the page walker for CPU cpu's CR3, or for the kernel's
// own top-level table (init_top_pgt) when cpu < 0 or the CPU's CR3 is
// unknown.
func (d *Dump) kernelWalker(cpu int) *PageWalker {
	k := d.kern
	w := &PageWalker{Phys: k.phys, Levels: 4}
	if l5, ok := k.info.Number("pgtable_l5_enabled"); ok && l5 != 0 {
		w.Levels = 5
	}
	if m, ok := k.info.Number("sme_mask"); ok {
		w.Mask = uint64(m)
	}
	if cpu >= 0 && cpu < len(k.qemu) && k.qemu[cpu].CR3 != 0 {
		s := k.qemu[cpu]
		w.Root = s.CR3
		if s.CR4&cr4LA57 != 0 {
			w.Levels = 5
		} else {
			w.Levels = 4
		}
		return w
	}
	if pgt, ok := k.info.Symbol("init_top_pgt"); ok {
		pb, _ := k.info.Number("phys_base")
		w.Root = pgt - startKernelMap + uint64(pb)
		return w
	}
	if len(k.qemu) > 0 && k.qemu[0].CR3 != 0 {
		w.Root = k.qemu[0].CR3
		if k.qemu[0].CR4&cr4LA57 != 0 {
			w.Levels = 5
		}
		return w
	}
	return nil
}

// VMCoreInfo returns the kernel dump's VMCOREINFO note (empty when absent or
// for user cores).
func (d *Dump) VMCoreInfo() VMCoreInfo {
	if d.kern == nil {
		return VMCoreInfo{}
	}
	return d.kern.info
}

// QEMUState returns the QEMU per-vCPU note of CPU cpu (CR3, CR4, IDT and
// TSS bases); ok is false when the dump has none.
func (d *Dump) QEMUState(cpu int) (QEMUCPUState, bool) {
	if d.kern == nil || cpu < 0 || cpu >= len(d.kern.qemu) {
		return QEMUCPUState{}, false
	}
	return d.kern.qemu[cpu], true
}

// PhysMemory returns a kernel dump's physical memory (nil for a user core).
func (d *Dump) PhysMemory() unwind.Memory {
	if d.kern == nil {
		return nil
	}
	return d.kern.phys
}

// CPUMemory returns the virtual memory as CPU cpu saw it, translated with
// that CPU's CR3 (so its current process's user addresses read too). Memory
// uses the kernel's own page table and reads only kernel addresses reliably.
func (d *Dump) CPUMemory(cpu int) unwind.Memory {
	if d.kern == nil || cpu < 0 || cpu >= len(d.kern.cpuMem) {
		return d.mem
	}
	return d.kern.cpuMem[cpu]
}

// KernelOffset returns the KASLR offset from VMCOREINFO's KERNELOFFSET,
// the bias to apply to vmlinux and System.map addresses; 0 when the note
// has none (package linux then compares the run-time and link-time _stext).
func (d *Dump) KernelOffset() uint64 {
	if d.kern == nil {
		return 0
	}
	v, _ := d.kern.info.Hex("KERNELOFFSET")
	return v
}

// Release returns the kernel release (OSRELEASE), "" when unknown.
func (d *Dump) Release() string {
	if d.kern == nil {
		return ""
	}
	return d.kern.info["OSRELEASE"]
}
