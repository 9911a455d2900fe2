package symbols

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseError reports a malformed line of System.map or kallsyms text.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("symbols: line %d: %s", e.Line, e.Msg) }

// maxLine bounds one line of System.map/kallsyms text.
const maxLine = 64 << 10

// ParseSystemMap reads a System.map ("ffffffff81000000 T _text" per line) and
// adds bias (the KASLR offset) to every address. Absolute ('a'/'A') symbols
// are not relocated. Blank lines are skipped; any other malformed line is a
// *ParseError.
func ParseSystemMap(r io.Reader, bias uint64) (*Table, error) {
	return parseNM(r, bias, false)
}

// ParseKallsyms reads /proc/kallsyms text, whose lines may end with a
// "[module]" column naming the loadable module (it becomes Sym.Module), and
// adds bias to every address. Use bias 0 for a kallsyms read on the running
// system, which already shows relocated addresses.
func ParseKallsyms(r io.Reader, bias uint64) (*Table, error) {
	return parseNM(r, bias, true)
}

// typeRank orders aliases by nm type letter: text first.
func typeRank(c byte) int {
	switch c {
	case 'T', 't':
		return 0
	case 'W', 'w':
		return 1
	case 'D', 'd', 'B', 'b', 'R', 'r':
		return 2
	}
	return 3
}

func parseNM(r io.Reader, bias uint64, modules bool) (*Table, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var b tableBuilder
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, &ParseError{Line: n, Msg: "want address, type and name"}
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, &ParseError{Line: n, Msg: "bad address " + strconv.Quote(f[0])}
		}
		if len(f[1]) != 1 {
			return nil, &ParseError{Line: n, Msg: "bad type " + strconv.Quote(f[1])}
		}
		typ := f[1][0]
		mod := ""
		switch {
		case len(f) == 4 && modules:
			m := f[3]
			if len(m) < 2 || m[0] != '[' || m[len(m)-1] != ']' {
				return nil, &ParseError{Line: n, Msg: "bad module column " + strconv.Quote(m)}
			}
			mod = m[1 : len(m)-1]
		case len(f) != 3:
			return nil, &ParseError{Line: n, Msg: "extra fields"}
		}
		if typ != 'a' && typ != 'A' {
			addr += bias
		}
		b.add(addr, 0, 0, b.nb.ref(f[2]), typeRank(typ)*2+kallsymsRank(f[2], false), typ, b.module(mod))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: n, Msg: fmt.Sprintf("line longer than %d bytes: not a symbol list", maxLine)}
		}
		return nil, fmt.Errorf("symbols: reading symbol text after line %d: %w", n-1, err)
	}
	return b.build(true), nil
}
