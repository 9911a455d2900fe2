package ptregs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// userCorpus returns the unpacked user-space cores of user-dev.tar.zst, or
// "" when the corpus is absent.
func userCorpus() string {
	d, err := corpus.Find("user")
	if err != nil {
		return ""
	}
	return d
}

// prstatusNotes returns the descriptors of the NT_PRSTATUS notes of an ELF
// core file, in file order.
func prstatusNotes(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var descs [][]byte
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			t.Fatal(err)
		}
		for len(data) >= 12 {
			namesz := binary.LittleEndian.Uint32(data)
			descsz := binary.LittleEndian.Uint32(data[4:])
			typ := binary.LittleEndian.Uint32(data[8:])
			off := 12 + (int(namesz)+3)&^3
			end := off + (int(descsz)+3)&^3
			if end > len(data) || off+int(descsz) > len(data) {
				t.Fatalf("%s: truncated note", path)
			}
			if typ == uint32(elf.NT_PRSTATUS) {
				descs = append(descs, data[off:off+int(descsz)])
			}
			data = data[end:]
		}
	}
	return descs
}

var noteField = regexp.MustCompile(`([a-z_.0-9]+):\s+(-?(?:0x[0-9a-f]+|[0-9]+))`)

// readelfPrStatus parses the PRSTATUS blocks of eu-readelf -n output (the
// corpus's core-notes.txt) into one map of field name → value per note.
func readelfPrStatus(t *testing.T, text string) []map[string]uint64 {
	t.Helper()
	var out []map[string]uint64
	var cur map[string]uint64
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "CORE ") || strings.HasPrefix(trimmed, "LINUX ") {
			cur = nil
			if strings.HasSuffix(trimmed, " PRSTATUS") {
				cur = map[string]uint64{}
				out = append(out, cur)
			}
			continue
		}
		if cur == nil {
			continue
		}
		for _, m := range noteField.FindAllStringSubmatch(line, -1) {
			v, err := strconv.ParseInt(m[2], 0, 64)
			if err != nil {
				u, err2 := strconv.ParseUint(m[2], 0, 64)
				if err2 != nil {
					t.Fatalf("%q: %v", line, err)
				}
				v = int64(u)
			}
			cur[m[1]] = uint64(v)
		}
	}
	return out
}

// comparePrStatus checks every field eu-readelf printed against ours.
func comparePrStatus(t *testing.T, name string, s PrStatus, want map[string]uint64) {
	t.Helper()
	r := &s.Regs
	b2u := func(b bool) uint64 {
		if b {
			return 1
		}
		return 0
	}
	got := map[string]uint64{
		"info.si_signo": uint64(s.Signal), "info.si_code": uint64(s.Code), "info.si_errno": uint64(s.Errno),
		"cursig": uint64(s.CurSig), "pid": uint64(s.Pid), "ppid": uint64(s.PPid), "pgrp": uint64(s.PGrp), "sid": uint64(s.Sid),
		"orig_rax": r.OrigAX, "fpvalid": b2u(s.FPValid),
		"r15": r.R15, "r14": r.R14, "r13": r.R13, "r12": r.R12, "rbp": r.BP, "rbx": r.BX,
		"r11": r.R11, "r10": r.R10, "r9": r.R9, "r8": r.R8, "rax": r.AX, "rcx": r.CX,
		"rdx": r.DX, "rsi": r.SI, "rdi": r.DI, "rip": r.IP, "rflags": r.Flags, "rsp": r.SP,
		"fs.base": r.FSBase, "gs.base": r.GSBase,
		"cs": r.CS, "ss": r.SS, "ds": r.DS, "es": r.ES, "fs": r.FS, "gs": r.GS,
	}
	n := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			continue // utime etc.: printed as seconds.micros, split by the regexp
		}
		n++
		if g != w {
			t.Errorf("%s: %s = %#x, eu-readelf says %#x", name, k, g, w)
		}
	}
	if n != len(got) {
		t.Errorf("%s: compared %d of %d fields", name, n, len(got))
	}
}

// TestPrStatusFixture decodes an NT_PRSTATUS descriptor cut from a real core
// (a_deepchain/O0fp of user-dev.tar.zst) and compares every field with what
// eu-readelf printed for the same note.
func TestPrStatusFixture(t *testing.T) {
	const base = "testdata/prstatus/a_deepchain-O0fp"
	uc := userCorpus()
	core := filepath.Join(uc, "a_deepchain/O0fp/core")
	if *update {
		if _, err := os.Stat(core); err == nil {
			descs := prstatusNotes(t, core)
			notes, err := os.ReadFile(filepath.Join(uc, "a_deepchain/O0fp/core-notes.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(base+".bin", descs[0], 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(base+".notes.txt", notes, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	desc, err := os.ReadFile(base + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(base + ".notes.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(desc) != PrStatusSize {
		t.Fatalf("descriptor is %d bytes, want %d", len(desc), PrStatusSize)
	}
	s, err := DecodePrStatus(desc)
	if err != nil {
		t.Fatal(err)
	}
	want := readelfPrStatus(t, string(notes))
	if len(want) != 1 {
		t.Fatalf("%d PRSTATUS blocks in notes", len(want))
	}
	comparePrStatus(t, base, s, want[0])
	if s.Signal != 11 || s.Pid != 26501 || s.Regs.IP != 0x55c60249613c || s.Regs.CS != UserCS {
		t.Errorf("unexpected %+v", s)
	}
	if enc := s.Encode(); !bytes.Equal(enc[:], desc) {
		t.Error("PrStatus.Encode does not reproduce the kernel's note")
	}
	if err := s.Regs.Check(CheckOptions{}); err != nil {
		t.Errorf("Check rejects the registers of a real core: %v", err)
	}
}

// TestPrStatusCorpus does the same for every thread of every core in the
// unpacked corpus, when it is present.
func TestPrStatusCorpus(t *testing.T) {
	uc := corpus.Dir(t, "user")
	cores, _ := filepath.Glob(filepath.Join(uc, "*", "*", "core"))
	if len(cores) == 0 {
		t.Fatalf("no cores in the user corpus at %s", uc)
	}
	threads := 0
	for _, core := range cores {
		notes, err := os.ReadFile(filepath.Join(filepath.Dir(core), "core-notes.txt"))
		if err != nil {
			t.Errorf("%s: %v", core, err)
			continue
		}
		want := readelfPrStatus(t, string(notes))
		descs := prstatusNotes(t, core)
		if len(descs) != len(want) {
			t.Errorf("%s: %d notes, eu-readelf shows %d", core, len(descs), len(want))
			continue
		}
		for i, d := range descs {
			s, err := DecodePrStatus(d)
			if err != nil {
				t.Errorf("%s: %v", core, err)
				continue
			}
			comparePrStatus(t, core, s, want[i])
			if err := s.Regs.Check(CheckOptions{}); err != nil {
				t.Errorf("%s thread %d: Check: %v", core, i, err)
			}
			threads++
		}
	}
	t.Logf("%d cores, %d threads checked against eu-readelf", len(cores), threads)
}

func TestUserRegsLayout(t *testing.T) {
	b := make([]byte, UserRegsSize)
	for off := 0; off < UserRegsSize; off += 8 {
		binary.LittleEndian.PutUint64(b[off:], uint64(off))
	}
	u, err := DecodeUserRegs(b)
	if err != nil {
		t.Fatal(err)
	}
	if u.R15 != 0 || u.SS != 160 || u.FSBase != 168 || u.GSBase != 176 || u.DS != 184 || u.ES != 192 || u.FS != 200 || u.GS != 208 {
		t.Errorf("layout: %+v", u)
	}
	if enc := u.Encode(); !bytes.Equal(enc[:], b) {
		t.Error("UserRegs.Encode is not the inverse")
	}
}
