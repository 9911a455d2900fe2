package linux

import (
	"bufio"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
	"io"
	"os"
	"strconv"
	"strings"
)

// kernelSymNames are the kernel symbols the dump reader itself uses.
var kernelSymNames = map[string]bool{
	"__per_cpu_offset": true, "pcpu_hot": true, "current_task": true,
	"hardirq_stack_ptr": true, "cpu_current_top_of_stack": true,
	"cpu_tss_rw": true, "idt_table": true, "linux_banner": true,
	"init_top_pgt": true, "panic_cpu": true, "crashing_cpu": true,
	"init_uts_ns": true, "_stext": true, "_text": true,
	"die_owner": true, "tainted_mask": true, "taint_flags": true,
	"kexec_crash_image": true, "dump_stack_arch_desc_str": true,
	"tk_core": true, "ktime_get_real_seconds": true,
	"init_task": true, "idle_threads": true,
}

// kernelOffsets are structure offsets read from vmlinux's DWARF; -1 when
// unknown.
type kernelOffsets struct {
	taskStack, taskPid, taskComm int64
	hotCurrent, hotTop, hotIRQ   int64
	tkXtimeSec                   int64 // tk_core.timekeeper.xtime_sec
	haveDWARF                    bool
}

func noOffsets() kernelOffsets { return kernelOffsets{-1, -1, -1, -1, -1, -1, -1, false} }

// offsetsFromLayout fills the offsets vmlinux's DWARF did not give from
// k.layout (the kernel's BTF, with System.map alone).
func (k *Kernel) offsetsFromLayout() {
	_, hot := k.kernelSym("pcpu_hot")
	layoutOffsets(k.layout, &k.offsets, hot)
}

// layoutOffsets fills the offsets of o that are unknown (-1) from l; the
// pcpu_hot ones only when hot (the kernel has struct pcpu_hot).
func layoutOffsets(l Layout, o *kernelOffsets, hot bool) {
	set := func(dst *int64, s, m string) {
		if *dst < 0 {
			if v, ok := l.MemberOffset(s, m); ok {
				*dst = v
			}
		}
	}
	set(&o.taskStack, "task_struct", "stack")
	set(&o.taskPid, "task_struct", "pid")
	set(&o.taskComm, "task_struct", "comm")
	if hot {
		set(&o.hotCurrent, "pcpu_hot", "current_task")
		set(&o.hotTop, "pcpu_hot", "top_of_stack")
		set(&o.hotIRQ, "pcpu_hot", "hardirq_stack_ptr")
	}
}

// loadKernelSyms reads the few symbols and offsets the dump reader needs
// from vmlinux files and a System.map, relocated by bias.
func (k *Kernel) loadKernelSyms(opts dump.SymbolOptions, files []*symbols.File, bias uint64) []string {
	var warns []string
	if k.syms == nil {
		k.syms = map[string]uint64{}
		k.symSize = map[string]uint64{}
	}
	k.offsets = noOffsets()
	if opts.SystemMap != "" {
		if f, err := fileio.OpenRegular(opts.SystemMap); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				if len(fs) < 3 || !kernelSymNames[fs[2]] {
					continue
				}
				if _, ok := k.syms[fs[2]]; ok {
					continue
				}
				if v, err := strconv.ParseUint(fs[0], 16, 64); err == nil {
					k.syms[fs[2]] = relocate(v, bias)
				}
			}
			f.Close()
		}
	}
	for i, path := range opts.Files {
		if fileio.CheckRegular(path) != nil {
			continue
		}
		fh, err := os.Open(path)
		if err != nil {
			continue
		}
		f, err := elf.NewFile(fh)
		if err != nil {
			fh.Close()
			continue
		}
		var sf *symbols.File // path opened by symbols (files[i]), or nil
		if i < len(files) {
			sf = files[i]
		}
		if opts.SystemMap == "" {
			add := func(s elf.Symbol) {
				if kernelSymNames[s.Name] {
					k.syms[s.Name] = relocate(s.Value, bias)
					k.symSize[s.Name] = s.Size
				}
			}
			if sf != nil {
				// The table symbols made (from the debug cache, warm)
				// answers each name with a hash probe; scanning .symtab
				// read all of it.
				for name := range kernelSymNames {
					if v, size, ok := sf.SymbolValue(name); ok {
						add(elf.Symbol{Name: name, Value: v, Size: size})
					}
				}
			} else {
				for s := range symbols.ELFSymbols(f) {
					add(s)
				}
			}
		}
		_, hot := k.syms["pcpu_hot"]
		tk, haveTk := k.syms["ktime_get_real_seconds"]
		if haveTk {
			tk -= bias
		}
		if len(opts.Files) == 1 {
			// The one vmlinux: its layouts may be in the debug cache.
			k.lc = newLayoutCache(sf, path, fh, f, hot, tk)
		}
		if k.lc != nil && k.lc.hit != nil && k.lc.hit.dwarf.present {
			k.offsets = k.lc.hit.offsets
			if k.layout == nil {
				k.layout = &answerLayout{answers: k.lc.hit.dwarf.answers, load: dwarfLayoutLoader(path, sf)}
			}
			f.Close()
			fh.Close()
			continue
		}
		secs := &dwarfSections{f: f, sf: sf}
		dw, err := firstUnitsDWARF(secs)
		if err == nil {
			k.offsets = readKernelOffsets(dw, hot)
			if k.layout == nil {
				k.layout = NewDWARFLayout(dw)
			}
		} else {
			warns = append(warns, path+": "+err.Error())
		}
		if haveTk && k.offsets.haveDWARF {
			if v, err := tkCoreXtimeSec(secs, tk); err == nil {
				k.offsets.tkXtimeSec = v
			}
		}
		if k.lc != nil && err == nil {
			k.lc.offsets, k.lc.dwarf, k.lc.madeDWARF = k.offsets, k.layout, true
		}
		f.Close()
		fh.Close()
	}
	return warns
}

// readKernelOffsets finds struct task_struct and struct pcpu_hot in vmlinux's
// DWARF and returns the member offsets the stack finder uses.
// pcpu_hot is looked for only when the kernel has it (Linux ≥ 6.2), so that
// the scan stops at the first complete task_struct.
func readKernelOffsets(dw *dwarf.Data, hot bool) kernelOffsets {
	off := noOffsets()
	off.haveDWARF = true

	want := map[string]bool{"task_struct": true}
	if hot {
		want["pcpu_hot"] = true
	}
	r := dw.Reader()
	for len(want) > 0 {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType || !e.Children {
			if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagNamespace {
				continue
			}
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if !want[name] {
			r.SkipChildren()
			continue
		}
		if _, decl := e.Val(dwarf.AttrDeclaration).(bool); decl {
			r.SkipChildren()
			continue
		}
		delete(want, name)
		members := readMembers(r, dw)
		get := func(m string) int64 {
			if v, ok := members[m]; ok {
				return v
			}
			return -1
		}
		switch name {
		case "task_struct":
			off.taskStack, off.taskPid, off.taskComm = get("stack"), get("pid"), get("comm")
		case "pcpu_hot":
			off.hotCurrent, off.hotTop, off.hotIRQ = get("current_task"), get("top_of_stack"), get("hardirq_stack_ptr")
		}
	}
	return off
}

// readMembers reads a struct's members (the reader is positioned at its
// first child), descending into anonymous structs and unions.
func readMembers(r *dwarf.Reader, dw *dwarf.Data) map[string]int64 {
	out := map[string]int64{}
	var walk func(base int64, depth int)
	walk = func(base int64, depth int) {
		for {
			e, err := r.Next()
			if err != nil || e == nil || e.Tag == 0 {
				return
			}
			if e.Tag != dwarf.TagMember {
				if e.Children {
					r.SkipChildren()
				}
				continue
			}
			loc, _ := e.Val(dwarf.AttrDataMemberLoc).(int64)
			name, _ := e.Val(dwarf.AttrName).(string)
			if name != "" {
				out[name] = base + loc
			} else if depth < 4 {
				if t, ok := e.Val(dwarf.AttrType).(dwarf.Offset); ok {
					sub := dw.Reader()
					sub.Seek(t)
					if te, err := sub.Next(); err == nil && te != nil && te.Children &&
						(te.Tag == dwarf.TagStructType || te.Tag == dwarf.TagUnionType) {
						save := r
						r = sub
						walk(base+loc, depth+1)
						r = save
					}
				}
			}
			if e.Children {
				r.SkipChildren()
			}
		}
	}
	walk(0, 0)
	return out
}

// relocate applies the KASLR bias to a kernel-image address; per-CPU
// symbols (small offsets into the per-CPU area) are not relocated.
func relocate(v, bias uint64) uint64 {
	if v < startKernelMap {
		return v
	}
	return v + bias
}

// Limits of the DWARF prefix read for structure offsets.
const (
	maxDWARFUnits  = 32
	maxDWARFPrefix = 16 << 20
)

// firstUnitsDWARF loads only the first compilation units of .debug_info (the
// kernel's early units, init/main.c and friends, define task_struct), so
// that finding a few offsets does not read tens of megabytes of DWARF.
func firstUnitsDWARF(secs *dwarfSections) (*dwarf.Data, error) {
	f := secs.f
	info := f.Section(".debug_info")
	abbrev := f.Section(".debug_abbrev")
	if info == nil || abbrev == nil || info.Type == elf.SHT_NOBITS {
		return nil, errors.New("no DWARF")
	}
	if info.Flags&elf.SHF_COMPRESSED != 0 {
		return f.DWARF()
	}
	r := info.Open()
	var end uint64
	var hdr [4]byte
	for units := 0; units < maxDWARFUnits && end < info.Size; units++ {
		if _, err := r.Seek(int64(end), io.SeekStart); err != nil {
			break
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		n := uint64(binary.LittleEndian.Uint32(hdr[:]))
		if n >= 0xfffffff0 || end+4+n > info.Size || end+4+n > maxDWARFPrefix {
			break
		}
		end += 4 + n
	}
	if end == 0 {
		return nil, errors.New("no DWARF units")
	}
	buf := make([]byte, end)
	if _, err := info.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return dwarfFromUnits(secs, buf)
}

// dwarfSections reads the DWARF sections of a vmlinux other than
// .debug_info, once each, for the dwarf.Data made of a few of its units.
type dwarfSections struct {
	f    *elf.File
	sf   *symbols.File // the same file opened by symbols (its mapping), or nil
	data map[string][]byte
}

func (s *dwarfSections) get(name string) []byte {
	if b, ok := s.data[name]; ok {
		return b
	}
	var b []byte
	if s.sf != nil {
		b = s.sf.SectionBytes(name, maxDWARFSection)
	} else if sec := s.f.Section(name); sec != nil && sec.Type != elf.SHT_NOBITS && sec.Size <= maxDWARFSection {
		b, _ = sec.Data()
	}
	if s.data == nil {
		s.data = map[string][]byte{}
	}
	s.data[name] = b
	return b
}

// maxDWARFSection bounds a DWARF section other than .debug_info that
// dwarfSections reads.
const maxDWARFSection = 64 << 20

// dwarfFromUnits makes a dwarf.Data of some compilation units of a
// vmlinux's .debug_info (whole units, with unit-relative references) and
// its other DWARF sections.
func dwarfFromUnits(secs *dwarfSections, info []byte) (*dwarf.Data, error) {
	data := secs.get
	dw, err := dwarf.New(data(".debug_abbrev"), nil, nil, info, nil, nil, nil, data(".debug_str"))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{".debug_str_offsets", ".debug_line_str", ".debug_addr", ".debug_rnglists"} {
		if b := data(name); b != nil {
			_ = dw.AddSection(name, b)
		}
	}
	return dw, nil
}
