package linux

import (
	"debug/dwarf"
	"debug/elf"
	"path/filepath"
	"runtime"
	"testing"
)

// fixtureDWARF reads the fixture kernel's DWARF sections (a small C
// kernel whose structures are known from its source).
func fixtureDWARF(t testing.TB) (abbrev, info, str []byte) {
	_, file, _, _ := runtime.Caller(0)
	f, err := elf.Open(filepath.Join(filepath.Dir(file), "..", "fixtures", "kernel", "build", "kernel-fp.elf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	get := func(name string) []byte {
		b, err := f.Section(name).Data()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return get(".debug_abbrev"), get(".debug_info"), get(".debug_str")
}

// TestDWARFLayout reads structures of the fixture kernel
// (fixtures/kernel/src/kernel.h) through the Layout interface.
func TestDWARFLayout(t *testing.T) {
	abbrev, info, str := fixtureDWARF(t)
	dw, err := dwarf.New(abbrev, nil, nil, info, nil, nil, nil, str)
	if err != nil {
		t.Fatal(err)
	}
	l := NewDWARFLayout(dw)
	for _, c := range []struct {
		s, m string
		want int64
	}{
		{"pt_regs", "r15", 0}, {"pt_regs", "ip", 128}, {"pt_regs", "ss", 160},
		{"x86_hw_tss", "sp0", 4}, {"x86_hw_tss", "ist", 0x24},
		{"percpu", "hardirq_stack_ptr", 32}, {"percpu", "int3_slots", 64},
		{"int3_slot", "depth", 16},
	} {
		if got, ok := l.MemberOffset(c.s, c.m); !ok || got != c.want {
			t.Errorf("%s.%s = %d %v, want %d", c.s, c.m, got, ok, c.want)
		}
	}
	if sz, ok := l.StructSize("pt_regs"); !ok || sz != 168 {
		t.Errorf("sizeof(pt_regs) = %d %v", sz, ok)
	}
	if _, ok := l.MemberOffset("pt_regs", "nosuch"); ok {
		t.Error("a member that is not there")
	}
	if _, ok := l.MemberOffset("nosuch", "ip"); ok {
		t.Error("a struct that is not there")
	}
	if _, ok := l.MemberOffset("pt_regs", "ip.x"); ok {
		t.Error("a path through a scalar")
	}
}

// FuzzDWARFLayout builds a Layout from arbitrary DWARF sections and asks
// it for members: answers or misses, never a panic.
func FuzzDWARFLayout(f *testing.F) {
	abbrev, info, str := fixtureDWARF(f)
	f.Add(abbrev, info, str)
	f.Add(abbrev, info[:len(info)/2], str)
	f.Fuzz(func(t *testing.T, abbrev, info, str []byte) {
		dw, err := dwarf.New(abbrev, nil, nil, info, nil, nil, nil, str)
		if err != nil {
			return
		}
		l := NewDWARFLayout(dw)
		for _, q := range [][2]string{{"pt_regs", "ip"}, {"percpu", "int3_slots.depth"}, {"task_struct", "thread.sp"}} {
			l.MemberOffset(q[0], q[1])
			l.StructSize(q[0])
		}
	})
}
