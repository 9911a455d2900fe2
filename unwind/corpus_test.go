package unwind_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/unwind"
)

var corpusVariants = []string{"O0fp", "O2cfi", "O2nodbg", "O2nocfi", "static"}

// userTruth is the true chain of user functions, innermost first, from
// user/MANIFEST.md; optional names (inlined functions, visible only with
// DWARF) may appear anywhere and are ignored.
type userTruth struct {
	want     []string
	optional []string
	signal   bool // a signal frame lies between want[signalAt-1] and want[signalAt]
	signalAt int
}

func deepchainTruth(variant string) userTruth {
	var want []string
	opt := []string{"f03", "f09", "f15"}
	for i := 24; i >= 1; i-- {
		n := fmt.Sprintf("f%02d", i)
		if n == "f03" || n == "f09" || n == "f15" {
			continue
		}
		if n == "f21" && variant != "O0fp" {
			opt = append(opt, n)
			continue
		}
		want = append(want, n)
	}
	return userTruth{want: append(want, "main"), optional: opt}
}

var userTruths = map[string]func(variant string) userTruth{
	"a_deepchain": deepchainTruth,
	"b_abort":     func(string) userTruth { return userTruth{want: []string{"b4", "b3", "b2", "b1", "main"}} },
	"c_sighandler": func(string) userTruth {
		return userTruth{want: []string{"h3", "h2", "h1", "on_alarm", "spin3", "spin2", "spin1", "main"}, signal: true, signalAt: 4}
	},
	"f_nullfnptr": func(string) userTruth { return userTruth{want: []string{"<0x0>", "n3", "n2", "n1", "main"}} },
	"g_entry":     func(string) userTruth { return userTruth{want: []string{"g_entry", "gc2", "gc1", "main"}} },
	"g_push":      func(string) userTruth { return userTruth{want: []string{"g_push", "gc2", "gc1", "main"}} },
}

// userName matches the functions of the corpus programs (not libc's).
var userName = regexp.MustCompile(`^(main|f\d\d|b\d|h\d|on_alarm|spin\d|n\d|g_entry|g_push|gc\d|t[a-d]\d?)$`)

func userChain(frames []unwind.Frame, opt []string) []string {
	var out []string
	for i, f := range frames {
		n := f.Function
		if i == 0 && f.PC == 0 {
			n = "<0x0>"
		}
		if !userName.MatchString(n) && n != "<0x0>" {
			continue
		}
		skip := false
		for _, o := range opt {
			if n == o {
				skip = true
			}
		}
		if !skip && (len(out) == 0 || out[len(out)-1] != n || f.Inlined) {
			out = append(out, n)
		}
	}
	return out
}

func openCase(t *testing.T, dir string) (*dump.Dump, unwind.Code) {
	t.Helper()
	d, err := dump.Open(filepath.Join(dir, "core"))
	if err != nil {
		t.Fatalf("open core: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	lib := filepath.Join(dir, "..", "..", "lib")
	set, warns, err := d.Symbols(dump.SymbolOptions{Exe: filepath.Join(dir, "bin"), SearchDirs: []string{lib}})
	if err != nil {
		t.Fatalf("symbols: %v", err)
	}
	for _, w := range warns {
		t.Logf("symbols warning: %s", w)
	}
	return d, set
}

func walkThread(d *dump.Dump, code unwind.Code, i int) ([]unwind.Frame, *unwind.Unwinder) {
	th := d.Threads()[i]
	u := unwind.New(d.Memory(), th.Regs, &unwind.Options{Code: code, Stacks: d.Stacks(i)})
	var fs []unwind.Frame
	for u.Next() {
		fs = append(fs, u.Frame())
	}
	return fs, u
}

func describe(fs []unwind.Frame, u *unwind.Unwinder) string {
	var b strings.Builder
	for _, f := range fs {
		r := " "
		if !f.Reliable {
			r = "?"
		}
		fmt.Fprintf(&b, "  #%-2d %s %#x %s+%#x [%s %s %s] sp=%#x\n", f.Index, r, f.PC, f.Function, f.Offset(), f.Kind, f.Method, f.Stack.Kind, f.SP)
	}
	fmt.Fprintf(&b, "  stop: %s reliable=%v\n", u.StopReason(), u.Reliable())
	return b.String()
}

func TestUserCorpus(t *testing.T) {
	root := corpus.Dir(t, "user")
	for c, truthFn := range userTruths {
		for _, v := range corpusVariants {
			dir := filepath.Join(root, c, v)
			t.Run(c+"/"+v, func(t *testing.T) {
				d, code := openCase(t, dir)
				corpus.Checked(t, 1)
				crashed := 0
				for i, th := range d.Threads() {
					if th.Crashed {
						crashed = i
					}
				}
				fs, u := walkThread(d, code, crashed)
				tr := truthFn(v)
				got := userChain(fs, tr.optional)
				if strings.Join(got, " ") != strings.Join(tr.want, " ") {
					t.Errorf("chain\n got %v\nwant %v\n%s", got, tr.want, describe(fs, u))
					return
				}
				if tr.signal {
					found := false
					for _, f := range fs {
						if f.Kind == unwind.KindSignal && f.Function == tr.want[tr.signalAt] {
							found = true
						}
					}
					if !found {
						t.Errorf("no signal frame for %s\n%s", tr.want[tr.signalAt], describe(fs, u))
					}
				}
				scanned := false
				for _, f := range fs {
					scanned = scanned || f.Kind == unwind.KindScan
				}
				switch {
				case v == "O2nocfi":
					if u.Reliable() && scanned {
						t.Errorf("scanned trace marked reliable\n%s", describe(fs, u))
					}
				case !u.Reliable():
					t.Errorf("trace not reliable\n%s", describe(fs, u))
				}
				if testing.Verbose() {
					t.Logf("\n%s", describe(fs, u))
				}
			})
		}
	}
}

func TestUserCorpusThreads(t *testing.T) {
	root := corpus.Dir(t, "user")
	want := map[string][]string{
		"ta": {"ta3", "ta2", "ta1", "ta"}, "tb": {"tb3", "tb2", "tb1", "tb"},
		"tc": {"tc3", "tc2", "tc1", "tc"}, "td": {"td3", "td2", "td1", "td"},
	}
	for _, v := range corpusVariants {
		dir := filepath.Join(root, "h_threads", v)
		t.Run(v, func(t *testing.T) {
			d, code := openCase(t, dir)
			corpus.Checked(t, len(d.Threads()))
			seen := map[string]bool{}
			for i := range d.Threads() {
				fs, u := walkThread(d, code, i)
				got := userChain(fs, nil)
				if len(got) == 0 {
					t.Errorf("thread %d: no user frames\n%s", i, describe(fs, u))
					continue
				}
				last := got[len(got)-1]
				if last == "main" {
					seen["main"] = true
					continue
				}
				w, ok := want[last]
				if !ok {
					t.Errorf("thread %d: chain %v\n%s", i, got, describe(fs, u))
					continue
				}
				seen[last] = true
				if strings.Join(got, " ") != strings.Join(w, " ") {
					t.Errorf("thread %d: got %v want %v\n%s", i, got, w, describe(fs, u))
				}
				if v != "O2nocfi" && !u.Reliable() {
					t.Errorf("thread %d not reliable\n%s", i, describe(fs, u))
				}
			}
			if len(seen) != 5 {
				t.Errorf("threads seen: %v", seen)
			}
		})
	}
}

// TestUserCorpusSignalCFI crosses the signal frame with glibc's own CFI
// for __restore_rt (a CIE with the 'S' augmentation), the rt_sigframe
// detector turned off.
func TestUserCorpusSignalCFI(t *testing.T) {
	root := corpus.Dir(t, "user")
	for _, v := range []string{"O0fp", "O2cfi", "O2nodbg", "static"} {
		dir := filepath.Join(root, "c_sighandler", v)
		t.Run(v, func(t *testing.T) {
			d, code := openCase(t, dir)
			corpus.Checked(t, 1)
			th := d.Threads()[0]
			u := unwind.New(d.Memory(), th.Regs, &unwind.Options{Code: code, Stacks: d.Stacks(0), Methods: unwind.MethodCFI | unwind.MethodFP})
			var fs []unwind.Frame
			for u.Next() {
				fs = append(fs, u.Frame())
			}
			want := userTruths["c_sighandler"](v).want
			if got := userChain(fs, nil); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("got %v want %v\n%s", got, want, describe(fs, u))
			}
			sig := false
			for _, f := range fs {
				if f.Kind == unwind.KindSignal && f.Method == unwind.MethodCFI && f.LookupPC == f.PC && f.Function == "spin3" {
					sig = true
				}
			}
			if !sig || !u.Reliable() {
				t.Errorf("signal frame via CFI %v, reliable %v\n%s", sig, u.Reliable(), describe(fs, u))
			}
		})
	}
}

// The corpus's c_sighandler installs a plain sa_handler (not SA_SIGINFO):
// the kernel left its frame's siginfo unwritten, so the signal frame's
// entry has no number, with or without DWARF.
func TestUserCorpusSignalNoSigInfo(t *testing.T) {
	root := corpus.Dir(t, "user")
	for _, v := range corpusVariants {
		t.Run(v, func(t *testing.T) {
			d, code := openCase(t, filepath.Join(root, "c_sighandler", v))
			corpus.Checked(t, 1)
			var entries []string
			for i := range d.Threads() {
				fs, _ := walkThread(d, code, i)
				for _, f := range fs {
					if f.Kind == unwind.KindSignal {
						entries = append(entries, f.Entry)
					}
				}
			}
			if len(entries) != 1 || entries[0] != "signal" {
				t.Errorf("signal frames %q, want [\"signal\"]", entries)
			}
		})
	}
}
