package ptregs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"

	"github.com/klauspost/compress/zstd"
)

// vmcorePrStatus decompresses the first part of a QEMU vmcore.zst (the ELF
// headers and notes come first) and returns its NT_PRSTATUS descriptors.
func vmcorePrStatus(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	head := make([]byte, 1<<20)
	n, err := io.ReadFull(zr, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatal(err)
	}
	head = head[:n]
	// The section headers of a QEMU dump point past the prefix, so read the
	// program headers by hand instead of with debug/elf.
	le := binary.LittleEndian
	if n < 64 || string(head[:4]) != elf.ELFMAG {
		t.Fatalf("%s: not ELF", path)
	}
	phoff, phentsize, phnum := le.Uint64(head[0x20:]), int(le.Uint16(head[0x36:])), int(le.Uint16(head[0x38:]))
	var descs [][]byte
	for i := 0; i < phnum; i++ {
		ph := head[int(phoff)+i*phentsize:]
		if elf.ProgType(le.Uint32(ph)) != elf.PT_NOTE {
			continue
		}
		off, size := le.Uint64(ph[8:]), le.Uint64(ph[32:])
		if off+size > uint64(len(head)) {
			t.Fatalf("%s: notes beyond the first MiB", path)
		}
		data := head[off : off+size]
		for len(data) >= 12 {
			namesz, descsz := binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:])
			typ := binary.LittleEndian.Uint32(data[8:])
			off := 12 + (int(namesz)+3)&^3
			end := off + (int(descsz)+3)&^3
			if end > len(data) {
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

var qemuReg = regexp.MustCompile(`\b(RAX|RBX|RCX|RDX|RSI|RDI|RBP|RSP|R8 |R9 |R10|R11|R12|R13|R14|R15|RIP|RFL)=([0-9a-f]+)`)

// qemuRegs parses "info registers" output into one map per CPU.
func qemuRegs(t *testing.T, path string) []map[string]uint64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cpus []map[string]uint64
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("CPU#")) {
			cpus = append(cpus, map[string]uint64{})
			continue
		}
		if len(cpus) == 0 {
			continue
		}
		cur := cpus[len(cpus)-1]
		for _, m := range qemuReg.FindAllSubmatch(line, -1) {
			v, err := strconv.ParseUint(string(m[2]), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			name := string(bytes.TrimSpace(m[1]))
			if _, dup := cur[name]; !dup { // the first RAX.. of a CPU block, not XMM
				cur[name] = v
			}
		}
	}
	return cpus
}

// TestPrStatusVMCore decodes the per-vCPU NT_PRSTATUS notes of the corpus's
// Linux 6.1 vmcores (kernel-mode registers, written by QEMU) and compares
// them with QEMU's own "info registers" for the same moment; every vCPU's
// state must also pass Check.
func TestPrStatusVMCore(t *testing.T) {
	kernelCorpus := filepath.Join(corpus.Dir(t, "kernel"), "fp")
	cores, _ := filepath.Glob(filepath.Join(kernelCorpus, "*", "*.vmcore.zst"))
	if len(cores) == 0 {
		t.Fatalf("no vmcores in the kernel corpus at %s", kernelCorpus)
	}
	if testing.Short() {
		t.Skip("decompresses vmcore headers")
	}
	cpus := 0
	for _, core := range cores {
		name := filepath.Base(core)
		regsFile := filepath.Join(filepath.Dir(core), name[:len(name)-len(".vmcore.zst")]+".qemu-regs.txt")
		if strings.HasSuffix(name, "-paging.vmcore.zst") {
			continue // the -paging twin has no regs file of its own
		}
		want := qemuRegs(t, regsFile)
		descs := vmcorePrStatus(t, core)
		if len(descs) != len(want) {
			t.Errorf("%s: %d PRSTATUS notes, %d CPUs in %s", core, len(descs), len(want), regsFile)
			continue
		}
		for i, d := range descs {
			s, err := DecodePrStatus(d)
			if err != nil {
				t.Fatal(err)
			}
			r := &s.Regs
			if s.Pid != i+1 {
				t.Errorf("%s cpu %d: pr_pid %d, want cpu+1", core, i, s.Pid)
			}
			got := map[string]uint64{
				"RAX": r.AX, "RBX": r.BX, "RCX": r.CX, "RDX": r.DX, "RSI": r.SI, "RDI": r.DI,
				"RBP": r.BP, "RSP": r.SP, "R8": r.R8, "R9": r.R9, "R10": r.R10, "R11": r.R11,
				"R12": r.R12, "R13": r.R13, "R14": r.R14, "R15": r.R15, "RIP": r.IP, "RFL": r.Flags,
			}
			for k, w := range want[i] {
				if got[k] != w {
					t.Errorf("%s cpu %d: %s = %#x, QEMU says %#x", core, i, k, got[k], w)
				}
			}
			if len(want[i]) != len(got) {
				t.Errorf("%s cpu %d: QEMU printed %d of %d registers", core, i, len(want[i]), len(got))
			}
			if err := r.Check(CheckOptions{}); err != nil {
				t.Errorf("%s cpu %d: Check: %v (%s)", core, i, err, fmt.Sprintf("cs %#x ss %#x", r.CS, r.SS))
			}
			cpus++
		}
	}
	t.Logf("%d vCPU notes checked against QEMU", cpus)
}
