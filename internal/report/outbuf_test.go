package report

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// countWriter counts the writes that reach it.
type countWriter struct {
	bytes.Buffer
	writes int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestOutBufFlushes(t *testing.T) {
	var dst countWriter
	o := newOutBuf(&dst)
	line := strings.Repeat("x", 99) + "\n"
	var want strings.Builder
	for i := 0; i < 3000; i++ { // 300,000 bytes
		o.WriteString(line)
		o.Write([]byte(line))
		o.WriteByte('\n')
		want.WriteString(line + line + "\n")
	}
	if dst.writes != want.Len()/flushAt {
		t.Errorf("%d writes before Flush, want one per %d bytes: %d", dst.writes, flushAt, want.Len()/flushAt)
	}
	if err := o.Flush(); err != nil {
		t.Fatal(err)
	}
	if dst.String() != want.String() {
		t.Errorf("output differs from what was written (%d bytes, want %d)", dst.Len(), want.Len())
	}
	if cap(o.buf) > 2*flushAt {
		t.Errorf("buffer grew to %d bytes for writes of 100", cap(o.buf))
	}
	// A write larger than the buffer goes out whole, after what was
	// buffered, and does not grow the buffer.
	dst.Reset()
	dst.writes = 0
	o.WriteString("head")
	big := bytes.Repeat([]byte("y"), 3*flushAt)
	if n, err := o.Write(big); n != len(big) || err != nil {
		t.Fatalf("big write: %d, %v", n, err)
	}
	o.Flush()
	if dst.writes != 2 || dst.String() != "head"+string(big) {
		t.Errorf("big write: %d writes of %d bytes, want the 4 buffered then the %d", dst.writes, dst.Len(), len(big))
	}
	if cap(o.buf) > 2*flushAt {
		t.Errorf("buffer grew to %d bytes for a big write", cap(o.buf))
	}
}

// shortWriter accepts at most n bytes of each write and says nothing.
type shortWriter struct{ n int }

func (s shortWriter) Write(p []byte) (int, error) { return min(len(p), s.n), nil }

type failWriter struct{}

var errFail = errors.New("disk full")

func (failWriter) Write(p []byte) (int, error) { return 0, errFail }

func TestOutBufErrors(t *testing.T) {
	o := newOutBuf(shortWriter{3})
	o.WriteString("hello")
	if err := o.Flush(); err != io.ErrShortWrite {
		t.Errorf("short write: Flush gives %v, want io.ErrShortWrite", err)
	}
	o = newOutBuf(failWriter{})
	o.WriteString("hello")
	if err := o.Flush(); err != errFail {
		t.Errorf("Flush gives %v, want %v", err, errFail)
	}
	if _, err := o.WriteString("more"); err != errFail {
		t.Errorf("a write after a failed flush gives %v, want the same error", err)
	}
	if err := o.WriteByte('x'); err != errFail {
		t.Errorf("WriteByte after a failed flush gives %v", err)
	}
	// A write that fills the buffer reports the error of its flush.
	o = newOutBuf(failWriter{})
	if _, err := o.Write(make([]byte, flushAt)); err != errFail {
		t.Errorf("a write that flushes gives %v, want %v", err, errFail)
	}
}
