package linux_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/linux"
	"github.com/unwind-dev/unwind/unwind"
)

func readZstd(path string) ([]byte, error) {
	z, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(z, nil)
}

// Unwind every CPU of a kernel dump the way `unwind bt` does, with only
// the kernel's System.map (the machine code is read from the dump). The
// dump is the lab kernel's nmibt capture as makedumpfile -l -d 31 wrote
// it, cut to the pages unwind reads.
func ExampleKernel_UnwindCPU() {
	raw, err := readZstd("../fixtures/makedumpfile/nmibt-d31.kdump-lzo.zst")
	if err != nil {
		fmt.Println(err)
		return
	}
	smap, err := readZstd("../fixtures/makedumpfile/System.map-6.1.192.zst")
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "System.map"), smap, 0o644); err != nil {
		fmt.Println(err)
		return
	}

	d, err := dump.NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	k, err := linux.Open(d, dump.SymbolOptions{SystemMap: filepath.Join(dir, "System.map")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Close()
	for i, cpu := range k.CPUs() {
		tr, err := k.UnwindCPU(i, unwind.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("CPU %d: %d frames, reliable %v, stopped: %s\n", cpu.CPU, len(tr.Frames), tr.Reliable, tr.StopReason)
		for _, f := range tr.Frames {
			name := fmt.Sprintf("%#x", f.PC) // a user-mode RIP: System.map has no symbol
			if f.SymOK {
				name = fmt.Sprintf("%s+%#x", f.Sym.Name, f.PC-f.Sym.Addr)
			}
			entry := ""
			if f.Interrupted() {
				entry = fmt.Sprintf(" ← %s, pt_regs at %#x", f.Entry, f.RegsAddr)
			}
			fmt.Printf("  %s [%s]%s\n", name, f.Stack.Kind, entry)
		}
	}
	// Output:
	// CPU 0: 15 frames, reliable true, stopped: user mode
	//   delay_tsc+0x1e [task]
	//   __const_udelay+0x38 [task]
	//   nmi_trigger_cpumask_backtrace+0x97 [task]
	//   arch_trigger_cpumask_backtrace+0x14 [task]
	//   sysrq_handle_showallcpus+0x12 [task]
	//   __handle_sysrq.cold+0x3f [task]
	//   write_sysrq_trigger+0x23 [task]
	//   proc_reg_write+0x4f [task]
	//   vfs_write+0xa2 [task]
	//   ksys_write+0x5f [task]
	//   __x64_sys_write+0x14 [task]
	//   x64_sys_call+0x989 [task]
	//   do_syscall_64+0x2f [task]
	//   entry_SYSCALL_64_after_hwframe+0x4b [task]
	//   0x47b7a0 [user] ← syscall, pt_regs at 0xffffc90000113f58
	// CPU 1: 22 frames, reliable true, stopped: user mode
	//   nmi_cpu_backtrace+0x0 [nmi]
	//   nmi_cpu_backtrace_handler+0xc [nmi]
	//   nmi_handle+0x70 [nmi]
	//   default_do_nmi+0x49 [nmi]
	//   exc_nmi+0x108 [nmi]
	//   end_repeat_nmi+0x16 [nmi]
	//   lapic_next_event+0x15 [irq] ← nmi, pt_regs at 0xfffffe0000048ef8
	//   clockevents_program_event+0x86 [irq]
	//   tick_program_event+0x3e [irq]
	//   hrtimer_interrupt+0x11a [irq]
	//   __sysvec_apic_timer_interrupt+0x4c [irq]
	//   sysvec_apic_timer_interrupt+0x6b [irq]
	//   asm_sysvec_apic_timer_interrupt+0x1b [task]
	//   clear_user_rep_good+0xe [task] ← irq:236, pt_regs at 0xffffc90000123d88
	//   read_zero+0x59 [task]
	//   vfs_read+0x75 [task]
	//   ksys_read+0x5f [task]
	//   __x64_sys_read+0x14 [task]
	//   x64_sys_call+0x990 [task]
	//   do_syscall_64+0x2f [task]
	//   entry_SYSCALL_64_after_hwframe+0x4b [task]
	//   0x47b6fd [user] ← syscall, pt_regs at 0xffffc90000123f58
}
