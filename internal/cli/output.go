package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// JSONVersion is the "version" field of every JSON document the command
// prints. It changes only when a field is renamed or removed.
const JSONVersion = 1

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
