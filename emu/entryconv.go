package emu

import "github.com/unwind-dev/unwind/unwind"

// The fixture kernel's own entry conventions, which Linux does not have
// and the unwinder therefore does not know by name
// (fixtures/kernel/src/entry.S, kernel.h).
const fixtureEntryMarker = "ret_from_entry_marker" // pushed by asm_sysvec_marker_interrupt

// fixtureEntryVectors are the fixture kernel's entry stubs whose vector
// Linux's names do not give: MARKER_TIMER_VECTOR in kernel.h.
var fixtureEntryVectors = map[string]int{"asm_sysvec_marker_interrupt": 0xed}

// EntryConventions fills opts.EntryMarkers and opts.EntryVectors with the
// fixture kernel's entry conventions, its marker function found by name
// with byName (for a *symbols.Set s: func(n string) (uint64, bool) { x,
// ok := s.ByName(n); return x.Addr, ok }). Unwinding a snapshot of the
// fixture kernel, set them so that its marker-return-address entries are
// found and named as the emulator's ground truth names them.
func EntryConventions(opts *unwind.Options, byName func(name string) (uint64, bool)) {
	if a, ok := byName(fixtureEntryMarker); ok && a != 0 {
		opts.EntryMarkers = []uint64{a}
	} else {
		opts.EntryMarkers = nil
	}
	opts.EntryVectors = fixtureEntryVectors
}

// EntryConventions is the package function with the machine's kernel
// symbols.
func (m *Machine) EntryConventions(opts *unwind.Options) {
	EntryConventions(opts, func(name string) (uint64, bool) {
		s, ok := m.syms.byName[name]
		return s.Addr, ok
	})
}
