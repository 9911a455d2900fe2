package unwind_test

// Tests on the project's own user-space cores in fixtures/usercores: small
// C programs built in five variants (frame pointers; CFI and DWARF; CFI
// only; no unwind tables at all; static) and killed at a point fixed by
// their source, with the true chains in fixtures/usercores/MANIFEST.json.
// They need nothing outside the repository: the cores are committed
// (zstd-compressed), and so are the executables, the libc.so.6 and ld.so
// the dynamic cores mapped, and libc's symbol table.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

const fxDir = "../fixtures/usercores"

var fxVariants = []string{"O0fp", "O2cfi", "O2nodbg", "O2nocfi", "static"}

type fxManifest struct {
	Variants map[string]fxVariant `json:"variants"`
	Cases    map[string]*fxCase   `json:"cases"`
}

type fxVariant struct {
	CFlags string `json:"cflags"`
	DWARF  bool   `json:"dwarf"`
	CFI    bool   `json:"cfi"`
	FP     bool   `json:"fp"`
	Static bool   `json:"static"`
}

type fxCase struct {
	Signal  int             `json:"signal"`
	SiCode  int             `json:"si_code"`
	SiAddr  json.RawMessage `json:"si_addr"` // a number, "pc" (the crashing frame's pc) or absent
	SiPid   string          `json:"si_pid"`  // "self": the process's own pid
	Threads []fxThread      `json:"threads"`
	// Chains[variant][role] is the true chain of that thread.
	Chains map[string]map[string][]fxFrame `json:"chains"`
	// Tools[tool][variant][role] is "ok" or where the tool's output
	// departs from the true chain (see fxToolVerdict).
	Tools map[string]map[string]map[string]string `json:"tools"`
}

type fxThread struct {
	Role    string `json:"role"`
	State   string `json:"state"`
	Crashed bool   `json:"crashed"`
}

type fxFrame struct {
	Fn     string `json:"fn"`
	From   string `json:"from"` // user, libc, crt, none
	Inline bool   `json:"inline"`
	Signal bool   `json:"signal"`
	Stack  string `json:"stack"`
}

var (
	fxOnce sync.Once
	fxMan  fxManifest
	fxErr  error
)

func fxManifestLoad(t *testing.T) *fxManifest {
	t.Helper()
	fxOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join(fxDir, "MANIFEST.json"))
		if err != nil {
			fxErr = err
			return
		}
		fxErr = json.Unmarshal(b, &fxMan)
	})
	if fxErr != nil {
		t.Fatalf("fixtures/usercores/MANIFEST.json: %v", fxErr)
	}
	return &fxMan
}

func fxCaseNames(m *fxManifest) []string {
	var names []string
	for n := range m.Cases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fxCore is one opened fixture core.
type fxCore struct {
	d     *dump.Dump
	set   *symbols.Set
	roles []string // role of each of d.Threads()
	tids  map[string]int
}

// fxOpen decompresses VARIANT/CASE.core.zst in memory and opens it with
// symbols only from the fixtures: the executable, lib/ and, when withDebug,
// debug/ (libc's full symbol table). The sysroot is an empty folder, so
// nothing of this machine's own libraries is used.
func fxOpen(t *testing.T, m *fxManifest, variant, cs string, withDebug bool) *fxCore {
	t.Helper()
	z, err := os.ReadFile(filepath.Join(fxDir, variant, cs+".core.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dec.DecodeAll(z, nil)
	dec.Close()
	if err != nil {
		t.Fatalf("decompressing %s/%s.core.zst: %v", variant, cs, err)
	}
	d, err := dump.NewFile(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatalf("open core: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	dirs := []string{filepath.Join(fxDir, "lib")}
	if withDebug {
		dirs = append(dirs, filepath.Join(fxDir, "debug"))
	}
	set, warns, err := d.Symbols(dump.SymbolOptions{
		Exe:        filepath.Join(fxDir, variant, "ucore"),
		SearchDirs: dirs,
		Sysroot:    t.TempDir(),
	})
	if err != nil {
		t.Fatalf("symbols: %v", err)
	}
	for _, w := range warns {
		t.Logf("symbols warning: %s", w)
	}
	c := &fxCore{d: d, set: set, tids: map[string]int{}}
	// The threads were created in the MANIFEST's order, so their TIDs
	// rise in that order.
	ths := d.Threads()
	want := m.Cases[cs].Threads
	if len(ths) != len(want) {
		t.Fatalf("%d threads in the core, MANIFEST has %d", len(ths), len(want))
	}
	idx := make([]int, len(ths))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return ths[idx[a]].TID < ths[idx[b]].TID })
	c.roles = make([]string, len(ths))
	for rank, i := range idx {
		c.roles[i] = want[rank].Role
		c.tids[want[rank].Role] = ths[i].TID
	}
	return c
}

func (c *fxCore) walk(i int, methods unwind.Method) ([]unwind.Frame, *unwind.Unwinder) {
	th := c.d.Threads()[i]
	u := unwind.New(c.d.Memory(), th.Regs, &unwind.Options{Code: c.set, Stacks: c.d.Stacks(i), Methods: methods})
	var fs []unwind.Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	return fs, u
}

// module returns the file of the set whose span holds pc, by base name.
func (c *fxCore) module(pc uint64) string {
	for _, f := range c.set.Modules() {
		if f.IsText(pc) {
			return filepath.Base(f.Path)
		}
	}
	return ""
}

// fxMatch checks frame f against the true frame w: the same function (by
// name, or a symbol at the same address: an alias such as raise/gsignal),
// code from the right module, and the frame kind.
func fxMatch(c *fxCore, v fxVariant, i int, fs []unwind.Frame, truth []fxFrame) string {
	f, w := fs[i], truth[i]
	var errs []string
	switch {
	case w.Fn == "0x0":
		if f.PC != 0 || f.SymOK {
			errs = append(errs, "want pc 0 with no symbol")
		}
	case f.Function == w.Fn:
	case !w.Inline && !f.Inlined && f.SymOK:
		if s, ok := c.set.ByName(w.Fn); !ok || s.Addr != f.Sym.Addr {
			errs = append(errs, "want "+w.Fn)
		}
	default:
		errs = append(errs, "want "+w.Fn)
	}
	// An inlined function is marked, and the function it was inlined into
	// follows at the same pc.
	if f.Inlined != w.Inline {
		errs = append(errs, fmt.Sprintf("inlined=%v, want %v", f.Inlined, w.Inline))
	}
	if w.Inline && (i+1 >= len(fs) || f.PC != fs[i+1].PC) {
		errs = append(errs, "an inlined function whose caller has another pc")
	}
	if w.Signal != (f.Kind == unwind.KindSignal) {
		errs = append(errs, fmt.Sprintf("kind %s, want signal=%v", f.Kind, w.Signal))
	}
	if w.Signal && f.LookupPC != f.PC {
		errs = append(errs, "signal frame looked up at pc-1")
	}
	if w.From != "none" {
		want := "ucore"
		if w.From == "libc" && !v.Static {
			want = "libc.so.6"
		}
		if mod := c.module(f.PC); mod != want {
			errs = append(errs, fmt.Sprintf("pc in %q, want %s", mod, want))
		}
		if !f.SymOK || filepath.Base(f.Sym.Module) != want {
			errs = append(errs, fmt.Sprintf("symbol %q of module %q, want %s", f.Sym.Name, f.Sym.Module, want))
		}
	}
	return strings.Join(errs, "; ")
}

func fxDescribe(fs []unwind.Frame, u *unwind.Unwinder, truth []fxFrame) string {
	var b strings.Builder
	for i, f := range fs {
		r := " "
		if !f.Reliable {
			r = "?"
		}
		w := ""
		if i < len(truth) {
			w = truth[i].Fn
		}
		fmt.Fprintf(&b, "  #%-2d %s %#x %s+%#x (sym %s) inl=%v [%s %s %s] sp=%#x   truth: %s\n",
			f.Index, r, f.PC, f.Function, f.Offset(), f.Sym.Name, f.Inlined, f.Kind, f.Method, f.Stack.Kind, f.SP, w)
	}
	for i := len(fs); i < len(truth); i++ {
		fmt.Fprintf(&b, "  (missing)   truth: %s\n", truth[i].Fn)
	}
	fmt.Fprintf(&b, "  stop: %s reliable=%v err=%v\n", u.StopReason(), u.Reliable(), u.Err())
	return b.String()
}

// TestUserFixtures unwinds every thread of every committed core with all
// strategies and compares the frames with the MANIFEST: the same
// functions in the same order, inlined callers where DWARF has them, the
// signal frame, libc frames named from the committed libc. With CFI every
// frame is reliable; without it (O2nocfi) the chain is still the true one
// but the walk says it is a guess.
func TestUserFixtures(t *testing.T) {
	m := fxManifestLoad(t)
	for _, cs := range fxCaseNames(m) {
		cas := m.Cases[cs]
		for _, v := range fxVariants {
			vi := m.Variants[v]
			t.Run(cs+"/"+v, func(t *testing.T) {
				c := fxOpen(t, m, v, cs, true)
				for i, th := range c.d.Threads() {
					role := c.roles[i]
					truth := cas.Chains[v][role]
					if len(truth) == 0 {
						t.Fatalf("no MANIFEST chain for %s/%s thread %s", cs, v, role)
					}
					fs, u := c.walk(i, 0)
					var bad []string
					if len(fs) != len(truth) {
						bad = append(bad, fmt.Sprintf("%d frames, want %d", len(fs), len(truth)))
					}
					for j := 0; j < len(fs) && j < len(truth); j++ {
						if e := fxMatch(c, vi, j, fs, truth); e != "" {
							bad = append(bad, fmt.Sprintf("#%d %s: %s", j, fs[j].Function, e))
						}
					}
					if u.StopReason() != unwind.StopEndOfStack || u.Err() != nil {
						bad = append(bad, fmt.Sprintf("stopped with %q, %v", u.StopReason(), u.Err()))
					}
					if vi.CFI {
						if !u.Reliable() {
							bad = append(bad, "walk not reliable")
						}
						for _, f := range fs {
							if !f.Reliable {
								bad = append(bad, fmt.Sprintf("#%d %s not reliable", f.Index, f.Function))
							}
						}
					} else {
						bad = append(bad, fxGuessMarked(fs, u)...)
					}
					if len(bad) > 0 {
						t.Errorf("thread %s (tid %d):\n  %s\n%s", role, th.TID, strings.Join(bad, "\n  "), fxDescribe(fs, u, truth))
					} else if testing.Verbose() {
						t.Logf("thread %s (tid %d):\n%s", role, th.TID, fxDescribe(fs, u, truth))
					}
				}
			})
		}
	}
}

// fxGuessMarked checks the marking of a walk through code without CFI or
// frame pointers: frame 0 (the registers) is sure, some later frame is a
// guess, every frame after a guess is one too, and the walk as a whole is
// not reliable.
func fxGuessMarked(fs []unwind.Frame, u *unwind.Unwinder) []string {
	var bad []string
	if u.Reliable() {
		bad = append(bad, "walk through code without CFI marked reliable")
	}
	if len(fs) > 0 && !fs[0].Reliable {
		bad = append(bad, "frame 0 not reliable")
	}
	guess := -1
	for i, f := range fs {
		if !f.Reliable && guess < 0 {
			guess = i
		}
		if guess >= 0 && f.Reliable {
			bad = append(bad, fmt.Sprintf("#%d %s reliable after the guess at #%d", i, f.Function, guess))
		}
	}
	if guess < 0 {
		bad = append(bad, "no frame marked as a guess")
	}
	return bad
}

// TestUserFixtureSignals checks the crash as the core records it: which
// thread took the signal, the signal number, si_code and fault address.
func TestUserFixtureSignals(t *testing.T) {
	m := fxManifestLoad(t)
	for _, cs := range fxCaseNames(m) {
		cas := m.Cases[cs]
		for _, v := range fxVariants {
			t.Run(cs+"/"+v, func(t *testing.T) {
				c := fxOpen(t, m, v, cs, true)
				ths := c.d.Threads()
				crashed := -1
				for i, th := range ths {
					want := false
					for _, w := range cas.Threads {
						if w.Role == c.roles[i] {
							want = w.Crashed
						}
					}
					if th.Crashed != want {
						t.Errorf("thread %s: crashed=%v, want %v", c.roles[i], th.Crashed, want)
					}
					if want {
						crashed = i
					}
				}
				if crashed != 0 {
					t.Errorf("crashing thread is note %d, want the first NT_PRSTATUS", crashed)
				}
				if crashed < 0 {
					return
				}
				if ths[crashed].Signal != cas.Signal {
					t.Errorf("pr_cursig %d, want %d", ths[crashed].Signal, cas.Signal)
				}
				si, ok := c.d.SigInfo()
				if !ok {
					t.Fatal("no NT_SIGINFO")
				}
				if si.Signo != cas.Signal || si.Code != cas.SiCode {
					t.Errorf("siginfo signo %d code %d, want %d %d", si.Signo, si.Code, cas.Signal, cas.SiCode)
				}
				if len(cas.SiAddr) > 0 {
					var want uint64
					if string(cas.SiAddr) == `"pc"` {
						want, _ = ths[crashed].Regs.Get(ptregs.RIP)
					} else if err := json.Unmarshal(cas.SiAddr, &want); err != nil {
						t.Fatalf("si_addr %s: %v", cas.SiAddr, err)
					}
					if si.Addr != want {
						t.Errorf("si_addr %#x, want %#x", si.Addr, want)
					}
				}
				if cas.SiPid == "self" && si.Pid != c.tids["main"] {
					t.Errorf("si_pid %d, want the process's own pid %d", si.Pid, c.tids["main"])
				}
			})
		}
	}
}

// TestUserFixtureFramePointers walks the O0fp cores with the frame-pointer
// strategy alone (no CFI). The bar: a frame it marks reliable is the true
// frame at that position; and where the crash is in the program's own code
// (built with frame pointers), the chain is reliable up to the program's
// outermost frame. libc, built without frame pointers, may end the walk or
// make it a guess.
func TestUserFixtureFramePointers(t *testing.T) {
	m := fxManifestLoad(t)
	const v = "O0fp"
	for _, cs := range fxCaseNames(m) {
		cas := m.Cases[cs]
		t.Run(cs, func(t *testing.T) {
			c := fxOpen(t, m, v, cs, true)
			for i := range c.d.Threads() {
				role := c.roles[i]
				truth := cas.Chains[v][role]
				fs, u := c.walk(i, unwind.MethodFP|unwind.MethodSignal)
				var bad []string
				sure := 0
				for sure < len(fs) && fs[sure].Reliable {
					sure++
				}
				for j := 0; j < sure; j++ {
					if j >= len(truth) {
						bad = append(bad, fmt.Sprintf("#%d reliable beyond the true chain", j))
					} else if e := fxMatch(c, m.Variants[v], j, fs, truth); e != "" {
						bad = append(bad, fmt.Sprintf("#%d %s marked reliable: %s", j, fs[j].Function, e))
					}
				}
				for j := sure; j < len(fs); j++ {
					if fs[j].Reliable {
						bad = append(bad, fmt.Sprintf("#%d reliable after a guess", j))
					}
				}
				// Frame 0 in the program (or at pc 0, called from it): the
				// program's frames must all be sure.
				if len(truth) > 0 && truth[0].From != "libc" {
					last := 0
					for j, w := range truth {
						if w.From == "user" {
							last = j
						}
					}
					if sure <= last {
						bad = append(bad, fmt.Sprintf("only %d frames reliable, want at least %d (through %s)", sure, last+1, truth[last].Fn))
					}
				}
				if len(bad) > 0 {
					t.Errorf("thread %s:\n  %s\n%s", role, strings.Join(bad, "\n  "), fxDescribe(fs, u, truth))
				}
			}
		})
	}
}

// TestUserFixtureScanOnly walks the O2nocfi cores (no CFI in the program,
// no frame pointers) with the stack scan alone, plus signal frames. A scan
// may miss frames and may run on past the outermost one into stale stack,
// but it is validated: every frame it reports before the end of the true
// chain is a true frame (the same pc and sp as the full walk, which
// TestUserFixtures holds to the MANIFEST), in order, and none after frame 0
// is reliable.
func TestUserFixtureScanOnly(t *testing.T) {
	m := fxManifestLoad(t)
	const v = "O2nocfi"
	for _, cs := range fxCaseNames(m) {
		cas := m.Cases[cs]
		t.Run(cs, func(t *testing.T) {
			c := fxOpen(t, m, v, cs, true)
			for i := range c.d.Threads() {
				role := c.roles[i]
				truth := cas.Chains[v][role]
				ref, _ := c.walk(i, 0)
				fs, u := c.walk(i, unwind.MethodScan|unwind.MethodSignal)
				var bad []string
				if len(fs) == 0 || fxMatch(c, m.Variants[v], 0, fs, truth) != "" {
					bad = append(bad, "frame 0 is not the true frame 0")
				}
				k, found := 1, 1
				for j := 1; j < len(fs) && k < len(ref); j++ {
					f := fs[j]
					if f.Reliable {
						bad = append(bad, fmt.Sprintf("#%d %s from the scan marked reliable", j, f.Function))
					}
					for k < len(ref) && (ref[k].PC != f.PC || ref[k].SP != f.SP) {
						k++
					}
					if k == len(ref) {
						bad = append(bad, fmt.Sprintf("#%d %#x %s (sp %#x) is not a true frame, or out of order", j, f.PC, f.Function, f.SP))
						break
					}
					k++
					found++
				}
				if len(bad) > 0 {
					t.Errorf("thread %s:\n  %s\n%s", role, strings.Join(bad, "\n  "), fxDescribe(fs, u, truth))
				} else {
					t.Logf("thread %s: the scan found %d of %d true frames, %d frames in all", role, found, len(ref), len(fs))
				}
				// With MethodSignal on, a scanned return address at
				// __restore_rt must lead through the rt_sigframe to the
				// interrupted frame.
				for _, r := range ref {
					if r.Kind != unwind.KindSignal {
						continue
					}
					crossed := false
					for _, f := range fs {
						crossed = crossed || (f.Kind == unwind.KindSignal && f.PC == r.PC && f.SP == r.SP)
					}
					if !crossed {
						t.Errorf("thread %s: a return address to __restore_rt found by the stack scan does not lead through "+
							"the rt_sigframe: the walk never reaches %s at %#x:\n%s", role, r.Function, r.PC, fxDescribe(fs, u, truth))
					}
				}
			}
		})
	}
}

// TestUserFixtureDynsymOnly unwinds the dynamic cores with libc's own
// .dynsym as its only symbols (no debug/ folder), as on a machine without
// libc's debug file. The walk must not change (CFI does not depend on
// names); a libc frame is named when its function is exported, with that
// function's symbol (or an alias at the same address), and otherwise has
// no name at all, never a wrong one.
func TestUserFixtureDynsymOnly(t *testing.T) {
	m := fxManifestLoad(t)
	lf, err := elf.Open(filepath.Join(fxDir, "lib", "libc.so.6"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	dsyms, err := lf.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[uint64]bool{}
	for _, s := range dsyms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			exported[s.Value] = true
		}
	}
	for _, cs := range fxCaseNames(m) {
		for _, v := range fxVariants {
			if m.Variants[v].Static {
				continue
			}
			t.Run(cs+"/"+v, func(t *testing.T) {
				full := fxOpen(t, m, v, cs, true)
				dyn := fxOpen(t, m, v, cs, false)
				var bias uint64
				for _, f := range dyn.set.Modules() {
					if filepath.Base(f.Path) == "libc.so.6" {
						bias = f.Bias
						if f.DebugPath != "" {
							t.Fatalf("libc debug file %s attached: the sysroot leaks", f.DebugPath)
						}
					}
				}
				for i := range full.d.Threads() {
					want, _ := full.walk(i, 0)
					got, u := dyn.walk(i, 0)
					if len(got) != len(want) {
						t.Errorf("thread %s: %d frames, %d with libc's symbol table\n%s", full.roles[i], len(got), len(want), fxDescribe(got, u, nil))
						continue
					}
					for j, g := range got {
						w := want[j]
						if g.PC != w.PC || g.SP != w.SP || g.Reliable != w.Reliable {
							t.Errorf("thread %s #%d: pc %#x sp %#x reliable %v, with libc's symbol table %#x %#x %v", full.roles[i], j, g.PC, g.SP, g.Reliable, w.PC, w.SP, w.Reliable)
						}
						if full.module(w.PC) != "libc.so.6" {
							continue
						}
						if exported[w.Sym.Addr-bias] {
							if !g.SymOK || g.Sym.Addr != w.Sym.Addr {
								t.Errorf("thread %s #%d: exported %s (%#x) named %q (%#x, ok %v)", full.roles[i], j, w.Sym.Name, w.Sym.Addr, g.Sym.Name, g.Sym.Addr, g.SymOK)
							}
						} else if g.SymOK {
							t.Errorf("thread %s #%d: %s is not exported, but the frame is named %q", full.roles[i], j, w.Sym.Name, g.Sym.Name)
						}
					}
				}
			})
		}
	}
}

// TestUserFixtureAltStack checks that the frames of the signal handler,
// which ran on a sigaltstack, say so.
func TestUserFixtureAltStack(t *testing.T) {
	m := fxManifestLoad(t)
	cas := m.Cases["signal"]
	for _, v := range fxVariants {
		t.Run(v, func(t *testing.T) {
			c := fxOpen(t, m, v, "signal", true)
			truth := cas.Chains[v]["main"]
			fs, u := c.walk(0, 0)
			var bad []string
			for j := 0; j < len(fs) && j < len(truth); j++ {
				want := unwind.StackUser
				if truth[j].Stack == "altstack" {
					want = unwind.StackAltSignal
				}
				if fs[j].Stack.Kind != want {
					bad = append(bad, fmt.Sprintf("#%d %s on stack %s, want %s", j, fs[j].Function, fs[j].Stack.Kind, want))
				}
			}
			if len(bad) > 0 {
				t.Errorf("frames on the wrong stack:\n  %s\n%s", strings.Join(bad, "\n  "), fxDescribe(fs, u, truth))
			}
		})
	}
}

// The gdb and eu-stack outputs recorded next to each core, and what the
// MANIFEST says of them.

var (
	fxGDBThread = regexp.MustCompile(`^Thread \d+ \(.*\(LWP (\d+)\)\)?:`)
	fxGDBFrame  = regexp.MustCompile(`^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+)`)
	fxEUThread  = regexp.MustCompile(`^TID (\d+):`)
	fxEUFrame   = regexp.MustCompile(`^#(\d+)\s+(0x[0-9a-f]+)(?:\s+(\S+))?`)
)

type fxToolFrame struct {
	n    string // frame number as printed
	addr uint64
	has  bool // an address was printed
	name string
}

// fxParseTool reads a gdb ("thread apply all bt") or eu-stack output into
// frames per TID.
func fxParseTool(path string, gdb bool) (map[int][]fxToolFrame, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[int][]fxToolFrame{}
	tid := 0
	thRE, frRE := fxEUThread, fxEUFrame
	if gdb {
		thRE, frRE = fxGDBThread, fxGDBFrame
	}
	for _, line := range strings.Split(string(b), "\n") {
		if mt := thRE.FindStringSubmatch(line); mt != nil {
			tid, _ = strconv.Atoi(mt[1])
			continue
		}
		mf := frRE.FindStringSubmatch(line)
		if mf == nil || tid == 0 {
			continue
		}
		f := fxToolFrame{n: "#" + mf[1], name: mf[3]}
		if mf[2] != "" {
			f.addr, _ = strconv.ParseUint(mf[2][2:], 16, 64)
			f.has = true
		}
		if gdb && strings.HasPrefix(line[len(mf[0])-len(mf[3]):], "<signal handler called>") {
			f.name = "<signal handler called>"
		}
		if f.name == "-" {
			f.name = ""
		}
		out[tid] = append(out[tid], f)
	}
	return out, nil
}

const fxOther = "(libc/start-up)"

// fxUserName strips gcc's clone suffixes: ab_compare.cold (gdb: ab_compare[cold])
// is ab_compare.
func fxUserName(n string) string {
	if i := strings.IndexAny(n, ".["); i > 0 {
		return n[:i]
	}
	return n
}

// fxTokens reduces a chain to what every tool can be held to: the program's
// own functions by name, 0x0 for the NULL call target, and each run of
// other frames (libc, start-up code, the signal trampoline) as one token,
// since the tools name libc's functions by their DWARF names and add
// inlined and tail-call frames there.
func fxTokens(names []string, addrs []fxToolFrame, user map[string]bool) (toks, where []string) {
	for i, n := range names {
		t := fxOther
		switch {
		case user[fxUserName(n)]:
			t = fxUserName(n)
		case addrs != nil && addrs[i].has && addrs[i].addr == 0, addrs == nil && n == "0x0":
			t = "0x0"
		case n == "" || n == "??":
			t = "??"
		}
		if t == fxOther && len(toks) > 0 && toks[len(toks)-1] == fxOther {
			continue
		}
		toks = append(toks, t)
		w := ""
		if addrs != nil {
			w = addrs[i].n
		}
		where = append(where, w)
	}
	return toks, where
}

// fxToolVerdict compares a tool's frames for one thread with the true
// chain: "ok", or where they first differ.
func fxToolVerdict(truth []fxFrame, got []fxToolFrame, user map[string]bool, pastMain bool) string {
	var tn []string
	for _, f := range truth {
		tn = append(tn, f.Fn)
	}
	want, _ := fxTokens(tn, nil, user)
	if !pastMain {
		for i, w := range want {
			if w == "main" {
				want = want[:i+1]
				break
			}
		}
	}
	var gn []string
	for _, f := range got {
		gn = append(gn, f.name)
	}
	have, where := fxTokens(gn, got, user)
	prev := "the start"
	for i := 0; ; i++ {
		switch {
		case i == len(want) && i == len(have):
			return "ok"
		case i == len(want):
			return fmt.Sprintf("wrong: after %s, frames past the end: %s (%s)", prev, have[i], where[i])
		case i == len(have):
			return fmt.Sprintf("wrong: stops after %s, want %s next", prev, want[i])
		case want[i] != have[i]:
			return fmt.Sprintf("wrong: after %s, want %s, got %s (%s)", prev, want[i], have[i], where[i])
		}
		prev = want[i]
	}
}

// TestUserFixtureToolRefs checks the MANIFEST's account of gdb and eu-stack
// against their recorded output: for every thread of every core it says
// "ok" exactly when the tool printed the true chain (up to main for gdb,
// whose backtrace stops there), and otherwise where the tool went wrong.
func TestUserFixtureToolRefs(t *testing.T) {
	m := fxManifestLoad(t)
	user := map[string]bool{}
	for _, cas := range m.Cases {
		for _, byRole := range cas.Chains {
			for _, ch := range byRole {
				for _, f := range ch {
					if f.From == "user" {
						user[fxUserName(f.Fn)] = true
					}
				}
			}
		}
	}
	for _, cs := range fxCaseNames(m) {
		cas := m.Cases[cs]
		for _, v := range fxVariants {
			t.Run(cs+"/"+v, func(t *testing.T) {
				c := fxOpen(t, m, v, cs, true)
				for _, tool := range []string{"gdb", "eu-stack"} {
					frames, err := fxParseTool(filepath.Join(fxDir, v, cs+"."+tool+".txt"), tool == "gdb")
					if err != nil {
						t.Fatal(err)
					}
					for _, th := range cas.Threads {
						got := fxToolVerdict(cas.Chains[v][th.Role], frames[c.tids[th.Role]], user, tool != "gdb")
						if want := cas.Tools[tool][v][th.Role]; got != want {
							t.Errorf("%s, thread %s: MANIFEST says %q, the recorded output gives %q", tool, th.Role, want, got)
						}
					}
				}
			})
		}
	}
}

// A signal frame's entry carries the signal number only when the frame
// holds it: the fixture's handler is SA_SIGINFO (signal.c: SIGALRM), so
// with DWARF saying so the frame is "signal:14"; without DWARF (O2nodbg,
// O2nocfi) the siginfo slot could be stale and the entry is "signal". The
// corpus c_sighandler installs a plain sa_handler: "signal" with DWARF too.
func TestUserSignalNumberOnlyWhenHeld(t *testing.T) {
	m := fxManifestLoad(t)
	want := map[string]string{"O0fp": "signal:14", "O2cfi": "signal:14", "static": "signal:14", "O2nodbg": "signal", "O2nocfi": "signal"}
	for _, v := range fxVariants {
		t.Run(v, func(t *testing.T) {
			c := fxOpen(t, m, v, "signal", false)
			var entries []string
			for i := range c.d.Threads() {
				tr, err := c.d.Unwind(i, c.set, unwind.Options{})
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range tr.Frames {
					if f.Kind == unwind.KindSignal {
						entries = append(entries, f.Entry)
					}
				}
			}
			if len(entries) != 1 || entries[0] != want[v] {
				t.Errorf("signal frames %q, want [%q]", entries, want[v])
			}
		})
	}
}
