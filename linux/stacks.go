package linux

import (
	"encoding/binary"
	"fmt"

	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// Sizes of the x86-64 kernel stacks (without KASAN).
const (
	threadSize    = 16 << 10 // THREAD_SIZE
	irqStackSize  = 16 << 10 // IRQ_STACK_SIZE
	exceptStkSize = 4 << 10  // EXCEPTION_STKSZ
	tssSize       = 104      // struct x86_hw_tss
	tssSP0        = 4
	tssIST        = 36
	numIST        = 7
)

// Default IST slot of each exception (Linux ≥ 5.x: IST_INDEX_DF 0, NMI 1,
// DB 2, MCE 3, VC 4), used when the IDT cannot be read.
var defaultIST = [numIST]unwind.StackKind{unwind.StackDF, unwind.StackNMI, unwind.StackDB, unwind.StackMC, unwind.StackVC}

// cpuData is what the dump knows about one CPU's kernel state.
type cpuData struct {
	perCPU  uint64 // __per_cpu_offset[cpu]
	current uint64 // current task_struct
	top     uint64 // top of the current task's stack
	irq     uint64 // hardirq_stack_ptr
	tss     [tssSize]byte
	haveTSS bool
	ist     [numIST]unwind.StackKind
}

func (k *Kernel) readU64(a uint64) (uint64, bool) {
	v, err := unwind.ReadU64(k.mem, a)
	return v, err == nil
}

// cpuInfo gathers CPU cpu's per-CPU data from the symbols loaded by Symbols
// (or VMCOREINFO) and from QEMU's note.
func (k *Kernel) cpuInfo(cpu int) cpuData {
	var c cpuData
	if pco, ok := k.kernelSym("__per_cpu_offset"); ok {
		c.perCPU, _ = k.readU64(pco + 8*uint64(cpu))
	} else if cpu < len(k.qemu) && k.qemu[cpu].GSBase >= 1<<63 {
		c.perCPU = k.qemu[cpu].GSBase // in kernel mode GS points at the per-CPU area
	}
	o := k.offsets
	if hot, ok := k.kernelSym("pcpu_hot"); ok && c.perCPU != 0 { // Linux ≥ 6.2
		base := hot + c.perCPU
		cur, top, irq := int64(0), int64(16), int64(24)
		if o.hotCurrent >= 0 {
			cur = o.hotCurrent
		}
		if o.hotTop >= 0 {
			top = o.hotTop
		}
		if o.hotIRQ >= 0 {
			irq = o.hotIRQ
		}
		c.current, _ = k.readU64(base + uint64(cur))
		c.top, _ = k.readU64(base + uint64(top))
		c.irq, _ = k.readU64(base + uint64(irq))
	} else if c.perCPU != 0 { // Linux 4.x–6.1 per-CPU variables
		if a, ok := k.kernelSym("current_task"); ok {
			c.current, _ = k.readU64(a + c.perCPU)
		}
		if a, ok := k.kernelSym("cpu_current_top_of_stack"); ok {
			c.top, _ = k.readU64(a + c.perCPU)
		}
		if a, ok := k.kernelSym("hardirq_stack_ptr"); ok {
			c.irq, _ = k.readU64(a + c.perCPU)
		}
	}
	if c.top == 0 && c.current != 0 && o.taskStack >= 0 {
		if s, ok := k.readU64(c.current + uint64(o.taskStack)); ok && s != 0 {
			c.top = s + threadSize
		}
	}
	// The TSS: QEMU's TR base is this CPU's TSS in the cpu_entry_area.
	tss := uint64(0)
	if cpu < len(k.qemu) && k.qemu[cpu].TRBase != 0 {
		tss = k.qemu[cpu].TRBase
	} else if a, ok := k.kernelSym("cpu_tss_rw"); ok && c.perCPU != 0 {
		tss = a + c.perCPU
	}
	if tss != 0 {
		if n, _ := k.mem.ReadAt(c.tss[:], tss); n == tssSize {
			c.haveTSS = true
		}
	}
	c.ist = defaultIST
	k.istFromIDT(cpu, &c)
	return c
}

// istFromIDT reads the IDT gates of NMI, #DB, #DF, #MC and #VC to learn
// which IST slot each exception uses.
func (k *Kernel) istFromIDT(cpu int, c *cpuData) {
	idt := uint64(0)
	if cpu < len(k.qemu) && k.qemu[cpu].IDTBase != 0 {
		idt = k.qemu[cpu].IDTBase
	} else if a, ok := k.kernelSym("idt_table"); ok {
		idt = a
	}
	if idt == 0 {
		return
	}
	vectors := []struct {
		vec  uint64
		kind unwind.StackKind
	}{{2, unwind.StackNMI}, {1, unwind.StackDB}, {8, unwind.StackDF}, {18, unwind.StackMC}, {29, unwind.StackVC}}
	var ist [numIST]unwind.StackKind
	found := false
	for _, v := range vectors {
		var g [16]byte
		if n, _ := k.mem.ReadAt(g[:], idt+16*v.vec); n != 16 || g[5]&0x80 == 0 {
			continue
		}
		if i := g[4] & 7; i != 0 && ist[i-1] == unwind.StackUnknown {
			ist[i-1] = v.kind
			found = true
		}
	}
	if found {
		c.ist = ist
	}
}

func (k *Kernel) kernelStacks(cpu int) unwind.Stacks {
	c := k.cpuInfo(cpu)
	var ss unwind.Stacks
	le := binary.LittleEndian
	if c.haveTSS {
		for i := 0; i < numIST; i++ {
			top := le.Uint64(c.tss[tssIST+8*i:])
			if top == 0 || c.ist[i] == unwind.StackUnknown || top < exceptStkSize {
				continue
			}
			ss = append(ss, unwind.Stack{Kind: c.ist[i], Lo: top - exceptStkSize, Hi: top, CPU: cpu, Name: fmt.Sprintf("IST%d", i+1)})
		}
		if sp0 := le.Uint64(c.tss[tssSP0:]); sp0 > pageSize {
			ss = append(ss, unwind.Stack{Kind: unwind.StackEntry, Lo: (sp0 - 1) &^ (pageSize - 1), Hi: sp0, CPU: cpu, Name: "entry trampoline"})
		}
	}
	if c.irq > irqStackSize {
		hi := c.irq + 8
		ss = append(ss, unwind.Stack{Kind: unwind.StackIRQ, Lo: hi - irqStackSize, Hi: hi, CPU: cpu, Name: "hardirq"})
	}
	if c.top > threadSize {
		name := "task"
		if c.current != 0 {
			name = fmt.Sprintf("task %#x", c.current)
		}
		ss = append(ss, unwind.Stack{Kind: unwind.StackTask, Lo: c.top - threadSize, Hi: c.top, CPU: cpu, Name: name})
	}
	return ss
}

// fillCurrentTasks sets each CPU thread's TID and Comm from its current
// task, when vmlinux's DWARF gave the task_struct offsets.
func (k *Kernel) fillCurrentTasks() {
	o := k.offsets
	for i := range k.threads {
		c := k.cpuInfo(i)
		if c.current == 0 {
			continue
		}
		if o.taskPid >= 0 {
			var b [4]byte
			if n, _ := k.mem.ReadAt(b[:], c.current+uint64(o.taskPid)); n == 4 {
				k.threads[i].TID = int(int32(le32(b[:])))
			}
		}
		if o.taskComm >= 0 {
			var b [16]byte
			if n, _ := k.mem.ReadAt(b[:], c.current+uint64(o.taskComm)); n == 16 {
				k.threads[i].Comm = trimNUL(b[:])
			}
		}
	}
}

// crashSources are the kernel variables that name the crashing CPU, in
// the order they are trusted: panic() sets panic_cpu, the kdump path
// (native_machine_crash_shutdown) crashing_cpu, oops_begin() die_owner.
// Each holds -1 while unset.
var crashSources = []struct{ sym, why string }{
	{"panic_cpu", "panic_cpu names it: it called panic()"},
	{"crashing_cpu", "crashing_cpu names it: it started the crash dump"},
	{"die_owner", "die_owner names it: it is printing an oops (oops_begin)"},
}

// crashFuncs are the kernel's crash-path functions: a CPU stopped in one
// of them (a debugger's stop, a dump taken at panic entry) is crashing.
var crashFuncs = map[string]bool{
	"panic": true, "nmi_panic": true, "vpanic": true, "__die": true, "die": true, "die_addr": true,
	"oops_begin": true, "oops_end": true, "__crash_kexec": true, "crash_kexec": true,
	"machine_crash_shutdown": true, "native_machine_crash_shutdown": true,
}

// detectCrash marks the CPU that crashed and records why: a kernel
// variable that names it (crashSources), else the CPU that printed the
// newest crash message in the kernel log (printk's caller id: a CPU, or a
// pid that is current on exactly one CPU), else the only CPU whose
// registers stop in a crash-path function (needs code, may be nil).
func (k *Kernel) detectCrash(code interface {
	Symbol(uint64) (symbols.Sym, bool)
}) {
	mark := func(cpu int, why string) {
		for i := range k.threads {
			k.threads[i].Crashed = i == cpu
		}
		k.crashWhy = why
	}
	for _, src := range crashSources {
		if pc, ok := k.readKernelInt32(src.sym); ok && pc >= 0 && int(pc) < len(k.threads) {
			mark(int(pc), src.why)
			return
		}
	}
	if rec, ok := k.crashRecord(); ok && rec.Caller != 0 {
		msg := rec.Text
		if len(msg) > 60 {
			msg = msg[:57] + "..."
		}
		if rec.Caller&CallerCPU != 0 {
			if cpu := int(rec.Caller &^ CallerCPU); cpu < len(k.threads) {
				mark(cpu, fmt.Sprintf("it printed %q (printk caller CPU%d)", msg, cpu))
				return
			}
		} else {
			found := -1
			for i, t := range k.threads {
				if t.TID == int(rec.Caller) {
					if found >= 0 {
						found = -2
						break
					}
					found = i
				}
			}
			if found >= 0 {
				mark(found, fmt.Sprintf("its current task (pid %d) printed %q", rec.Caller, msg))
				return
			}
		}
	}
	if code == nil {
		return
	}
	found, fn := -1, ""
	for i, t := range k.threads {
		pc, ok := t.Regs.PC()
		if !ok {
			continue
		}
		if s, ok := code.Symbol(pc); ok && crashFuncs[s.Name] {
			if found >= 0 {
				return
			}
			found, fn = i, s.Name
		}
	}
	if found >= 0 {
		mark(found, "it is stopped in "+fn+"()")
	}
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
