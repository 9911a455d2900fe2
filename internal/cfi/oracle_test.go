package cfi

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-delve/delve/pkg/dwarf/frame"
	"github.com/unwind-dev/unwind/internal/corpus"
)

// The differential oracle: on real sections, every row our compiler produces
// must match delve's EstablishFrame, except where delve v1.27.2 is known to
// be wrong (see delvebugs_test.go); those cases are counted, not failed.

type oracleStats struct {
	pcs, restoreDiffs, valOffsetDiffs, delvePanics int
}

// sectionOf reads one section of an ELF file and its address.
func sectionOf(t *testing.T, path, name string) ([]byte, uint64, bool) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer ef.Close()
	s := ef.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, 0, false
	}
	b, err := s.Data()
	if err != nil {
		t.Fatalf("%s %s: %v", path, name, err)
	}
	return b, s.Addr, true
}

var delveRule = map[frame.Rule]RuleKind{
	frame.RuleUndefined:     RuleUndefined,
	frame.RuleSameVal:       RuleSameValue,
	frame.RuleOffset:        RuleOffset,
	frame.RuleValOffset:     RuleValOffset,
	frame.RuleRegister:      RuleRegister,
	frame.RuleExpression:    RuleExpression,
	frame.RuleValExpression: RuleValExpression,
}

// compareWithDelve checks up to maxPCs pcs spread over all FDEs.
func compareWithDelve(t *testing.T, data []byte, kind SectionKind, addr uint64, maxPCs int) oracleStats {
	t.Helper()
	var st oracleStats
	tab, err := Parse(data, kind, addr, 0)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ehAddr := uint64(0)
	if kind == EHFrame {
		ehAddr = addr
	}
	dfdes, err := frame.Parse(data, binary.LittleEndian, 0, 8, ehAddr)
	if err != nil {
		t.Fatalf("delve Parse: %v", err)
	}
	sort.SliceStable(dfdes, func(i, j int) bool { return dfdes[i].Begin() < dfdes[j].Begin() })
	total := uint64(0)
	for i := 0; i < tab.Len(); i++ {
		s, e := tab.Range(i)
		total += e - s
	}
	stride := max(total/uint64(maxPCs), 1)
	var row Row
	for i := 0; i < tab.Len(); i++ {
		s, e := tab.Range(i)
		j := sort.Search(len(dfdes), func(k int) bool { return dfdes[k].Begin() >= s })
		if j == len(dfdes) || dfdes[j].Begin() != s {
			t.Fatalf("FDE %#x missing from delve's list", s)
		}
		dfde := dfdes[j]
		for pc := s; pc < e; pc += stride {
			if err := tab.Find(pc, &row); err != nil {
				t.Fatalf("Find(%#x): %v", pc, err)
			}
			st.pcs++
			fc, panicked := establish(dfde, pc)
			if panicked {
				st.delvePanics++
				continue
			}
			if fc == nil {
				continue
			}
			compareRow(t, &st, pc, &row, fc, tab, i)
			if t.Failed() {
				return st
			}
		}
	}
	return st
}

func establish(f *frame.FrameDescriptionEntry, pc uint64) (fc *frame.FrameContext, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	fc, err := f.EstablishFrame(pc)
	if err != nil {
		return nil, false
	}
	return fc, false
}

func compareRow(t *testing.T, st *oracleStats, pc uint64, row *Row, fc *frame.FrameContext, tab *Table, fdeIdx int) {
	t.Helper()
	switch fc.CFA.Rule {
	case frame.RuleCFA:
		if row.CFA.Kind != RuleCFA || uint64(row.CFA.Reg) != fc.CFA.Reg || row.CFA.Offset != fc.CFA.Offset {
			t.Errorf("pc %#x: CFA %+v, delve reg %d off %d", pc, row.CFA, fc.CFA.Reg, fc.CFA.Offset)
		}
	case frame.RuleExpression:
		if row.CFA.Kind != RuleCFAExpression || !bytes.Equal(row.CFA.Expr, fc.CFA.Expression) {
			t.Errorf("pc %#x: CFA %+v, delve expression %x", pc, row.CFA, fc.CFA.Expression)
		}
	}
	if uint64(row.RetAddrReg) != fc.RetAddrReg {
		t.Errorf("pc %#x: RA column %d, delve %d", pc, row.RetAddrReg, fc.RetAddrReg)
	}
	initial := cieState(tab, fdeIdx)
	for reg := uint64(0); reg < NumCols; reg++ {
		got := row.Regs[reg]
		d, ok := fc.Regs[reg]
		if !ok {
			// delve has no rule: ours must be the default one.
			if !sameRule(got, defaultState().regs[reg]) {
				t.Errorf("pc %#x reg %d: %+v, delve has no rule", pc, reg, got)
			}
			continue
		}
		want := Rule{Kind: delveRule[d.Rule], Offset: d.Offset, Reg: uint8(d.Reg), Expr: d.Expression}
		if sameRule(got, want) {
			continue
		}
		switch {
		case d.Rule == frame.RuleUndefined && sameRule(got, initial.regs[reg]):
			st.restoreDiffs++ // delve's DW_CFA_restore forgets the CIE rule
		case d.Rule == frame.RuleValOffset && got.Kind == RuleValOffset && got.Offset == d.Offset*tab.fdes[fdeIdx].cie.dataAlign:
			st.valOffsetDiffs++ // delve does not factor val_offset
		default:
			t.Errorf("pc %#x reg %d: ours %+v, delve %+v", pc, reg, got, d)
		}
	}
}

func sameRule(a, b Rule) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case RuleOffset, RuleValOffset:
		return a.Offset == b.Offset
	case RuleRegister:
		return a.Reg == b.Reg
	case RuleExpression, RuleValExpression:
		return bytes.Equal(a.Expr, b.Expr)
	}
	return true
}

// cieState runs the CIE of FDE i alone.
func cieState(tab *Table, i int) state {
	f := &tab.fdes[i]
	k := &compiler{c: f.cie, cur: defaultState(), loc: f.start, end: f.end}
	k.run(f.cie.initial)
	return k.cur
}

func checkFile(t *testing.T, path string, maxPCs int) {
	t.Helper()
	any := false
	for _, sec := range []struct {
		name string
		kind SectionKind
	}{{".debug_frame", DebugFrame}, {".eh_frame", EHFrame}} {
		data, addr, ok := sectionOf(t, path, sec.name)
		if !ok {
			continue
		}
		any = true
		st := compareWithDelve(t, data, sec.kind, addr, maxPCs)
		t.Logf("%s %s: %d pcs compared with delve, all equal except known delve defects: restore %d, val_offset %d, panics %d",
			shortPath(path), sec.name, st.pcs, st.restoreDiffs, st.valOffsetDiffs, st.delvePanics)
	}
	if !any {
		t.Errorf("%s: no CFI sections", path)
	}
}

func TestOracleCommittedBinaries(t *testing.T) {
	for _, p := range []string{"../../symbols/testdata/prog", "../../symbols/testdata/prog-df"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("committed fixture missing: %v", err)
		}
		checkFile(t, p, 1<<20)
	}
}

func TestOracleUserCorpus(t *testing.T) {
	dir := corpus.Dir(t, "user")
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "O2cfi", "bin"))
	libs, _ := filepath.Glob(filepath.Join(dir, "lib", "*.so*"))
	for _, l := range libs {
		if !strings.HasSuffix(l, ".debug") { // separate debug files carry no CFI
			paths = append(paths, l)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no binaries in the user corpus %s", dir)
	}
	for _, p := range paths {
		f, err := elf.Open(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		f.Close()
		checkFile(t, p, 20000)
	}
	corpus.Checked(t, len(paths))
}

func TestOracleKernel(t *testing.T) {
	dir := corpus.Dir(t, "kernel")
	checkFile(t, filepath.Join(dir, "fp", "vmlinux"), 40000)
}

func TestOracleGCCBuilt(t *testing.T) {
	gcc := corpus.Tool(t, "gcc")
	dir := t.TempDir()
	src := filepath.Join(dir, "x.c")
	os.WriteFile(src, []byte(`
#include <string.h>
struct s { char b[64]; };
__attribute__((noinline)) int g(struct s *p, int n) { char buf[n]; memset(buf, n, n); return buf[n/2] + p->b[3]; }
__attribute__((noinline)) int f(int n) { struct s v; memset(&v, n, sizeof v); if (n > 3) return g(&v, n) + f(n - 1); return 1; }
int main(int c, char **v) { return f(c + 5); }
`), 0o644)
	for _, flags := range [][]string{{"-O2"}, {"-O0"}, {"-O2", "-fno-asynchronous-unwind-tables", "-g"}, {"-Os", "-fno-omit-frame-pointer"}} {
		out := filepath.Join(dir, "x")
		args := append(append([]string{}, flags...), "-o", out, src)
		if b, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", flags, err, b)
		}
		checkFile(t, out, 1<<20)
	}
}

// shortPath keeps the last three elements of a path for log lines.
func shortPath(p string) string {
	parts := strings.Split(filepath.ToSlash(p), "/")
	return strings.Join(parts[max(0, len(parts)-3):], "/")
}
