package linux

import (
	"fmt"
	"strings"
)

// UTSName is the dumped kernel's struct new_utsname (init_uts_ns.name):
// what uname(2) returned on it.
type UTSName struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

const utsLen = 65 // __NEW_UTS_LEN + 1

// UTSName reads init_uts_ns.name from a kernel dump (the address from
// VMCOREINFO or the kernel symbols, the member offset from VMCOREINFO's
// OFFSET(uts_namespace.name), else 0 or 4, whichever holds "Linux": before
// 5.11 a 4-byte kref came first). ok is false when it cannot be read.
func (k *Kernel) UTSName() (UTSName, bool) {
	base, ok := k.kernelSym("init_uts_ns")
	if !ok {
		return UTSName{}, false
	}
	var b [6 * utsLen]byte
	offs := []uint64{0, 4}
	if v, ok := k.info.Offset("uts_namespace.name"); ok {
		offs = []uint64{v}
	}
	for _, off := range offs {
		if n, _ := k.mem.ReadAt(b[:], base+off); n != len(b) {
			continue
		}
		if string(b[:6]) != "Linux\x00" {
			continue
		}
		f := func(i int) string { return trimNUL(b[i*utsLen : (i+1)*utsLen]) }
		return UTSName{f(0), f(1), f(2), f(3), f(4), f(5)}, true
	}
	return UTSName{}, false
}

// Taint returns the kernel's taint state as its print_tainted() prints it:
// "Not tainted", or "Tainted: " and one letter (or space) per taint flag,
// read from tainted_mask and the kernel's own taint_flags table. It needs
// the kernel symbols (call Symbols first); ok is false without them.
func (k *Kernel) Taint() (string, bool) {
	a, ok := k.kernelSym("tainted_mask")
	if !ok {
		return "", false
	}
	mask, ok := k.readU64(a)
	if !ok {
		return "", false
	}
	if mask == 0 {
		return "Not tainted", true
	}
	if s := k.taintLetters(mask); s != "" {
		return "Tainted: " + s, true
	}
	return fmt.Sprintf("Tainted: %#x", mask), true
}

// maxTaintFlags bounds the taint_flags entries read (Linux 6.1 has 19).
const maxTaintFlags = 64

// taintLetters formats mask with the taint_flags table: struct taint_flag
// is { char c_true, c_false; bool module; } (3 bytes) up to Linux 6.9 and
// gained a const char *desc (16 bytes) later. The layout is recognised by
// its first entry, 'P'/'G' (proprietary module) in every release; the
// table ends at its ELF symbol size when known, else at the first entry
// that is not a letter/space pair.
func (k *Kernel) taintLetters(mask uint64) string {
	a, ok := k.kernelSym("taint_flags")
	if !ok {
		return ""
	}
	size := k.symSize["taint_flags"]
	var buf [maxTaintFlags * 16]byte
	n, _ := k.mem.ReadAt(buf[:], a)
	for _, es := range []int{3, 16} {
		if n < 2*es || buf[0] != 'P' || buf[1] != 'G' {
			continue
		}
		if es == 3 && buf[3] != 'F' || es == 16 && buf[16] != 'F' {
			continue
		}
		count := n / es
		if size > 0 && size%uint64(es) == 0 {
			count = min(count, int(size/uint64(es)))
		}
		var s strings.Builder
		for i := 0; i < count && i < maxTaintFlags; i++ {
			e := buf[i*es:]
			if e[0] < 'A' || e[0] > 'Z' || (e[1] != ' ' && (e[1] < 'A' || e[1] > 'Z')) {
				if size == 0 {
					break
				}
				return ""
			}
			if mask&(1<<i) != 0 {
				s.WriteByte(e[0])
			} else {
				s.WriteByte(e[1])
			}
		}
		return s.String()
	}
	return ""
}

// StackHeader returns the rest of the first line the kernel prints for a
// stack dump after "CPU: N PID: P Comm: COMM " (lib/dump_stack.c,
// dump_stack_print_info): "Kdump: loaded " when a crash kernel is
// loaded, the taint state, the release and the first word of the version,
// as in "Not tainted 6.1.192 #3". It is "" when the kernel symbols or
// init_uts_ns cannot be read.
func (k *Kernel) StackHeader() string {
	taint, ok := k.Taint()
	if !ok {
		return ""
	}
	uts, ok := k.UTSName()
	if !ok {
		return ""
	}
	s := ""
	if a, ok := k.kernelSym("kexec_crash_image"); ok {
		if p, ok := k.readU64(a); ok && p != 0 {
			s = "Kdump: loaded "
		}
	}
	ver, _, _ := strings.Cut(uts.Version, " ")
	return s + taint + " " + uts.Release + " " + ver
}

// HardwareName returns the kernel's "Hardware name:" string
// (dump_stack_arch_desc_str, the DMI description), "" when it is empty or
// unknown.
func (k *Kernel) HardwareName() string {
	a, ok := k.kernelSym("dump_stack_arch_desc_str")
	if !ok {
		return ""
	}
	var b [128]byte
	if n, _ := k.mem.ReadAt(b[:], a); n != len(b) {
		return ""
	}
	return trimNUL(b[:])
}
