package symbols

import (
	"github.com/unwind-dev/unwind/internal/dwarf"
	"strings"
)

// TakesSigInfo says whether the function holding the run-time pc is a
// signal handler of the SA_SIGINFO kind: one whose second parameter is a
// siginfo_t pointer, void handler(int, siginfo_t *, void *). The kernel
// fills the siginfo of a signal frame for those handlers only, so only
// then does the frame hold the signal's number. known is false when the
// DWARF does not describe the function.
func (f *File) TakesSigInfo(pc uint64) (siginfo, known bool) {
	if !f.contains(pc) {
		return false, false
	}
	f.dwarfOnce.Do(f.loadDWARF)
	x := f.dw
	if x == nil {
		return false, false
	}
	u, chain := x.scopeChain(pc-f.Bias, nil)
	if u == nil || len(chain) == 0 {
		return false, false
	}
	vs := &x.vars
	vs.mu.Lock()
	defer vs.mu.Unlock()
	fv := x.function(u, chain[0])
	if fv.err != nil {
		return false, false
	}
	var params []*varDesc
	for _, p := range fv.params {
		if !p.artificial {
			params = append(params, p)
		}
	}
	if len(params) < 2 {
		return false, true // handler(int): no siginfo
	}
	p := params[1]
	if !p.hasType {
		return false, false
	}
	t, err := x.d.Type(p.typ)
	if err != nil {
		return false, false
	}
	pt, ok := t.(*dwarf.PtrType)
	if !ok {
		return false, true
	}
	name := pt.Type.String() // "siginfo_t", "struct siginfo", "const siginfo_t"
	return strings.Contains(name, "siginfo"), true
}

// TakesSigInfo is File.TakesSigInfo for the file that holds pc.
func (s *Set) TakesSigInfo(pc uint64) (siginfo, known bool) {
	for _, f := range s.files {
		if f.contains(pc) {
			if si, ok := f.TakesSigInfo(pc); ok {
				return si, true
			}
		}
	}
	return false, false
}
