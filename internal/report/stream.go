package report

import "io"

// Writer prints threads one at a time, as a command produces them, so that
// a dump with many threads needs memory for one trace, not for all:
// NewTextWriter or NewJSONWriter, Thread for each, then Close. The output
// is what WriteText or WriteJSON prints for a Document of the same threads.
type Writer struct {
	bw     *outBuf
	json   bool
	dump   DumpInfo
	opts   TextOptions
	ew     *errWriter
	n      int // threads written
	err    error
	buf    []byte
	quoted quoteCache // JSON strings
}

// NewTextWriter returns a Writer of the text layout (see WriteText).
func NewTextWriter(w io.Writer, opts TextOptions) *Writer {
	bw := newOutBuf(w)
	return &Writer{bw: bw, opts: opts, ew: &errWriter{w: bw}}
}

// NewJSONWriter returns a Writer of the JSON document (see WriteJSON) of a
// dump described by dump. Nothing is written before the first Thread or
// Close.
func NewJSONWriter(w io.Writer, dump DumpInfo) *Writer {
	return &Writer{bw: newOutBuf(w), json: true, dump: dump}
}

// Thread writes one thread's trace. t is not kept: the caller may reuse
// or drop it (and its frames) at once.
func (s *Writer) Thread(t *Thread) error {
	if s.err != nil {
		return s.err
	}
	switch {
	case s.json:
		if s.n == 0 {
			s.jsonHeader()
		}
		if s.err == nil {
			s.err = s.jsonThread(t, s.n == 0)
		}
	default:
		if s.n > 0 {
			s.ew.printf("\n")
		}
		if t.Kernel {
			writeKernelThread(s.ew, t, s.opts)
		} else {
			writeUserThread(s.ew, t, s.opts)
		}
		s.err = s.ew.err
	}
	s.n++
	return s.err
}

// Close ends the output (JSON's closing brackets) and flushes it.
func (s *Writer) Close() error {
	if s.err != nil {
		return s.err
	}
	if s.json {
		if s.n == 0 {
			s.jsonHeader()
		}
		s.jsonFooter()
	}
	s.err = s.bw.Flush()
	return s.err
}
