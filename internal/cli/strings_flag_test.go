package cli

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

// TestStringsVar: stringsVar's flags take values as pflag's StringArray
// does (each use one value, commas kept), show no default, and stay
// repeatable for shell completion.
func TestStringsVar(t *testing.T) {
	var got, ref []string
	f := pflag.NewFlagSet("x", pflag.ContinueOnError)
	stringsVar(f, &got, "sym", "symbol `FILE`")
	f.StringArrayVar(&ref, "ref", nil, "symbol `FILE`")
	args := []string{"--sym", "a,b", "--ref", "a,b", "--sym=c", "--ref=c"}
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ref) || len(got) != 2 {
		t.Errorf("values %q, StringArray gives %q", got, ref)
	}
	sym, r := f.Lookup("sym"), f.Lookup("ref")
	if sym.Value.Type() != r.Value.Type() {
		t.Errorf("type %q, StringArray's %q", sym.Value.Type(), r.Value.Type())
	}
	if _, ok := sym.Value.(pflag.SliceValue); !ok {
		t.Error("not a pflag.SliceValue: completion would not offer the flag again")
	}
	g := pflag.NewFlagSet("y", pflag.ContinueOnError)
	var a, b []string
	stringsVar(g, &a, "sym", "symbol `FILE`")
	g.StringArrayVar(&b, "ref", nil, "symbol `FILE`")
	usage := g.FlagUsages()
	if want := "      --ref FILE   symbol FILE\n      --sym FILE   symbol FILE\n"; usage != want {
		t.Errorf("usage\n%s\nwant (no default shown, as StringArray)\n%s", usage, want)
	}
}
