package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/unwind-dev/unwind/ptregs"
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
func WriteJSON(w io.Writer, doc *Document) error {
	out := jsonDocument{
		Version: JSONVersion,
		Dump:    jsonDump{doc.Dump.Kind, doc.Dump.Path, doc.Dump.Release, doc.Dump.Extra},
		Threads: make([]jsonThread, 0, len(doc.Threads)),
	}
	for i := range doc.Threads {
		t := &doc.Threads[i]
		jt := jsonThread{
			TID: t.TID, Crashed: t.Crashed, Signal: t.Signal, Comm: t.Comm,
			Reliable: t.Reliable, Truncated: t.Truncated, StopReason: t.StopReason,
			Frames: make([]jsonFrame, 0, len(t.Frames)),
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
		for j := range t.Frames {
			jt.Frames = append(jt.Frames, frameJSON(&t.Frames[j]))
			if j < len(t.Values) && t.Values[j].OK {
				jf := &jt.Frames[len(jt.Frames)-1]
				args, locals := valuesJSON(t.Values[j].Args), valuesJSON(t.Values[j].Locals)
				jf.Args, jf.Locals = &args, &locals
			}
		}
		out.Threads = append(out.Threads, jt)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func frameJSON(f *unwind.Frame) jsonFrame {
	jf := jsonFrame{
		Index:    f.Index,
		PC:       hex(f.PC),
		SP:       hex(f.SP),
		Inlined:  f.Inlined,
		Kind:     f.Kind.String(),
		Entry:    f.Entry,
		Partial:  f.Partial,
		Stack:    f.Stack.Kind.String(),
		Method:   f.Method.String(),
		Reliable: f.Reliable,
		File:     f.File,
		Line:     f.Line,
	}
	if f.CFA != 0 {
		jf.CFA = hex(f.CFA)
	}
	if f.SymOK {
		jf.Function = f.Sym.Name
		jf.Symbol = f.Sym.Name
		jf.Offset = f.PC - f.Sym.Addr
		jf.Size = f.Sym.Size
		jf.Module = f.Sym.Module
	} else if f.Sym.Module != "" {
		jf.Module = f.Sym.Module // a mapped file's text without a symbol
	}
	if f.Function != "" {
		jf.Function = f.Function
	}
	if f.RegsAddr != 0 {
		jf.RegsAddr = hex(f.RegsAddr)
	}
	jf.Regs = regsJSON(&f.Regs)
	return jf
}

// regsJSON lists the known registers by name ("rip", "rsp", …).
func regsJSON(r *ptregs.Regs) map[string]string {
	var m map[string]string
	for i := ptregs.Reg(0); i < ptregs.NumRegs; i++ {
		if v, ok := r.Get(i); ok {
			if m == nil {
				m = make(map[string]string, ptregs.NumRegs)
			}
			m[i.String()] = hex(v)
		}
	}
	return m
}

func hex(v uint64) string { return fmt.Sprintf("%#x", v) }
