package cli

import (
	"strings"

	"github.com/spf13/pflag"
)

// stringsValue is a repeatable string flag, as pflag's StringArray is
// (each use adds one value; commas are not split), but its String does not
// build a 4 KB CSV writer: pflag calls String on every flag as the command
// tree is made, in every run, for the default value it shows in help.
type stringsValue struct {
	p   *[]string
	set bool
}

// stringsVar defines a repeatable string flag on f that stores its values
// in p, starting empty.
func stringsVar(f *pflag.FlagSet, p *[]string, name, usage string) {
	*p = nil
	f.Var(&stringsValue{p: p}, name, usage)
}

func (s *stringsValue) Set(v string) error {
	if !s.set {
		*s.p, s.set = nil, true
	}
	*s.p = append(*s.p, v)
	return nil
}

// Type is pflag's name for a repeatable string flag, which help and
// shell completion show.
func (s *stringsValue) Type() string { return "stringArray" }

// String is empty for no values, so that help shows no default.
func (s *stringsValue) String() string {
	if len(*s.p) == 0 {
		return ""
	}
	return "[" + strings.Join(*s.p, ",") + "]"
}

// Append, Replace and GetSlice make it a pflag.SliceValue, which tells
// shell completion that the flag may be given again.
func (s *stringsValue) Append(v string) error {
	*s.p = append(*s.p, v)
	return nil
}

func (s *stringsValue) Replace(vs []string) error {
	*s.p = append([]string(nil), vs...)
	return nil
}

func (s *stringsValue) GetSlice() []string { return append([]string(nil), *s.p...) }
