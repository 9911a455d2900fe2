package report

import (
	"strings"

	"github.com/unwind-dev/unwind/symbols"
)

// FrameValues are one frame's parameters and local variables in scope
// (unwind.FrameValues); OK is false when no DWARF describes its function.
type FrameValues struct {
	Args, Locals []symbols.Value
	OK           bool
}

// argsText is the " (x=16, p=0x…)" gdb prints after a frame's function,
// "" when the thread has no values or the frame no DWARF.
func argsText(t *Thread, i int) string {
	if i >= len(t.Values) || !t.Values[i].OK {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (")
	for k := range t.Values[i].Args {
		v := &t.Values[i].Args[k]
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.Name)
		b.WriteByte('=')
		b.WriteString(v.Text())
	}
	b.WriteByte(')')
	return b.String()
}

// writeLocals prints a frame's locals one per line, as gdb's bt full:
// "name = value", or "No locals.".
func writeLocals(w *errWriter, t *Thread, i int, indent string) {
	if i >= len(t.Values) || !t.Values[i].OK {
		return
	}
	if len(t.Values[i].Locals) == 0 {
		w.printf("No locals.\n") // at column 0, as gdb prints it
		return
	}
	for k := range t.Values[i].Locals {
		v := &t.Values[i].Locals[k]
		w.printf("%s%s = %s\n", indent, v.Name, v.Text())
	}
}

// jsonValue is one parameter or local in -o json.
type jsonValue struct {
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	Value     *string `json:"value"`
	Location  string  `json:"location,omitempty"`
	Recovered string  `json:"recovered"`
	Reason    string  `json:"reason,omitempty"`
}

func valuesJSON(vs []symbols.Value) []jsonValue {
	out := make([]jsonValue, len(vs))
	for i := range vs {
		v := &vs[i]
		out[i] = jsonValue{Name: v.Name, Type: v.Type, Location: v.Location, Recovered: v.Recovered.String(), Reason: v.Reason}
		if v.Recovered.Known() {
			s := v.Value
			out[i].Value = &s
		}
	}
	return out
}
