package cli

import (
	"strings"
	"testing"
)

// Shell completion completes flag values and scenario names, through the
// hidden __complete command every cobra completion script calls.
func TestCompletion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"bt", "core", "-o", ""}, []string{"text", "json"}, nil},
		{[]string{"info", "core", "--output", "j"}, []string{"json"}, []string{"text"}},
		{[]string{"bt", "core", "--methods", "cfi,f"}, []string{"cfi,fp"}, []string{"cfi,cfi", "cfi,all"}},
		{[]string{"bt", "core", "--methods", ""}, []string{"all", "cfi", "fp", "ptregs", "signal", "scan"}, nil},
		{[]string{"verify", "nmi-"}, []string{"nmi-irq-task", "nmi-latched"}, []string{"demo"}},
		{[]string{"emulate", "dem"}, []string{"demo"}, nil},
	} {
		out, stderr, code := run(t, append([]string{"__complete"}, c.args...)...)
		if code != ExitOK {
			t.Errorf("%q: exit %d %s", c.args, code, stderr)
			continue
		}
		lines := strings.Split(out, "\n")
		has := func(s string) bool {
			for _, l := range lines {
				if l == s {
					return true
				}
			}
			return false
		}
		for _, w := range c.want {
			if !has(w) {
				t.Errorf("%q: %q not offered:\n%s", c.args, w, out)
			}
		}
		for _, w := range c.not {
			if has(w) {
				t.Errorf("%q: %q offered:\n%s", c.args, w, out)
			}
		}
	}
}
