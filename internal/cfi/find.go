package cfi

// Find fills row with the unwind rules that hold at pc (a run-time address).
// It returns ErrNoFDE itself (no allocation) when no FDE covers pc, and a
// *FormatError when the covering FDE's instructions are malformed before pc.
// The first Find in an FDE compiles and caches its rows; later calls only
// binary-search and do not allocate.
func (t *Table) Find(pc uint64, row *Row) error {
	if t == nil {
		return ErrNoFDE
	}
	var c *compiled
	if t.eh != nil {
		f, i, ok := t.eh.find(pc, t.bias)
		if !ok {
			return ErrNoFDE
		}
		if c = t.eh.cache[i].Load(); c == nil {
			c = t.compileFDE(&f)
			t.eh.cache[i].Store(c)
		}
	} else {
		i := t.fdeIndex(pc)
		if i < 0 {
			return ErrNoFDE
		}
		if c = t.cache[i].Load(); c == nil {
			c = t.compile(i)
			t.cache[i].Store(c)
		}
	}
	rows := c.rows
	lo, hi := 0, len(rows)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if rows[m].Start <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || pc >= rows[lo-1].End {
		if c.err != nil {
			return c.err
		}
		return ErrNoFDE
	}
	*row = rows[lo-1]
	return nil
}

// fdeIndex returns the index of the FDE covering pc, or -1. When FDEs
// overlap, the one with the greatest start wins.
func (t *Table) fdeIndex(pc uint64) int {
	lo, hi := 0, len(t.fdes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.fdes[m].start <= pc {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0 && i >= lo-4; i-- {
		if pc < t.fdes[i].end {
			return i
		}
	}
	return -1
}
