package emu

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/ptregs"
)

// Info returns the snapshot ground truth for the machine's current state.
// The caller fills the scenario fields (Scenario, Snapshot, Kernel…).
func (m *Machine) Info() *dump.EmulatorInfo {
	info := &dump.EmulatorInfo{Version: dump.EmulatorInfoVersion, Instructions: m.Instructions()}
	for i, c := range m.CPUs {
		ec := dump.EmulatorCPU{
			CPU: i, Instructions: c.Insns,
			IDTR:       dump.DescriptorTable{Base: dump.Hex(c.IDTR.Base), Limit: c.IDTR.Limit},
			NMIBlocked: c.NMIBlocked, NMILatched: c.NMILatched, Halted: c.Halted, Done: c.Done,
			Stacks: []dump.EmulatorStack{},
		}
		for _, s := range m.Stacks(i) {
			ec.Stacks = append(ec.Stacks, dump.EmulatorStack{Kind: s.Kind.String(), Lo: dump.Hex(s.Lo), Hi: dump.Hex(s.Hi)})
		}
		for _, f := range m.ShadowStack(i) {
			tf := dump.TruthFrame{Function: f.Function, PC: dump.Hex(f.PC), CFA: dump.Hex(f.CFA), SP: dump.Hex(f.SP),
				Kind: f.Kind.String(), Stack: f.Stack.String(), Entry: f.Entry, RegsAddr: dump.Hex(f.RegsAddr)}
			if f.Entry != "" {
				v := f.Vector
				tf.Vector = &v
				tf.Regs = map[string]dump.Hex{}
				for r := ptregs.Reg(0); r < ptregs.NumRegs; r++ {
					if val, ok := f.Regs.Get(r); ok {
						tf.Regs[r.String()] = dump.Hex(val)
					}
				}
			}
			ec.Truth = append(ec.Truth, tf)
		}
		info.CPUs = append(info.CPUs, ec)
	}
	return info
}

// WriteCore returns an ELF core file of the machine's current state: one
// PT_LOAD per run of mapped pages at its virtual address (all of them, so
// every address the kernel maps reads back, zero pages included, unless
// more than 64 MiB are mapped: then all-zero pages are left out), an
// NT_PRSTATUS note per CPU (pr_pid = cpu+1) and an "UNWIND" note of type 1
// holding info as JSON.
func (m *Machine) WriteCore(info *dump.EmulatorInfo) ([]byte, error) {
	desc, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	var notes bytes.Buffer
	for i, c := range m.CPUs {
		var st [ptregs.PrStatusSize]byte
		binary.LittleEndian.PutUint32(st[32:], uint32(i+1)) // pr_pid
		ur := c.UserRegs()
		regs := ur.Encode()
		copy(st[ptregs.PrStatusRegsOffset:], regs[:])
		appendNote(&notes, "CORE", uint32(elf.NT_PRSTATUS), st[:])
	}
	appendNote(&notes, dump.EmulatorNoteOwner, dump.EmulatorNoteType, desc)

	ranges := m.mem.Ranges(m.mem.Pages() > maxCorePages)
	const ehSize, phSize = 64, 56
	nph := 1 + len(ranges)
	off := uint64(ehSize + phSize*nph)
	var out bytes.Buffer
	le := binary.LittleEndian
	eh := elf.Header64{
		Type: uint16(elf.ET_CORE), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: ehSize, Ehsize: ehSize, Phentsize: phSize, Phnum: uint16(nph),
	}
	copy(eh.Ident[:], elf.ELFMAG)
	eh.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	eh.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	eh.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&out, le, &eh)
	binary.Write(&out, le, &elf.Prog64{Type: uint32(elf.PT_NOTE), Off: off, Filesz: uint64(notes.Len()), Align: 4})
	dataOff := (off + uint64(notes.Len()) + pageMask) &^ pageMask
	o := dataOff
	for _, r := range ranges {
		binary.Write(&out, le, &elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_W | elf.PF_X),
			Off: o, Vaddr: r.Addr, Filesz: r.Size, Memsz: r.Size, Align: pageSize})
		o += r.Size
	}
	out.Write(notes.Bytes())
	out.Write(make([]byte, dataOff-uint64(out.Len())))
	buf := make([]byte, pageSize)
	for _, r := range ranges {
		for a := r.Addr; a < r.Addr+r.Size; a += pageSize {
			m.mem.ReadAt(buf, a)
			out.Write(buf)
		}
	}
	return out.Bytes(), nil
}

// maxCorePages is the mapping size (64 MiB) above which cores skip zero pages.
const maxCorePages = 16384

func appendNote(b *bytes.Buffer, name string, typ uint32, desc []byte) {
	le := binary.LittleEndian
	var h [12]byte
	le.PutUint32(h[0:], uint32(len(name)+1))
	le.PutUint32(h[4:], uint32(len(desc)))
	le.PutUint32(h[8:], typ)
	b.Write(h[:])
	b.WriteString(name)
	b.WriteByte(0)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(desc)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
}
