package dwarf

import "fmt"

// A LineMark is the state of a line-number program right after a row
// (or at the start of a sequence): the offset of the next opcode and
// the registers that carry over to the next row. A caller that keeps
// marks taken while reading a line table once (every few hundred rows,
// say) can later answer a pc by seeking to the last mark at or below it
// and reading a few rows, instead of reading the table from its start;
// the marks are plain values, which may be stored between runs.
type LineMark struct {
	Off     Offset // section offset of the next opcode
	Address uint64
	OpIndex int
	File    int // index in the file table, as DW_LNS_set_file sets it
	Line    int
	Column  int
	IsStmt  bool
	ISA     int
}

// Mark returns the reader's position as a LineMark. It is meaningful
// right after Next returned a row (or before the first Next): the
// registers a row resets (discriminator, basic block, prologue end,
// epilogue begin) are not part of it.
func (r *LineReader) Mark() LineMark {
	return LineMark{
		Off:     r.buf.off,
		Address: r.state.Address,
		OpIndex: r.state.OpIndex,
		File:    r.fileIndex,
		Line:    r.state.Line,
		Column:  r.state.Column,
		IsStmt:  r.state.IsStmt,
		ISA:     r.state.ISA,
	}
}

// SeekMark positions the reader at m, a mark taken by Mark on a reader
// of the same line table whose file table had not grown past its header
// (no DW_LNE_define_file before the mark). It returns an error, leaving
// the reader where it was, when m's offset is not inside the table's
// line-number program.
func (r *LineReader) SeekMark(m LineMark) error {
	if m.Off < r.programOffset || m.Off > r.endOffset || m.File < 0 {
		return DecodeError{"line", m.Off, fmt.Sprintf("mark outside the line program [%#x, %#x]", r.programOffset, r.endOffset)}
	}
	r.buf.off = m.Off
	r.buf.data = r.section[m.Off:r.endOffset]
	r.buf.err = nil
	r.fileEntries = r.fileEntries[:r.initialFileEntries]
	r.resetState()
	r.state.Address = m.Address
	r.state.OpIndex = m.OpIndex
	r.state.Line = m.Line
	r.state.Column = m.Column
	r.state.IsStmt = m.IsStmt
	r.state.ISA = m.ISA
	r.fileIndex = m.File
	r.updateFile()
	return nil
}

// HeaderFiles reports how many entries the line table's header gives its
// file table (Files may hold more after DW_LNE_define_file).
func (r *LineReader) HeaderFiles() int { return r.initialFileEntries }
