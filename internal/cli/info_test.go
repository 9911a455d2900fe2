package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
)

// info never says the log has no crash message after printing one.
func TestInfoNoCrashedCPU(t *testing.T) {
	for _, panicMsg := range []string{"", "Kernel panic - not syncing: sysrq triggered crash"} {
		var out bytes.Buffer
		writeInfo(&out, "vmcore", &dump.Info{Kind: dump.KindVmcore, Crashed: -1, Panic: panicMsg})
		text := out.String()
		printed := strings.Contains(text, "panic:    "+panicMsg)
		denied := strings.Contains(text, "no crash message in the log")
		if panicMsg != "" && (!printed || denied) {
			t.Errorf("crash message printed %v, then denied %v:\n%s", printed, denied, text)
		}
		if panicMsg == "" && !denied {
			t.Errorf("no crash message, and info does not say so:\n%s", text)
		}
	}
}
