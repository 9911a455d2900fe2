package ptregs

import (
	"fmt"
	"io"
	"strconv"
)

// SymbolFunc resolves an address to the function containing it, the offset
// in that function and the function's size, the way the kernel's %pS does.
// ok is false when the address is unknown. A nil SymbolFunc resolves nothing.
type SymbolFunc func(addr uint64) (name string, off, size uint64, ok bool)

// CodeFunc reads len(b) bytes of code at addr into b and reports whether all
// of them were readable. The formatters use it for the "Code:" line.
type CodeFunc func(addr uint64, b []byte) bool

// The "Code:" line of Linux's show_opcodes: CodePrologue bytes before RIP,
// the byte at RIP in angle brackets, then the rest of CodeSize.
const (
	CodePrologue = 42
	CodeSize     = 64
)

// FormatRIP returns the selector and instruction pointer as Linux prints them
// after "RIP: " ("%04x:%pS"): "0010:func+0x12/0x40" for an address sym
// resolves, "0033:0x401136" when it does not. sym is not asked about user-mode
// addresses, since the kernel's kallsyms never knows them. The selector is the
// low 16 bits of cs, which is what 6.1 prints on non-FRED hardware (the upper
// bits are zero there) and what FRED-era kernels print.
func FormatRIP(ip, cs uint64, sym SymbolFunc) string {
	return fmt.Sprintf("%04x:%s", selector(cs), formatPS(ip, cs, sym))
}

// formatPS formats ip as the kernel's %pS: "name+0xoff/0xsize" or "0xip".
func formatPS(ip, cs uint64, sym SymbolFunc) string {
	if !UserMode(cs) && sym != nil {
		if name, off, size, ok := sym(ip); ok {
			return name + "+0x" + strconv.FormatUint(off, 16) + "/0x" + strconv.FormatUint(size, 16)
		}
	}
	return "0x" + strconv.FormatUint(ip, 16)
}

// FormatPtRegs writes p exactly as Linux 6.1 prints a full pt_regs found
// inside a call trace (__show_regs with SHOW_REGS_SHORT, called from
// show_regs_if_on_stack): the RIP line, the RSP/EFLAGS line — ending in
// " ORIG_RAX: %016lx" unless orig_ax is -1, as it is for interrupts — and the
// five general-purpose register lines. The kernel's "Code:" line after RIP
// needs memory: use FormatPtRegsCode to get it.
func FormatPtRegs(w io.Writer, p *PtRegs, sym SymbolFunc) error {
	return FormatPtRegsCode(w, p, sym, nil)
}

// FormatPtRegsCode is FormatPtRegs with the "Code:" line Linux prints after the
// RIP line, read through code. A nil code omits the line, as the kernel does
// for another task's user memory.
func FormatPtRegsCode(w io.Writer, p *PtRegs, sym SymbolFunc, code CodeFunc) error {
	b := appendIret(nil, p.IP, p.CS, p.Flags, p.SP, p.SS, sym, code)
	if p.OrigAX != ^uint64(0) {
		b = append(b, " ORIG_RAX: "...)
		b = appendHex16(b, p.OrigAX)
	}
	b = append(b, '\n')
	b = appendRegLine(b, "RAX", p.AX, "RBX", p.BX, "RCX", p.CX)
	b = appendRegLine(b, "RDX", p.DX, "RSI", p.SI, "RDI", p.DI)
	b = appendRegLine(b, "RBP", p.BP, "R08", p.R8, "R09", p.R9)
	b = appendRegLine(b, "R10", p.R10, "R11", p.R11, "R12", p.R12)
	b = appendRegLine(b, "R13", p.R13, "R14", p.R14, "R15", p.R15)
	_, err := w.Write(b)
	return err
}

// FormatIret writes f as Linux 6.1's show_iret_regs prints a partial
// (iret-only) frame: the RIP line and the RSP/EFLAGS line only, each ending
// in a newline.
func FormatIret(w io.Writer, f *IretFrame, sym SymbolFunc) error {
	return FormatIretCode(w, f, sym, nil)
}

// FormatIretCode is FormatIret with the "Code:" line after the RIP line, read
// through code; a nil code omits it.
func FormatIretCode(w io.Writer, f *IretFrame, sym SymbolFunc, code CodeFunc) error {
	b := appendIret(nil, f.IP, f.CS, f.Flags, f.SP, f.SS, sym, code)
	b = append(b, '\n')
	_, err := w.Write(b)
	return err
}

// FormatCode writes Linux's show_opcodes line for ip: "Code: " and the
// CodeSize bytes starting CodePrologue bytes before ip, the byte at ip in
// angle brackets; or, when code is nil or reports failure, "Code: Unable to
// access opcode bytes at 0x….", as the kernel does.
func FormatCode(w io.Writer, ip uint64, code CodeFunc) error {
	if code == nil {
		code = func(uint64, []byte) bool { return false }
	}
	_, err := w.Write(appendCode(nil, ip, code))
	return err
}

// appendIret appends show_ip's lines and show_iret_regs's RSP line without
// its newline (the kernel continues it with pr_cont).
func appendIret(b []byte, ip, cs, flags, sp, ss uint64, sym SymbolFunc, code CodeFunc) []byte {
	b = append(b, "RIP: "...)
	b = append(b, FormatRIP(ip, cs, sym)...)
	b = append(b, '\n')
	if code != nil {
		b = appendCode(b, ip, code)
	}
	b = append(b, "RSP: "...)
	b = appendHexPad(b, selector(ss), 4)
	b = append(b, ':')
	b = appendHex16(b, sp)
	b = append(b, " EFLAGS: "...)
	b = appendHexPad(b, flags, 8)
	return b
}

// appendCode appends the "Code:" line for ip, reading through code.
func appendCode(b []byte, ip uint64, code CodeFunc) []byte {
	start := ip - CodePrologue
	var buf [CodeSize]byte
	if !code(start, buf[:]) {
		b = append(b, "Code: Unable to access opcode bytes at 0x"...)
		b = strconv.AppendUint(b, start, 16)
		return append(b, ".\n"...)
	}
	b = append(b, "Code:"...)
	for i, c := range buf {
		b = append(b, ' ')
		if i == CodePrologue {
			b = append(b, '<')
		}
		b = appendHexPad(b, uint64(c), 2)
		if i == CodePrologue {
			b = append(b, '>')
		}
	}
	return append(b, '\n')
}

// appendRegLine appends one "RAX: %016lx RBX: %016lx RCX: %016lx\n" line.
func appendRegLine(b []byte, n1 string, v1 uint64, n2 string, v2 uint64, n3 string, v3 uint64) []byte {
	b = append(b, n1...)
	b = append(b, ": "...)
	b = appendHex16(b, v1)
	b = append(b, ' ')
	b = append(b, n2...)
	b = append(b, ": "...)
	b = appendHex16(b, v2)
	b = append(b, ' ')
	b = append(b, n3...)
	b = append(b, ": "...)
	b = appendHex16(b, v3)
	return append(b, '\n')
}

func appendHex16(b []byte, v uint64) []byte { return appendHexPad(b, v, 16) }

// appendHexPad appends v in lower-case hex, zero-padded to at least width
// digits (C's "%0*lx").
func appendHexPad(b []byte, v uint64, width int) []byte {
	var d [16]byte
	s := strconv.AppendUint(d[:0], v, 16)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// ControlRegs are the registers besides pt_regs that Linux's show_regs
// prints for a kernel-mode oops: the FS and GS bases and selectors (GS is
// the kernel's per-CPU base in kernel mode, knlGS the user's, swapped in
// by swapgs), the data segment selectors and the control registers. A
// dump holds them in QEMU's per-CPU notes.
type ControlRegs struct {
	FSBase, GSBase, KernelGSBase uint64
	FS, GS, DS, ES               uint16
	CR0, CR2, CR3, CR4           uint64
}

// FormatControlRegs writes c as Linux 6.1's __show_regs(regs, SHOW_REGS_ALL)
// prints it after the general registers, cs taken from the pt_regs:
//
//	FS:  0000000010b813c0(0000) GS:ffff888007a00000(0000) knlGS:0000000000000000
//	CS:  0010 DS: 0000 ES: 0000 CR0: 0000000080050033
//	CR2: ffffffffffffffd6 CR3: 0000000000966000 CR4: 00000000000006f0
func FormatControlRegs(w io.Writer, c *ControlRegs, cs uint64) error {
	_, err := fmt.Fprintf(w, "FS:  %016x(%04x) GS:%016x(%04x) knlGS:%016x\nCS:  %04x DS: %04x ES: %04x CR0: %016x\nCR2: %016x CR3: %016x CR4: %016x\n",
		c.FSBase, c.FS, c.GSBase, c.GS, c.KernelGSBase, cs&0xffff, c.DS, c.ES, c.CR0, c.CR2, c.CR3, c.CR4)
	return err
}
