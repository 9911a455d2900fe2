package report

import "io"

// outBuf buffers a Writer's output, as a bufio.Writer of flushAt bytes
// would, but its buffer starts at a few KB and grows only as far as the
// output does: a short trace, the common case, costs its own size rather
// than 64 KB of fresh memory that a short-lived process must fault in.
// Errors are sticky, as bufio's are.
type outBuf struct {
	w   io.Writer
	buf []byte
	err error
}

// flushAt is how much output outBuf gathers before each write(2): large
// enough that a 100,000-frame trace takes a few hundred of them.
const flushAt = 64 << 10

func newOutBuf(w io.Writer) *outBuf {
	return &outBuf{w: w, buf: make([]byte, 0, 4<<10)}
}

func (o *outBuf) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	if len(p) >= flushAt {
		// As bufio does: a large write goes out as it is, not
		// through a buffer grown to hold it.
		if o.Flush() != nil {
			return 0, o.err
		}
		n, err := o.w.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		o.err = err
		return n, err
	}
	o.buf = append(o.buf, p...)
	return o.added(len(p))
}

func (o *outBuf) WriteString(s string) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	o.buf = append(o.buf, s...)
	return o.added(len(s))
}

// added ends a write of n bytes into the buffer: the buffer goes out once
// it holds flushAt bytes.
func (o *outBuf) added(n int) (int, error) {
	if len(o.buf) >= flushAt {
		o.Flush()
	}
	if o.err != nil {
		return 0, o.err
	}
	return n, nil
}

func (o *outBuf) WriteByte(c byte) error {
	if o.err != nil {
		return o.err
	}
	o.buf = append(o.buf, c)
	_, err := o.added(1)
	return err
}

// Flush writes what is buffered.
func (o *outBuf) Flush() error {
	if o.err != nil || len(o.buf) == 0 {
		return o.err
	}
	n, err := o.w.Write(o.buf)
	if err == nil && n < len(o.buf) {
		err = io.ErrShortWrite
	}
	o.err = err
	o.buf = o.buf[:0]
	return err
}
