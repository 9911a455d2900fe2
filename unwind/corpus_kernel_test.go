package unwind_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/linux"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

type kernelTruthCPU struct {
	Frames      []string `json:"frames"`
	Sections    []string `json:"sections"`
	Interrupted []struct {
		After    string `json:"after"`
		Entry    string `json:"entry"`
		RIP      string `json:"rip"`
		RSP      string `json:"rsp"`
		UserMode bool   `json:"user_mode"`
	} `json:"interrupted"`
}

// unpackVMCore returns a decompressed copy of a corpus vmcore, made once in
// the user's cache directory (shared with the dump package's tests).
func unpackVMCore(t *testing.T, src, name string) string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "unwind-dump-test", name+".vmcore")
	if fi, err := os.Stat(out); err == nil && fi.Size() > 0 {
		return out
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := zstd.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), "tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tmp.Name())
	buf := make([]byte, 64<<10)
	var size int64
	for {
		n, err := io.ReadFull(zr, buf)
		if n > 0 {
			zero := true
			for _, c := range buf[:n] {
				if c != 0 {
					zero = false
					break
				}
			}
			if !zero {
				if _, err := tmp.WriteAt(buf[:n], size); err != nil {
					t.Fatal(err)
				}
			}
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tmp.Truncate(size); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if err := os.Rename(tmp.Name(), out); err != nil {
		t.Fatal(err)
	}
	return out
}

var kernelSuffix = regexp.MustCompile(`\.(cold|isra\.\d+|constprop\.\d+|part\.\d+)$`)

var kernelAliases = map[string]string{
	"end_repeat_nmi": "asm_exc_nmi", "entry_SYSCALL_64_after_hwframe": "entry_SYSCALL_64",
	"secondary_startup_64_no_verify": "secondary_startup_64",
}

func kernelName(n string) string {
	for kernelSuffix.MatchString(n) {
		n = kernelSuffix.ReplaceAllString(n, "")
	}
	if a, ok := kernelAliases[n]; ok {
		return a
	}
	return n
}

func TestKernelCorpus(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	b, err := os.ReadFile(corpus.File(t, "kernel-truth-dev.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truth map[string]json.RawMessage
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range truth {
		if n[0] != '_' {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var capt struct {
			CPUs map[string]kernelTruthCPU `json:"cpus"`
		}
		if err := json.Unmarshal(truth[name], &capt); err != nil {
			t.Fatal(err)
		}
		matches, _ := filepath.Glob(filepath.Join(kdir, "fp", "*", name+".vmcore.zst"))
		if len(matches) != 1 {
			t.Errorf("%s: %d vmcores named %s.vmcore.zst in the kernel corpus, want 1", name, len(matches), name)
			continue
		}
		for _, withMap := range []bool{false, true} {
			sub := name
			if withMap {
				sub += "+system-map"
			}
			t.Run(sub, func(t *testing.T) {
				checkKernelCapture(t, kdir, matches[0], name, withMap, capt.CPUs)
			})
		}
	}
}

// checkKernelCapture unwinds every CPU of one vmcore, with vmlinux alone or
// with vmlinux plus System.map (whose data symbols must not name a PC).
func checkKernelCapture(t *testing.T, kdir, src, name string, withMap bool, cpus map[string]kernelTruthCPU) {
	d, err := dump.Open(unpackVMCore(t, src, name))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	opts := dump.SymbolOptions{Files: []string{filepath.Join(kdir, "fp", "vmlinux")}}
	if withMap {
		opts.SystemMap = filepath.Join(kdir, "fp", "System.map")
	}
	k, err := linux.Open(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	set := k.Symbols()
	// One trace for each CPU of the truth: loop over the truth, so a CPU
	// the dump lacks (or has twice) fails.
	threadOf := map[string][]int{}
	for i, th := range k.CPUs() {
		threadOf[strconv.Itoa(th.CPU)] = append(threadOf[strconv.Itoa(th.CPU)], i)
	}
	var cpuNames []string
	for c := range cpus {
		cpuNames = append(cpuNames, c)
	}
	sort.Strings(cpuNames)
	for _, c := range cpuNames {
		want := cpus[c]
		if len(threadOf[c]) != 1 {
			t.Errorf("cpu %s of the truth: %d threads in the dump, want exactly 1", c, len(threadOf[c]))
			continue
		}
		i := threadOf[c][0]
		th := k.CPUs()[i]
		corpus.Checked(t, 1)
		u := unwind.New(d.Memory(), th.Regs, &unwind.Options{Code: set, Stacks: k.Stacks(i), Kernel: true})
		var fs []unwind.Frame
		var got, gotSec []string
		for u.Next() {
			f := u.Frame()
			fs = append(fs, f)
			if f.Kind == unwind.KindScan || f.Inlined {
				continue
			}
			// The truth names kallsyms symbols: the physical
			// function, not the inlined one.
			n := kernelName(f.Sym.Name)
			switch {
			case f.Kind == unwind.KindInterrupted && ptregs.UserMode(f.PtRegs.CS):
				n = "<user>"
			case !f.SymOK || f.PC == 0:
				n = fmt.Sprintf("<unknown:%#x>", f.PC)
			}
			got = append(got, n)
			gotSec = append(gotSec, f.Stack.Kind.String())
		}
		var w []string
		for _, n := range want.Frames {
			w = append(w, kernelName(n))
		}
		if strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("cpu %d:\n got %v\nwant %v\n%s", th.CPU, got, w, describe(fs, u))
			continue
		}
		if strings.Join(gotSec, " ") != strings.Join(want.Sections, " ") {
			t.Errorf("cpu %d: stacks\n got %v\nwant %v", th.CPU, gotSec, want.Sections)
		}
		k := 0
		for _, f := range fs {
			if f.Kind != unwind.KindInterrupted {
				continue
			}
			if k >= len(want.Interrupted) {
				t.Errorf("cpu %d: extra interrupted frame %s", th.CPU, f.Function)
				break
			}
			in := want.Interrupted[k]
			k++
			if fmt.Sprintf("%#x", f.PC) != in.RIP || fmt.Sprintf("%#x", f.SP) != in.RSP || !strings.HasPrefix(f.Entry, in.Entry) {
				t.Errorf("cpu %d: interrupted frame %s: rip %#x rsp %#x entry %q, want %s %s %s", th.CPU, f.Function, f.PC, f.SP, f.Entry, in.RIP, in.RSP, in.Entry)
			}
		}
		if k != len(want.Interrupted) {
			t.Errorf("cpu %d: %d interrupted frames, want %d", th.CPU, k, len(want.Interrupted))
		}
		if testing.Verbose() {
			t.Logf("cpu %d reliable=%v\n%s", th.CPU, u.Reliable(), describe(fs, u))
		}
	}
}

// mapCode is a kernel dump's Code with only System.map: the symbols, and
// the machine code read from the dump's memory (the CLI's dumpCode).
type mapCode struct {
	*symbols.Set
	mem unwind.Memory
}

func (c mapCode) CodeAt(pc uint64) []byte {
	s, ok := c.Set.Symbol(pc)
	if !ok || s.Size == 0 || pc-s.Addr >= s.Size {
		return nil
	}
	b := make([]byte, min(s.Addr+s.Size-pc, 64<<10))
	k, _ := c.mem.ReadAt(b, pc)
	if k == 0 {
		return nil
	}
	return b[:k]
}

// sysrqCPU0 are the captures whose CPU 0 is in a sysrq handler called from
// __handle_sysrq.cold, the cold part of __handle_sysrq.
var sysrqCPU0 = map[string]bool{"nmibt": true, "nmibt-paging": true, "oops-die": true, "panic-entry": true}

// TestKernelCorpusSystemMapOnly unwinds every CPU of every corpus vmcore
// with System.map as the only symbols (no vmlinux: no CFI, the code from
// the dump), so with frame pointers and prologue analysis alone, and
// compares it with the walk with vmlinux: the same physical frames (pc,
// sp, kind), none reliable that is not with vmlinux, and on the sysrq
// paths through __handle_sysrq.cold (which runs in __handle_sysrq's
// frame: the rbp chain is intact) every frame as reliable as with
// vmlinux. Elsewhere a frame may be a guess with System.map alone: a
// return address into freed init text (arch_call_rest_init) or one
// pushed without a call (secondary_startup_64's lretq) has no call site
// to check.
func TestKernelCorpusSystemMapOnly(t *testing.T) {
	kdir := corpus.Dir(t, "kernel")
	matches, _ := filepath.Glob(filepath.Join(kdir, "fp", "*", "*.vmcore.zst"))
	if len(matches) == 0 {
		t.Fatalf("no vmcores in the kernel corpus %s", kdir)
	}
	for _, src := range matches {
		name := strings.TrimSuffix(filepath.Base(src), ".vmcore.zst")
		t.Run(name, func(t *testing.T) {
			open := func(opts dump.SymbolOptions) (*linux.Kernel, *symbols.Set) {
				d, err := dump.Open(unpackVMCore(t, src, name))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
				k, err := linux.Open(d, opts)
				if err != nil {
					t.Fatal(err)
				}
				return k, k.Symbols()
			}
			walk := func(k *linux.Kernel, i int, code func(unwind.Memory) unwind.Code) ([]unwind.Frame, *unwind.Unwinder) {
				th := k.CPUs()[i]
				mem := k.Dump().CPUMemory(th.CPU)
				u := unwind.New(mem, th.Regs, &unwind.Options{Code: code(mem), Stacks: k.Stacks(i), Kernel: true})
				var fs []unwind.Frame
				for u.Next() {
					if f := u.Frame(); !f.Inlined {
						fs = append(fs, f)
					}
				}
				return fs, u
			}
			dFull, full := open(dump.SymbolOptions{Files: []string{filepath.Join(kdir, "fp", "vmlinux")}})
			dMap, sm := open(dump.SymbolOptions{SystemMap: filepath.Join(kdir, "fp", "System.map")})
			corpus.Checked(t, len(dMap.CPUs()))
			for i, th := range dMap.CPUs() {
				want, uw := walk(dFull, i, func(unwind.Memory) unwind.Code { return full })
				got, u := walk(dMap, i, func(m unwind.Memory) unwind.Code { return mapCode{sm, m} })
				same := sysrqCPU0[name] && th.CPU == 0
				bad := len(got) != len(want)
				for j := 0; !bad && j < len(got); j++ {
					g, w := got[j], want[j]
					bad = g.PC != w.PC || g.SP != w.SP || g.Kind != w.Kind ||
						g.Reliable && !w.Reliable || same && g.Reliable != w.Reliable
				}
				if bad {
					t.Errorf("cpu %d with System.map only:\n%s\nwith vmlinux:\n%s", th.CPU, describe(got, u), describe(want, uw))
				}
			}
		})
	}
}
