package linux

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"time"
)

// Limits on the DWARF read to find the wall clock.
const (
	maxArangesSize = 16 << 20
	maxUnitSize    = 64 << 20
)

// tkCoreXtimeSec finds, in vmlinux's DWARF, the offset of
// tk_core.timekeeper.xtime_sec (kernel/time/timekeeping.c, Linux ≥ 3.17):
// the kernel's wall clock in seconds. Only the compilation unit that
// holds textAddr (the link-time address of a function of timekeeping.c,
// found through .debug_aranges) is read.
func tkCoreXtimeSec(secs *dwarfSections, textAddr uint64) (int64, error) {
	f := secs.f
	off, err := unitAt(f, textAddr)
	if err != nil {
		return 0, err
	}
	info := f.Section(".debug_info")
	var hdr [4]byte
	if _, err := info.ReadAt(hdr[:], int64(off)); err != nil {
		return 0, err
	}
	n := uint64(binary.LittleEndian.Uint32(hdr[:]))
	if n >= 0xfffffff0 || n > maxUnitSize || off+4+n > info.Size {
		return 0, errors.New("unsupported or oversized compilation unit")
	}
	unit := make([]byte, 4+n)
	if _, err := info.ReadAt(unit, int64(off)); err != nil {
		return 0, err
	}
	dw, err := dwarfFromUnits(secs, unit)
	if err != nil {
		return 0, err
	}
	r := dw.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return 0, errors.New("tk_core not in its compilation unit")
		}
		if e.Tag == dwarf.TagCompileUnit {
			continue
		}
		if name, _ := e.Val(dwarf.AttrName).(string); e.Tag != dwarf.TagVariable || name != "tk_core" {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		toff, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
		if !ok {
			return 0, errors.New("tk_core has no type")
		}
		// Its members read from their entries, as a dwarfLayout reads a
		// structure's: decoding the type with dw.Type decoded every
		// type it reaches.
		l := newStructReader(dw)
		st := l.structAt(toff)
		if st == nil {
			return 0, errors.New("tk_core: not a structure")
		}
		off, ok := l.pathOffset(st, "timekeeper.xtime_sec")
		if !ok {
			return 0, errors.New("tk_core: no member timekeeper.xtime_sec")
		}
		return off, nil
	}
}

// unitAt returns the .debug_info offset of the compilation unit whose
// .debug_aranges entry covers addr.
func unitAt(f *elf.File, addr uint64) (uint64, error) {
	s := f.Section(".debug_aranges")
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > maxArangesSize || f.Section(".debug_info") == nil {
		return 0, errors.New("no .debug_aranges")
	}
	b, err := s.Data()
	if err != nil {
		return 0, err
	}
	if off, ok := arangesUnit(b, addr); ok {
		return off, nil
	}
	return 0, errors.New("address not in .debug_aranges")
}

// WallClock returns the dumped kernel's wall-clock time
// (tk_core.timekeeper.xtime_sec), the moment of the dump to within the
// timekeeper's last update (a tick). It needs vmlinux with DWARF (call
// Symbols first); ok is false otherwise.
func (k *Kernel) WallClock() (time.Time, bool) {
	if k.offsets.tkXtimeSec < 0 {
		return time.Time{}, false
	}
	a, ok := k.kernelSym("tk_core")
	if !ok {
		return time.Time{}, false
	}
	v, ok := k.readU64(a + uint64(k.offsets.tkXtimeSec))
	if !ok || int64(v) <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(v), 0).UTC(), true
}
