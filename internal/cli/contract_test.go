package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/report"
)

// designJSON returns the `unwind bt -o json` contract block of
// ../shared/DESIGN.md ("Output").
func designJSON(t *testing.T) string {
	t.Helper()
	shared := corpus.SharedDir()
	if shared == "" {
		corpus.Unavailable(t, "../shared/DESIGN.md", fmt.Errorf("../shared is not beside the checkout"))
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(shared), "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	designText = text
	i := strings.Index(text, "is a public contract")
	if i < 0 {
		t.Fatal("DESIGN.md: no JSON contract paragraph")
	}
	j := strings.Index(text[i:], "```\n")
	k := strings.Index(text[i+j+4:], "```")
	if j < 0 || k < 0 {
		t.Fatal("DESIGN.md: no JSON contract block")
	}
	return text[i+j+4 : i+j+4+k]
}

// designText is DESIGN.md, read by designJSON.
var designText string

// designRecovered is the JSON version 2 paragraph's list of "recovered"
// values ("per value `recovered` one of `a|b|...`"), which supersedes the
// block's (version 1's "none").
var designRecovered = regexp.MustCompile("`recovered` one of `([^`]+)`")

var (
	designToken   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+`)
	designComment = regexp.MustCompile(`//[^\n]*`)
)

// designKeys reads the block's keys per object path ("" the document,
// "threads", "threads.frames", "threads.frames.args"...; array elements
// take the array's key) and the documented values of each key (the
// alternatives of a "a|b|c" string).
func designKeys(block string) (keys map[string]map[string]bool, values map[string][]string) {
	keys, values = map[string]map[string]bool{}, map[string][]string{}
	toks := designToken.FindAllString(designComment.ReplaceAllString(block, ""), -1)
	var path []string // the object path; "" for arrays' and the top's own level
	pending := ""     // the key whose value comes next
	for i, tok := range toks {
		switch {
		case tok == "{" || tok == "[":
			path = append(path, pending)
			pending = ""
		case tok == "}" || tok == "]":
			path = path[:len(path)-1]
		case strings.HasPrefix(tok, `"`) && i+1 < len(toks) && toks[i+1] == ":":
			p := objectPath(path)
			if keys[p] == nil {
				keys[p] = map[string]bool{}
			}
			pending = strings.Trim(tok, `"`)
			keys[p][pending] = true
		case strings.HasPrefix(tok, `"`) && pending != "":
			values[objectPath(path)+"."+pending] = strings.Split(strings.Trim(tok, `"`), "|")
			pending = ""
		case tok != ":" && tok != ",":
			pending = ""
		}
	}
	return keys, values
}

func objectPath(path []string) string {
	var out []string
	for _, p := range path {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// emittedKeys collects, per object path, every key of v and its values.
func emittedKeys(v any, path string, keys map[string]map[string]bool, values map[string][]any) {
	switch x := v.(type) {
	case map[string]any:
		if keys[path] == nil {
			keys[path] = map[string]bool{}
		}
		for k, e := range x {
			keys[path][k] = true
			p := strings.TrimPrefix(path+"."+k, ".")
			values[p] = append(values[p], e)
			emittedKeys(e, p, keys, values)
		}
	case []any:
		for _, e := range x {
			emittedKeys(e, path, keys, values)
		}
	}
}

var (
	hexValue   = regexp.MustCompile(`^0x[0-9a-f]+$`)
	entryValue = regexp.MustCompile(`^(nmi|irq(:\d+)?|page_fault|debug|int3|syscall|signal(:\d+)?|[a-z_]+)$`)
)

// TestJSONContract checks `bt -o json` against the contract in
// ../shared/DESIGN.md: on an emulator snapshot (with an iret-only frame),
// user cores (a signal frame, a crash signal, args and locals) and a lab
// vmcore (kernel tasks), every field the contract shows is emitted at the
// same place, and every documented field has a value of the documented
// form: the version, hex addresses, the kinds, methods, dump kinds and
// "recovered" values the contract lists, entries only on interrupted and
// signal frames, stop reasons of the documented kinds.
func TestJSONContract(t *testing.T) {
	dkeys, dvalues := designKeys(designJSON(t))
	if len(dkeys["threads.frames"]) < 15 || len(dvalues["threads.frames.kind"]) < 4 {
		t.Fatalf("DESIGN.md's block parsed to too little: %v %v", dkeys, dvalues)
	}
	m := designRecovered.FindStringSubmatch(designText)
	if m == nil {
		t.Fatal("DESIGN.md: no JSON version 2 list of recovered values")
	}
	dvalues["threads.frames.args.recovered"] = strings.Split(strings.Join(strings.Fields(m[1]), ""), "|")
	user := corpus.Dir(t, "user")
	kdir := corpus.Dir(t, "kernel")
	inputs := [][]string{
		{"bt", emulatedSnapshot(t, "ptregs-partial", "partial-db"), "-o", "json"},
		{"bt", emulatedSnapshot(t, "nmi-irq-task", "nmi-irq-task"), "-o", "json"},
		{"bt", filepath.Join(user, "c_sighandler", "O0fp", "core"), "--exe", filepath.Join(user, "c_sighandler", "O0fp", "bin"),
			"--search", filepath.Join(user, "lib"), "--locals", "-o", "json"},
		{"bt", filepath.Join(user, "b_abort", "O0fp", "core"), "--exe", filepath.Join(user, "b_abort", "O0fp", "bin"),
			"--search", filepath.Join(user, "lib"), "--args", "-o", "json"},
		{"bt", corpus.Vmcore(t, "nmibt", "nmibt"), "--sym", filepath.Join(kdir, "fp", "vmlinux"), "-o", "json"},
	}
	keys, values := map[string]map[string]bool{}, map[string][]any{}
	for _, args := range inputs {
		out, errOut, code := run(t, args...)
		if code != ExitOK && code != ExitPartial {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var doc any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		emittedKeys(doc, "", keys, values)
	}
	corpus.Checked(t, len(inputs))

	// Every field the contract shows is emitted where it shows it.
	var paths []string
	for p := range dkeys {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for k := range dkeys[p] {
			if !keys[p][k] {
				t.Errorf("DESIGN.md shows %q in %q; bt -o json never emitted it (emitted: %v)", k, p, sortedKeys(keys[p]))
			}
		}
	}
	// The documented values.
	for _, v := range values["version"] {
		if v != float64(report.JSONVersion) || report.JSONVersion != 2 {
			t.Errorf("version %v, DESIGN.md and JSONVersion %d say 2", v, report.JSONVersion)
		}
	}
	for _, p := range []string{"threads.frames.pc", "threads.frames.sp", "threads.frames.cfa", "threads.frames.regs_addr", "threads.task.address"} {
		for _, v := range values[p] {
			if s, ok := v.(string); !ok || !hexValue.MatchString(s) {
				t.Errorf("%s = %v: want a hex string 0x...", p, v)
			}
		}
	}
	for _, v := range values["threads.frames.regs"] {
		for r, x := range v.(map[string]any) {
			if s, ok := x.(string); !ok || !hexValue.MatchString(s) {
				t.Errorf("regs.%s = %v: want a hex string", r, x)
			}
		}
	}
	dvalues["threads.frames.locals.recovered"] = dvalues["threads.frames.args.recovered"]
	for _, p := range []string{"dump.kind", "threads.frames.kind", "threads.frames.method", "threads.frames.args.recovered", "threads.frames.locals.recovered"} {
		allowed := map[string]bool{}
		for _, a := range dvalues[p] {
			allowed[a] = true
		}
		if len(allowed) == 0 {
			t.Errorf("DESIGN.md lists no values of %s", p)
		}
		for _, v := range values[p] {
			if s, _ := v.(string); !allowed[s] {
				t.Errorf("%s = %v: DESIGN.md allows %v", p, v, dvalues[p])
			}
		}
	}
	for _, v := range values["threads.stop_reason"] {
		s, _ := v.(string)
		ok := false
		for _, d := range dvalues["threads.stop_reason"] {
			ok = ok || s == d || strings.HasSuffix(d, "...") && strings.HasPrefix(s, strings.TrimSuffix(d, "..."))
		}
		if !ok {
			t.Errorf("stop_reason %q: DESIGN.md allows %v", s, dvalues["threads.stop_reason"])
		}
	}
	for _, v := range values["threads.cpu"] {
		if _, isNum := v.(float64); v != nil && !isNum {
			t.Errorf("cpu %v: want a number or null", v)
		}
	}
	for _, v := range values["threads.frames.entry"] {
		if s, _ := v.(string); !entryValue.MatchString(s) {
			t.Errorf("entry %q: not of the documented form", s)
		}
	}
	partial := false
	for _, v := range values["threads.frames.partial"] {
		partial = partial || v == true
	}
	if !partial {
		t.Error("no iret-only frame (partial: true) in the emulator's partial-db snapshot")
	}
	// entry only on interrupted and signal frames; value null exactly for
	// the values not recovered.
	checkFrames := func(doc map[string]any) {
		for _, th := range doc["threads"].([]any) {
			for _, f := range th.(map[string]any)["frames"].([]any) {
				fr := f.(map[string]any)
				if e, ok := fr["entry"]; ok && fr["kind"] != "interrupted" && fr["kind"] != "signal" {
					t.Errorf("entry %v on a %v frame: the contract has it on interrupted frames only", e, fr["kind"])
				}
				for _, list := range []string{"args", "locals"} {
					vs, _ := fr[list].([]any)
					for _, x := range vs {
						val := x.(map[string]any)
						gone := val["recovered"] == "not_recovered" || val["recovered"] == "optimized_out"
						if gone != (val["value"] == nil) {
							t.Errorf("%s %v: value %v with recovered %v", list, val["name"], val["value"], val["recovered"])
						}
					}
				}
			}
		}
	}
	for _, args := range inputs {
		out, _, _ := run(t, args...)
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		checkFrames(doc)
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
