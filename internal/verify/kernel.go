package verify

import (
	"encoding/binary"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// topInclusive is a stack-bounds oracle that also places an address equal
// to a stack's top on that stack when no stack contains it: the outermost
// frame of a stack entered with RSP at its top (iretq to user_main with an
// empty user stack) has SP == Hi. The emulator's own stack naming counts the
// top the same way; unwind.Stacks (half-open) does not.
type topInclusive unwind.Stacks

// StackOf implements unwind.StackBounds.
func (ss topInclusive) StackOf(addr uint64) (unwind.Stack, bool) {
	if s, ok := unwind.Stacks(ss).StackOf(addr); ok {
		return s, true
	}
	for _, s := range ss {
		if addr == s.Hi {
			return s, true
		}
	}
	return unwind.Stack{}, false
}

// exTable reads the kernel's exception table (Linux's relative
// {insn - ., fixup - .} int32 pairs between __start___ex_table and
// __stop___ex_table): faulting instruction → fixup address.
func exTable(m *emu.Machine) map[uint64]uint64 {
	out := map[uint64]uint64{}
	lo, ok1 := m.SymbolByName("__start___ex_table")
	hi, ok2 := m.SymbolByName("__stop___ex_table")
	if !ok1 || !ok2 || hi.Addr <= lo.Addr || hi.Addr-lo.Addr > 1<<20 {
		return out
	}
	buf := make([]byte, hi.Addr-lo.Addr)
	if n, _ := m.Memory().ReadAt(buf, lo.Addr); n != len(buf) {
		return out
	}
	for off := 0; off+8 <= len(buf); off += 8 {
		at := lo.Addr + uint64(off)
		insn := at + uint64(int64(int32(binary.LittleEndian.Uint32(buf[off:]))))
		fix := at + 4 + uint64(int64(int32(binary.LittleEndian.Uint32(buf[off+4:]))))
		out[insn] = fix
	}
	return out
}

// cfiUndefinedAt reports whether the CFI at pc leaves the caller's RSP or
// return address undefined: the fixture kernel does so on purpose where
// the state is not recoverable (entry_SYSCALL_64 while the user RSP is only
// in a per-CPU slot, int3_tramp_*+0 whose return address is only in the
// per-CPU slot). An unwinder must stop there, flagged; no strategy can be
// exact.
func cfiUndefinedAt(code unwind.Code, pc uint64) bool {
	var row symbols.CFIRow
	if err := code.FindCFI(pc, &row); err != nil {
		return false
	}
	ra := int(row.RetAddrReg)
	if ra >= len(row.Regs) {
		ra = int(ptregs.RIP)
	}
	if row.Regs[ptregs.RSP].Kind == cfi.RuleUndefined && row.SignalFrame {
		return true
	}
	return row.Regs[ra].Kind == cfi.RuleUndefined
}
