package symbols

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ORC is the Linux kernel's own unwind format on x86-64
// (CONFIG_UNWINDER_ORC): objtool writes, for every instruction address
// where the stack layout changes, how to find the caller's stack pointer
// (the CFA), its rbp, and whether the frame is an entry frame (a pt_regs
// or a hardware iret frame). Two parallel arrays hold it: .orc_unwind_ip,
// one s32 per entry, the entry's address relative to that s32's own
// address, and .orc_unwind, one 6-byte struct orc_entry per entry. Both
// are in vmlinux, in every kernel module, and in the running kernel's
// memory (__start_orc_unwind_ip … __stop_orc_unwind for vmlinux; struct
// module's arch.orc_unwind_ip, arch.orc_unwind and arch.num_orcs for a
// module), so in every crash dump.

// ORCLayout is a version of the kernel's struct orc_entry bit fields.
type ORCLayout uint8

// The layouts that shipped. The first two bytes of an entry are sp_offset,
// the next two bp_offset (both s16); the layouts differ in the last 16 bits.
const (
	// ORCLayoutUnknown is no layout: NewORCTable refuses it.
	ORCLayoutUnknown ORCLayout = iota
	// ORCLayoutV1 is Linux 4.19 to 6.2's (and so Debian 12's 6.1):
	// sp_reg:4, bp_reg:4, type:2 (CALL, REGS, REGS_PARTIAL), end:1. An
	// entry whose sp_reg is UNDEFINED ends the stack when end is set and
	// is a section terminator (no information) when it is not.
	ORCLayoutV1
	// ORCLayoutV2 is Linux 6.3's: sp_reg:4, bp_reg:4, type:2, signal:1,
	// end:1.
	ORCLayoutV2
	// ORCLayoutV3 is Linux 6.4's and later: sp_reg:4, bp_reg:4, type:3
	// (UNDEFINED, END_OF_STACK, CALL, REGS, REGS_PARTIAL), signal:1,
	// identified by the .orc_header section's hash.
	ORCLayoutV3
)

// String names the layout after the first release that used it.
func (l ORCLayout) String() string {
	switch l {
	case ORCLayoutV1:
		return "orc v1 (Linux 4.19-6.2)"
	case ORCLayoutV2:
		return "orc v2 (Linux 6.3)"
	case ORCLayoutV3:
		return "orc v3 (Linux 6.4+)"
	}
	return "orc layout unknown"
}

// The .orc_header hashes (ORC_HASH: SHA-1 of the ORC_REG_/ORC_TYPE_
// defines and struct orc_entry in arch/x86/include/asm/orc_types.h) of the
// layouts that carry one: 6.4's, and 6.3.10's backport of the header.
var (
	orcHashV3 = [20]byte{0xfe, 0x5d, 0x32, 0xbf, 0x58, 0x1b, 0xd6, 0x3b, 0x2c, 0xa9,
		0xa5, 0xc6, 0x5b, 0xa5, 0xa6, 0x25, 0xea, 0xb3, 0xfe, 0x24}
	orcHashV2 = [20]byte{0xdb, 0x84, 0xae, 0xd4, 0x10, 0x3b, 0x31, 0xdd, 0x51, 0xe0,
		0x17, 0xf8, 0xf7, 0x97, 0x83, 0xca, 0x98, 0x5c, 0x2c, 0x51}
)

// ErrORCLayout is returned (wrapped) when the layout of a table cannot be
// told or is one this package does not know; test with errors.Is.
var ErrORCLayout = errors.New("unknown ORC entry layout")

// ORCLayoutOf picks the layout of a kernel's (or module's) ORC entries:
// from the 20 bytes of its .orc_header section (__start_orc_header in
// memory) when there is one, otherwise from the kernel release
// ("6.1.0-47-cloud-amd64", the vmcoreinfo OSRELEASE or linux_banner's
// version): before 6.3 V1, 6.3 V2, 6.4 and later V3 (some 6.3 and 6.4
// builds have no header). An unknown header, or neither a header nor a
// release, is an error wrapping ErrORCLayout.
func ORCLayoutOf(header []byte, release string) (ORCLayout, error) {
	if header != nil {
		switch {
		case len(header) == 20 && [20]byte(header) == orcHashV3:
			return ORCLayoutV3, nil
		case len(header) == 20 && [20]byte(header) == orcHashV2:
			return ORCLayoutV2, nil
		}
		return ORCLayoutUnknown, fmt.Errorf("%w: .orc_header % x is no known ORC_HASH", ErrORCLayout, header[:min(len(header), 20)])
	}
	major, minor, ok := parseRelease(release)
	if !ok {
		return ORCLayoutUnknown, fmt.Errorf("%w: no .orc_header and no kernel release (%q) to tell it by", ErrORCLayout, release)
	}
	switch {
	case major > 6 || major == 6 && minor >= 4:
		return ORCLayoutV3, nil
	case major == 6 && minor == 3:
		return ORCLayoutV2, nil
	case major < 4 || major == 4 && minor < 14:
		return ORCLayoutUnknown, fmt.Errorf("%w: Linux %d.%d predates ORC", ErrORCLayout, major, minor)
	}
	return ORCLayoutV1, nil
}

// parseRelease reads "major.minor" from the start of a kernel release.
func parseRelease(r string) (major, minor int, ok bool) {
	a, rest, ok1 := strings.Cut(r, ".")
	if !ok1 {
		return 0, 0, false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(a)
	minor, err2 = strconv.Atoi(rest[:end])
	return major, minor, err1 == nil && err2 == nil && major > 0
}

// ORCReg is an ORC base register (ORC_REG_*): what sp_reg and bp_reg name.
type ORCReg uint8

// ORC base registers, as the kernel numbers them.
const (
	ORCRegUndefined  ORCReg = 0 // bp: unchanged; sp: no frame (see ORCType)
	ORCRegPrevSP     ORCReg = 1 // the caller's SP (the CFA): bp is saved at CFA+bp_offset
	ORCRegDX         ORCReg = 2
	ORCRegDI         ORCReg = 3
	ORCRegBP         ORCReg = 4
	ORCRegSP         ORCReg = 5
	ORCRegR10        ORCReg = 6
	ORCRegR13        ORCReg = 7
	ORCRegBPIndirect ORCReg = 8 // CFA = [bp+sp_offset]
	ORCRegSPIndirect ORCReg = 9 // CFA = [sp]+sp_offset (the call_on_stack pattern)
)

// ORCType says what an entry describes, normalised across layouts.
type ORCType uint8

// ORC entry types. V1 and V2 have no UNDEFINED and END_OF_STACK types: an
// entry whose sp_reg is UNDEFINED is END_OF_STACK with the end bit set,
// UNDEFINED without it, as drgn normalises them.
const (
	// ORCUndefined: no information (a section terminator, or code objtool
	// marked as unwindable by no rule); the kernel's unwinder stops with
	// an error there.
	ORCUndefined ORCType = iota
	// ORCEndOfStack: the outermost frame; a proper end of the stack.
	ORCEndOfStack
	// ORCCall: a call frame; the return address is at CFA-8.
	ORCCall
	// ORCRegs: a whole struct pt_regs lies at the CFA.
	ORCRegs
	// ORCRegsPartial: a hardware iret frame (ip, cs, flags, sp, ss) lies
	// at the CFA; the rest of pt_regs is not (yet, or any more) valid.
	ORCRegsPartial
)

var orcTypeNames = [...]string{"undefined", "end_of_stack", "call", "regs", "regs_partial"}

// String returns the kernel's name of the type in lower case.
func (t ORCType) String() string {
	if int(t) < len(orcTypeNames) {
		return orcTypeNames[t]
	}
	return "type" + strconv.Itoa(int(t))
}

// ORCEntry is one decoded struct orc_entry. With CFA the caller's stack
// pointer: CFA = SPReg+SPOffset (or the indirect forms); for a Call the
// return address is at CFA-8; the caller's rbp is at CFA+BPOffset
// (BPReg PrevSP), at rbp+BPOffset (BPReg BP), or unchanged (Undefined).
// Signal says the next lookup uses the caller's pc itself, not pc-1 (it
// was interrupted, not called): always for Regs and RegsPartial.
type ORCEntry struct {
	SPOffset, BPOffset int16
	SPReg, BPReg       ORCReg
	Type               ORCType
	Signal             bool
}

// orcEntrySize is sizeof(struct orc_entry) in every layout.
const orcEntrySize = 6

// decodeORC decodes the entry at b in layout l.
func decodeORC(b []byte, l ORCLayout) ORCEntry {
	e := ORCEntry{SPOffset: int16(binary.LittleEndian.Uint16(b)), BPOffset: int16(binary.LittleEndian.Uint16(b[2:]))}
	fl := binary.LittleEndian.Uint16(b[4:])
	e.SPReg, e.BPReg = ORCReg(fl&0xf), ORCReg(fl>>4&0xf)
	var end bool
	switch l {
	case ORCLayoutV3:
		if t := fl >> 8 & 7; t <= uint16(ORCRegsPartial) {
			e.Type = ORCType(t)
		}
		e.Signal = fl&0x800 != 0
		return e
	case ORCLayoutV2:
		e.Signal = fl&0x400 != 0
		end = fl&0x800 != 0
	default:
		end = fl&0x400 != 0
	}
	switch t := fl >> 8 & 3; {
	case e.SPReg == ORCRegUndefined && end:
		e.Type = ORCEndOfStack
	case e.SPReg == ORCRegUndefined || t == 3:
		e.Type = ORCUndefined
	default:
		e.Type = ORCCall + ORCType(t)
	}
	if l == ORCLayoutV1 && (e.Type == ORCRegs || e.Type == ORCRegsPartial) {
		e.Signal = true
	}
	return e
}

// ORCTable is one ORC table (vmlinux's or a module's) at run-time
// addresses, sorted as the kernel sorts it. Lookup is a binary search
// over the raw arrays that does not allocate. A table is immutable and
// safe for concurrent use.
type ORCTable struct {
	ip     []byte // s32 self-relative addresses
	orc    []byte // 6-byte entries
	ipAddr uint64 // run-time address of ip[0]
	n      int
	layout ORCLayout
	copied bool // NewORCTable sorted the entries into a copy
}

// NewORCTable makes a table from the raw bytes of an .orc_unwind_ip array
// and its .orc_unwind array, in layout (ORCLayoutOf), where ipAddr is the
// run-time address the .orc_unwind_ip bytes were read from (each s32 is
// relative to its own address). A kernel-model reading a dump passes the
// bytes at __start_orc_unwind_ip … __stop_orc_unwind_ip and
// __start_orc_unwind … __stop_orc_unwind with KASLR applied, or a module's
// arch.orc_unwind_ip / arch.orc_unwind with arch.num_orcs entries; the
// table keeps the slices (do not modify them). Tables in a kernel's memory
// are sorted (vmlinux's at build time by sorttable, a module's by the
// module loader); an unsorted one is sorted into a copy as the kernel
// would (by address, a section terminator before a real entry at the same
// address). Sizes that disagree, an empty table or an unknown layout are
// errors.
func NewORCTable(ip []byte, ipAddr uint64, orc []byte, layout ORCLayout) (*ORCTable, error) {
	if layout == ORCLayoutUnknown || layout > ORCLayoutV3 {
		return nil, fmt.Errorf("symbols: orc: %w", ErrORCLayout)
	}
	if len(ip)%4 != 0 || len(orc)%orcEntrySize != 0 || len(ip)/4 != len(orc)/orcEntrySize {
		return nil, fmt.Errorf("symbols: orc: .orc_unwind_ip (%d bytes) and .orc_unwind (%d bytes) do not hold the same number of entries", len(ip), len(orc))
	}
	n := len(ip) / 4
	if n == 0 {
		return nil, errors.New("symbols: orc: empty table")
	}
	t := &ORCTable{ip: ip, orc: orc, ipAddr: ipAddr, n: n, layout: layout}
	// Sorted as the kernel's orc_sort_cmp sorts (by address, a section
	// terminator first where addresses tie; the kernel's tables are) is
	// checked in one pass: each address once, the entries' types only
	// where two addresses tie.
	prev := t.pc(0)
	for i, off := 1, uint64(4); i < n; i, off = i+1, off+4 {
		pc := ipAddr + off + uint64(int64(int32(binary.LittleEndian.Uint32(ip[off:]))))
		if pc < prev || pc == prev && t.terminator(i) && !t.terminator(i-1) {
			return t.sorted(), nil
		}
		prev = pc
	}
	return t, nil
}

// pc returns the address of entry i.
func (t *ORCTable) pc(i int) uint64 {
	return t.ipAddr + 4*uint64(i) + uint64(int64(int32(binary.LittleEndian.Uint32(t.ip[4*i:]))))
}

// terminator reports whether entry i is a section terminator: the kernel
// sorts those before real entries at the same address.
func (t *ORCTable) terminator(i int) bool {
	return decodeORC(t.orc[orcEntrySize*i:], t.layout).Type == ORCUndefined
}

// sorted returns a sorted copy of t. Every entry stays within s32 reach
// of its new slot: the j+1 entries sorted at or below entry i's address
// include one whose original slot is j or higher, so i's address is at
// least that slot's reach, and symmetrically above.
func (t *ORCTable) sorted() *ORCTable {
	idx := make([]int32, t.n)
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		if c := cmp.Compare(t.pc(int(a)), t.pc(int(b))); c != 0 {
			return c
		}
		ta, tb := t.terminator(int(a)), t.terminator(int(b))
		switch {
		case ta && !tb:
			return -1
		case tb && !ta:
			return 1
		}
		return 0
	})
	s := &ORCTable{ip: make([]byte, len(t.ip)), orc: make([]byte, len(t.orc)), ipAddr: t.ipAddr, n: t.n, layout: t.layout, copied: true}
	for j, i := range idx {
		rel := t.pc(int(i)) - (t.ipAddr + 4*uint64(j))
		binary.LittleEndian.PutUint32(s.ip[4*j:], uint32(rel))
		copy(s.orc[orcEntrySize*j:orcEntrySize*(j+1)], t.orc[orcEntrySize*int(i):])
	}
	return s
}

// Len returns the number of entries.
func (t *ORCTable) Len() int { return t.n }

// Layout returns the entry layout the table was made with.
func (t *ORCTable) Layout() ORCLayout { return t.layout }

// At returns entry i (0 ≤ i < Len) and the address from which it holds, in
// address order.
func (t *ORCTable) At(i int) (uint64, ORCEntry) {
	return t.pc(i), decodeORC(t.orc[orcEntrySize*i:], t.layout)
}

// Span returns the addresses of the first and the last entry.
func (t *ORCTable) Span() (first, last uint64) { return t.pc(0), t.pc(t.n - 1) }

// Lookup returns the entry in force at pc: the last entry whose address is
// at or below pc, as the kernel's __orc_find picks it; false when pc lies
// below the first entry. It does not know where the covered code ends (the
// last entry answers for every pc above it): ask only about pcs in the
// code the table belongs to, as Set.FindORC and File.FindORC do. It does
// not allocate.
func (t *ORCTable) Lookup(pc uint64) (ORCEntry, bool) {
	if t == nil {
		return ORCEntry{}, false
	}
	lo, hi, found := 0, t.n-1, -1
	for lo <= hi {
		mid := int(uint(lo+hi) >> 1)
		if t.pc(mid) <= pc {
			found = mid
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	if found < 0 {
		return ORCEntry{}, false
	}
	return decodeORC(t.orc[orcEntrySize*found:], t.layout), true
}

// ErrNoORC is returned by File.ORC for a file without ORC sections.
var ErrNoORC = errors.New("no .orc_unwind_ip/.orc_unwind sections")

// loadORC reads the file's ORC sections once.
func (f *File) loadORC() {
	ips, orcs := f.ef.Section(".orc_unwind_ip"), f.ef.Section(".orc_unwind")
	if ips == nil || orcs == nil || ips.Type != elf.SHT_PROGBITS || orcs.Type != elf.SHT_PROGBITS {
		f.orcErr = fmt.Errorf("symbols: %s: %w", f.Path, ErrNoORC)
		return
	}
	if f.reloc != nil {
		f.loadModuleORC() // a module placed by OpenModule: relocated tables
		return
	}
	if f.ef.Type != elf.ET_EXEC {
		// A .ko's .orc_unwind_ip is relocated by the module loader.
		f.orcErr = fmt.Errorf("symbols: %s: ORC of a relocatable file needs its relocations: read the loaded module's tables from memory (NewORCTable)", f.Path)
		return
	}
	var header []byte
	if h := f.ef.Section(".orc_header"); h != nil && h.Type == elf.SHT_PROGBITS {
		b, err := h.Data()
		if err != nil {
			f.orcErr = fmt.Errorf("symbols: %s: .orc_header: %w", f.Path, err)
			return
		}
		header = b
	}
	layout, err := ORCLayoutOf(header, f.release())
	if err != nil {
		f.orcErr = fmt.Errorf("symbols: %s: %w", f.Path, err)
		return
	}
	if ips.Size > 1<<30 || orcs.Size > 1<<30 {
		f.orcErr = fmt.Errorf("symbols: %s: ORC sections too large (%d, %d bytes)", f.Path, ips.Size, orcs.Size)
		return
	}
	ipb, err := sectionBytes(ips, f.r, f.mapped)
	if err != nil {
		f.orcErr = fmt.Errorf("symbols: %s: .orc_unwind_ip: %w", f.Path, err)
		return
	}
	ob, err := sectionBytes(orcs, f.r, f.mapped)
	if err != nil {
		f.orcErr = fmt.Errorf("symbols: %s: .orc_unwind: %w", f.Path, err)
		return
	}
	t, err := NewORCTable(ipb, ips.Addr+f.Bias, ob, layout)
	if err != nil {
		f.orcErr = fmt.Errorf("symbols: %s (.orc_unwind_ip at %#x): %w", f.Path, ips.Offset, err)
		return
	}
	f.orc = t
}

// release returns the kernel release linux_banner names ("Linux version
// 6.1.0-47-cloud-amd64 (...)"), or "".
func (f *File) release() string {
	s, ok := f.Syms.ByName("linux_banner")
	if !ok {
		return ""
	}
	addr := s.Addr - f.Bias
	for _, sec := range f.ef.Sections {
		if sec.Type != elf.SHT_PROGBITS || sec.Flags&elf.SHF_ALLOC == 0 || addr < sec.Addr || addr-sec.Addr >= sec.Size {
			continue
		}
		b := make([]byte, min(256, sec.Addr+sec.Size-addr))
		if _, err := sec.ReadAt(b, int64(addr-sec.Addr)); err != nil {
			return ""
		}
		v, ok := bytes.CutPrefix(b, []byte("Linux version "))
		if !ok {
			return ""
		}
		if i := bytes.IndexAny(v, " \x00"); i >= 0 {
			v = v[:i]
		}
		return string(v)
	}
	return ""
}

// ORC returns the file's ORC table (vmlinux's .orc_unwind_ip and
// .orc_unwind at the file's bias), read on first use; the layout comes
// from .orc_header, else from linux_banner's release. The error wraps
// ErrNoORC when the file has none.
func (f *File) ORC() (*ORCTable, error) {
	f.orcOnce.Do(f.loadORC)
	return f.orc, f.orcErr
}

// FindORC returns the ORC entry in force at the run-time pc when pc is in
// the file's text and the file has ORC. It does not allocate once the
// table is read.
func (f *File) FindORC(pc uint64) (ORCEntry, bool) {
	if !f.contains(pc) || !f.IsText(pc) {
		return ORCEntry{}, false
	}
	t, _ := f.ORC()
	return t.Lookup(pc)
}

// HasORC reports whether the file has a usable ORC table.
func (f *File) HasORC() bool {
	t, _ := f.ORC()
	return t != nil
}
