package symbols

import (
	"bytes"
	"debug/elf"
	"path/filepath"
	"strings"
)

// fileKind is what classify makes of an ELF file.
type fileKind uint8

const (
	kindPlain        fileKind = iota // executable, shared library, vDSO
	kindKernelText                   // ET_EXEC with text in the kernel half; a kernel if it has linux_banner or _stext
	kindKernelModule                 // a loadable kernel module (.ko)
)

// kernelBase is the lowest address of x86-64 kernel text (__START_KERNEL_map).
const kernelBase = 0xffffffff80000000

// classify tells a kernel image and a kernel module from other ELF files
// and returns the Sym.Module its symbols get: the path for ordinary files,
// the module name for a .ko. A kernel image's symbols get "" (readSymbols
// confirms a kernel by its symbols).
func classify(ef *elf.File, path string) (fileKind, string) {
	switch ef.Type {
	case elf.ET_EXEC:
		for _, s := range ef.Sections {
			if s.Flags&elf.SHF_EXECINSTR != 0 && s.Flags&elf.SHF_ALLOC != 0 && s.Addr >= kernelBase {
				return kindKernelText, path
			}
		}
	case elf.ET_REL:
		if ef.Section(".gnu.linkonce.this_module") != nil || ef.Section(".modinfo") != nil {
			return kindKernelModule, moduleName(ef, path)
		}
	}
	return kindPlain, path
}

// moduleName returns a kernel module's name as the kernel prints it in
// "[name]": the .modinfo name= tag, else the file name without .ko (and a
// compression suffix), with '-' turned into '_'.
func moduleName(ef *elf.File, path string) string {
	if v := modinfo(ef, "name"); v != "" {
		return v
	}
	name := filepath.Base(path)
	for _, ext := range []string{".gz", ".xz", ".zst"} {
		name = strings.TrimSuffix(name, ext)
	}
	name = strings.TrimSuffix(name, ".ko")
	return strings.ReplaceAll(name, "-", "_")
}

// modinfo returns the value of a kernel module's .modinfo tag ("name",
// "vermagic", ...), or "".
func modinfo(ef *elf.File, tag string) string {
	s := ef.Section(".modinfo")
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size >= 1<<20 {
		return ""
	}
	b, err := s.Data()
	if err != nil {
		return ""
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(tag+"=")); ok && len(v) > 0 {
			return string(v)
		}
	}
	return ""
}

// kallsymsIgnored reports whether scripts/mksysmap or scripts/kallsyms drop
// a symbol name, so that the kernel never prints it (and it does not end the
// symbol before it).
func kallsymsIgnored(name string) bool {
	// By the first byte: a vmlinux has 100k+ names, few of them dropped.
	if len(name) < 2 {
		return name == "$"
	}
	switch name[0] {
	case '$':
		return true
	case '.':
		return name[1] == 'L'
	case 'L':
		return name == "L0"
	case '_':
		// By the third byte, each prefix a constant the compiler
		// compares inline.
		if name[1] != '_' || len(name) < 3 {
			return false
		}
		switch name[2] {
		case 'c':
			return strings.HasPrefix(name, "__crc_")
		case 'k':
			return strings.HasPrefix(name, "__kstrtab_") || strings.HasPrefix(name, "__kstrtabns_") ||
				strings.HasPrefix(name, "__kcfi_typeid_")
		case 'e':
			return strings.HasPrefix(name, "__efistub_")
		}
	}
	return false
}

// moduleKallsymsIgnored reports whether a module's kallsyms skips a
// symbol name when naming an address (find_kallsyms_symbol with
// is_mapping_symbol): local labels and ARM-style mapping symbols.
func moduleKallsymsIgnored(name string) bool {
	if strings.HasPrefix(name, ".L") {
		return true
	}
	return len(name) >= 2 && name[0] == '$' && strings.IndexByte("axtd", name[1]) >= 0 && (len(name) == 2 || name[2] == '.')
}

// kallsymsRank orders aliases at one address as scripts/kallsyms does (its
// compare_symbols): strong before weak, then symbols that do not look like
// linker-script markers (__start_x, __stop_x, __end_x, __x_start, __x_end)
// before ones that do; newTable then prefers fewer leading underscores and
// the alphabetically first name, as nm -n's order does.
func kallsymsRank(name string, weak bool) int {
	r := 0
	if weak {
		r += 2
	}
	if linkerProvided(name) {
		r++
	}
	return r
}

// linkerProvided is kallsyms's may_be_linker_script_provide_symbol.
func linkerProvided(s string) bool {
	if len(s) < 8 || !strings.HasPrefix(s, "__") {
		return false
	}
	for _, p := range [...]string{"__start_", "__stop_", "__end_"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.HasSuffix(s, "_start") || strings.HasSuffix(s, "_end")
}
