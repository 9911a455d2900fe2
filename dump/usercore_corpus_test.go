package dump

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

var (
	gdbThreadRE  = regexp.MustCompile(`^Thread \d+ \(.*LWP (\d+)\)\)?:`)
	gdbCurrentRE = regexp.MustCompile(`^\[Current thread is \d+ \(.*LWP (\d+)\)\)\]`)
	gdbRegRE     = regexp.MustCompile(`^(r[a-z0-9]+)\s+(0x[0-9a-f]+)`)
)

// gdbRegs parses gdb_addr.txt: per LWP the registers of "info registers",
// and the LWP gdb calls current (the crashing thread).
func gdbRegs(t *testing.T, path string) (map[int]map[string]uint64, int) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	regs := map[int]map[string]uint64{}
	cur, tid := 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := gdbCurrentRE.FindStringSubmatch(line); m != nil {
			cur, _ = strconv.Atoi(m[1])
		}
		if m := gdbThreadRE.FindStringSubmatch(line); m != nil {
			tid, _ = strconv.Atoi(m[1])
			continue
		}
		if m := gdbRegRE.FindStringSubmatch(line); m != nil && tid != 0 {
			v, _ := strconv.ParseUint(m[2][2:], 16, 64)
			if regs[tid] == nil {
				regs[tid] = map[string]uint64{}
			}
			regs[tid][m[1]] = v
		}
	}
	if cur == 0 && len(regs) == 1 {
		for tid := range regs {
			cur = tid
		}
	}
	return regs, cur
}

func userCores(t *testing.T) []string {
	dir := corpus.Dir(t, "user")
	cores, _ := filepath.Glob(filepath.Join(dir, "*", "*", "core"))
	if len(cores) == 0 {
		t.Fatalf("no cores in the user corpus %s", dir)
	}
	return cores
}

func TestUserCoreThreadsMatchGDB(t *testing.T) {
	for _, core := range userCores(t) {
		name := strings.TrimPrefix(filepath.Dir(core), filepath.Dir(filepath.Dir(filepath.Dir(core)))+"/")
		t.Run(name, func(t *testing.T) {
			d, err := Open(core)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Kind() != KindUserCore {
				t.Errorf("kind %q", d.Kind())
			}
			want, cur := gdbRegs(t, filepath.Join(filepath.Dir(core), "gdb_addr.txt"))
			th := d.Threads()
			if len(th) != len(want) {
				t.Errorf("%d threads, gdb has %d", len(th), len(want))
			}
			for i, thr := range th {
				w, ok := want[thr.TID]
				if !ok {
					t.Errorf("thread %d not in gdb output", thr.TID)
					continue
				}
				for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
					got, ok := thr.Regs.Get(r)
					if wv, has := w[r.String()]; has && (!ok || got != wv) {
						t.Errorf("tid %d %s = %#x (valid %v), gdb %#x", thr.TID, r, got, ok, wv)
					}
				}
				if thr.Crashed != (thr.TID == cur) {
					t.Errorf("tid %d crashed=%v, gdb current %d", thr.TID, thr.Crashed, cur)
				}
				if thr.CPU != -1 || thr.Comm != "bin" {
					t.Errorf("tid %d cpu %d comm %q", thr.TID, thr.CPU, thr.Comm)
				}
				st := d.Stacks(i)
				sp, _ := thr.Regs.SP()
				if s, ok := st.StackOf(sp); !ok || s.Kind != unwind.StackUser {
					t.Errorf("tid %d: sp %#x not on a user stack: %v", thr.TID, sp, st)
				}
				if _, err := unwind.ReadU64(d.Memory(), sp); err != nil {
					t.Errorf("tid %d: reading sp: %v", thr.TID, err)
				}
			}
			si, ok := d.SigInfo()
			if !ok || si.Signo == 0 || th[0].Signal != si.Signo {
				t.Errorf("siginfo %+v %v, thread 0 signal %d", si, ok, th[0].Signal)
			}
			if in := d.Info(); in.Crashed != 0 || in.Signal != si.Signo || in.Comm != "bin" || len(in.Threads) != len(th) {
				t.Errorf("info %+v", in)
			}
			if len(d.Mappings()) == 0 || len(d.Auxv()) == 0 {
				t.Errorf("%d mappings, %d auxv entries", len(d.Mappings()), len(d.Auxv()))
			}
		})
	}
}
