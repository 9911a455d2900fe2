package cli

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
)

type symbolizeOptions struct {
	syms   []string
	bias   string
	output outputFormat
}

// NewCmdSymbolize builds `unwind symbolize --sym FILE ADDR...`.
func NewCmdSymbolize(ios *IOStreams) *cobra.Command {
	opts := &symbolizeOptions{output: outputText}
	cmd := &cobra.Command{
		Use:   "symbolize --sym FILE ADDR...",
		Short: "Turn addresses into symbol+offset/size and source lines",
		Long: `Symbolize looks up each address in the symbol files given with --sym: ELF
executables, shared libraries or vmlinux (symbols, and source lines with
inlined callers when the file has DWARF), System.map, or /proc/kallsyms text.
--bias is added to every address in the files (a KASLR offset, or a shared
library's load address); the addresses on the command line are runtime
addresses.`,
		Example: `  unwind symbolize --sym vmlinux 0xffffffff81a2b3c4
  unwind symbolize --sym System.map --bias 0x1e000000 ffffffff9fa2b3c4
  unwind symbolize --sym ./a.out -o json 0x401136`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSymbolize(ios, opts, args)
		},
	}
	stringsVar(cmd.Flags(), &opts.syms, "sym", "symbol `FILE` (ELF, System.map or kallsyms); repeatable")
	cmd.Flags().StringVar(&opts.bias, "bias", "0", "load bias or KASLR offset added to the files' addresses")
	cmd.Flags().VarP(&opts.output, "output", "o", "output format: text or json")
	return cmd
}

// symbolizedAddr is one address's answer, and the JSON form of it.
type symbolizedAddr struct {
	Addr     string          `json:"addr"`
	Found    bool            `json:"found"`
	Function string          `json:"function,omitempty"`
	Offset   uint64          `json:"offset"`
	Size     uint64          `json:"size"`
	Module   string          `json:"module,omitempty"`
	Lines    []symbolizedLoc `json:"lines,omitempty"`
}

type symbolizedLoc struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Inlined  bool   `json:"inlined"`
}

func runSymbolize(ios *IOStreams, opts *symbolizeOptions, args []string) error {
	if len(opts.syms) == 0 {
		return usagef("symbolize needs at least one --sym FILE")
	}
	bias, err := parseAddr(opts.bias)
	if err != nil {
		return usagef("--bias %q is not a hex number", opts.bias)
	}
	set, err := loadSymbolFiles(opts.syms, bias)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range set.Modules() {
			f.Close() // keeps what lookups decompressed in the debug cache
		}
	}()
	addrs := make([]uint64, len(args))
	for i, a := range args {
		if addrs[i], err = resolveAddr(set, a); err != nil {
			return err
		}
	}
	var out []symbolizedAddr
	var lines []symbols.Line
	missing := 0
	for _, a := range addrs {
		r := symbolizedAddr{Addr: hex(a)}
		if s, ok := set.Symbol(a); ok {
			r.Found = true
			r.Function, r.Offset, r.Size, r.Module = s.Name, a-s.Addr, s.Size, s.Module
		} else {
			missing++
		}
		lines = set.Lines(a, lines[:0])
		for _, l := range lines {
			r.Lines = append(r.Lines, symbolizedLoc{l.Function, l.File, l.Line, l.Inlined})
		}
		out = append(out, r)
	}
	if opts.output == outputJSON {
		if err := writeJSON(ios.Out, map[string]any{"version": JSONVersion, "addresses": out}); err != nil {
			return err
		}
	} else {
		writeSymbolizedText(ios.Out, out)
	}
	if missing > 0 {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%d of %d addresses have no symbol", missing, len(addrs))}
	}
	return nil
}

// writeSymbolizedText prints one line per address, "ADDR func+0xoff/0xsize
// [module]", then the source lines innermost first in addr2line's style.
func writeSymbolizedText(w io.Writer, out []symbolizedAddr) {
	for _, r := range out {
		if !r.Found {
			fmt.Fprintf(w, "%s ??\n", r.Addr)
		} else {
			mod := ""
			if r.Module != "" {
				mod = " [" + r.Module + "]"
			}
			fmt.Fprintf(w, "%s %s+%#x/%#x%s\n", r.Addr, r.Function, r.Offset, r.Size, mod)
		}
		// Innermost first, as addr2line -f -i prints them: the code at the
		// address, then each function it is inlined into.
		for i, l := range r.Lines {
			if i == 0 {
				fmt.Fprintf(w, "    %s at %s:%d\n", l.Function, l.File, l.Line)
			} else {
				fmt.Fprintf(w, "     (inlined by) %s at %s:%d\n", l.Function, l.File, l.Line)
			}
		}
	}
}

// loadSymbolFiles opens each file as ELF, System.map or kallsyms, by content.
func loadSymbolFiles(paths []string, bias uint64) (*symbols.Set, error) {
	set := &symbols.Set{}
	for _, p := range paths {
		kind, err := sniffSymbolFile(p)
		if err != nil {
			return nil, fmt.Errorf("--sym %s: %w", p, err)
		}
		switch kind {
		case symFileELF:
			f, err := symbols.Open(p, bias)
			if err != nil {
				return nil, err // names the file
			}
			set.Add(f)
		case symFileMap, symFileKallsyms:
			fh, err := fileio.OpenRegular(p)
			if err != nil {
				return nil, err
			}
			var t *symbols.Table
			if kind == symFileKallsyms {
				t, err = symbols.ParseKallsyms(bufio.NewReader(fh), bias)
			} else {
				t, err = symbols.ParseSystemMap(bufio.NewReader(fh), bias)
			}
			fh.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			set.AddTable(t, "")
		default:
			return nil, usagef("--sym %s is neither an ELF file nor a symbol list (System.map, kallsyms): %s", p, kind)
		}
	}
	return set, nil
}

// resolveAddr turns a command-line argument into an address: a symbol name,
// optionally with +OFFSET (crash's `sym NAME`), or a hex address (0x
// optional; "0d" for decimal). A bare word that is both a symbol's name and
// valid hex ("add", "face") is the symbol; write 0xadd for the address.
func resolveAddr(set *symbols.Set, arg string) (uint64, error) {
	name, off, hasOff := strings.Cut(strings.TrimSpace(arg), "+")
	if !strings.HasPrefix(name, "0x") && !strings.HasPrefix(name, "0X") && name != "" {
		if s, ok := set.ByName(name); ok {
			if !hasOff {
				return s.Addr, nil
			}
			o, err := parseAddr(off)
			if err != nil {
				return 0, usagef("%q: the offset %q is not a number (write NAME+0x10)", arg, off)
			}
			return s.Addr + o, nil
		}
	}
	a, err := parseAddr(arg)
	if err != nil {
		if hasOff || !isHexWord(arg) {
			return 0, usagef("%q is neither an address nor the name of a symbol in the --sym files", arg)
		}
		return 0, usagef("%q is not a valid address", arg)
	}
	return a, nil
}

func isHexWord(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return s != ""
}

// parseAddr reads an address in hex (with or without 0x) or, with a 0d
// prefix, decimal.
func parseAddr(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "0d") {
		return strconv.ParseUint(s[2:], 10, 64)
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	return strconv.ParseUint(s, 16, 64)
}
