package symbols

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/unwind-dev/unwind/internal/cfi"
	"github.com/unwind-dev/unwind/internal/fileio"
)

// File is one ELF module (an executable, shared library or vmlinux) loaded
// at Bias, or a kernel module placed section by section (OpenModule; Bias
// is 0 there): its symbols, executable sections, CFI and DWARF lines, all
// at run-time addresses. Symbols are read by Open; code, CFI and DWARF are read
// on first use. AttachDebug adds a separate debug file. A File is safe for
// concurrent use once AttachDebug (if used) has returned.
type File struct {
	Path string // as given to Open or NewFile; Sym.Module of its symbols except for a kernel (see Sym.Module)
	Bias uint64 // added to every link-time address (KASLR, PIE or library load bias)
	Syms *Table // .symtab and .dynsym (plus the debug file's .symtab), deduplicated

	// DebugPath is the separate debug file attached by AttachDebug, or "".
	DebugPath string

	r         io.ReaderAt
	mapped    []byte // the file r reads mapped read-only (mapReader), or nil
	closer    io.Closer
	ef        *elf.File
	dbg       *elf.File   // separate debug file, or nil
	dbgR      io.ReaderAt // what dbg is read from
	dbgMapped []byte      // dbgR mapped, or nil
	dbgClose  io.Closer
	own       []symSource // the file's .symtab and .dynsym, once readSymbols read them
	ownDyn    bool        // own holds .dynsym (readSymbols reads it only to build a table)
	kind      fileKind
	kernel    bool          // a Linux kernel image (see Sym.Size)
	module    string        // Sym.Module of the file's symbols
	text      []textSection // executable sections sorted by address
	lo, hi    uint64        // run-time span of the allocated sections
	buildID   []byte

	// A kernel module opened with OpenModule: each section's run-time
	// address, which sections the placement put somewhere, the placed
	// sections' ranges (sorted) and the relocator for their bytes.
	secAddr  []uint64
	placed   []bool
	spans    []span
	reloc    *relocator
	textEnds []uint64 // Placement.TextEnds, sorted

	cfiOnce   sync.Once
	debugCFI  *cfi.Table
	ehCFI     *cfi.Table
	cfiErr    error
	dwarfOnce sync.Once
	dw        *dwarfIndex
	dwErr     error

	orcOnce sync.Once
	orc     *ORCTable
	orcErr  error
}

// textSection is one SHF_EXECINSTR section, its bytes read on first use.
type textSection struct {
	name       string
	start, end uint64 // run-time
	sec        *elf.Section
	once       *sync.Once
	data       *[]byte
	load       func() ([]byte, error) // the bytes, relocated (modules); nil: the section's own
}

// Open opens the ELF file at path with load bias bias (the KASLR offset for
// vmlinux, the load address for a PIE or shared library, 0 for a fixed
// executable). Close releases the file.
func Open(path string, bias uint64) (*File, error) {
	return openWith(path, func(r io.ReaderAt) (*File, error) { return NewFile(r, path, bias) })
}

// openWith opens the regular file at path and makes a File of it with
// newFile; the File closes it.
func openWith(path string, newFile func(io.ReaderAt) (*File, error)) (*File, error) {
	fh, err := fileio.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	f, err := newFile(fh)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// NewFile reads an ELF file from r; path names it in Sym.Module and errors.
// r must stay readable while the File is used (code, CFI and DWARF are read
// lazily).
func NewFile(r io.ReaderAt, path string, bias uint64) (f *File, err error) {
	return newFileELF(r, nil, path, bias, true)
}

// newFileELF is NewFile for r already parsed as ef (nil: parse r here);
// without syms it leaves f.Syms nil, for a caller that builds the table
// itself (NewFileWithDebug).
func newFileELF(r io.ReaderAt, ef *elf.File, path string, bias uint64, syms bool) (f *File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("symbols: %s: malformed ELF: %v", path, p)
		}
	}()
	if ef == nil {
		if ef, err = elf.NewFile(r); err != nil {
			return nil, elfOpenError(path, r, err)
		}
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("symbols: %s: not an x86-64 ELF (%v %v)", path, ef.Class, ef.Machine)
	}
	f = &File{Path: path, Bias: bias, r: r, ef: ef, mapped: mapReader(r)}
	f.kind, f.module = classify(ef, path)
	f.lo = ^uint64(0)
	for _, s := range ef.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Addr == 0 || s.Size == 0 {
			continue
		}
		f.lo = min(f.lo, s.Addr+bias)
		f.hi = max(f.hi, s.Addr+s.Size+bias)
		if s.Flags&elf.SHF_EXECINSTR != 0 && s.Type == elf.SHT_PROGBITS {
			f.text = append(f.text, textSection{name: s.Name, start: s.Addr + bias, end: s.Addr + s.Size + bias,
				sec: s, once: new(sync.Once), data: new([]byte)})
		}
	}
	if f.hi == 0 {
		f.lo = 0
	}
	slices.SortFunc(f.text, func(a, b textSection) int {
		if a.start < b.start {
			return -1
		}
		if a.start > b.start {
			return 1
		}
		return 0
	})
	if syms {
		f.Syms = f.readSymbols()
	}
	f.buildID = readBuildID(ef)
	return f, nil
}

// Close closes the file Open opened and the debug file AttachDebug opened;
// it is a no-op for NewFile without AttachDebug. It first keeps in the
// debug cache what lookups decompressed of the file's DWARF.
func (f *File) Close() error {
	f.saveDebugCache()
	var errs []error
	if f.dbgClose != nil {
		errs = append(errs, f.dbgClose.Close())
		f.dbgClose = nil
	}
	if f.closer != nil {
		errs = append(errs, f.closer.Close())
		f.closer = nil
	}
	return errors.Join(errs...)
}

// readSymbols reads .symtab and .dynsym, and the debug file's .symtab when
// one is attached: functions, objects, untyped labels and ifuncs defined in
// a section, relocated by the bias. For a Linux kernel image it gives text
// symbols kallsyms-style sizes (see Sym.Size) and kallsyms's alias order.
func (f *File) readSymbols() *Table {
	if f.own == nil {
		// The file's own tables, read once: AttachDebug builds the
		// table again with the debug file's. .dynsym goes through
		// debug/elf and is read only when the table is built.
		f.own = []symSource{}
		if src, err := symtabSource(f.ef, f.r, f.mapped); err == nil {
			f.own = append(f.own, src)
		}
	}
	var cache debugCache
	var key []byte
	entry := "symtab"
	if f.symtabCacheable() {
		if cache = debugCacheFor(f.ef, f.Path); cache != "" {
			key = symtabKey(f.ef, f.r, f.mapped)
			if f.dbg != nil && key != nil {
				// The table of both files: an entry of its own, so that
				// the file opened without its debug file (or the debug
				// file opened alone, which shares the build id and so
				// the cache folder) does not overwrite it.
				entry = "symtab-debug"
				dk := symtabKey(f.dbg, f.dbgR, f.dbgMapped)
				if dk == nil {
					key = nil
				} else {
					key = append(binary.LittleEndian.AppendUint32(key, uint32(len(dk))), dk...)
				}
			}
		}
		strs := ""
		if len(f.own) > 0 && f.own[0].raw != nil {
			strs = f.own[0].strs
		}
		if c, ok := cache.loadSymtab(entry, key, strs, f.Bias, f.module); ok {
			f.kernel = c.kernel
			return c.t.withExtras(c.extras)
		}
	}
	srcs := f.ownSources()
	if f.dbg != nil {
		if src, err := symtabSource(f.dbg, f.dbgR, f.dbgMapped); err == nil {
			srcs = append(srcs, src)
		}
	}
	kernel := false
	if f.secAddr != nil {
		kernel = true // a placed kernel module: kallsyms-style sizes and order, its own name
	} else if f.kind == kindKernelText {
	find:
		for i := range srcs {
			sr := &srcs[i]
			// From the end: both are global symbols, which come after
			// the local ones.
			for j := sr.Len() - 1; j >= 0; j-- {
				if sr.definesName(j, "linux_banner") || sr.definesName(j, "_stext") {
					kernel = true
					break find
				}
			}
		}
	}
	f.kernel = kernel
	// To be cached, the table is built in the entry, which is written
	// as it is, with its name index, whose hashes symbolRuns takes.
	// The symbols are collected in the entry's memory too, and sorted
	// into their place there.
	cached := key != nil && littleEndianHost
	var buf []byte
	var in *tableColumns
	if cached {
		buf, in = newSymtabBuffer(len(key), symbolCount(srcs))
	}
	rel, abs := f.symbolRuns(srcs, cached, in)
	xs := abs.build(false).syms()
	var w *symtabWriter
	var place func(n int) *tableColumns
	if cached && len(rel.nb.long) == 0 {
		place = func(n int) *tableColumns {
			if w = layoutSymtab(buf, key, kernel, n, rel.nb.strs2, xs); w == nil {
				return nil
			}
			return &w.cols
		}
	}
	t := rel.buildIn(true, place)
	f.capTextSizes(t)
	if w != nil {
		if b := w.finish(t); b != nil {
			cache.store(entry, b)
		}
	}
	return t.withExtras(xs)
}

// ownSources returns the file's .symtab and .dynsym (each when it is
// readable), reading .dynsym the first time; readSymbols has read .symtab.
func (f *File) ownSources() []symSource {
	if !f.ownDyn {
		f.ownDyn = true
		if src, err := dynsymSource(f.ef); err == nil {
			f.own = append(f.own, src)
		}
	}
	return slices.Clip(f.own)
}

// SymbolValue returns the ELF st_value and st_size of the symbol
// Syms.ByName(name) gives: its address without the bias (an absolute
// symbol has none), for a caller that relocates link-time addresses
// itself, as linux.Open does with the few vmlinux symbols it reads. It
// costs a hash probe, where scanning .symtab (ELFSymbolsNamed) reads the
// whole table; unlike that scan it sees only the symbols the table keeps
// (functions, objects and labels defined in a section) and, of several
// with one name, the lowest-addressed. For a placed module the value is
// the run-time address.
func (f *File) SymbolValue(name string) (value, size uint64, ok bool) {
	s, abs, ok := f.Syms.lookupName(name)
	if !ok {
		return 0, 0, false
	}
	if abs || f.secAddr != nil {
		return s.Addr, s.ELFSize, true
	}
	return s.Addr - f.Bias, s.ELFSize, true
}

// symtabCacheable reports whether the table readSymbols makes is kept in
// the debug cache: for a file (and debug file, when one is attached)
// mapped in memory, not placed (a module), whose symbol tables hold at
// least minCachedSyms entries.
func (f *File) symtabCacheable() bool {
	if f.secAddr != nil || f.mapped == nil || f.dbg != nil && f.dbgMapped == nil {
		return false
	}
	n := uint64(0)
	for _, s := range f.ef.Sections {
		if s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_DYNSYM {
			n += s.Size / elf.Sym64Size
		}
	}
	if f.dbg != nil {
		if s := f.dbg.SectionByType(elf.SHT_SYMTAB); s != nil {
			n += s.Size / elf.Sym64Size
		}
	}
	return n >= uint64(minCachedSyms)
}

// symbolRuns collects the symbols of srcs that readSymbols keeps: those
// the bias moves, to be sorted by their run-time address, and apart from
// them the absolute ones (SHN_ABS), which build the table's extras (see
// Table.withExtras), so that the first can be cached once for every
// bias. With hash, rel also takes the hash of each name for the table's
// name index, under a new seed (tableBuilder.hash), while the name is at
// hand. in, when not nil, holds empty columns for rel with room for
// symbolCount(srcs) symbols (newSymtabBuffer's).
func (f *File) symbolRuns(srcs []symSource, hash bool, in *tableColumns) (rel, abs *tableBuilder) {
	kernel := f.kernel
	module := f.module
	if kernel && f.secAddr == nil {
		module = ""
	}
	rel, abs = &tableBuilder{}, &tableBuilder{}
	n := symbolCount(srcs)
	if in != nil && cap(in.addr) >= n && cap(in.size) >= n && cap(in.elfSize) >= n && cap(in.name) >= n {
		rel.addr, rel.size, rel.elfSize, rel.name = in.addr[:0], in.size[:0], in.elfSize[:0], in.name[:0]
		rel.scratch = in.scratch
	}
	rel.grow(n)
	if hash {
		rel.seed, rel.hash = rand.Uint64(), make([]uint32, 0, n)
	}
	rel.module(module)
	abs.module(module)
	if f.secAddr == nil {
		rel.bias = f.Bias
	}
	if len(srcs) > 0 && srcs[0].raw != nil {
		// The file's .symtab (readSymbols puts it first): names stay in
		// its string table.
		rel.nb.strs, abs.nb.strs = srcs[0].strs, srcs[0].strs
	}
	for i := range srcs {
		sr := &srcs[i]
		inStrs := i == 0 && sr.raw != nil
		// Which sections hold code, by index.
		exec := make([]bool, len(sr.ef.Sections))
		for k, sec := range sr.ef.Sections {
			exec[k] = sec.Flags&elf.SHF_EXECINSTR != 0
		}
		// Whether any name has a version suffix to cut (a vmlinux's have
		// none): one scan of the string table instead of one per name.
		versioned := strings.IndexByte(sr.strs, '@') >= 0
		for j := range sr.Len() {
			// The fields readSymbols looks at, read in place from a
			// little-endian .symtab (a vmlinux's 100k+ entries), the name
			// found only for a symbol of a kept type in a section.
			var s elfSym
			at := -1 // where the name's first '@' is
			if sr.le {
				e := sr.raw[j*elf.Sym64Size : (j+1)*elf.Sym64Size : (j+1)*elf.Sym64Size]
				s.Info, s.Section = e[4], elf.SectionIndex(binary.LittleEndian.Uint16(e[6:8]))
				s.Value, s.Size = binary.LittleEndian.Uint64(e[8:16]), binary.LittleEndian.Uint64(e[16:24])
				if t := elf.ST_TYPE(s.Info); t > elf.STT_FUNC && t != elf.STT_GNU_IFUNC || s.Section == elf.SHN_UNDEF {
					continue
				}
				s.NameOff = binary.LittleEndian.Uint32(e[0:4])
				if s.Name = stringAt(sr.strs, s.NameOff); versioned {
					at = strings.IndexByte(s.Name, '@')
				}
			} else {
				s = sr.At(j)
				at = strings.IndexByte(s.Name, '@')
			}
			typ := elf.ST_TYPE(s.Info)
			switch typ {
			case elf.STT_FUNC, elf.STT_GNU_IFUNC, elf.STT_OBJECT, elf.STT_NOTYPE:
			default:
				continue
			}
			if s.Name == "" || s.Section == elf.SHN_UNDEF || strings.HasPrefix(s.Name, ".L") {
				continue
			}
			b := rel
			addr := s.Value
			if f.secAddr != nil {
				// A module: only symbols in placed sections exist at run
				// time (kallsyms keeps no absolute ones either).
				if s.Section >= elf.SHN_LORESERVE || int(s.Section) >= len(f.placed) || !f.placed[s.Section] {
					continue
				}
				addr += f.secAddr[s.Section]
			} else if s.Section == elf.SHN_ABS {
				b = abs
			}
			name := s.Name
			if at > 0 {
				name = name[:at] // dynsym version suffix, as in "memcpy@@GLIBC_2.14"
			}
			size := s.Size
			rank := 0
			switch {
			case f.secAddr != nil:
				// A module's kallsyms answers with the first symbol in
				// symbol-table order among aliases (find_kallsyms_symbol),
				// and sizes text symbols by the next symbol.
				if moduleKallsymsIgnored(name) {
					continue
				}
				if f.ef.Sections[s.Section].Flags&elf.SHF_EXECINSTR != 0 {
					size = 0
				}
				rank = j
			case kernel && kallsymsIgnored(name):
				continue
			case kernel && s.Section < elf.SHN_LORESERVE && int(s.Section) < len(exec) && exec[s.Section]:
				// A text symbol: its size is the distance to the next
				// symbol, as kallsyms computes it (filled by build).
				size = 0
				rank = kallsymsRank(name, elf.ST_BIND(s.Info) == elf.STB_WEAK && typ != elf.STT_OBJECT)
			default:
				rank = 2
				switch {
				case typ == elf.STT_FUNC || typ == elf.STT_GNU_IFUNC:
					rank = 0
				case typ == elf.STT_NOTYPE:
					rank = 1
				}
				if elf.ST_BIND(s.Info) == elf.STB_LOCAL {
					rank += 4 // among aliases prefer global names, as nm users expect
				}
				if s.Section == elf.SHN_ABS {
					rank += 8
				}
				if kernel {
					rank += 16 // after text symbols at the same address
				}
			}
			var ref uint64
			if inStrs {
				ref = b.nb.ref0(uint64(s.NameOff), uint64(len(name)))
			} else {
				ref = b.nb.ref(name)
			}
			b.add(addr, size, s.Size, ref, rank, 0, 0)
			if b.hash != nil {
				b.hash = append(b.hash, uint32(strHash(b.seed, name)))
			}
		}
	}
	return rel, abs
}

// symbolCount is the number of symbols in srcs.
func symbolCount(srcs []symSource) int {
	n := 0
	for i := range srcs {
		n += srcs[i].Len()
	}
	return n
}

// BuildIDOf returns the NT_GNU_BUILD_ID descriptor of an ELF file opened
// with debug/elf (nil when it has none), for a caller that has not opened
// the file as a File (File.BuildID gives the same).
func BuildIDOf(ef *elf.File) []byte { return readBuildID(ef) }

// readBuildID returns the NT_GNU_BUILD_ID descriptor from any SHT_NOTE section.
func readBuildID(ef *elf.File) []byte {
	for _, s := range ef.Sections {
		if s.Type != elf.SHT_NOTE || s.Size > 1<<20 {
			continue
		}
		b, err := s.Data()
		if err != nil {
			continue
		}
		for len(b) >= 12 {
			nsz := uint64(binary.LittleEndian.Uint32(b))
			dsz := uint64(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			nend := 12 + (nsz+3)&^3
			dend := nend + (dsz+3)&^3
			if nend > uint64(len(b)) || 12+nsz > uint64(len(b)) || nend+dsz > uint64(len(b)) {
				break
			}
			if typ == 3 && nsz == 4 && string(b[12:15]) == "GNU" {
				return slices.Clone(b[nend : nend+dsz])
			}
			if dend > uint64(len(b)) {
				break
			}
			b = b[dend:]
		}
	}
	return nil
}

// BuildID returns the NT_GNU_BUILD_ID note's bytes, or nil when the file has
// none; compare it with a core's file notes to check you have the right file.
func (f *File) BuildID() []byte { return f.buildID }

// textAt returns the executable section containing the run-time pc.
func (f *File) textAt(pc uint64) *textSection {
	i, found := slices.BinarySearchFunc(f.text, pc, func(t textSection, pc uint64) int {
		switch {
		case pc < t.start:
			return 1
		case pc >= t.end:
			return -1
		}
		return 0
	})
	if !found {
		return nil
	}
	return &f.text[i]
}

// IsText reports whether the run-time pc lies in one of the file's
// executable sections; unwinders use it to judge a return address.
func (f *File) IsText(pc uint64) bool { return f.textAt(pc) != nil }

// CodeAt returns the bytes of the executable section containing pc, from pc
// to the section's end, without copying (do not modify them), or nil when pc
// is not in text or the section cannot be read. Disassemblers use it for
// prologue analysis.
func (f *File) CodeAt(pc uint64) []byte {
	t := f.textAt(pc)
	if t == nil || t.sec.Type == elf.SHT_NOBITS {
		return nil
	}
	t.once.Do(func() {
		if t.sec.Size > 1<<31 {
			return
		}
		load := t.load
		if load == nil {
			load = func() ([]byte, error) { return sectionBytes(t.sec, f.r, f.mapped) }
		}
		if b, err := load(); b != nil && (err == nil || t.load != nil) {
			*t.data = b // a module's code relocated as far as possible is still its code
		}
	})
	off := pc - t.start
	if off >= uint64(len(*t.data)) {
		return nil
	}
	return (*t.data)[off:]
}

// loadCFI parses .debug_frame (the debug file's, if one is attached and has
// it) and the main file's .eh_frame on first use.
func (f *File) loadCFI() {
	if f.reloc != nil {
		f.moduleCFI()
		return
	}
	var errs []error
	s := (*elf.Section)(nil)
	r, mapped := f.r, f.mapped
	if f.dbg != nil {
		s, r, mapped = f.dbg.Section(".debug_frame"), f.dbgR, f.dbgMapped
	}
	if s == nil || s.Type == elf.SHT_NOBITS {
		s, r, mapped = f.ef.Section(".debug_frame"), f.r, f.mapped
	}
	if s != nil && s.Type != elf.SHT_NOBITS {
		if b, err := sectionBytes(s, r, mapped); err != nil {
			errs = append(errs, err)
		} else if f.debugCFI, err = cfi.Parse(b, cfi.DebugFrame, 0, f.Bias); err != nil {
			errs = append(errs, err)
		}
	}
	if s := f.ef.Section(".eh_frame"); s != nil && s.Type != elf.SHT_NOBITS && s.Addr != 0 {
		if b, err := sectionBytes(s, f.r, f.mapped); err != nil {
			errs = append(errs, err)
		} else {
			// The FDEs a lookup needs, found through .eh_frame_hdr's
			// sorted table (when it describes the section exactly).
			var hdr []byte
			hdrAddr := uint64(0)
			if h := f.ef.Section(".eh_frame_hdr"); h != nil && h.Type != elf.SHT_NOBITS && h.Addr != 0 && h.Size <= 64<<20 {
				if hb, err := sectionBytes(h, f.r, f.mapped); err == nil {
					hdr, hdrAddr = hb, h.Addr
				}
			}
			if f.ehCFI, err = cfi.ParseEH(b, s.Addr, hdr, hdrAddr, f.Bias); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		f.cfiErr = fmt.Errorf("symbols: %s: %w", f.Path, errors.Join(errs...))
	}
}

// FindCFI fills row with the CFI rules at the run-time pc, trying
// .debug_frame first and then .eh_frame. On a miss the error satisfies
// errors.Is(err, ErrNoFDE); when a section failed to parse, that parse error
// is returned instead. Steady-state calls do not allocate.
func (f *File) FindCFI(pc uint64, row *CFIRow) error {
	f.cfiOnce.Do(f.loadCFI)
	err := f.debugCFI.Find(pc, row)
	if err == nil {
		return nil
	}
	if err2 := f.ehCFI.Find(pc, row); err2 == nil {
		return nil
	} else if !errors.Is(err2, cfi.ErrNoFDE) {
		err = err2
	}
	if errors.Is(err, cfi.ErrNoFDE) && f.cfiErr != nil {
		return f.cfiErr
	}
	return err
}

// HasCFI reports whether the file has a usable .debug_frame or .eh_frame.
func (f *File) HasCFI() bool {
	f.cfiOnce.Do(f.loadCFI)
	return f.debugCFI.Len()+f.ehCFI.Len() > 0
}

// contains reports whether pc is in the file's allocated address span
// (for a placed module, in one of its placed sections).
func (f *File) contains(pc uint64) bool {
	if pc < f.lo || pc >= f.hi {
		return false
	}
	if f.spans == nil {
		return true
	}
	i, _ := slices.BinarySearchFunc(f.spans, pc, func(s span, pc uint64) int { return cmp.Compare(s.lo, pc) })
	// spans[i-1] is the last range starting at or below pc (ranges of a
	// module's sections do not overlap, except empty ones).
	if i < len(f.spans) && f.spans[i].lo == pc {
		return true
	}
	return i > 0 && pc < f.spans[i-1].hi
}

// elfOpenError says why debug/elf refused the file at path, in words a user
// can act on: a file cut short names its size, a format error keeps the
// offset debug/elf gives.
func elfOpenError(path string, r io.ReaderAt, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		size := "the file"
		if sz, ok := r.(interface{ Stat() (os.FileInfo, error) }); ok {
			if fi, err := sz.Stat(); err == nil {
				size = fmt.Sprintf("the file (%d bytes)", fi.Size())
			}
		} else if sz, ok := r.(interface{ Size() int64 }); ok {
			size = fmt.Sprintf("the file (%d bytes)", sz.Size())
		}
		return fmt.Errorf("symbols: %s: truncated ELF: %s ends inside its ELF headers", path, size)
	}
	var fe *elf.FormatError
	if errors.As(err, &fe) {
		return fmt.Errorf("symbols: %s: malformed ELF: %w", path, err)
	}
	return fmt.Errorf("symbols: %s: %w", path, err)
}
