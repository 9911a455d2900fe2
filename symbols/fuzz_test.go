package symbols

import (
	"bytes"
	"testing"
)

// checkTable asserts the invariants every parsed table keeps.
func checkTable(t *testing.T, tab *Table, err error) {
	if (tab == nil) == (err == nil) {
		t.Fatalf("table %v with error %v", tab != nil, err)
	}
	for i := 0; i < tab.Len(); i++ {
		s := tab.At(i)
		if i > 0 && tab.At(i-1).Addr > s.Addr {
			t.Fatalf("not sorted at %d", i)
		}
		got, ok := tab.Lookup(s.Addr)
		if !ok || got.Addr != s.Addr {
			t.Fatalf("Lookup(%#x) of a symbol's own address = %+v %v", s.Addr, got, ok)
		}
		if _, ok := tab.ByName(s.Name); !ok {
			t.Fatalf("ByName(%q) missing", s.Name)
		}
	}
}

func FuzzParseSystemMap(f *testing.F) {
	f.Add([]byte(sampleMap), uint64(0))
	f.Add([]byte("ffffffff81000000 T _text\nffffffff81000000 T _text\n\n  \n"), uint64(0x10000000))
	f.Add([]byte("ffffffffffffffff T end\n0 a zero\n"), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, bias uint64) {
		tab, err := ParseSystemMap(bytes.NewReader(data), bias)
		checkTable(t, tab, err)
	})
}

func FuzzParseKallsyms(f *testing.F) {
	f.Add([]byte("ffffffffc0002000 t foo_init\t[foo]\nffffffff81000000 T _text\n"), uint64(0))
	f.Add([]byte("0000000000000000 A fixed_percpu_data\nffffffffc0000000 t x\t[m]\n"), uint64(0x200000))
	f.Fuzz(func(t *testing.T, data []byte, bias uint64) {
		tab, err := ParseKallsyms(bytes.NewReader(data), bias)
		checkTable(t, tab, err)
	})
}
