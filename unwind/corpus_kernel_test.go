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
	"github.com/unwind-dev/unwind/ptregs"
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
	b, err := os.ReadFile(filepath.Join(corpus.SharedDir(), "kernel-truth-dev.json"))
	if err != nil {
		t.Skipf("kernel-truth-dev.json: %v", err)
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
	set, _, err := d.Symbols(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, th := range d.Threads() {
		want, ok := cpus[strconv.Itoa(th.CPU)]
		if !ok {
			continue
		}
		u := unwind.New(d.Memory(), th.Regs, &unwind.Options{Code: set, Stacks: d.Stacks(i), Kernel: true})
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
