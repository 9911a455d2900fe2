package emu

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"flag"
	"github.com/unwind-dev/unwind/internal/corpus"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/ptregs"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

func runMiniScenario(t *testing.T) *Result {
	t.Helper()
	text, err := os.ReadFile("testdata/mini-irq.scenario")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario("mini-irq.scenario", text)
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.ReadFile("testdata/mini.elf")
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunScenario(sc, kernel, RunOptions{KernelPath: "emu/testdata/mini.elf"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunScenario(t *testing.T) {
	res := runMiniScenario(t)
	for _, f := range res.Failures {
		t.Errorf("%s", f)
	}
	if len(res.Snapshots) != 2 {
		t.Fatalf("%d snapshots", len(res.Snapshots))
	}
	for _, s := range res.Snapshots {
		golden := filepath.Join("testdata", "golden", "mini-irq."+s.Name+".truth.json")
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, s.Truth, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update)", err)
		}
		if d := cmp.Diff(string(want), string(s.Truth)); d != "" {
			t.Errorf("%s (-want +got):\n%s", golden, d)
		}
	}
	truth := res.Snapshots[0].Info.CPUs[0].Truth
	var fns []string
	for _, f := range truth {
		fns = append(fns, f.Function)
	}
	if got := strings.Join(fns, " "); got != "handle_event asm_timer level3 level2 level1 main _start" {
		t.Errorf("in-irq truth: %s", got)
	}
}

// A scenario whose invariant fails reports it with its name and place.
func TestInvariantFailureReported(t *testing.T) {
	kernel, _ := os.ReadFile("testdata/mini.elf")
	sc, err := ParseScenario("t", []byte("invariant console-contains \"nope\"\ninvariant no-error name=clean\nstop cpu=0 at=sym:level2\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunScenario(sc, kernel, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Invariant != "console-contains" || res.Failures[0].Line != 1 {
		t.Fatalf("failures = %v", res.Failures)
	}
	if !strings.HasPrefix(res.StopReason, "stop directive (line 3) at cpu 0") {
		t.Errorf("stop reason %q", res.StopReason)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	for _, text := range []string{
		"bogus", "cpus 0", "nmi cpu=0", "nmi cpu=3 at=insn:5", "irq vector=0x10 at=insn:1",
		"snapshot a/b at=insn:1", "nmi at=sym:x#0", "invariant weird", "kernel arm",
		"corrupts stack", "corrupts heap a frame",
	} {
		if _, err := ParseScenario("x", []byte(text)); err == nil {
			t.Errorf("%q: no error", text)
		} else if !strings.Contains(err.Error(), "x:1:") {
			t.Errorf("%q: error %v does not name the line", text, err)
		}
	}
}

// The snapshot core reads back with debug/elf: ET_CORE, one NT_PRSTATUS per
// CPU with the registers, the UNWIND note, and memory at virtual addresses.
func TestSnapshotCoreReadsBack(t *testing.T) {
	res := runMiniScenario(t)
	s := res.Snapshots[0]
	f, err := elf.NewFile(bytes.NewReader(s.Core))
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 {
		t.Fatalf("type %v machine %v", f.Type, f.Machine)
	}
	var note []byte
	var prs [][]byte
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b := make([]byte, p.Filesz)
		p.ReadAt(b, 0)
		for len(b) >= 12 {
			nsz, dsz, typ := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])
			name := string(b[12 : 12+nsz-1])
			off := 12 + (nsz+3)&^3
			desc := b[off : off+dsz]
			switch {
			case name == "CORE" && typ == uint32(elf.NT_PRSTATUS):
				prs = append(prs, desc)
			case name == dump.EmulatorNoteOwner && typ == dump.EmulatorNoteType:
				note = desc
			}
			b = b[off+(dsz+3)&^3:]
		}
	}
	if len(prs) != 2 {
		t.Fatalf("%d NT_PRSTATUS notes", len(prs))
	}
	st, err := ptregs.DecodePrStatus(prs[0])
	if err != nil {
		t.Fatal(err)
	}
	truth := s.Info.CPUs[0].Truth
	if st.Pid != 1 || st.Regs.IP != uint64(truth[0].PC) || st.Regs.SP != uint64(truth[0].SP) {
		t.Errorf("prstatus pid %d ip %#x sp %#x; truth pc %#x sp %#x", st.Pid, st.Regs.IP, st.Regs.SP, truth[0].PC, truth[0].SP)
	}
	info, err := dump.ParseEmulatorInfo(note)
	if err != nil {
		t.Fatal(err)
	}
	if info.Scenario != "mini-irq" || info.Snapshot != "in-irq" || len(info.CPUs) != 2 {
		t.Errorf("info %+v", info)
	}
	// The snapshot stops at handle_event+0: the stack word at SP is the
	// return address the entry stub's call pushed, which the machine's
	// shadow stack recorded, at the moment of the snapshot, as frame 1's
	// PC. (The machine's memory itself has moved on since.)
	if len(truth) < 2 || truth[0].Function != "handle_event" || truth[1].Kind != "call" {
		t.Fatalf("truth %+v: want handle_event called", truth)
	}
	found := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && st.Regs.SP >= p.Vaddr && st.Regs.SP+8 <= p.Vaddr+p.Filesz {
			var b [8]byte
			if _, err := p.ReadAt(b[:], int64(st.Regs.SP-p.Vaddr)); err != nil {
				t.Fatal(err)
			}
			found = true
			if got, want := binary.LittleEndian.Uint64(b[:]), uint64(truth[1].PC); got != want {
				t.Errorf("snapshot word at sp %#x = %#x; the machine's return address (truth frame 1 pc) %#x", st.Regs.SP, got, want)
			}
		}
	}
	if !found {
		t.Error("no PT_LOAD covers the stack pointer")
	}
}

// gdb opens the snapshot next to the kernel ELF.
func TestSnapshotGDB(t *testing.T) {
	gdb := corpus.Tool(t, "gdb")
	res := runMiniScenario(t)
	dir := t.TempDir()
	core := filepath.Join(dir, "in-irq.core")
	os.WriteFile(core, res.Snapshots[0].Core, 0o644)
	out, err := exec.Command(gdb, "-nx", "-batch", "-ex", "bt", "testdata/mini.elf", core).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "#0") || !strings.Contains(string(out), "handle_event") {
		t.Errorf("gdb bt:\n%s", out)
	}
}

// Runs replay exactly: the same scenario gives byte-identical snapshots.
func TestScenarioDeterministic(t *testing.T) {
	a, b := runMiniScenario(t), runMiniScenario(t)
	for i := range a.Snapshots {
		if !bytes.Equal(a.Snapshots[i].Core, b.Snapshots[i].Core) || !bytes.Equal(a.Snapshots[i].Truth, b.Snapshots[i].Truth) {
			t.Errorf("snapshot %s differs between runs", a.Snapshots[i].Name)
		}
	}
}
