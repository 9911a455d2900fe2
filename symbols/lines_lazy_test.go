package symbols

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// TestLazyScopes: the scopes read a function at a time (cuInfo.scopeOf)
// are those the whole-unit reader they replaced finds, name for name, at
// pcs spread over the functions of each file.
func TestLazyScopes(t *testing.T) {
	type file struct{ path, debug string }
	files := []file{{path: "testdata/prog"}}
	if dir, err := corpus.Find("user"); err == nil {
		libc := filepath.Join(dir, "lib", "libc.so.6")
		files = append(files, file{libc, libc + ".debug"})
	}
	if dir, err := corpus.Find("kernel"); err == nil {
		files = append(files, file{path: filepath.Join(dir, "fp", "vmlinux")})
	}
	if dir, err := corpus.Find("prod"); err == nil && !testing.Short() {
		files = append(files, file{path: filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")})
	}
	for _, fl := range files {
		f, err := Open(fl.path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if fl.debug != "" {
			if err := f.AttachDebug(fl.debug); err != nil {
				t.Fatal(err)
			}
		}
		f.dwarfOnce.Do(f.loadDWARF)
		x := f.dw
		if x == nil {
			t.Fatalf("%s: no DWARF: %v", fl.path, f.dwErr)
		}
		full := map[*cuInfo]scopeLevel{}
		step := max(1, f.Syms.Len()/300)
		checked := 0
		for i := 0; i < f.Syms.Len(); i += step {
			s := f.Syms.At(i)
			for _, pc := range []uint64{s.Addr, s.Addr + s.Size/3, s.Addr + s.Size*2/3, s.Addr + max(s.Size, 1) - 1} {
				got, want := "", ""
				u, chain := x.scopeChain(pc, nil)
				if u == nil {
					continue
				}
				for _, sc := range chain {
					got += fmt.Sprintf("%#x %s %v %d:%d; ", sc.off, sc.name, sc.inlined, sc.callFile, sc.callLine)
				}
				top, ok := full[u]
				if !ok {
					top = fullScopes(x.d, u.off)
					full[u] = top
				}
				for l, n := top, 0; n < maxScopes; n++ {
					sc := l.find(pc)
					if sc == nil {
						break
					}
					want += fmt.Sprintf("%#x %s %v %d:%d; ", sc.off, sc.name, sc.inlined, sc.callFile, sc.callLine)
					l = sc.children
				}
				if got != want {
					t.Errorf("%s: %s at %#x: scopes\n%s\nwant\n%s", fl.path, s.Name, pc, got, want)
				}
				if got != "" {
					checked++
				}
			}
		}
		if checked < 20 {
			t.Errorf("%s: only %d pcs with scopes", fl.path, checked)
		}
		t.Logf("%s: %d pcs, %d units", fl.path, checked, len(full))
	}
}

// fullScopes is the reader lazy scopes replaced (cuInfo.readScopes before
// it read functions on first use), kept as the oracle: it reads the whole
// unit at off into a tree of its own.
func fullScopes(d *dwarf.Data, off dwarf.Offset) scopeLevel {
	u := &cuInfo{}
	r := d.Reader()
	r.Seek(off)
	if _, err := r.Next(); err != nil { // the unit entry itself
		return nil
	}
	names := make(map[dwarf.Offset]string)
	type pending struct {
		s    *scope
		refs dwarf.Offset
	}
	var unresolved []pending
	depth := 0
	var scopeAtDepth []*scope // innermost enclosing scope at each depth (nil: the unit)
	var all []*scope
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 { // end of children
			depth--
			if depth < 0 {
				break
			}
			scopeAtDepth = scopeAtDepth[:depth+1]
			continue
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			break // next unit
		}
		parent := (*scope)(nil)
		if depth < len(scopeAtDepth) {
			parent = scopeAtDepth[depth]
		}
		var cur *scope
		if n, ok := e.Val(dwarf.AttrName).(string); ok && (e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine) {
			names[e.Offset] = n
		} else if e.Tag == dwarf.TagSubprogram {
			if n, ok := e.Val(dwarf.AttrLinkageName).(string); ok {
				names[e.Offset] = n
			}
		}
		if e.Tag == dwarf.TagSubprogram || e.Tag == dwarf.TagInlinedSubroutine {
			rs, _ := d.Ranges(e)
			if len(rs) > 0 {
				cur = &scope{off: e.Offset, inlined: e.Tag == dwarf.TagInlinedSubroutine}
				all = append(all, cur)
				if n, ok := e.Val(dwarf.AttrName).(string); ok {
					cur.name = n
				} else {
					ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
					if ref == 0 {
						ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
					}
					if ref != 0 {
						unresolved = append(unresolved, pending{cur, ref})
					}
				}
				if v, ok := e.Val(dwarf.AttrCallFile).(int64); ok {
					cur.callFile = int(v)
				}
				if v, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
					cur.callLine = int(v)
				}
				level := &u.top
				if parent != nil {
					level = &parent.children
				}
				for _, rg := range rs {
					if rg[1] > rg[0] {
						*level = append(*level, scopeRange{lo: rg[0], hi: rg[1], s: cur})
					}
				}
			}
		}
		if e.Children && !scopeTag(e.Tag) {
			r.SkipChildren() // types, structs, enums: no code inside
			continue
		}
		if e.Children {
			depth++
			for len(scopeAtDepth) <= depth {
				scopeAtDepth = append(scopeAtDepth, nil)
			}
			if cur != nil {
				scopeAtDepth[depth] = cur
			} else {
				scopeAtDepth[depth] = parent
			}
		}
	}
	// Resolve names through abstract origins (possibly chained, possibly in
	// another unit).
	for _, p := range unresolved {
		p.s.name = oldResolveName(d, names, p.refs, 0)
	}
	// Sort every level once (a scope with several ranges appears several
	// times in its parent's level).
	sortLevel(u.top)
	for _, s := range all {
		sortLevel(s.children)
	}
	return u.top
}

func oldResolveName(d *dwarf.Data, names map[dwarf.Offset]string, off dwarf.Offset, depth int) string {
	if n, ok := names[off]; ok {
		return n
	}
	if depth > 4 {
		return ""
	}
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil {
		return ""
	}
	n, _ := e.Val(dwarf.AttrName).(string)
	if n == "" {
		ref, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
		if ref == 0 {
			ref, _ = e.Val(dwarf.AttrSpecification).(dwarf.Offset)
		}
		if ref != 0 {
			n = oldResolveName(d, names, ref, depth+1)
		}
	}
	names[off] = n
	return n
}
