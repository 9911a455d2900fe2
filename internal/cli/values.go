package cli

import (
	"github.com/spf13/pflag"

	"github.com/unwind-dev/unwind/internal/report"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// valueFlags are bt's --args, --locals and --depth.
type valueFlags struct {
	args, locals bool
	depth        int
	noStrings    bool
}

func (v *valueFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&v.args, "args", false, "print each frame's parameters on its line, as gdb's bt (from DWARF; -o json: \"args\")")
	f.BoolVar(&v.locals, "locals", false, "also print each frame's local variables under it, as gdb's bt full (-o json: \"args\" and \"locals\")")
	f.IntVar(&v.depth, "depth", 1, "with --args/--locals: levels of structs and arrays to expand (deeper ones print as {...})")
	f.BoolVar(&v.noStrings, "no-strings", false, "with --args/--locals: print char pointers as addresses, without the string they point to")
}

// wanted reports whether values were asked for: compute then needs every
// frame.
func (v *valueFlags) wanted() bool { return v.args || v.locals }

// compute returns the values of every frame when asked for, else nil.
func (v *valueFlags) compute(frames []unwind.Frame, mem unwind.Memory, set *symbols.Set) []report.FrameValues {
	if !v.args && !v.locals || set == nil {
		return nil
	}
	opts := &symbols.ValueOptions{Depth: v.depth, NoStrings: v.noStrings}
	out := make([]report.FrameValues, len(frames))
	for i := range frames {
		a, l, ok := unwind.FrameValues(frames, i, mem, set, opts)
		out[i] = report.FrameValues{Args: a, Locals: l, OK: ok}
	}
	return out
}
