package dump

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

type synthNote struct {
	name string
	typ  uint32
	desc []byte
}

type synthLoad struct {
	vaddr, paddr uint64
	data         []byte
	memsz        uint64 // 0 = len(data)
}

// buildCore writes a minimal ELF core file with one PT_NOTE and the loads.
func buildCore(notes []synthNote, loads []synthLoad) []byte {
	var nb bytes.Buffer
	le := binary.LittleEndian
	for _, n := range notes {
		var h [12]byte
		le.PutUint32(h[0:], uint32(len(n.name)+1))
		le.PutUint32(h[4:], uint32(len(n.desc)))
		le.PutUint32(h[8:], n.typ)
		nb.Write(h[:])
		nb.WriteString(n.name)
		nb.WriteByte(0)
		for nb.Len()%4 != 0 {
			nb.WriteByte(0)
		}
		nb.Write(n.desc)
		for nb.Len()%4 != 0 {
			nb.WriteByte(0)
		}
	}
	nph := 1 + len(loads)
	off := uint64(64 + 56*nph)
	var out bytes.Buffer
	var eh [64]byte
	copy(eh[:], "\x7fELF\x02\x01\x01")
	le.PutUint16(eh[16:], etCore)
	le.PutUint16(eh[18:], emX86_64)
	le.PutUint32(eh[20:], 1)
	le.PutUint64(eh[32:], 64)
	le.PutUint16(eh[52:], 64)
	le.PutUint16(eh[54:], 56)
	le.PutUint16(eh[56:], uint16(nph))
	out.Write(eh[:])
	ph := func(typ uint32, o, va, pa, fsz, msz uint64) {
		var p [56]byte
		le.PutUint32(p[0:], typ)
		le.PutUint64(p[8:], o)
		le.PutUint64(p[16:], va)
		le.PutUint64(p[24:], pa)
		le.PutUint64(p[32:], fsz)
		le.PutUint64(p[40:], msz)
		out.Write(p[:])
	}
	ph(ptNote, off, 0, 0, uint64(nb.Len()), uint64(nb.Len()))
	off += uint64(nb.Len())
	for _, l := range loads {
		msz := l.memsz
		if msz == 0 {
			msz = uint64(len(l.data))
		}
		ph(ptLoad, off, l.vaddr, l.paddr, uint64(len(l.data)), msz)
		off += uint64(len(l.data))
	}
	out.Write(nb.Bytes())
	for _, l := range loads {
		out.Write(l.data)
	}
	return out.Bytes()
}

func prstatusNote(pid int, rip, rsp uint64) synthNote {
	var ps [ptregs.PrStatusSize]byte
	binary.LittleEndian.PutUint32(ps[32:], uint32(pid))
	var u ptregs.UserRegs
	u.IP, u.SP, u.CS = rip, rsp, 0x33
	r := u.Encode()
	copy(ps[ptregs.PrStatusRegsOffset:], r[:])
	return synthNote{"CORE", ntPrStatus, ps[:]}
}

func TestSynthUserCoreMemory(t *testing.T) {
	a := bytes.Repeat([]byte{0xaa}, 0x1000)
	b := bytes.Repeat([]byte{0xbb}, 0x800)
	core := buildCore([]synthNote{prstatusNote(7, 0x401000, 0x7000)},
		[]synthLoad{{vaddr: 0x6000, data: a}, {vaddr: 0x7000, data: b, memsz: 0x1000}})
	d, err := NewFile(bytes.NewReader(core), int64(len(core)))
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind() != KindUserCore || len(d.Threads()) != 1 || d.Threads()[0].TID != 7 {
		t.Fatalf("kind %q threads %+v", d.Kind(), d.Threads())
	}
	// A read spanning both segments and the zero-filled tail.
	buf := make([]byte, 0x1000)
	n, err := d.Memory().ReadAt(buf, 0x6800)
	if err != nil || n != len(buf) {
		t.Fatalf("read: %d %v", n, err)
	}
	if buf[0] != 0xaa || buf[0x7ff] != 0xaa || buf[0x800] != 0xbb || buf[0xfff] != 0xbb {
		t.Errorf("spanning read wrong")
	}
	// In a user core, bytes past p_filesz were not dumped: unmapped.
	n, err = d.Memory().ReadAt(buf[:16], 0x77fc)
	var me *unwind.MemoryError
	if n != 4 || !asMemErr(err, &me) || me.Addr != 0x7800 || me.Len != 12 {
		t.Errorf("undumped tail: n=%d err=%v", n, err)
	}
	n, err = d.Memory().ReadAt(buf[:16], 0x7ffc)
	if n != 0 || !asMemErr(err, &me) || me.Addr != 0x7ffc {
		t.Errorf("hole: n=%d err=%v", n, err)
	}
	st := d.Stacks(0)
	if len(st) != 1 || st[0].Lo != 0x6000 || st[0].Hi != 0x8000 {
		t.Errorf("stacks %+v", st)
	}
}

func asMemErr(err error, me **unwind.MemoryError) bool {
	e, ok := err.(*unwind.MemoryError)
	*me = e
	return ok
}

func TestSynthEmulatorSnapshot(t *testing.T) {
	info := EmulatorInfo{Version: EmulatorInfoVersion, Scenario: "s", Snapshot: "x", TriggerCPU: 1,
		CPUs: []EmulatorCPU{{CPU: 0, Stacks: []EmulatorStack{{Kind: "task", Lo: 0xffff0000, Hi: 0xffff4000}}},
			{CPU: 1, Stacks: []EmulatorStack{{Kind: "nmi", Lo: 0xfffe0000, Hi: 0xfffe1000}}}}}
	js, _ := json.Marshal(info)
	core := buildCore([]synthNote{prstatusNote(1, 1, 0xffff3ff0), prstatusNote(2, 2, 0xfffe0ff0), {EmulatorNoteOwner, EmulatorNoteType, js}},
		[]synthLoad{{vaddr: 0xfffe0000, data: make([]byte, 0x1000)}})
	d, err := NewFile(bytes.NewReader(core), int64(len(core)))
	if err != nil {
		t.Fatal(err)
	}
	th := d.Threads()
	if d.Kind() != KindEmulator || len(th) != 2 || th[1].CPU != 1 || !th[1].Crashed || th[0].Crashed {
		t.Fatalf("kind %q threads %+v", d.Kind(), th)
	}
	if s, ok := d.Stacks(1).StackOf(0xfffe0ff0); !ok || s.Kind != unwind.StackNMI {
		t.Errorf("stacks %+v", d.Stacks(1))
	}
	if in := d.Info(); in.Crashed != 1 || in.Kind != KindEmulator {
		t.Errorf("info %+v", in)
	}
	if _, err := unwind.ReadU64(d.Memory(), 0xfffe0ff0); err != nil {
		t.Error(err)
	}
}

func TestNotCore(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("hello world, not a core file at all........................................")} {
		if _, err := NewFile(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%q opened", b)
		}
	}
}

// TestOpenIsLazy: opening a dump and reading from it costs memory for the
// headers and what is read, not for the dump's size. The core here holds
// a 16 GiB PT_LOAD (a sparse file: it takes no disk space).
func TestOpenIsLazy(t *testing.T) {
	const big = 16 << 30
	c := buildCore([]synthNote{prstatusNote(1, 0x1000, 0x3000), {"QEMU", 0, make([]byte, 440)},
		{"VMCOREINFO", 0, []byte("OSRELEASE=6.1.0\nPAGESIZE=4096\n")}}, []synthLoad{{paddr: 0, data: make([]byte, 4096)}})
	// Grow the load's p_filesz/p_memsz to 16 GiB; the bytes past the
	// first page are a hole in the file.
	le := binary.LittleEndian
	le.PutUint64(c[64+56+32:], big)
	le.PutUint64(c[64+56+40:], big)
	path := filepath.Join(t.TempDir(), "big.vmcore")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(c); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(c)) + big); err != nil {
		t.Skipf("no sparse file: %v", err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for pa := uint64(0); pa < big; pa += big / 64 {
		if _, err := d.PhysMemory().ReadAt(buf, pa); err != nil {
			t.Fatalf("phys %#x: %v", pa, err)
		}
	}
	_ = d.Info()
	runtime.ReadMemStats(&after)
	d.Close()
	alloc := after.TotalAlloc - before.TotalAlloc
	if alloc > 1<<20 {
		t.Errorf("opening a 16 GiB dump and reading 64 pages allocated %d bytes", alloc)
	}
	t.Logf("open + 64 page reads of a 16 GiB dump: %d bytes allocated", alloc)
}
