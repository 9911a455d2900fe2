package symbols

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// The golden tests compare this package's lookups with the output of nm and
// addr2line saved under testdata/ (regenerated with -update, which needs
// those tools); the comparison itself needs no tool.

var update = flag.Bool("update", false, "regenerate the saved nm/addr2line output in testdata")

// nmSym is one line of `nm -n -S`.
type nmSym struct {
	addr, size uint64
	hasSize    bool
	typ        byte
	name       string
}

func parseNMOutput(t *testing.T, b []byte) []nmSym {
	t.Helper()
	var out []nmSym
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue // undefined symbols have no address
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			t.Fatalf("nm line %q: %v", line, err)
		}
		s := nmSym{addr: addr}
		if len(f) == 4 {
			s.size, _ = strconv.ParseUint(f[1], 16, 64)
			s.hasSize = true
			f = f[1:]
		}
		s.typ, s.name = f[1][0], f[2]
		if i := strings.IndexByte(s.name, '@'); i > 0 {
			s.name = s.name[:i]
		}
		switch s.typ {
		case 'U', 'u', 'w', 'v', 'N', 'n':
			continue
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b nmSym) int {
		if a.addr < b.addr {
			return -1
		}
		if a.addr > b.addr {
			return 1
		}
		return 0
	})
	return out
}

// checkAgainstNM checks one lookup of the link-time address a (looked up at
// a+bias) against nm's symbols. useSizes says whether the table has nm's
// sizes (ELF) or derived ones (System.map).
func checkAgainstNM(t *testing.T, nm []nmSym, a, bias uint64, got Sym, ok, useSizes bool) {
	t.Helper()
	i, _ := slices.BinarySearchFunc(nm, a+1, func(s nmSym, x uint64) int {
		if s.addr < x {
			return -1
		}
		return 1
	})
	// nm[i-1] is the last symbol at or below a; g is its alias group.
	if i == 0 {
		if ok {
			t.Errorf("%#x: got %s, nm has no symbol at or below", a, got.Name)
		}
		return
	}
	gAddr := nm[i-1].addr
	var group []nmSym
	for j := i - 1; j >= 0 && nm[j].addr == gAddr; j-- {
		group = append(group, nm[j])
	}
	covered := false // some nm symbol at gAddr has a size covering a
	allSized := true
	for _, s := range group {
		if !s.hasSize || s.size == 0 {
			allSized = false
		} else if a-s.addr < s.size {
			covered = true
		}
	}
	if !ok {
		if covered {
			t.Errorf("%#x: miss, nm: %v", a, group)
		}
		if !useSizes && !allSized && i < len(nm) {
			t.Errorf("%#x: miss, nm's %v has no size and is followed by %s", a, group, nm[i].name)
		}
		return
	}
	if got.Addr-bias != gAddr {
		// Only an enclosing, sized symbol below may answer instead.
		if covered || !useSizes {
			t.Errorf("%#x: got %s@%#x, nm: %v", a, got.Name, got.Addr-bias, group)
			return
		}
		for _, s := range nm[:i] {
			if s.addr == got.Addr-bias && s.name == got.Name && s.hasSize && a-s.addr < s.size {
				return
			}
		}
		t.Errorf("%#x: got %s@%#x size %#x, nm: %v", a, got.Name, got.Addr-bias, got.Size, group)
		return
	}
	for _, s := range group {
		if s.name == got.Name {
			if useSizes && s.hasSize && s.size != 0 && s.size != got.Size {
				t.Errorf("%#x: %s size %#x, nm %#x", a, got.Name, got.Size, s.size)
			}
			return
		}
	}
	t.Errorf("%#x: got %s, not among nm's %v", a, got.Name, group)
}

// a2lFrame is one function/file:line pair of addr2line -f -i output.
type a2lFrame struct {
	fn, file string
	line     int
}

// parseAddr2line reads `addr2line -f -i -a` output: an address line, then
// function and file:line pairs.
func parseAddr2line(t *testing.T, b []byte) map[uint64][]a2lFrame {
	t.Helper()
	out := map[uint64][]a2lFrame{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var cur uint64
	var lines []string
	flush := func() {
		for i := 0; i+1 < len(lines); i += 2 {
			loc := lines[i+1]
			if j := strings.Index(loc, " (discriminator"); j >= 0 {
				loc = loc[:j]
			}
			k := strings.LastIndexByte(loc, ':')
			n, _ := strconv.Atoi(loc[k+1:])
			out[cur] = append(out[cur], a2lFrame{fn: lines[i], file: loc[:k], line: n})
		}
		lines = lines[:0]
	}
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "0x") {
			flush()
			v, err := strconv.ParseUint(l[2:], 16, 64)
			if err != nil {
				t.Fatalf("addr2line line %q", l)
			}
			cur = v
			out[cur] = nil
			continue
		}
		lines = append(lines, l)
	}
	flush()
	return out
}

func checkAgainstAddr2line(t *testing.T, a uint64, want []a2lFrame, got []Line) {
	t.Helper()
	if len(want) == 1 && want[0].fn == "??" && want[0].file == "??" {
		want = nil
	}
	if len(want) == 1 && (want[0].file == "??" || want[0].line == 0) && len(got) <= 1 {
		return // addr2line named the function from symbols only
	}
	if len(want) != len(got) {
		t.Errorf("%#x: %d frames %+v, addr2line %d %+v", a, len(got), got, len(want), want)
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Function != w.fn || g.File != w.file || g.Line != w.line {
			t.Errorf("%#x frame %d: %s %s:%d, addr2line %s %s:%d", a, i, g.Function, g.File, g.Line, w.fn, w.file, w.line)
		}
		if g.Inlined != (i < len(want)-1) {
			t.Errorf("%#x frame %d: Inlined %v", a, i, g.Inlined)
		}
	}
}

// toolOutput runs a tool on -update and saves its output, or reads the saved
// output.
func toolOutput(t *testing.T, golden string, name string, args ...string) []byte {
	t.Helper()
	if *update {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (regenerate with go test -run Golden -update)", err)
	}
	return b
}

func hexAddrs(as []uint64) []string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmt.Sprintf("%#x", a)
	}
	return s
}

// textAddrs returns every step-th address of every text symbol with a size,
// plus its last byte and the byte past it.
func textAddrs(nm []nmSym, step uint64) []uint64 {
	var as []uint64
	for _, s := range nm {
		if (s.typ == 'T' || s.typ == 't') && s.hasSize && s.size > 0 {
			for a := s.addr; a < s.addr+s.size; a += step {
				as = append(as, a)
			}
			as = append(as, s.addr+s.size-1, s.addr+s.size)
		}
	}
	slices.Sort(as)
	return slices.Compact(as)
}

func TestGoldenProg(t *testing.T) {
	const bin = "testdata/prog"
	nm := parseNMOutput(t, toolOutput(t, "testdata/prog.nm", "nm", "-n", "-S", bin))
	var all []uint64 // every nm address, one below and one above, plus text
	for _, s := range nm {
		all = append(all, s.addr-1, s.addr, s.addr+1)
	}
	text := textAddrs(nm, 1)
	all = append(all, text...)
	a2l := parseAddr2line(t, toolOutput(t, "testdata/prog.addr2line", "addr2line",
		append([]string{"-f", "-i", "-a", "-e", bin}, hexAddrs(text)...)...))
	for _, bias := range []uint64{0, 0x555555554000} {
		f, err := Open(bin, bias)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range all {
			got, ok := f.Syms.Lookup(a + bias)
			checkAgainstNM(t, nm, a, bias, got, ok, true)
		}
		var buf []Line
		for _, a := range text {
			buf = f.Lines(a+bias, buf)
			checkAgainstAddr2line(t, a, a2l[a], buf)
		}
		f.Close()
	}
	if len(text) < 100 || len(a2l) != len(text) {
		t.Errorf("only %d text addresses, %d addr2line answers", len(text), len(a2l))
	}
}

// kernelSamples picks n addresses spread over the kernel text of a System.map.
func kernelSamples(nm []nmSym, n int) []uint64 {
	var lo, hi uint64
	for _, s := range nm {
		switch s.name {
		case "_stext":
			lo = s.addr
		case "_etext":
			hi = s.addr
		}
	}
	if lo == 0 || hi <= lo {
		return nil
	}
	as := make([]uint64, n)
	for i := range as {
		as[i] = lo + uint64(i)*((hi-lo)/uint64(n)) + uint64(i*7%61)
	}
	return as
}

// nmSample keeps the nm lines a sample of addresses needs: the alias group
// at or below each address and the two groups below it, so the golden file
// stays small.
func nmSample(full []byte, as []uint64) []byte {
	type l struct {
		addr uint64
		text string
	}
	var ls []l
	for _, line := range strings.Split(string(full), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err == nil {
			ls = append(ls, l{a, line})
		}
	}
	keep := map[int]bool{}
	for _, a := range as {
		i, _ := slices.BinarySearchFunc(ls, a+1, func(x l, v uint64) int {
			if x.addr < v {
				return -1
			}
			return 1
		})
		groups := 0
		for j := i - 1; j >= 0 && groups < 3; j-- {
			keep[j] = true
			if j == 0 || ls[j-1].addr != ls[j].addr {
				groups++
			}
		}
		if i < len(ls) {
			keep[i] = true
		}
	}
	var b bytes.Buffer
	for i, x := range ls {
		if keep[i] {
			b.WriteString(x.text + "\n")
		}
	}
	return b.Bytes()
}

func TestGoldenKernel(t *testing.T) {
	dir := filepath.Join(corpus.Dir(t, "kernel"), "fp")
	vmlinux := filepath.Join(dir, "vmlinux")
	sysmapBytes, err := os.ReadFile(filepath.Join(dir, "System.map"))
	if err != nil {
		t.Fatal(err)
	}
	samples := kernelSamples(parseNMOutput(t, sysmapBytes), 400)
	if samples == nil {
		t.Fatal("no _stext/_etext in System.map")
	}
	golden := "testdata/vmlinux.nm.sample"
	if *update {
		full, err := exec.Command("nm", "-n", "-S", vmlinux).Output()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, nmSample(full, samples), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nmB, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	nm := parseNMOutput(t, nmB)
	lineSamples := samples[:100]
	a2l := parseAddr2line(t, toolOutput(t, "testdata/vmlinux.addr2line", "addr2line",
		append([]string{"-f", "-i", "-a", "-e", vmlinux}, hexAddrs(lineSamples)...)...))

	const kaslr = 0x2a000000
	for _, bias := range []uint64{0, kaslr} {
		sm, err := ParseSystemMap(bytes.NewReader(sysmapBytes), bias)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		f, err := Open(vmlinux, bias)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Open(vmlinux): %v, %d symbols", time.Since(start), f.Syms.Len())
		var set Set
		set.Add(f)
		set.AddTable(sm, "vmlinux")
		cfiHits := 0
		for _, a := range samples {
			// The ELF table keeps st_size in ELFSize; Size is kallsyms's,
			// the same as System.map's derived sizes.
			got, ok := f.Syms.Lookup(a + bias)
			elfView := got
			elfView.Size = got.ELFSize
			checkAgainstNM(t, nm, a, bias, elfView, ok, true)
			smGot, smOK := sm.Lookup(a + bias)
			checkAgainstNM(t, nm, a, bias, smGot, smOK, false)
			if ok != smOK || got.Name != smGot.Name || got.Addr != smGot.Addr || got.Size != smGot.Size {
				t.Errorf("%#x: vmlinux %+v %v, System.map %+v %v", a, got, ok, smGot, smOK)
			}
			if ok && got.Module != "" {
				t.Errorf("%#x: vmlinux symbol %s has Module %q, want \"\"", a, got.Name, got.Module)
			}
			if !set.IsText(a + bias) {
				t.Errorf("%#x: not text", a)
			}
			var row CFIRow
			if err := set.FindCFI(a+bias, &row); err == nil {
				cfiHits++
				if row.Start > a+bias || row.End <= a+bias {
					t.Errorf("%#x: row [%#x,%#x) does not cover it", a, row.Start, row.End)
				}
			} else if !errors.Is(err, ErrNoFDE) {
				t.Errorf("%#x: FindCFI: %v", a, err)
			}
		}
		// readelf --debug-frame: this vmlinux's 16652 FDEs cover 48% of
		// [_stext, _etext); 179 of the 400 samples fall in one.
		t.Logf("%d of %d samples have CFI", cfiHits, len(samples))
		if cfiHits < len(samples)/3 {
			t.Errorf("only %d of %d kernel text samples have CFI", cfiHits, len(samples))
		}
		var buf []Line
		start = time.Now()
		for i, a := range lineSamples {
			buf = set.Lines(a+bias, buf)
			if i == 0 {
				t.Logf("first Lines (DWARF unit index): %v", time.Since(start))
			}
			checkAgainstAddr2line(t, a, a2l[a], buf)
		}
		t.Logf("%d Lines lookups: %v", len(lineSamples), time.Since(start))
		f.Close()
	}
}
