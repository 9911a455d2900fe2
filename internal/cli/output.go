package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/unwind-dev/unwind/internal/report"
)

// JSONVersion is the "version" field of every JSON document the command
// prints (bt, info, symbolize, …): one version for them all, that of the
// bt contract (report.JSONVersion). It changes only when a field is
// renamed or removed or changes meaning.
const JSONVersion = report.JSONVersion

// outputFormat is the value of -o/--output: text or json.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

// String implements pflag.Value.
func (o *outputFormat) String() string { return string(*o) }

// Set implements pflag.Value and rejects anything but text and json.
func (o *outputFormat) Set(s string) error {
	switch outputFormat(strings.ToLower(s)) {
	case outputText, outputJSON:
		*o = outputFormat(strings.ToLower(s))
		return nil
	}
	return fmt.Errorf("output format must be text or json, not %q", s)
}

// Type implements pflag.Value.
func (o *outputFormat) Type() string { return "text|json" }

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// hex formats an address the way the JSON contract does: "0x…".
func hex(v uint64) string { return fmt.Sprintf("%#x", v) }
