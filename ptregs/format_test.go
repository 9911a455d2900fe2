package ptregs

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// kernelBlock is one register block the Linux 6.1 kernel printed, rebuilt
// into the values it was printed from.
type kernelBlock struct {
	text string         // the kernel's lines, the expected output
	regs PtRegs         // the values parsed back from them
	syms map[string]sym // "# symbol:" lines, from System.map
	code []byte         // the Code: bytes, nil when unreadable
}

type sym struct{ addr, size uint64 }

// parseKernelBlock reads a testdata/linux-6.1/*.regs file: comment lines,
// then the RIP, Code, RSP and five register lines exactly as the kernel
// printed them.
func parseKernelBlock(t *testing.T, path string) kernelBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kb := kernelBlock{syms: map[string]sym{}}
	var text strings.Builder
	p := &kb.regs
	p.OrigAX = ^uint64(0)
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# symbol: "); ok {
			var name string
			var s sym
			if _, err := fmt.Sscanf(rest, "%s %v %v", &name, &s.addr, &s.size); err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			kb.syms[name] = s
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		text.WriteString(line + "\n")
		var err error
		switch {
		case strings.HasPrefix(line, "RIP: "):
			var loc string
			if _, err := fmt.Sscanf(line, "RIP: %4x:%s", &p.CS, &loc); err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			if strings.HasPrefix(loc, "0x") {
				_, err = fmt.Sscanf(loc, "%v", &p.IP)
				break
			}
			name, offsz, _ := strings.Cut(loc, "+")
			var off, size uint64
			if _, err = fmt.Sscanf(offsz, "%v/%v", &off, &size); err == nil {
				s, ok := kb.syms[name]
				if !ok || s.size != size {
					t.Fatalf("%s: no symbol line for %s/%#x", path, name, size)
				}
				p.IP = s.addr + off
			}
		case strings.HasPrefix(line, "Code: Unable"):
		case strings.HasPrefix(line, "Code: "):
			for _, f := range strings.Fields(line)[1:] {
				var c byte
				_, err = fmt.Sscanf(strings.Trim(f, "<>"), "%02x", &c)
				kb.code = append(kb.code, c)
			}
		case strings.HasPrefix(line, "RSP: "):
			if strings.Contains(line, "ORIG_RAX") {
				_, err = fmt.Sscanf(line, "RSP: %x:%x EFLAGS: %x ORIG_RAX: %x", &p.SS, &p.SP, &p.Flags, &p.OrigAX)
			} else {
				_, err = fmt.Sscanf(line, "RSP: %x:%x EFLAGS: %x", &p.SS, &p.SP, &p.Flags)
			}
		case strings.HasPrefix(line, "RAX: "):
			_, err = fmt.Sscanf(line, "RAX: %x RBX: %x RCX: %x", &p.AX, &p.BX, &p.CX)
		case strings.HasPrefix(line, "RDX: "):
			_, err = fmt.Sscanf(line, "RDX: %x RSI: %x RDI: %x", &p.DX, &p.SI, &p.DI)
		case strings.HasPrefix(line, "RBP: "):
			_, err = fmt.Sscanf(line, "RBP: %x R08: %x R09: %x", &p.BP, &p.R8, &p.R9)
		case strings.HasPrefix(line, "R10: "):
			_, err = fmt.Sscanf(line, "R10: %x R11: %x R12: %x", &p.R10, &p.R11, &p.R12)
		case strings.HasPrefix(line, "R13: "):
			_, err = fmt.Sscanf(line, "R13: %x R14: %x R15: %x", &p.R13, &p.R14, &p.R15)
		default:
			t.Fatalf("%s: unexpected line %q", path, line)
		}
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
	}
	kb.text = text.String()
	return kb
}

func (kb *kernelBlock) symbolFunc() SymbolFunc {
	return func(addr uint64) (string, uint64, uint64, bool) {
		for name, s := range kb.syms {
			if addr >= s.addr && addr < s.addr+s.size {
				return name, addr - s.addr, s.size, true
			}
		}
		return "", 0, 0, false
	}
}

func (kb *kernelBlock) codeFunc() CodeFunc {
	return func(addr uint64, b []byte) bool {
		if kb.code == nil || addr != kb.regs.IP-CodePrologue || len(b) != len(kb.code) {
			return false
		}
		copy(b, kb.code)
		return true
	}
}

// TestFormatMatchesLinux rebuilds every register block the Linux 6.1 kernel
// printed in the corpus's serial logs and checks that formatting the values
// gives back the kernel's text byte for byte.
func TestFormatMatchesLinux(t *testing.T) {
	files, err := filepath.Glob("testdata/linux-6.1/*.regs")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			kb := parseKernelBlock(t, path)
			var got bytes.Buffer
			if err := FormatPtRegsCode(&got, &kb.regs, kb.symbolFunc(), kb.codeFunc()); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(kb.text, got.String()); d != "" {
				t.Errorf("FormatPtRegsCode differs from the kernel's output (-kernel +got):\n%s", d)
			}
			// Without a CodeFunc the Code line is simply absent.
			got.Reset()
			if err := FormatPtRegs(&got, &kb.regs, kb.symbolFunc()); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(dropCode(kb.text), got.String()); d != "" {
				t.Errorf("FormatPtRegs (-want +got):\n%s", d)
			}
			// The kernel printed these frames, so they must pass Check.
			if err := kb.regs.Check(CheckOptions{}); err != nil {
				t.Errorf("Check rejects a frame Linux printed: %v", err)
			}
		})
	}
}

func dropCode(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "Code: ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// goldenCases are formatter inputs not seen in the corpus: partial frames,
// compat mode, FRED upper bits, unknown symbols.
var goldenCases = []struct {
	name string
	run  func(w *bytes.Buffer) error
}{
	{"iret-kernel", func(w *bytes.Buffer) error {
		f := IretFrame{IP: 0xffffffff81c00a1b, CS: 0x10, Flags: 0x46, SP: 0xfffffe0000009fd8, SS: 0x18}
		return FormatIret(w, &f, testSyms)
	}},
	{"iret-user-code-unreadable", func(w *bytes.Buffer) error {
		f := IretFrame{IP: 0x401136, CS: 0x33, Flags: 0x10246, SP: 0x7ffc0000ff00, SS: 0x2b}
		return FormatIretCode(w, &f, testSyms, func(uint64, []byte) bool { return false })
	}},
	{"ptregs-compat-syscall", func(w *bytes.Buffer) error {
		p := PtRegs{IP: 0xf7f4d549, CS: 0x23, Flags: 0x292, SP: 0xffc8e1a0, SS: 0x2b, OrigAX: 4, AX: 0xffffffffffffffda}
		return FormatPtRegs(w, &p, testSyms)
	}},
	{"ptregs-fred-upper-bits", func(w *bytes.Buffer) error {
		p := PtRegs{IP: 0xffffffff81000010, CS: 0x10 | 1<<16 | 1<<40, Flags: 0x82, SP: 0xffffc90000003f00, SS: 0x18 | 0xe<<32, OrigAX: ^uint64(0)}
		return FormatPtRegs(w, &p, testSyms)
	}},
	{"ptregs-unknown-symbol", func(w *bytes.Buffer) error {
		p := PtRegs{IP: 0xffffffffa0001234, CS: 0x10, Flags: 0x10282, SP: 0xffffc90000133de8, SS: 0, OrigAX: 0}
		return FormatPtRegs(w, &p, testSyms)
	}},
	{"code-at-wrapping-ip", func(w *bytes.Buffer) error {
		return FormatCode(w, 0, nil)
	}},
}

// testSyms knows one function, func1 at 0xffffffff81000000, 0x40 bytes, and
// a block of entry code.
func testSyms(addr uint64) (string, uint64, uint64, bool) {
	switch {
	case addr >= 0xffffffff81000000 && addr < 0xffffffff81000040:
		return "func1", addr - 0xffffffff81000000, 0x40, true
	case addr >= 0xffffffff81c00a00 && addr < 0xffffffff81c00a20:
		return "asm_exc_nmi", addr - 0xffffffff81c00a00, 0x20, true
	}
	return "", 0, 0, false
}

func TestFormatGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			var got bytes.Buffer
			if err := tc.run(&got); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "format", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if d := cmp.Diff(string(want), got.String()); d != "" {
				t.Errorf("%s (-want +got):\n%s", path, d)
			}
		})
	}
}

func TestFormatRIP(t *testing.T) {
	for _, tc := range []struct {
		ip, cs uint64
		want   string
	}{
		{0xffffffff8100000e, 0x10, "0010:func1+0xe/0x40"},
		{0xffffffff81000000, 0x10, "0010:func1+0x0/0x40"},
		{0x401136, 0x33, "0033:0x401136"},
		{0xffffffff81000000, 0x33, "0033:0xffffffff81000000"}, // user mode: never symbolized
		{0, 0x10, "0010:0x0"},
		{0xffffffff8100000e, 0x10 | 3<<16, "0010:func1+0xe/0x40"}, // FRED bits dropped
	} {
		if got := FormatRIP(tc.ip, tc.cs, testSyms); got != tc.want {
			t.Errorf("FormatRIP(%#x, %#x) = %q, want %q", tc.ip, tc.cs, got, tc.want)
		}
	}
	if got := FormatRIP(0xffffffff8100000e, 0x10, nil); got != "0010:0xffffffff8100000e" {
		t.Errorf("nil SymbolFunc: %q", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }

func TestFormatWriteError(t *testing.T) {
	p := PtRegs{}
	f := IretFrame{}
	if FormatPtRegs(failWriter{}, &p, nil) == nil || FormatIret(failWriter{}, &f, nil) == nil || FormatCode(failWriter{}, 0, nil) == nil {
		t.Error("write error not returned")
	}
}
