package verify

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/unwind"
)

// Disasm returns up to before instructions before rip, the one at rip
// (marked "=>") and up to after instructions after it, in AT&T syntax with
// symbolic addresses. The instructions before rip are found by decoding
// forward from the start of rip's function (or from a few bytes before rip
// when no symbol is known, which may resynchronise late).
func Disasm(mem unwind.Memory, m *emu.Machine, rip uint64, before, after int) []string {
	start := rip
	if s, ok := m.Symbol(rip); ok && rip-s.Addr < 1<<16 {
		start = s.Addr
	} else if rip > 32 {
		start = rip - 32
	}
	symname := func(addr uint64) (string, uint64) {
		if s, ok := m.Symbol(addr); ok {
			return s.Name, s.Addr
		}
		return "", 0
	}
	var lines []string
	at := -1
	var buf [15]byte
	for pc := start; ; {
		if at >= 0 && len(lines)-at > after {
			break
		}
		if pc > rip && at < 0 {
			// rip is not on an instruction boundary of the forward decode
			lines = nil
			pc = rip
			continue
		}
		n, _ := mem.ReadAt(buf[:], pc)
		if n == 0 {
			break
		}
		inst, err := x86asm.Decode(buf[:n], 64)
		text := ""
		size := 1
		if err != nil {
			text = fmt.Sprintf(".byte %#02x", buf[0])
		} else {
			text = x86asm.GNUSyntax(inst, pc, symname)
			size = inst.Len
		}
		mark := "  "
		if pc == rip {
			mark = "=>"
			at = len(lines)
		}
		lines = append(lines, fmt.Sprintf("%s %s: %-24s %s", mark, m.Where(pc), hexBytes(buf[:size]), text))
		pc += uint64(size)
	}
	if at > before {
		lines = lines[at-before:]
	}
	return lines
}

func hexBytes(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
