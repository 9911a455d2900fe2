package unwind

// ScanText calls fn for every 8-byte word in [lo, hi) that is a return
// address into text (the word minus one is text and the bytes before it
// decode as a call), in address order, until fn returns false. Text output
// uses it to print Linux-style "? " lines for the stale return addresses
// between the real frames of a stack (compare Frame.Slot to interleave).
// Unreadable words are skipped; at most 1 MiB is scanned.
func ScanText(mem Memory, code Code, lo, hi uint64, fn func(addr, pc uint64) bool) {
	if code == nil || mem == nil || hi <= lo {
		return
	}
	if hi-lo > 1<<20 {
		hi = lo + 1<<20
	}
	u := &Unwinder{mem: mem, opts: Options{Code: code}}
	for a := (lo + 7) &^ 7; a+8 <= hi && a >= lo; a += 8 {
		w, ok := u.read64(a)
		if !ok || !u.isRetText(w) {
			continue
		}
		if k, _ := u.callBefore(w); k == notCall {
			continue
		}
		if !fn(a, w) {
			return
		}
	}
}
