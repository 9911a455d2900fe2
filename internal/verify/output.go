package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/unwind-dev/unwind/emu"
	"github.com/unwind-dev/unwind/unwind"
)

// JSONVersion is the "version" of the JSON document WriteJSON prints.
const JSONVersion = 1

type jsonDoc struct {
	Version   int               `json:"version"`
	Scenarios []jsonScenario    `json:"scenarios"`
	Totals    map[string]Counts `json:"totals"`
}

type jsonScenario struct {
	Name       string            `json:"name"`
	Kernel     string            `json:"kernel"`
	CPUs       int               `json:"cpus"`
	Boundaries uint64            `json:"boundaries"`
	Corrupts   bool              `json:"corrupts"`
	Strategies map[string]Counts `json:"strategies"`
	Problems   []string          `json:"problems,omitempty"`
	StopReason string            `json:"stop_reason"`
}

// Totals sums the counts of every result per strategy.
func Totals(results []*Result) [NumStrategies]Counts {
	var t [NumStrategies]Counts
	for _, r := range results {
		for s := range t {
			t[s].Add(r.Strategies[s])
		}
	}
	return t
}

func strategyMap(c [NumStrategies]Counts) map[string]Counts {
	m := make(map[string]Counts, NumStrategies)
	for s := Strategy(0); s < NumStrategies; s++ {
		m[s.String()] = c[s]
	}
	return m
}

// WriteJSON prints the results as the versioned JSON document:
// {"version": 1, "scenarios": [{"name", "boundaries", "corrupts",
// "strategies": {"cfi"|"fp"|"combined": {"exact", "flagged",
// "wrong_reliable", "wrong_flagged"}}, …}], "totals": {same strategies}}.
func WriteJSON(w io.Writer, results []*Result) error {
	doc := jsonDoc{Version: JSONVersion, Scenarios: []jsonScenario{}, Totals: strategyMap(Totals(results))}
	for _, r := range results {
		doc.Scenarios = append(doc.Scenarios, jsonScenario{
			Name: r.Name, Kernel: r.Kernel, CPUs: r.CPUs, Boundaries: r.Boundaries, Corrupts: r.Corrupts,
			Strategies: strategyMap(r.Strategies), Problems: r.Problems(), StopReason: r.StopReason,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func pct(n, total uint64) string {
	if total == 0 {
		return "-"
	}
	if n == total {
		return "100%"
	}
	p := 100 * float64(n) / float64(total)
	if n > 0 && p < 0.01 {
		return "<0.01%"
	}
	if n < total && p > 99.99 {
		return ">99.99%"
	}
	return fmt.Sprintf("%.2f%%", p)
}

// WriteText prints a table per scenario (one row per strategy, the share
// of boundaries in each verdict), the totals, and the kept mismatches with
// their disassembly and both traces.
func WriteText(w io.Writer, results []*Result) error {
	ew := &errWriter{w: w}
	row := func(name string, c Counts) {
		t := c.Total()
		ew.printf("  %-9s %9s %9s %15s %14s\n", name, pct(c.Exact, t), pct(c.Flagged, t), pct(c.WrongReliable, t), pct(c.WrongFlagged, t))
	}
	header := func() {
		ew.printf("  %-9s %9s %9s %15s %14s\n", "strategy", "exact", "flagged", "wrong_reliable", "wrong_flagged")
	}
	for _, r := range results {
		note := ""
		if r.Corrupts {
			note = ", corrupts its stack (bar: wrong_reliable = wrong_flagged = 0)"
		}
		ew.printf("%s (kernel %s, %d cpu): %d boundaries, %d instructions, %s%s\n",
			r.Name, r.Kernel, r.CPUs, r.Boundaries, r.Instructions, r.StopReason, note)
		header()
		for s := Strategy(0); s < NumStrategies; s++ {
			row(s.String(), r.Strategies[s])
		}
		if n := r.Undefined[CFI]; n > 0 {
			ew.printf("  (%d cfi boundaries stop where the kernel's CFI leaves RSP or RIP undefined on purpose: flagged, as they must be)\n", n)
		}
		for _, p := range r.Problems() {
			ew.printf("  FAIL %s\n", p)
		}
		ew.printf("\n")
	}
	if len(results) > 1 {
		var b uint64
		for _, r := range results {
			b += r.Boundaries
		}
		ew.printf("total: %d scenarios, %d boundaries\n", len(results), b)
		header()
		t := Totals(results)
		for s := Strategy(0); s < NumStrategies; s++ {
			row(s.String(), t[s])
		}
		ew.printf("\n")
	}
	for _, r := range results {
		for i := range r.Mismatches {
			writeMismatch(ew, r, &r.Mismatches[i])
		}
	}
	return ew.err
}

func writeMismatch(ew *errWriter, r *Result, mm *Mismatch) {
	ew.printf("== %s: %s %s at cpu %d insn %d, rip %s\n   %s\n", r.Name, mm.Strategy, mm.Class, mm.CPU, mm.Insns, mm.Where, mm.Reason)
	for _, l := range mm.Disasm {
		ew.printf("   %s\n", l)
	}
	rel := "reliable"
	if !mm.Reliable {
		rel = "unreliable"
	}
	ew.printf("   unwind (%s, %s, stopped: %s):\n", mm.Strategy, rel, mm.Stop)
	for i := range mm.Trace {
		ew.printf("     %s\n", TraceLine(&mm.Trace[i]))
	}
	ew.printf("   truth (emulator shadow stack):\n")
	for i := range compared(mm.Truth) {
		ew.printf("     %s\n", TruthLine(&mm.Truth[i]))
	}
	ew.printf("\n")
}

// TraceLine renders an unwound frame on one line.
func TraceLine(f *unwind.Frame) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%-2d ", f.Index)
	if !f.Reliable {
		b.WriteString("? ")
	}
	if f.SymOK {
		fmt.Fprintf(&b, "%s+%#x", f.Sym.Name, f.PC-f.Sym.Addr)
	} else {
		fmt.Fprintf(&b, "%#x", f.PC)
	}
	fmt.Fprintf(&b, " pc=%#x sp=%#x cfa=%#x %s/%s %s", f.PC, f.SP, f.CFA, f.Kind, f.Method, f.Stack.Kind)
	if f.Entry != "" {
		fmt.Fprintf(&b, " entry=%s", f.Entry)
	}
	if f.RegsAddr != 0 {
		fmt.Fprintf(&b, " regs@%#x", f.RegsAddr)
	}
	if f.Partial {
		b.WriteString(" partial")
	}
	return b.String()
}

// TruthLine renders a ground-truth frame on one line.
func TruthLine(t *emu.Frame) string {
	var b strings.Builder
	fn := t.Function
	if fn == "" {
		fn = "?"
	}
	fmt.Fprintf(&b, "%s pc=%#x sp=%#x cfa=%#x %s %s", fn, t.PC, t.SP, t.CFA, t.Kind, t.Stack)
	if t.Entry != "" {
		fmt.Fprintf(&b, " entry=%s", t.Entry)
	}
	if t.RegsAddr != 0 {
		fmt.Fprintf(&b, " regs@%#x", t.RegsAddr)
	}
	return b.String()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
