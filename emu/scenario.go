package emu

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Scenario is a parsed scenario file (format: fixtures/scenarios/README.md).
type Scenario struct {
	Name       string
	Kernel     string // "fp" (default) or "nofp"
	CPUs       int    // default 1
	MaxSteps   uint64 // default DefaultMaxSteps
	Pokes      []Poke
	Breaks     []HWBreak
	Handlers   []string // extra pt_regs handler functions
	Actions    []Action // injections, snapshots and stops, in file order
	Invariants []Invariant
	Sweeps     []Sweep // swept event arrivals (SweepScenario); RunScenario ignores them
	// Corrupts is the scenario's `corrupts stack|code WHY` declaration:
	// the bug it demonstrates destroys what an unwinder reads (a stack
	// frame overwritten, code torn mid-write), so at some boundaries no
	// unwinder can be exact ("" when nothing is declared). CorruptsWhy
	// says what and where.
	Corrupts    string
	CorruptsWhy string
}

// Sweep is a `sweep` directive: the run is repeated once per instruction
// that CPU retires in the window [From, To] (or From and the Count
// instructions after it), each time raising the event (Kind "nmi" or
// "irq" with Vector) on CPU Target at that one instruction boundary; the
// invariants are checked per point (SweepScenario).
type Sweep struct {
	Kind   string // ActNMI or ActIRQ
	CPU    int    // the CPU whose retired instructions define the window
	Target int    // the CPU the event is raised on (default CPU)
	Vector int    // irq
	From   Trigger
	To     Trigger // zero when Count is used
	Count  uint64
	Line   int
}

// DefaultMaxSteps bounds a scenario that names no limit.
const DefaultMaxSteps = 50_000_000

// Poke writes Value (Size bytes) at Symbol+Off before reset.
type Poke struct {
	Symbol string
	Off    uint64
	Value  uint64
	Size   int
	Line   int
}

// HWBreak arms debug register DR<Slot> as an execute breakpoint at Symbol+Off
// on CPU (DR7 local enable) before reset.
type HWBreak struct {
	CPU, Slot int
	Symbol    string
	Off       uint64
	Line      int
}

// Trigger says when an action happens on its CPU.
type Trigger struct {
	Insn   uint64 // InsnTrigger: when the CPU has retired Insn instructions
	Symbol string // SymTrigger: the Count-th arrival at Symbol+Off
	Off    uint64
	Count  int
	Halt   bool // stop until=halt
}

// IsSym reports whether t is a symbol-arrival trigger.
func (t Trigger) IsSym() bool { return t.Symbol != "" }

func (t Trigger) String() string {
	switch {
	case t.Halt:
		return "until=halt"
	case t.Symbol != "":
		s := "sym:" + t.Symbol
		if t.Off != 0 {
			s += fmt.Sprintf("+%#x", t.Off)
		}
		return s + "#" + strconv.Itoa(t.Count)
	}
	return "insn:" + strconv.FormatUint(t.Insn, 10)
}

// Action kinds.
const (
	ActNMI      = "nmi"
	ActIRQ      = "irq"
	ActSnapshot = "snapshot"
	ActStop     = "stop"
)

// Action is one timed directive.
type Action struct {
	Kind   string
	CPU    int
	Vector int    // irq
	Name   string // snapshot
	At     Trigger
	Line   int
}

// Invariant is a checked property. Kinds: "no-error", "idt-restored",
// "stack-intact", "no-frame-clobber", "console-contains", "exit-status",
// "no-snapshot-missed" (fixtures/scenarios/README.md).
//
// With expect=fail the invariant documents a bug the scenario shows: its
// failures are reported as expected, and it fails if it holds.
type Invariant struct {
	Name       string
	Kind       string
	Arg        string
	Line       int
	ExpectFail bool
	Args       []string // all positional arguments (site-bytes: SYMBOL ALT...)
	CPU        int      // exit-status: the CPU (cpu=, default 0)
	Site       string   // call-like: site=SYMBOL
}

// ParseScenario parses scenario text. name is used when the text has no
// `name` directive. Errors name the line.
func ParseScenario(name string, text []byte) (*Scenario, error) {
	sc := &Scenario{Name: name, Kernel: "fp", CPUs: 1, MaxSteps: DefaultMaxSteps}
	for i, line := range strings.Split(string(text), "\n") {
		ln := i + 1
		line = stripComment(line)
		f, err := fields(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, ln, err)
		}
		if len(f) == 0 {
			continue
		}
		if err := sc.directive(f, ln); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", name, ln, f[0], err)
		}
	}
	for _, a := range sc.Actions {
		if a.CPU >= sc.CPUs {
			return nil, fmt.Errorf("%s:%d: cpu %d but the scenario has %d CPUs", name, a.Line, a.CPU, sc.CPUs)
		}
	}
	for _, w := range sc.Sweeps {
		if w.CPU >= sc.CPUs || w.Target >= sc.CPUs {
			return nil, fmt.Errorf("%s:%d: cpu %d/target %d but the scenario has %d CPUs", name, w.Line, w.CPU, w.Target, sc.CPUs)
		}
	}
	for _, inv := range sc.Invariants {
		if inv.CPU >= sc.CPUs {
			return nil, fmt.Errorf("%s:%d: cpu %d but the scenario has %d CPUs", name, inv.Line, inv.CPU, sc.CPUs)
		}
	}
	return sc, nil
}

// stripComment drops a # comment: a '#' at the start of the line or after
// a blank, outside a quoted string (so sym:NAME#K is not a comment).
func stripComment(line string) string {
	inQuote := false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case '#':
			if !inQuote && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
				return line[:i]
			}
		}
	}
	return line
}

// fields splits a line on blanks, keeping "quoted strings" whole.
func fields(line string) ([]string, error) {
	var out []string
	for {
		line = strings.TrimLeft(line, " \t\r")
		if line == "" {
			return out, nil
		}
		end := strings.IndexAny(line, " \t\r")
		if q := strings.IndexByte(line, '"'); q >= 0 && (end < 0 || q < end) {
			s, err := strconv.QuotedPrefix(line[q:])
			if err != nil {
				return nil, fmt.Errorf("bad quoted string")
			}
			u, _ := strconv.Unquote(s)
			out = append(out, line[:q]+u)
			line = line[q+len(s):]
			continue
		}
		if end < 0 {
			end = len(line)
		}
		out = append(out, line[:end])
		line = line[end:]
	}
}

func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return v, nil
}

// symOff splits "name+0x10".
func symOff(s string) (string, uint64, error) {
	if i := strings.IndexByte(s, '+'); i > 0 {
		off, err := parseUint(s[i+1:])
		return s[:i], off, err
	}
	if s == "" {
		return "", 0, fmt.Errorf("missing symbol")
	}
	return s, 0, nil
}

func parseTrigger(s string) (Trigger, error) {
	switch {
	case strings.HasPrefix(s, "insn:"):
		n, err := parseUint(s[5:])
		return Trigger{Insn: n}, err
	case strings.HasPrefix(s, "sym:"):
		s = s[4:]
		t := Trigger{Count: 1}
		if i := strings.IndexByte(s, '#'); i >= 0 {
			k, err := strconv.Atoi(s[i+1:])
			if err != nil || k < 1 {
				return t, fmt.Errorf("bad arrival count in %q", s)
			}
			t.Count, s = k, s[:i]
		}
		var err error
		t.Symbol, t.Off, err = symOff(s)
		return t, err
	}
	return Trigger{}, fmt.Errorf("bad trigger %q (want insn:N or sym:NAME[+OFF][#K])", s)
}

// kv parses key=value arguments.
func kv(args []string) (map[string]string, []string) {
	m := map[string]string{}
	var rest []string
	for _, a := range args {
		if i := strings.IndexByte(a, '='); i > 0 {
			m[a[:i]] = a[i+1:]
		} else {
			rest = append(rest, a)
		}
	}
	return m, rest
}

func (sc *Scenario) directive(f []string, ln int) error {
	args, rest := kv(f[1:])
	intArg := func(k string, def int) (int, error) {
		s, ok := args[k]
		if !ok {
			return def, nil
		}
		v, err := parseUint(s)
		if err != nil || v > 1<<20 {
			return 0, fmt.Errorf("bad %s=%q", k, s)
		}
		return int(v), nil
	}
	at := func() (Trigger, error) {
		s, ok := args["at"]
		if !ok {
			return Trigger{}, fmt.Errorf("missing at=")
		}
		return parseTrigger(s)
	}
	switch f[0] {
	case "name":
		if len(rest) != 1 {
			return fmt.Errorf("want one name")
		}
		sc.Name = rest[0]
	case "corrupts":
		if len(rest) < 2 || (rest[0] != "stack" && rest[0] != "code") {
			return fmt.Errorf("want corrupts stack|code WHY")
		}
		sc.Corrupts, sc.CorruptsWhy = rest[0], strings.Join(rest[1:], " ")
	case "kernel":
		if len(rest) != 1 || (rest[0] != "fp" && rest[0] != "nofp") {
			return fmt.Errorf("want fp or nofp")
		}
		sc.Kernel = rest[0]
	case "cpus":
		if len(rest) != 1 {
			return fmt.Errorf("want a count")
		}
		n, err := parseUint(rest[0])
		if err != nil || n < 1 || n > MaxCPUs {
			return fmt.Errorf("want 1 to %d", MaxCPUs)
		}
		sc.CPUs = int(n)
	case "limit":
		if len(rest) != 1 {
			return fmt.Errorf("want a step count")
		}
		n, err := parseUint(rest[0])
		if err != nil {
			return err
		}
		sc.MaxSteps = n
	case "boot_args", "poke":
		if f[0] == "boot_args" {
			rest = append([]string{"boot_args"}, rest...)
		}
		if len(rest) != 2 {
			return fmt.Errorf("want SYMBOL VALUE")
		}
		sym, off, err := symOff(rest[0])
		if err != nil {
			return err
		}
		v, err := parseUint(rest[1])
		if err != nil {
			return err
		}
		size, err := intArg("size", 8)
		if err != nil || (size != 1 && size != 2 && size != 4 && size != 8) {
			return fmt.Errorf("size must be 1, 2, 4 or 8")
		}
		sc.Pokes = append(sc.Pokes, Poke{Symbol: sym, Off: off, Value: v, Size: size, Line: ln})
	case "ptregs-handler":
		sc.Handlers = append(sc.Handlers, rest...)
	case "hwbreak":
		cpu, err := intArg("cpu", 0)
		if err != nil {
			return err
		}
		slot, err := intArg("slot", 0)
		if err != nil || slot > 3 {
			return fmt.Errorf("slot must be 0-3")
		}
		sym, off, err := symOff(args["addr"])
		if err != nil {
			return err
		}
		sc.Breaks = append(sc.Breaks, HWBreak{CPU: cpu, Slot: slot, Symbol: sym, Off: off, Line: ln})
	case ActNMI, ActIRQ, ActSnapshot:
		a := Action{Kind: f[0], Line: ln}
		var err error
		if a.CPU, err = intArg("cpu", 0); err != nil {
			return err
		}
		if a.At, err = at(); err != nil {
			return err
		}
		switch f[0] {
		case ActIRQ:
			if a.Vector, err = intArg("vector", 0xec); err != nil || a.Vector < 0x20 || a.Vector > 0xff {
				return fmt.Errorf("vector must be 0x20-0xff")
			}
		case ActSnapshot:
			if len(rest) != 1 || strings.ContainsAny(rest[0], "/\\") {
				return fmt.Errorf("want a snapshot name (no slashes)")
			}
			a.Name = rest[0]
		}
		sc.Actions = append(sc.Actions, a)
	case ActStop:
		a := Action{Kind: ActStop, Line: ln}
		if args["until"] == "halt" {
			a.At = Trigger{Halt: true}
		} else {
			var err error
			if a.CPU, err = intArg("cpu", 0); err != nil {
				return err
			}
			if a.At, err = at(); err != nil {
				return err
			}
		}
		sc.Actions = append(sc.Actions, a)
	case "invariant":
		if len(rest) < 1 {
			return fmt.Errorf("want a kind")
		}
		inv := Invariant{Kind: rest[0], Name: rest[0], Line: ln}
		if n, ok := args["name"]; ok {
			inv.Name = n
		}
		switch args["expect"] {
		case "", "hold":
		case "fail":
			inv.ExpectFail = true
		default:
			return fmt.Errorf("expect must be hold or fail")
		}
		inv.Args = rest[1:]
		switch inv.Kind {
		case "no-error", "idt-restored", "stack-intact", "no-frame-clobber", "iret-resumes", "ptregs-findable", "no-snapshot-missed":
		case "console-contains", "exit-status":
			if len(rest) != 2 {
				return fmt.Errorf("%s wants one argument", inv.Kind)
			}
			inv.Arg = rest[1]
			if inv.Kind == "exit-status" {
				if _, err := parseUint(inv.Arg); err != nil {
					return err
				}
				var err error
				if inv.CPU, err = intArg("cpu", 0); err != nil {
					return err
				}
			}
		case "site-bytes":
			if len(rest) < 3 {
				return fmt.Errorf("site-bytes wants SYMBOL[+OFF] and at least one HEX or call:SYMBOL")
			}
			inv.Arg = rest[1]
			for _, alt := range rest[2:] {
				if strings.HasPrefix(alt, "call:") {
					continue
				}
				if _, err := hex.DecodeString(alt); err != nil || len(alt) == 0 {
					return fmt.Errorf("bad byte string %q", alt)
				}
			}
		case "call-like":
			if len(rest) != 2 || args["site"] == "" {
				return fmt.Errorf("call-like wants TARGET site=SYMBOL[+OFF]")
			}
			inv.Arg, inv.Site = rest[1], args["site"]
		default:
			return fmt.Errorf("unknown invariant %q", inv.Kind)
		}
		sc.Invariants = append(sc.Invariants, inv)
	case "sweep":
		if len(rest) != 1 || (rest[0] != ActNMI && rest[0] != ActIRQ) {
			return fmt.Errorf("want sweep nmi|irq")
		}
		sw := Sweep{Kind: rest[0], Line: ln}
		var err error
		if sw.CPU, err = intArg("cpu", 0); err != nil {
			return err
		}
		if sw.Target, err = intArg("target", sw.CPU); err != nil {
			return err
		}
		if sw.Vector, err = intArg("vector", 0xec); err != nil || sw.Vector < 0x20 || sw.Vector > 0xff {
			return fmt.Errorf("vector must be 0x20-0xff")
		}
		f, ok := args["from"]
		if !ok {
			return fmt.Errorf("missing from=")
		}
		if sw.From, err = parseTrigger(f); err != nil {
			return err
		}
		switch to, n := args["to"], args["count"]; {
		case to != "" && n == "":
			if sw.To, err = parseTrigger(to); err != nil {
				return err
			}
		case n != "" && to == "":
			if sw.Count, err = parseUint(n); err != nil || sw.Count == 0 || sw.Count > 1<<24 {
				return fmt.Errorf("bad count=%q", n)
			}
		default:
			return fmt.Errorf("want to=TRIGGER or count=N")
		}
		sc.Sweeps = append(sc.Sweeps, sw)
	default:
		return fmt.Errorf("unknown directive")
	}
	return nil
}
