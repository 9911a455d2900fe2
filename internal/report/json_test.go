package report

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// writeJSONReference is WriteJSON as it was before it streamed: the whole
// document built as values and indented by encoding/json. WriteJSON must
// print the same bytes.
func writeJSONReference(w io.Writer, doc *Document) error {
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

// WriteJSON prints what the reference (encoding/json over the whole
// document) prints, for every field set and unset and for strings that
// need escaping (HTML characters, control characters, invalid UTF-8,
// U+2028), with and without threads, frames, registers and values.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	var regs ptregs.Regs
	regs.Set(ptregs.RIP, 0x401000)
	regs.Set(ptregs.RSP, 0x7ffc0000)
	regs.Set(ptregs.R15, 0)
	regs.Set(ptregs.RBP, 1)
	odd := []string{"", "plain", "a<b", "b>c", "c&d", "a<b>&c", "quote\"back\\slash", "ctl\x01\x1b[2J\n\t\b\f", "bad\xff\xfe", "line\u2028sep", "ünï"}
	var frames []unwind.Frame
	for i, s := range odd {
		f := unwind.Frame{Index: i, PC: 0x401000 + uint64(i), SP: uint64(i) * 8, CFA: uint64(i) * 16, Inlined: i%2 == 1,
			Kind: unwind.FrameKind(i % 3), Entry: s, Partial: i%3 == 0, RegsAddr: uint64(i % 2), Reliable: i%4 == 0,
			File: s, Line: i, Function: odd[(i+3)%len(odd)]}
		f.Sym = symbols.Sym{Name: s, Addr: 0x401000, Size: uint64(i) * 0x10, Module: odd[(i+1)%len(odd)]}
		f.SymOK = i%3 != 2 // else a module's text without a symbol
		if i%2 == 0 {
			f.Regs = regs
		}
		frames = append(frames, f)
	}
	values := []FrameValues{{OK: true, Args: []symbols.Value{{Name: "x<", Type: "int", Value: "1", Location: "rdi"}}},
		{}, {OK: true}}
	for _, doc := range []*Document{
		{Dump: DumpInfo{Kind: "user-core"}},
		{Dump: DumpInfo{Kind: "kernel-vmcore", Path: "a&b", Release: "6.1", Extra: map[string]string{"z": "1", "a": "<2>"}},
			Threads: []Thread{
				{TID: 1, CPU: -1, Comm: "ctl\x01", Frames: frames, StopReason: "end<", Values: values},
				{TID: 2, CPU: 3, Crashed: true, Signal: 11, Reliable: true, Truncated: true, Unwalked: 5,
					Task: &Task{PID: 2, Comm: "x", State: "R", Address: 0xffff}},
				{TID: 3, CPU: 0, Frames: frames[:1], Truncated: true, Unwalked: -1},
			}},
	} {
		var got, want bytes.Buffer
		if err := WriteJSON(&got, doc); err != nil {
			t.Fatal(err)
		}
		if err := writeJSONReference(&want, doc); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want.String(), got.String()); d != "" {
			t.Errorf("WriteJSON differs from encoding/json (-want +got):\n%s", d)
		}
	}
}

// appendHex writes what strconv.AppendUint(b, v, 16) writes, and the
// quote cache what appendJSONString does, for strings that share a slot.
func TestAppendHexAndQuoteCache(t *testing.T) {
	for _, v := range []uint64{0, 1, 0xf, 0x10, 0xff, 0x401009, 0x7ffead004bf8, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		if got, want := string(appendHex([]byte("x"), v)), string(strconv.AppendUint([]byte("x"), v, 16)); got != want {
			t.Errorf("appendHex(%#x) = %q, want %q", v, got, want)
		}
	}
	var c quoteCache
	for _, s := range []string{"call", "user", "", "a<b>", "call", "x\x01y", "\xff", "user", "", "a<b>"} {
		if got, want := string(c.append([]byte("["), s)), string(appendJSONString([]byte("["), s)); got != want {
			t.Errorf("quoted %q = %q, want %q", s, got, want)
		}
	}
}
