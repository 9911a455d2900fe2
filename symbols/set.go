package symbols

import (
	"cmp"
	"errors"
	"slices"
)

// Set is the symbol view of a whole address space: several modules, such as
// an executable and its shared libraries, or vmlinux plus System.map and
// kernel modules. Lookups go to the module whose address span holds the pc;
// when spans overlap, files are asked before symbol-only tables, in the
// order added. The zero Set is empty and ready to use; a Set must not be
// modified while it is being read.
type Set struct {
	files  []*File
	tables []setTable
	orcs   []setORC
}

type setORC struct {
	t      *ORCTable
	lo, hi uint64
}

type setTable struct {
	t      *Table
	module string
	lo, hi uint64
}

// Add adds an ELF module; Modules returns the files sorted by address.
func (s *Set) Add(f *File) {
	if f == nil {
		return
	}
	s.files = append(s.files, f)
	slices.SortStableFunc(s.files, func(a, b *File) int { return cmp.Compare(a.lo, b.lo) })
}

// AddTable adds symbols that have no file, such as a System.map or the
// kallsyms of a vmcore; module fills Sym.Module for symbols that have none.
func (s *Set) AddTable(t *Table, module string) {
	if t.Len() == 0 {
		return
	}
	lo, hi := t.span()
	s.tables = append(s.tables, setTable{t: t, module: module, lo: lo, hi: hi})
	slices.SortStableFunc(s.tables, func(a, b setTable) int { return cmp.Compare(a.lo, b.lo) })
}

// Symbol returns the function containing pc, from the first module that
// has one. From symbol-only tables (System.map, kallsyms) only text symbols
// (types t, T, w, W) count: a data or per-cpu symbol never names a pc. It
// does not allocate.
func (s *Set) Symbol(pc uint64) (Sym, bool) {
	for _, f := range s.files {
		if f.contains(pc) {
			if sym, ok := f.Syms.Lookup(pc); ok {
				return sym, true
			}
		}
	}
	for i := range s.tables {
		st := &s.tables[i]
		if pc >= st.lo && pc < st.hi {
			if sym, ok := st.t.LookupText(pc); ok {
				if sym.Module == "" {
					sym.Module = st.module
				}
				return sym, true
			}
		}
	}
	return Sym{}, false
}

// fileFor returns the file whose text holds pc.
func (s *Set) fileFor(pc uint64) *File {
	for _, f := range s.files {
		if f.contains(pc) && f.IsText(pc) {
			return f
		}
	}
	return nil
}

// FindCFI fills row from the CFI of the file whose text holds pc; the error
// satisfies errors.Is(err, ErrNoFDE) when no module has CFI for pc.
func (s *Set) FindCFI(pc uint64, row *CFIRow) error {
	var first error
	for _, f := range s.files {
		if !f.contains(pc) {
			continue
		}
		err := f.FindCFI(pc, row)
		if err == nil {
			return nil
		}
		if first == nil || (errors.Is(first, ErrNoFDE) && !errors.Is(err, ErrNoFDE)) {
			first = err
		}
	}
	if first == nil {
		return ErrNoFDE
	}
	return first
}

// IsText reports whether pc is in an executable section of any file, or,
// for symbol-only tables, inside a symbol of a text type (t, T, w, W).
func (s *Set) IsText(pc uint64) bool {
	if s.fileFor(pc) != nil {
		return true
	}
	for _, f := range s.files {
		if f.contains(pc) && len(f.text) > 0 {
			return false // the file knows its text, and pc is not in it
		}
	}
	for i := range s.tables {
		st := &s.tables[i]
		if pc >= st.lo && pc < st.hi {
			if _, ok := st.t.LookupText(pc); ok {
				return true
			}
		}
	}
	return false
}

// CodeAt returns the code bytes from pc to the end of its section, from the
// file whose text holds pc, or nil.
func (s *Set) CodeAt(pc uint64) []byte {
	if f := s.fileFor(pc); f != nil {
		return f.CodeAt(pc)
	}
	return nil
}

// Lines appends to buf[:0] the source frames for pc from the file whose
// text holds pc (see File.Lines).
func (s *Set) Lines(pc uint64, buf []Line) []Line {
	if f := s.fileFor(pc); f != nil {
		return f.Lines(pc, buf)
	}
	return buf[:0]
}

// ByName returns the symbol named name from the first module (files, then
// tables) that has it.
func (s *Set) ByName(name string) (Sym, bool) {
	for _, f := range s.files {
		if sym, ok := f.Syms.ByName(name); ok {
			return sym, true
		}
	}
	for _, st := range s.tables {
		if sym, ok := st.t.ByName(name); ok {
			if sym.Module == "" {
				sym.Module = st.module
			}
			return sym, true
		}
	}
	return Sym{}, false
}

// Modules returns the files in address order. The slice is the Set's own:
// do not modify it.
func (s *Set) Modules() []*File { return s.files }

// ModuleOf names the file (Sym.Module of its symbols) whose text holds
// pc, "" when none does: a frame in a mapped file without a symbol there
// still names its file.
func (s *Set) ModuleOf(pc uint64) string {
	for _, f := range s.files {
		if f.contains(pc) && f.IsText(pc) {
			return f.module
		}
	}
	return ""
}

// AddORC adds an ORC table that has no file, for the code in [lo, hi): a
// table read from a dump's memory (vmlinux's when only System.map is
// given, a loaded module's from its struct module, with lo and hi the
// module's text). FindORC asks the files' own tables first.
func (s *Set) AddORC(t *ORCTable, lo, hi uint64) {
	if t == nil || t.Len() == 0 || lo >= hi {
		return
	}
	s.orcs = append(s.orcs, setORC{t: t, lo: lo, hi: hi})
}

// FindORC returns the ORC entry in force at pc from the file whose text
// holds pc, else from a table added with AddORC whose range holds it. It
// does not allocate.
func (s *Set) FindORC(pc uint64) (ORCEntry, bool) {
	for _, f := range s.files {
		if f.contains(pc) && f.IsText(pc) {
			if e, ok := f.FindORC(pc); ok {
				return e, true
			}
		}
	}
	for i := range s.orcs {
		o := &s.orcs[i]
		if pc >= o.lo && pc < o.hi {
			if e, ok := o.t.Lookup(pc); ok {
				return e, true
			}
		}
	}
	return ORCEntry{}, false
}

// HasORC reports whether any file or added table holds ORC: an unwinder
// then tries ORC first for kernel walks.
func (s *Set) HasORC() bool {
	if len(s.orcs) > 0 {
		return true
	}
	for _, f := range s.files {
		if f.HasORC() {
			return true
		}
	}
	return false
}
