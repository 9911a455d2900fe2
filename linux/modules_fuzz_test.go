package linux

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// modFuzzBase is where FuzzModuleRead's memory starts; the modules list head
// is its first word.
const modFuzzBase = 0xffff888000000000

// modFuzzLayout is a synthetic struct module layout (the 6.1 shape: list,
// name, state, taints, core/init layouts, sect_attrs, kallsyms, arch ORC).
var modFuzzLayout = moduleLayout{
	list: 8, name: 24, nameLen: moduleNameLen, state: 0, taints: 80,
	core: 96, init: 128, lBase: 0, lSize: 8, lText: 12,
	mem:       -1,
	sectAttrs: 160, nsections: 0, attrs: 8, attrStride: 16, attrAddr: 8, attrName: 0,
	kallsyms: 168, symtab: 0, numSymtab: 8, strtab: 16, typetab: 24,
	orcIP: 176, orc: 184, numOrcs: 192,
}

// modFuzzSeed builds memory holding one well-formed module "fz" at
// modFuzzBase+0x100 with a section, two symbols and two ORC entries, and a
// utsname at modFuzzBase+0x800 (for the ORC layout).
func modFuzzSeed() []byte {
	b := make([]byte, 0x1000)
	put := func(off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	put32 := func(off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	mod := 0x100
	put(0, modFuzzBase+uint64(mod)+8)       // head.next = &mod.list
	put(mod+8, modFuzzBase)                 // mod.list.next = head
	copy(b[mod+24:], "fz\x00")              // name
	put(mod+80, 0x1000)                     // taints: O
	put(mod+96, modFuzzBase+0xc00)          // core base
	put32(mod+96+8, 0x400)                  // core size
	put32(mod+96+12, 0x100)                 // text size
	put(mod+160, modFuzzBase+0x400)         // sect_attrs
	put(mod+168, modFuzzBase+0x500)         // kallsyms
	put(mod+176, modFuzzBase+0x700)         // orc_unwind_ip
	put(mod+184, modFuzzBase+0x710)         // orc_unwind
	put32(mod+192, 2)                       // num_orcs
	put32(0x400, 1)                         // nsections
	put(0x408, modFuzzBase+0x480)           // attrs[0].name
	put(0x410, modFuzzBase+0xc00)           // attrs[0].address
	copy(b[0x480:], ".text\x00")            // section name
	put(0x500, modFuzzBase+0x600)           // symtab
	put32(0x508, 3)                         // num_symtab
	put(0x510, modFuzzBase+0x6c0)           // strtab
	put(0x518, modFuzzBase+0x6f0)           // typetab
	copy(b[0x6c0:], "\x00fz_a\x00fz_b\x00") // names at 1 and 6
	copy(b[0x6f0:], "Utt")                  // types
	for i, s := range []struct{ name, val uint64 }{{1, 0xc00}, {6, 0xc40}} {
		e := 0x600 + 24*(i+1)
		put32(e, uint32(s.name))
		binary.LittleEndian.PutUint16(b[e+6:], 1)
		put(e+8, modFuzzBase+s.val)
		put(e+16, 0x20)
	}
	put32(0x700, uint32(0xc00-0x700))                     // ip[0] → 0xc00 (self-relative)
	put32(0x704, uint32(0xc40-0x704))                     // ip[1] → 0xc40
	binary.LittleEndian.PutUint16(b[0x710+4:], 0x05|0x10) // sp_reg SP, bp_reg PREV_SP
	binary.LittleEndian.PutUint16(b[0x710:], 8)
	binary.LittleEndian.PutUint16(b[0x716:], 8)
	binary.LittleEndian.PutUint16(b[0x716+4:], 0x05)
	copy(b[0x800:], "Linux\x00")
	copy(b[0x800+65*2:], "6.1.0\x00")
	return b
}

// FuzzModuleRead reads the modules list and every module from hostile
// memory: it must never panic, loop or allocate without bound, and what
// it adds to the symbol set must be usable.
func FuzzModuleRead(f *testing.F) {
	f.Add(modFuzzSeed())
	s := modFuzzSeed()
	binary.LittleEndian.PutUint32(s[0x508:], 1<<20) // a huge symbol count
	f.Add(s)
	s = modFuzzSeed()
	binary.LittleEndian.PutUint64(s[0x108:], modFuzzBase+0x108) // the list loops on itself
	f.Add(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		k := &Kernel{
			mem:  unwind.FromReaderAt(bytes.NewReader(data), modFuzzBase),
			set:  &symbols.Set{},
			syms: map[string]uint64{"init_uts_ns": modFuzzBase + 0x800},
		}
		l := modFuzzLayout
		r := newModuleReader(k, &l)
		addrs, _ := r.list(modFuzzBase)
		if len(addrs) > maxModules {
			t.Fatalf("%d modules", len(addrs))
		}
		files := &koIndex{files: map[string]string{}}
		for _, a := range addrs {
			m, _, err := r.read(a)
			if err != nil {
				continue
			}
			k.addModule(&m, files)
			for pc := m.Base; pc < m.TextEnd && pc < m.Base+0x200; pc += 7 {
				k.set.Symbol(pc)
				k.set.FindORC(pc)
			}
		}
	})
}

// TestFuzzSeedModule: the fuzz seed reads as the module it describes, so
// the fuzzer starts from a path that reaches symbols and ORC.
func TestFuzzSeedModule(t *testing.T) {
	k := &Kernel{mem: unwind.FromReaderAt(bytes.NewReader(modFuzzSeed()), modFuzzBase), set: &symbols.Set{},
		syms: map[string]uint64{"init_uts_ns": modFuzzBase + 0x800}}
	l := modFuzzLayout
	r := newModuleReader(k, &l)
	addrs, err := r.list(modFuzzBase)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("%v %v", addrs, err)
	}
	m, warns, err := r.read(addrs[0])
	if err != nil || len(warns) > 0 {
		t.Fatalf("%v %v", err, warns)
	}
	if m.Name != "fz" || m.Base != modFuzzBase+0xc00 || m.TextEnd != modFuzzBase+0xd00 || len(m.Symbols) != 3 || m.ORC == nil || m.ORC.Len() != 2 || m.Sections[".text"] != m.Base {
		t.Fatalf("%+v", m)
	}
	k.addModule(&m, &koIndex{files: map[string]string{}})
	if s, ok := k.set.Symbol(modFuzzBase + 0xc50); !ok || s.Name != "fz_b" || s.Size != 0xc0 || s.Module != "fz" {
		t.Errorf("fz_b: %+v %v", s, ok)
	}
	if e, ok := k.set.FindORC(modFuzzBase + 0xc10); !ok || e.SPOffset != 8 {
		t.Errorf("ORC: %+v %v", e, ok)
	}
}
