package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// JSONVersion is the document's "version"; it changes only when a field is
// renamed or removed or changes meaning. Version 2 marks the inlined callee
// (not its caller) "inlined", gives each thread "comm" (v1's "task" string)
// and, for kernel tasks, a "task" object, makes "cpu" null for a thread that
// is not running on a known CPU, adds "truncated" and "unwalked", and makes
// "cfa" this frame's canonical frame address.
const JSONVersion = 2

type jsonDocument struct {
	Version int          `json:"version"`
	Dump    jsonDump     `json:"dump"`
	Threads []jsonThread `json:"threads"`
}

type jsonDump struct {
	Kind    string            `json:"kind"`
	Path    string            `json:"path,omitempty"`
	Release string            `json:"release,omitempty"`
	Extra   map[string]string `json:"extra,omitempty"`
}

type jsonThread struct {
	TID        int         `json:"tid"`
	CPU        *int        `json:"cpu"`
	Crashed    bool        `json:"crashed"`
	Signal     int         `json:"signal,omitempty"`
	Comm       string      `json:"comm,omitempty"`
	Task       *jsonTask   `json:"task,omitempty"`
	Reliable   bool        `json:"reliable"`
	Truncated  bool        `json:"truncated"`
	Unwalked   *int        `json:"unwalked,omitempty"`
	StopReason string      `json:"stop_reason"`
	Frames     []jsonFrame `json:"frames"`
}

type jsonTask struct {
	PID     int    `json:"pid"`
	TGID    int    `json:"tgid"`
	PPID    int    `json:"ppid"`
	Comm    string `json:"comm"`
	State   string `json:"state"`
	CPU     int    `json:"cpu"`
	KThread bool   `json:"kthread"`
	Address string `json:"address"`
}

type jsonFrame struct {
	Index    int               `json:"index"`
	PC       string            `json:"pc"`
	SP       string            `json:"sp"`
	CFA      string            `json:"cfa,omitempty"`
	Function string            `json:"function,omitempty"`
	Symbol   string            `json:"symbol,omitempty"`
	Offset   uint64            `json:"offset"`
	Size     uint64            `json:"size"`
	Module   string            `json:"module,omitempty"`
	File     string            `json:"file,omitempty"`
	Line     int               `json:"line,omitempty"`
	Inlined  bool              `json:"inlined"`
	Kind     string            `json:"kind"`
	Entry    string            `json:"entry,omitempty"`
	Partial  bool              `json:"partial,omitempty"`
	RegsAddr string            `json:"regs_addr,omitempty"`
	Stack    string            `json:"stack"`
	Method   string            `json:"method"`
	Reliable bool              `json:"reliable"`
	Regs     map[string]string `json:"regs,omitempty"`
	Args     *[]jsonValue      `json:"args,omitempty"`
	Locals   *[]jsonValue      `json:"locals,omitempty"`
}

// WriteJSON prints doc as the versioned JSON contract of `unwind bt -o json`.
// The document is written as it goes, through one buffered writer: each
// thread's fields are encoded by encoding/json, each frame by appendFrame
// (the same bytes, without reflection, a map per frame's registers or a
// re-indenting of the whole document).
func WriteJSON(w io.Writer, doc *Document) error {
	sw := NewJSONWriter(w, doc.Dump)
	for i := range doc.Threads {
		if err := sw.Thread(&doc.Threads[i]); err != nil {
			return err
		}
	}
	return sw.Close()
}

// jsonHeader writes the document up to its threads.
func (s *Writer) jsonHeader() {
	s.bw.WriteString("{\n  \"version\": ")
	s.bw.WriteString(strconv.Itoa(JSONVersion))
	s.bw.WriteString(",\n  \"dump\": ")
	dump, err := json.MarshalIndent(jsonDump{s.dump.Kind, s.dump.Path, s.dump.Release, s.dump.Extra}, "  ", "  ")
	if err != nil {
		s.err = err
		return
	}
	s.bw.Write(dump)
	s.bw.WriteString(",\n  \"threads\": [")
}

// jsonThread writes one thread of the document's "threads", the first when
// first is set.
func (s *Writer) jsonThread(t *Thread, first bool) error {
	bw := s.bw
	jt := jsonThread{
		TID: t.TID, Crashed: t.Crashed, Signal: t.Signal, Comm: t.Comm,
		Reliable: t.Reliable, Truncated: t.Truncated, StopReason: t.StopReason,
		Frames: []jsonFrame{},
	}
	if t.CPU >= 0 {
		cpu := t.CPU
		jt.CPU = &cpu
	}
	if t.Truncated && t.Unwalked >= 0 {
		n := t.Unwalked
		jt.Unwalked = &n
	}
	if k := t.Task; k != nil {
		jt.Task = &jsonTask{k.PID, k.TGID, k.PPID, k.Comm, k.State, k.CPU, k.KThread, hex(k.Address)}
	}
	head, err := json.MarshalIndent(jt, "    ", "  ")
	if err != nil {
		return err
	}
	if !first {
		bw.WriteByte(',')
	}
	bw.WriteString("\n    ")
	// "frames" is the thread's last field: its frames go where
	// encoding/json put the empty list.
	const empty = "[]\n    }"
	nf := t.NumFrames()
	if nf == 0 || !bytes.HasSuffix(head, []byte(empty)) {
		_, err := bw.Write(head)
		return err
	}
	bw.Write(head[:len(head)-len(empty)])
	bw.WriteString("[")
	var fb unwind.Frame
	for j := 0; j < nf; j++ {
		b := s.buf[:0]
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n        {"...)
		if b, err = s.appendFrame(b, t.frame(j, &fb), t, j); err != nil {
			return err
		}
		b = append(b, "\n        }"...)
		s.buf = b
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	_, err = bw.WriteString("\n      ]\n    }")
	return err
}

// jsonFooter ends the document.
func (s *Writer) jsonFooter() {
	if s.n > 0 {
		s.bw.WriteString("\n  ]\n}\n")
	} else {
		s.bw.WriteString("]\n}\n")
	}
}

// appendFrame appends the fields of frame j of t as encoding/json prints
// its jsonFrame indented inside the document.
func (s *Writer) appendFrame(b []byte, f *unwind.Frame, t *Thread, j int) ([]byte, error) {
	const in = "\n          \""
	field := func(b []byte, name string) []byte {
		b = append(b, in...)
		b = append(b, name...)
		return append(b, "\": "...)
	}
	hexField := func(b []byte, name string, v uint64) []byte {
		b = field(b, name)
		b = append(b, "\"0x"...)
		b = appendHex(b, v)
		return append(b, '"')
	}
	str := func(b []byte, name, v string) []byte {
		b = append(b, ',')
		b = field(b, name)
		return s.quoted.append(b, v)
	}
	b = field(b, "index")
	b = strconv.AppendInt(b, int64(f.Index), 10)
	b = append(b, ',')
	b = hexField(b, "pc", f.PC)
	b = append(b, ',')
	b = hexField(b, "sp", f.SP)
	if f.CFA != 0 {
		b = append(b, ',')
		b = hexField(b, "cfa", f.CFA)
	}
	function, symbol, module := "", "", ""
	var offset, size uint64
	if f.SymOK {
		function, symbol, module = f.Sym.Name, f.Sym.Name, f.Sym.Module
		offset, size = f.PC-f.Sym.Addr, f.Sym.Size
	} else if f.Sym.Module != "" {
		module = f.Sym.Module // a mapped file's text without a symbol
	}
	if f.Function != "" {
		function = f.Function
	}
	if function != "" {
		b = str(b, "function", function)
	}
	if symbol != "" {
		b = str(b, "symbol", symbol)
	}
	b = append(b, ',')
	b = field(b, "offset")
	b = strconv.AppendUint(b, offset, 10)
	b = append(b, ',')
	b = field(b, "size")
	b = strconv.AppendUint(b, size, 10)
	if module != "" {
		b = str(b, "module", module)
	}
	if f.File != "" {
		b = str(b, "file", f.File)
	}
	if f.Line != 0 {
		b = append(b, ',')
		b = field(b, "line")
		b = strconv.AppendInt(b, int64(f.Line), 10)
	}
	b = append(b, ',')
	b = field(b, "inlined")
	b = strconv.AppendBool(b, f.Inlined)
	b = str(b, "kind", f.Kind.String())
	if f.Entry != "" {
		b = str(b, "entry", f.Entry)
	}
	if f.Partial {
		b = append(b, ',')
		b = field(b, "partial")
		b = append(b, "true"...)
	}
	if f.RegsAddr != 0 {
		b = append(b, ',')
		b = hexField(b, "regs_addr", f.RegsAddr)
	}
	b = str(b, "stack", f.Stack.Kind.String())
	b = str(b, "method", f.Method.String())
	b = append(b, ',')
	b = field(b, "reliable")
	b = strconv.AppendBool(b, f.Reliable)
	if f.Regs.Mask() != 0 {
		b = append(b, ',')
		b = field(b, "regs")
		b = append(b, '{')
		first := true
		for _, r := range regsByName {
			v, ok := f.Regs.Get(r)
			if !ok {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, "\n            \""...)
			b = append(b, r.String()...)
			b = append(b, "\": \"0x"...)
			b = appendHex(b, v)
			b = append(b, '"')
		}
		b = append(b, "\n          }"...)
	}
	if j < len(t.Values) && t.Values[j].OK {
		for _, vs := range []struct {
			name string
			v    []symbols.Value
		}{{"args", t.Values[j].Args}, {"locals", t.Values[j].Locals}} {
			enc, err := json.MarshalIndent(valuesJSON(vs.v), "          ", "  ")
			if err != nil {
				return b, err
			}
			b = append(b, ',')
			b = field(b, vs.name)
			b = append(b, enc...)
		}
	}
	return b, nil
}

// regsByName lists the registers in the order encoding/json prints a map
// keyed by their names: sorted by name.
var regsByName = func() []ptregs.Reg {
	rs := make([]ptregs.Reg, 0, ptregs.NumRegs)
	for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].String() < rs[j].String() })
	return rs
}()

// appendJSONString appends s quoted as encoding/json quotes it (HTML
// characters escaped, invalid UTF-8 replaced): plain printable ASCII
// directly, anything else through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }

// appendHex appends v in lower-case hex without leading zeros, as
// strconv.AppendUint(b, v, 16) does.
func appendHex(b []byte, v uint64) []byte {
	n := max(1, (bits.Len64(v)+3)/4)
	b = append(b, make([]byte, n)...)
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = "0123456789abcdef"[v&15]
		v >>= 4
	}
	return b
}

// quoteCache keeps the JSON form of the strings a trace repeats in every
// frame (its function, file and module names, its kinds): the same string
// is quoted once.
type quoteCache [64]struct {
	s string
	q []byte
}

// append appends s quoted as appendJSONString does.
func (c *quoteCache) append(b []byte, s string) []byte {
	h := uint(len(s))
	if len(s) > 0 {
		h = h*31 + uint(s[0])*7 + uint(s[len(s)-1])
	}
	e := &c[h%uint(len(c))]
	if e.q == nil || e.s != s {
		e.s, e.q = s, appendJSONString(e.q[:0], s)
	}
	return append(b, e.q...)
}
