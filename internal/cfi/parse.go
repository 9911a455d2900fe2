package cfi

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-delve/delve/pkg/dwarf/frame"
)

// Table is the parsed CFI of one section: FDEs sorted by start address, each
// compiled on first use to a sorted slice of rows and cached, so that Find is
// two binary searches. A Table is safe for concurrent use.
type Table struct {
	kind  SectionKind
	bias  uint64
	fdes  []fde
	cache []atomic.Pointer[compiled]
	eh    *ehIndex // set instead of fdes and cache by ParseEH
}

// cie is the part of a CIE the row compiler needs.
type cie struct {
	codeAlign uint64
	dataAlign int64
	raReg     uint64
	signal    bool
	initial   []byte
}

// fde is one FDE with run-time (biased) bounds.
type fde struct {
	start, end uint64
	cie        *cie
	instr      []byte
}

// compiled is the cached result of compiling one FDE.
type compiled struct {
	rows []Row
	err  error // set when compilation stopped early; rows cover up to the failure
}

func (k SectionKind) String() string {
	if k == EHFrame {
		return ".eh_frame"
	}
	return ".debug_frame"
}

// Parse reads a .eh_frame or .debug_frame section. sectionAddr is the
// section's link-time address (pc-relative pointers in .eh_frame are relative
// to it; it must be non-zero for .eh_frame) and bias is added to every pc so
// that Find takes run-time addresses. A malformed section yields a
// *FormatError; a panic inside the delve parser is recovered into one.
func Parse(data []byte, kind SectionKind, sectionAddr, bias uint64) (t *Table, err error) {
	ehAddr := uint64(0)
	if kind == EHFrame {
		if sectionAddr == 0 {
			return nil, &FormatError{Section: kind.String(), Msg: "section address 0 is not supported for .eh_frame"}
		}
		ehAddr = sectionAddr
	}
	if err := checkFraming(data, kind); err != nil {
		return nil, err
	}
	if t, ok := parseFast(data, kind, ehAddr, bias); ok {
		t.finish()
		return t, nil
	}
	return parseDelve(data, kind, ehAddr, bias)
}

// parseDelve is Parse with delve's parser, for sections parseFast leaves
// to it.
func parseDelve(data []byte, kind SectionKind, ehAddr, bias uint64) (t *Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t = nil
			err = &FormatError{Section: kind.String(), Msg: fmt.Sprintf("parser panic: %v", r)}
		}
	}()
	entries, perr := frame.Parse(data, binary.LittleEndian, 0, 8, ehAddr)
	if perr != nil {
		return nil, &FormatError{Section: kind.String(), Msg: perr.Error()}
	}
	t = &Table{kind: kind, bias: bias, fdes: make([]fde, 0, len(entries))}
	cies := make(map[*frame.CommonInformationEntry]*cie)
	for _, e := range entries {
		if e == nil || e.CIE == nil {
			continue
		}
		c := cies[e.CIE]
		if c == nil {
			c = &cie{
				codeAlign: e.CIE.CodeAlignmentFactor,
				dataAlign: e.CIE.DataAlignmentFactor,
				raReg:     e.CIE.ReturnAddressRegister,
				signal:    strings.ContainsRune(e.CIE.Augmentation, 'S'),
				initial:   e.CIE.InitialInstructions,
			}
			cies[e.CIE] = c
		}
		start, end := e.Begin(), e.End()
		if end <= start {
			continue // empty or wrapping range: covers nothing
		}
		t.fdes = append(t.fdes, fde{start: start + bias, end: end + bias, cie: c, instr: e.Instructions})
	}
	t.finish()
	return t, nil
}

// finish sorts the FDEs by start address, keeping the section's order
// among equal starts, and makes the compiled-rows cache.
func (t *Table) finish() {
	byStart := func(a, b fde) int { return cmp.Compare(a.start, b.start) }
	if !slices.IsSortedFunc(t.fdes, byStart) {
		// An .eh_frame is in link order, not address order. Sorting
		// (start, index) keys, all distinct, keeps the section order
		// among equal starts without the stable sort's in-place merging
		// (which made most of a libc's parse time).
		type key struct {
			start uint64
			i     int
		}
		keys := make([]key, len(t.fdes))
		for i := range t.fdes {
			keys[i] = key{t.fdes[i].start, i}
		}
		slices.SortFunc(keys, func(a, b key) int {
			if c := cmp.Compare(a.start, b.start); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		sorted := make([]fde, len(t.fdes))
		for j, k := range keys {
			sorted[j] = t.fdes[k.i]
		}
		t.fdes = sorted
	}
	t.cache = make([]atomic.Pointer[compiled], len(t.fdes))
}

// Len returns the number of FDEs in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	if t.eh != nil {
		return t.eh.n
	}
	return len(t.fdes)
}

// Range returns the run-time pc range [start, end) of the i-th FDE in address
// order, for callers that want to enumerate what the table covers.
func (t *Table) Range(i int) (start, end uint64) {
	if t != nil && t.eh != nil {
		return t.eh.whole(t.bias).Range(i)
	}
	if t == nil || i < 0 || i >= len(t.fdes) {
		return 0, 0
	}
	return t.fdes[i].start, t.fdes[i].end
}

// checkFraming walks the entries' length fields before delve sees the
// section: delve ignores short reads, so a truncated entry would otherwise
// be parsed from whatever bytes remain. 64-bit DWARF lengths are rejected.
func checkFraming(data []byte, kind SectionKind) error {
	for off := 0; off < len(data); {
		if len(data)-off < 4 {
			return &FormatError{Section: kind.String(), Off: int64(off), Msg: "truncated length field"}
		}
		n := uint64(binary.LittleEndian.Uint32(data[off:]))
		switch {
		case n == 0xffffffff:
			return &FormatError{Section: kind.String(), Off: int64(off), Msg: "64-bit DWARF CFI is not supported"}
		case n == 0:
			off += 4 // terminator or padding
			continue
		case n < 4 || n > uint64(len(data)-off-4):
			return &FormatError{Section: kind.String(), Off: int64(off), Msg: fmt.Sprintf("entry length %#x does not fit the section", n)}
		}
		id := binary.LittleEndian.Uint32(data[off+4:])
		isCIE := (kind == DebugFrame && id == 0xffffffff) || (kind == EHFrame && id == 0)
		if isCIE && n >= 5 {
			// Version 4 .debug_frame CIEs carry address and segment sizes that
			// delve v1.27.2 would read as the alignment factors.
			if v := data[off+8]; v != 1 && v != 3 {
				return &FormatError{Section: kind.String(), Off: int64(off), Msg: fmt.Sprintf("CIE version %d is not supported", v)}
			}
		}
		off += 4 + int(n)
	}
	return nil
}
