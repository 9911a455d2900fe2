package emu

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

func loadMini(t testing.TB, cpus int) *Machine {
	t.Helper()
	b, err := os.ReadFile("testdata/mini.elf")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(b, cpus)
	if err != nil {
		t.Fatal(err)
	}
	m.SetPtRegsHandlers("handle_event", "handle_syscall")
	return m
}

func (m *Machine) sym(t testing.TB, name string) uint64 {
	t.Helper()
	s, ok := m.SymbolByName(name)
	if !ok {
		t.Fatalf("no symbol %s", name)
	}
	return s.Addr
}

func TestMiniRuns(t *testing.T) {
	m := loadMini(t, 2)
	n, err := m.Run(1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Console()); got != "kernel ok\nuser ok\n" {
		t.Errorf("console = %q (after %d steps)", got, n)
	}
	c0 := m.CPUs[0]
	if !c0.Done || c0.ExitStatus != 0 {
		t.Errorf("cpu0 done=%v status=%d", c0.Done, c0.ExitStatus)
	}
	counts := m.sym(t, "counts")
	for vec, want := range map[int]uint64{3: 1, 14: 1, 2: 1} {
		got, _ := m.mem.read(counts+uint64(vec)*8, 8)
		if got != want {
			t.Errorf("vector %d handled %d times, want %d", vec, got, want)
		}
	}
	// cpu 1 got the NMI IPI.
	var b [8]byte
	m.mem.ReadAt(b[:], counts+2*8)
	if !strings.Contains(string(m.Console()), "user ok") {
		t.Error("user code did not run")
	}
}

// A hostile kernel ELF cannot make memory unbounded: PT_LOADs over 1 GiB
// are refused, and a large zero-filled segment shares one zero page.
func TestLoadBoundsMemory(t *testing.T) {
	orig, err := os.ReadFile("testdata/mini.elf")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := elf.NewFile(bytes.NewReader(orig))
	phoff := 64 + 56*uint64(len(f.Progs)-1) // the user PT_LOAD
	set := func(memsz uint64) []byte {
		b := append([]byte(nil), orig...)
		binary.LittleEndian.PutUint64(b[phoff+40:], memsz)
		return b
	}
	if _, err := New(set(2<<30), 1); err == nil {
		t.Error("a 2 GiB PT_LOAD was accepted")
	}
	m, err := New(set(512<<20), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.mem.Pages() < 512<<8 || m.mem.Resident() > 64 {
		t.Errorf("pages %d resident %d", m.mem.Pages(), m.mem.Resident())
	}
}
