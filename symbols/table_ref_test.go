package symbols

import (
	"cmp"
	"debug/elf"
	"slices"
	"strings"
)

// The table as it was built before the compact representation: a slice
// of Sym sorted and deduplicated with every alias rule spelled out on
// whole entries. The tests compare every table against it.

type refEntry struct {
	Sym
	rank int
	typ  byte
}

func refAliasOrder(a, b *refEntry, ai, bi int) int {
	if (a.Size == 0) != (b.Size == 0) {
		if a.Size != 0 {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(underscores(a.Name), underscores(b.Name)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Size, a.Size); c != 0 {
		return c
	}
	return cmp.Compare(ai, bi)
}

// refNewTable returns the symbols and type letters (nil when none) the
// old newTable kept, in order.
func refNewTable(es []refEntry) ([]Sym, []byte) {
	idx := make([]int, len(es))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(es[a].Addr, es[b].Addr); c != 0 {
			return c
		}
		if c := cmp.Compare(es[a].rank, es[b].rank); c != 0 {
			return c
		}
		return refAliasOrder(&es[a], &es[b], a, b)
	})
	typed := false
	for i := range es {
		typed = typed || es[i].typ != 0
	}
	var syms []Sym
	var types []byte
	for _, k := range idx {
		e := &es[k]
		dup := false
		for j := len(syms) - 1; j >= 0 && syms[j].Addr == e.Addr; j-- {
			if syms[j].Name == e.Name && syms[j].Module == e.Module {
				dup = true
				break
			}
		}
		if !dup {
			syms = append(syms, e.Sym)
			if typed {
				types = append(types, e.typ)
			}
		}
	}
	next := len(syms)
	for i := len(syms) - 1; i >= 0; i-- {
		if i+1 < len(syms) && syms[i+1].Addr != syms[i].Addr {
			next = i + 1
		}
		if syms[i].Size == 0 && next < len(syms) {
			if gap := syms[next].Addr - syms[i].Addr; gap <= maxFill {
				syms[i].Size = gap
			}
		}
	}
	return syms, types
}

// refReadSymbols is the old File.readSymbols on f's sources: the symbols
// of f's table as they were before. f.kernel must be set (readSymbols
// sets it).
func refReadSymbols(f *File) []Sym {
	srcs := f.ownSources()
	if f.dbg != nil {
		if src, err := symtabSource(f.dbg, f.dbgR, f.dbgMapped); err == nil {
			srcs = append(srcs, src)
		}
	}
	kernel := f.kernel
	module := f.module
	if kernel && f.secAddr == nil {
		module = ""
	}
	var es []refEntry
	for i := range srcs {
		sr := &srcs[i]
		for j := range sr.Len() {
			s := sr.At(j)
			typ := elf.ST_TYPE(s.Info)
			switch typ {
			case elf.STT_FUNC, elf.STT_GNU_IFUNC, elf.STT_OBJECT, elf.STT_NOTYPE:
			default:
				continue
			}
			if s.Name == "" || s.Section == elf.SHN_UNDEF || strings.HasPrefix(s.Name, ".L") {
				continue
			}
			addr := s.Value
			if f.secAddr != nil {
				if s.Section >= elf.SHN_LORESERVE || int(s.Section) >= len(f.placed) || !f.placed[s.Section] {
					continue
				}
				addr += f.secAddr[s.Section]
			} else if s.Section != elf.SHN_ABS {
				addr += f.Bias
			}
			name := s.Name
			if i := strings.IndexByte(name, '@'); i > 0 {
				name = name[:i]
			}
			sym := Sym{Name: name, Addr: addr, Size: s.Size, ELFSize: s.Size, Module: module}
			if f.secAddr != nil {
				if moduleKallsymsIgnored(name) {
					continue
				}
				if f.ef.Sections[s.Section].Flags&elf.SHF_EXECINSTR != 0 {
					sym.Size = 0
				}
				es = append(es, refEntry{Sym: sym, rank: j})
				continue
			}
			if kernel {
				if kallsymsIgnored(name) {
					continue
				}
				weak := elf.ST_BIND(s.Info) == elf.STB_WEAK && typ != elf.STT_OBJECT
				if s.Section < elf.SHN_LORESERVE && int(s.Section) < len(sr.ef.Sections) &&
					sr.ef.Sections[s.Section].Flags&elf.SHF_EXECINSTR != 0 {
					sym.Size = 0
					es = append(es, refEntry{Sym: sym, rank: kallsymsRank(name, weak)})
					continue
				}
			}
			rank := 2
			switch {
			case typ == elf.STT_FUNC || typ == elf.STT_GNU_IFUNC:
				rank = 0
			case typ == elf.STT_NOTYPE:
				rank = 1
			}
			if elf.ST_BIND(s.Info) == elf.STB_LOCAL {
				rank += 4
			}
			if s.Section == elf.SHN_ABS {
				rank += 8
			}
			if kernel {
				rank += 16
			}
			es = append(es, refEntry{Sym: sym, rank: rank})
		}
	}
	syms, _ := refNewTable(es)
	if len(f.textEnds) > 0 {
		for i := range syms {
			s := &syms[i]
			if f.textAt(s.Addr) == nil {
				continue
			}
			j, _ := slices.BinarySearch(f.textEnds, s.Addr+1)
			if j == len(f.textEnds) {
				continue
			}
			if end := f.textEnds[j]; s.Size == 0 || end-s.Addr < s.Size {
				s.Size = end - s.Addr
			}
		}
	}
	return syms
}
