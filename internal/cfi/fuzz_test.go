package cfi

import (
	"testing"

	"github.com/unwind-dev/unwind/ptregs"
)

// zeroMemory reads zeros everywhere below 1<<47 and fails above.
type zeroMemory struct{}

func (zeroMemory) ReadAt(p []byte, addr uint64) (int, error) {
	if addr >= 1<<47 {
		return 0, errUnmapped
	}
	clear(p)
	return len(p), nil
}

// FuzzCFIParse feeds section bytes to Parse, then Find and Step on pcs in
// the first FDEs. Parse must return either a table or an error, and nothing
// may panic.
func FuzzCFIParse(f *testing.F) {
	f.Add(debugFrame("", standardCIE, fdeSpec{0x1000, 16, []byte{cfaAdvanceLoc | 1, cfaDefCFAOffset, 16, cfaOffset | 6, 2}}), false)
	f.Add(debugFrame("", standardCIE, fdeSpec{0x1000, 16, []byte{cfaAdvanceLoc | 1, cfaRestoreState, cfaRememberState, cfaExpression, 3, 2, opLit0 + 8, opMinus}}), false)
	f.Add(debugFrame("", cat([]byte{cfaDefCFAExpression, 4, opBreg0 + 7, 8, opDeref, opNop}), fdeSpec{0x1000, 8, nil}), false)
	f.Fuzz(func(t *testing.T, data []byte, eh bool) {
		kind := DebugFrame
		if eh {
			kind = EHFrame
		}
		tab, err := Parse(data, kind, 0x1000, 0x400000)
		if (tab == nil) == (err == nil) {
			t.Fatalf("Parse: table %v with error %v", tab != nil, err)
		}
		if err != nil {
			return
		}
		var regs ptregs.Regs
		for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
			regs.Set(r, 0x7000+uint64(r)*8)
		}
		var row Row
		for i := 0; i < tab.Len() && i < 8; i++ {
			s, e := tab.Range(i)
			for _, pc := range []uint64{s, s + (e-s)/2, e - 1} {
				if tab.Find(pc, &row) != nil {
					continue
				}
				if pc < row.Start || pc >= row.End {
					t.Fatalf("Find(%#x) returned row [%#x,%#x)", pc, row.Start, row.End)
				}
				row.Step(&regs, zeroMemory{})
			}
		}
	})
}
