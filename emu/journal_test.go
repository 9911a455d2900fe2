package emu

import "testing"

// TestMemWriteJournal checks that every way memory changes is logged
// (the CPU's stores, within a page and across two; a debugger's WriteAt; a
// new mapping), that WrittenSince finds exactly the writes overlapping a
// range, and that it says "written" once the log no longer reaches back.
func TestMemWriteJournal(t *testing.T) {
	m := newMem()
	m.mapRange(0x10000, 0x3000)
	seq := m.WriteSeq()
	if seq == 0 || !m.WrittenSince(0, 0x10000, 1) || m.WrittenSince(0, 0x20000, 8) {
		t.Fatalf("mapRange: seq %d, written %v/%v", seq, m.WrittenSince(0, 0x10000, 1), m.WrittenSince(0, 0x20000, 8))
	}
	if m.WrittenSince(seq, 0x10000, 0x3000) {
		t.Fatal("nothing written since seq, yet WrittenSince says so")
	}
	steps := []struct {
		name string
		do   func()
		a    uint64 // the first and last byte written
		z    uint64
	}{
		{"write within a page", func() { m.write(0x10100, 8, 1) }, 0x10100, 0x10107},
		{"write across pages", func() { m.write(0x10ffc, 8, 2) }, 0x10ffc, 0x11003},
		{"WriteAt", func() { m.WriteAt([]byte{1, 2, 3}, 0x12000) }, 0x12000, 0x12002},
		{"mapRange", func() { m.mapRange(0x20000, 0x10) }, 0x20000, 0x2000f},
	}
	for _, s := range steps {
		seq := m.WriteSeq()
		s.do()
		if m.WriteSeq() == seq {
			t.Errorf("%s: WriteSeq unchanged", s.name)
		}
		for _, c := range []struct {
			a    uint64
			n    int
			want bool
		}{
			{s.a - 8, 8, false}, {s.a - 8, 9, true}, {s.z, 1, true}, {s.z + 1, 64, false}, {s.a - 0x100, 0x200, true},
		} {
			if got := m.WrittenSince(seq, c.a, c.n); got != c.want {
				t.Errorf("%s: WrittenSince(%#x, %d) = %v, want %v", s.name, c.a, c.n, got, c.want)
			}
		}
	}
	// A failed write (unmapped) changes nothing.
	seq = m.WriteSeq()
	if m.write(0x50000, 8, 1) {
		t.Fatal("write to unmapped memory succeeded")
	}
	if _, err := m.WriteAt([]byte{1}, 0x50000); err == nil {
		t.Fatal("WriteAt to unmapped memory succeeded")
	}
	if m.WrittenSince(seq, 0, 1<<62) {
		t.Error("a failed write was logged as a write")
	}
	// Past the log's length, everything may have been written.
	seq = m.WriteSeq()
	for i := 0; i <= len(m.wlog); i++ {
		m.write(0x10200, 1, uint64(i))
	}
	if !m.WrittenSince(seq, 0x12f00, 8) {
		t.Error("WrittenSince claims to know writes its log no longer holds")
	}
	if m.WrittenSince(m.WriteSeq()-4, 0x12f00, 8) {
		t.Error("WrittenSince: the last writes did not touch 0x12f00")
	}
}
