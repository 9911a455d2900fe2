package symbols

import (
	"cmp"
	"errors"
	"io"
	"slices"

	"github.com/unwind-dev/unwind/internal/dwarf"
)

// A line table is answered a sequence at a time. A kernel unit's table
// has tens of thousands of rows, a trace needs a handful: instead of
// decoding every row into a sorted slice, the table is read once without
// keeping rows (lineIndex), noting where each sequence starts and ends and
// a mark (dwarf.LineMark) every lineMarkEvery rows; a pc is then answered
// by reading from the last mark at or below it to the first row past it
// (seqLine), which keeps the rows it read up to the next mark for the
// next pc there. The sequences and marks are kept in the debug cache
// (unitdetail.go), so that a later run reads only those few rows.
//
// The answer must be the sorted rows' (cuInfo.line): the last row at or
// below pc, in address order with an end row before a row at the same
// address and rows of one address in program order. lineIndex indexes
// only a table where that is found from one sequence: every sequence ends
// (the table is not cut short and decodes without error), its addresses
// never go down, it has code (its end row is past its first row), the
// sequences do not overlap, and no DW_LNE_define_file grows the file
// table. A sequence may have rows at its end address before its end row
// (GCC often emits one): the last of them is the answer past the
// sequence's end, up to the next sequence, and at the next sequence's
// first address when it starts there but comes earlier in the program.
// Any other table is decoded into rows as before (cuInfo.readRows).

// lineMarkEvery is how many rows of a sequence lie between two marks.
const lineMarkEvery = 64

// lineSeq is one sequence of a line table.
type lineSeq struct {
	lo, end uint64         // its first row's address; its end row's
	ord     int            // its place in the program
	stray   bool           // it has a row at end (before the end row)
	after   dwarf.LineMark // with stray, the mark right after the last such row
	// marks[0] is where the sequence starts (before its first row); each
	// later one was taken right after a row, lineMarkEvery rows apart,
	// at addresses that do not go down.
	marks []dwarf.LineMark
	block int // the index in cuInfo.blocks of the rows after marks[0]
}

// numberBlocks gives each sequence the index of its first block in
// cuInfo.blocks and returns how many blocks there are.
func numberBlocks(seqs []lineSeq) int {
	n := 0
	for i := range seqs {
		seqs[i].block = n
		n += len(seqs[i].marks)
	}
	return n
}

// blockRow is a row read after a mark: its address, file index and line.
type blockRow struct {
	addr uint64
	file int32
	line int32
}

// lineIndex reads the line program of lr from its start once and returns
// its sequences sorted by address, or false if they cannot answer lines
// as the sorted rows do (see above).
func lineIndex(lr *dwarf.LineReader) ([]lineSeq, bool) {
	var seqs []lineSeq
	start := lr.Mark()
	var cur *lineSeq
	var prev uint64   // the previous row's address
	last := uint64(0) // the previous non-end row's address
	n := 0            // rows of cur
	hdr := lr.HeaderFiles()
	for {
		addr, end, err := lr.NextAddress()
		if err != nil {
			if !errors.Is(err, io.EOF) || cur != nil {
				return nil, false // an error, or a sequence cut short
			}
			break
		}
		if len(lr.Files()) != hdr {
			return nil, false // DW_LNE_define_file
		}
		if cur == nil {
			seqs = append(seqs, lineSeq{lo: addr, ord: len(seqs), marks: []dwarf.LineMark{start}})
			cur, prev, n = &seqs[len(seqs)-1], addr, 0
		}
		if addr < prev {
			return nil, false
		}
		prev = addr
		if end {
			if n == 0 || addr == cur.lo {
				return nil, false
			}
			start = lr.Mark()
			if last == addr {
				after, ok := lastRowMark(lr, cur.marks[len(cur.marks)-1], start)
				if !ok {
					return nil, false
				}
				cur.stray, cur.after = true, after
			}
			cur.end, cur = addr, nil
			continue
		}
		last = addr
		if n++; n%lineMarkEvery == 0 {
			cur.marks = append(cur.marks, lr.Mark())
		}
	}
	slices.SortFunc(seqs, func(a, b lineSeq) int { return cmp.Compare(a.lo, b.lo) })
	for i := 1; i < len(seqs); i++ {
		if seqs[i].lo < seqs[i-1].end {
			return nil, false
		}
	}
	return seqs, true
}

// lastRowMark returns the mark after the last row of a sequence before its
// end row, reading from m, a mark in the sequence, and leaves lr at next,
// the mark after the end row: lineIndex takes a mark after every row only
// for the rows it keeps, and this for a sequence with a stray row.
func lastRowMark(lr *dwarf.LineReader, m, next dwarf.LineMark) (dwarf.LineMark, bool) {
	last, ok := m, lr.SeekMark(m) == nil // m: a mark after a row, if the end row follows it
	for ok {
		_, end, err := lr.NextAddress()
		if err != nil {
			ok = false
		} else if end {
			break
		}
		last = lr.Mark()
	}
	return last, lr.SeekMark(next) == nil && ok
}

// seqLine is line for a unit whose table lineIndex indexed.
func (u *cuInfo) seqLine(pc uint64) (string, int, bool) {
	i, hi := 0, len(u.seqs) // i: the sequences starting at or below pc
	for i < hi {
		if h := int(uint(i+hi) >> 1); u.seqs[h].lo <= pc {
			i = h + 1
		} else {
			hi = h
		}
	}
	if i == 0 {
		return "", 0, false // before the first sequence
	}
	s := &u.seqs[i-1]
	if pc >= s.end {
		if s.stray { // its last row at its end, up to the next sequence
			return u.markLine(&s.after)
		}
		return "", 0, false
	}
	// The last mark after a row at or below pc, else the sequence start.
	m, hi := 1, len(s.marks)
	for m < hi {
		if h := int(uint(m+hi) >> 1); s.marks[h].Address <= pc {
			m = h + 1
		} else {
			hi = h
		}
	}
	m--
	mark := &s.marks[m]
	rows := u.block(s, m)
	// The last row at or below pc: of the block, else the mark's.
	j, hi := 0, len(rows)
	for j < hi {
		if h := int(uint(j+hi) >> 1); rows[h].addr <= pc {
			j = h + 1
		} else {
			hi = h
		}
	}
	var name string
	var line int
	var at uint64
	switch {
	case j > 0:
		name, line, at = u.fileName(int(rows[j-1].file)), int(rows[j-1].line), rows[j-1].addr
	case m > 0:
		name, line, _ = u.markLine(mark)
		at = mark.Address
	default:
		return "", 0, false // the sequence's first row unreadable
	}
	if at == s.lo && i >= 2 {
		// Rows at s.lo of the sequence before, if it ends there, come
		// after s's when it is later in the program.
		if p := &u.seqs[i-2]; p.end == s.lo && p.stray && p.ord > s.ord {
			return u.markLine(&p.after)
		}
	}
	return name, line, true
}

// block returns the rows of sequence s after its mark m, up to the row
// its next mark was taken after or its end, reading them on first use.
func (u *cuInfo) block(s *lineSeq, m int) []blockRow {
	b := &u.blocks[s.block+m]
	if rows := b.Load(); rows != nil {
		return *rows
	}
	u.lineMu.Lock()
	defer u.lineMu.Unlock()
	if rows := b.Load(); rows != nil {
		return *rows
	}
	rows := make([]blockRow, 0, lineMarkEvery)
	lr := u.lr
	if lr.SeekMark(s.marks[m]) == nil {
		next := dwarf.Offset(0)
		if m+1 < len(s.marks) {
			next = s.marks[m+1].Off
		}
		var le dwarf.LineEntry
		for lr.Next(&le) == nil && !le.EndSequence {
			k := lr.Mark()
			file := int32(-1) // no file: an index past any table
			if int(int32(k.File)) == k.File {
				file = int32(k.File)
			}
			rows = append(rows, blockRow{addr: le.Address, file: file, line: int32(le.Line)})
			if k.Off == next {
				break
			}
		}
	}
	b.Store(&rows)
	return rows
}

// fileName returns the name of file i of the line table (its file table
// is the header's: lineIndex indexes no table that grows it).
func (u *cuInfo) fileName(i int) string {
	if i >= 0 && i < len(u.callFiles) {
		return u.callFiles[i]
	}
	return ""
}

// markLine returns the file and line of the row a mark was taken after.
func (u *cuInfo) markLine(m *dwarf.LineMark) (string, int, bool) {
	return u.fileName(m.File), int(int32(m.Line)), true
}
