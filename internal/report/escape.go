package report

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape makes a string read from a dump safe to print on a terminal:
// control characters (C0 but tab, DEL, C1, which could move the cursor,
// clear the screen or fake a line of output) and invalid UTF-8 become \n,
// \xNN or \u escapes; everything else, tabs included (the kernel log has
// them), is left as it is. A string that needs no
// escaping is returned without allocating.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if needsEscape(r, n) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case needsEscape(r, n):
			q := strconv.QuoteRuneToASCII(r) // '\n', '\x1b', '\u0085'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune, n int) bool {
	return (r == utf8.RuneError && n == 1) || (unicode.IsControl(r) && r != '\t') || r == '\u2028' || r == '\u2029'
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

// appendEscaped appends Escape(string(p)) to dst, without a copy when p is
// printable ASCII (a frame line usually is).
func appendEscaped(dst, p []byte) []byte {
	for _, c := range p {
		if c < 0x20 || c >= 0x7f {
			return append(dst, Escape(string(p))...)
		}
	}
	return append(dst, p...)
}
