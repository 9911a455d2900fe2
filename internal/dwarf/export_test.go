package dwarf

// MadeUnits returns how many units of d, a Data made by NewWithUnits or
// NewWithUnitTable, have been made from their headers so far; -1 for a
// Data made otherwise.
func MadeUnits(d *Data) int {
	h := d.hdrs
	if h == nil {
		return -1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.made
}

// ReaderOffset returns where r reads its next entry.
func ReaderOffset(r *Reader) Offset { return r.offset() }
