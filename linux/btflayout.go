package linux

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/cilium/ebpf/btf"
	"github.com/unwind-dev/unwind/internal/fileio"
	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// btfLayouts is a Layout (member offsets, sizes) read from the kernel's
// BTF: vmlinux's .BTF section, or the same bytes in the dump's
// memory (__start_BTF … __stop_BTF, CONFIG_DEBUG_INFO_BTF) when only a
// System.map is given. BTF holds every type of the kernel, also those
// defined in a single .c file (struct module_sect_attrs in
// kernel/module/sysfs.c), in a few megabytes parsed at once.
type btfLayouts struct {
	spec *btf.Spec
	from string // where the BTF came from, for messages
}

// maxBTF bounds the BTF read from a dump (6.1's is 4 MB).
const maxBTF = 64 << 20

// btfFromFile reads the .BTF section of a vmlinux. The section's bytes
// are parsed as raw BTF: cilium/ebpf's ELF loader would also read every
// symbol of vmlinux (100k+, a string each) for the offsets of data
// sections, which struct layouts do not use. sf, when not nil, is path
// opened by symbols: its read-only mapping of the file gives the bytes
// without a copy of the 5 MB (and the faults of a new buffer) that
// reading the section costs. A file that is not an ELF file with a .BTF
// inside it that parses goes through that loader, for its error.
func btfFromFile(path string, sf *symbols.File) (*btfLayouts, error) {
	btfLoads.Add(1)
	fromRaw := func(raw []byte) *btfLayouts {
		if raw == nil {
			return nil
		}
		spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
		if err != nil {
			return nil
		}
		return &btfLayouts{spec: spec, from: path + " .BTF"}
	}
	if sf != nil {
		if l := fromRaw(sf.SectionBytes(".BTF", maxBTF)); l != nil {
			return l, nil
		}
	}
	f, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if sf == nil {
		if l := fromRaw(rawBTFSection(f)); l != nil {
			return l, nil
		}
	}
	spec, err := btf.LoadSpecFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: BTF: %w", path, err)
	}
	return &btfLayouts{spec: spec, from: path + " .BTF"}, nil
}

// btfLoads counts the calls of btfFromFile, for tests.
var btfLoads atomic.Int64

// rawBTFSection returns the bytes of the uncompressed .BTF section of the
// ELF file f, or nil (no ELF file, no such section, a section that does
// not fit in the file or is larger than maxBTF).
func rawBTFSection(f *os.File) (raw []byte) {
	defer func() {
		if recover() != nil {
			raw = nil // the ELF loader says what is wrong
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil
	}
	s := ef.Section(".BTF")
	if s == nil || s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_COMPRESSED != 0 ||
		s.Size > maxBTF || s.Offset > uint64(fi.Size()) || s.Size > uint64(fi.Size())-s.Offset {
		return nil
	}
	b := make([]byte, s.Size)
	if n, _ := f.ReadAt(b, int64(s.Offset)); uint64(n) != s.Size {
		return nil
	}
	return b
}

// btfFromMemory reads the kernel's BTF from the dump: the bytes between
// the symbols __start_BTF and __stop_BTF.
func btfFromMemory(mem unwind.Memory, start, stop uint64) (l *btfLayouts, err error) {
	if stop <= start || stop-start > maxBTF {
		return nil, fmt.Errorf("BTF in memory: __start_BTF %#x, __stop_BTF %#x: no plausible size", start, stop)
	}
	b := make([]byte, stop-start)
	if n, err := mem.ReadAt(b, start); n != len(b) {
		return nil, fmt.Errorf("BTF in memory at %#x (%d bytes): %w", start, len(b), err)
	}
	defer func() {
		if p := recover(); p != nil {
			l, err = nil, fmt.Errorf("BTF in memory at %#x: malformed: %v", start, p)
		}
	}()
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("BTF in memory at %#x: %w", start, err)
	}
	return &btfLayouts{spec: spec, from: fmt.Sprintf("the kernel's BTF at %#x", start)}, nil
}

var errNoMember = errors.New("no such member")

// structType returns the struct (or union) named name.
func (l *btfLayouts) structType(name string) (btf.Type, error) {
	var s *btf.Struct
	if err := l.spec.TypeByName(name, &s); err == nil {
		return s, nil
	}
	var u *btf.Union
	if err := l.spec.TypeByName(name, &u); err == nil {
		return u, nil
	}
	return nil, fmt.Errorf("%s: no struct %s", l.from, name)
}

// members returns the members of a struct or union type, nil otherwise.
func members(t btf.Type) []btf.Member {
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		return t.Members
	case *btf.Union:
		return t.Members
	}
	return nil
}

// findMember finds the named member of t, also inside anonymous struct
// and union members, and returns its byte offset and type.
func findMember(t btf.Type, name string, depth int) (int64, btf.Type, bool) {
	for _, m := range members(t) {
		if m.Name == name {
			return int64(m.Offset.Bytes()), m.Type, true
		}
		if m.Name == "" && depth < 8 {
			if off, mt, ok := findMember(m.Type, name, depth+1); ok {
				return int64(m.Offset.Bytes()) + off, mt, true
			}
		}
	}
	return 0, nil, false
}

// offset returns the byte offset of path ("core_layout.base",
// "battr.attr.name") in struct structName, and the member's type.
func (l *btfLayouts) offset(structName, path string) (int64, btf.Type, error) {
	t, err := l.structType(structName)
	if err != nil {
		return 0, nil, err
	}
	var off int64
	for _, name := range strings.Split(path, ".") {
		o, mt, ok := findMember(t, name, 0)
		if !ok {
			return 0, nil, fmt.Errorf("%s: struct %s has no member %s: %w", l.from, structName, path, errNoMember)
		}
		off += o
		t = mt
	}
	return off, t, nil
}

// StructSize implements Layout.
func (l *btfLayouts) StructSize(name string) (int64, bool) {
	t, err := l.structType(name)
	if err != nil {
		return 0, false
	}
	n, err := btf.Sizeof(t)
	return int64(n), err == nil && n > 0
}

// MemberOffset implements Layout.
func (l *btfLayouts) MemberOffset(structName, member string) (int64, bool) {
	off, _, err := l.offset(structName, member)
	return off, err == nil
}
