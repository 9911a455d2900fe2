// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

/*
Package dwarf is a copy of the Go standard library's debug/dwarf (Go
1.26.8, src/debug/dwarf; BSD licence, see LICENSE), changed only where
unwind needs it to be faster. Its API is the standard library's; the
standard library's documentation applies.

# What is changed and why

The standard library's New parses the abbreviation table of every unit
before it returns. A Linux vmlinux has one table per compilation unit
(thousands, megabytes of .debug_abbrev), and a debugger that prints a
few frames needs a handful of units: that parse was a fifth to a quarter
of a whole `unwind bt` of a kernel dump. Here:

  - A unit's abbreviation table is parsed on the first decoding of an
    entry of that unit, once (sync.Once), and shared by the units that
    name the same table offset, as the eager cache shared it (entry.go:
    abbrevs, lookup, lazyAbbrev). A unit's first entry (its
    compile-unit entry, read to find its ranges, line table and DWARF 5
    bases) is decoded after scanning the table only as far as its
    abbreviation, without writing the others down (parseAbbrev's stop).
    A malformed table is reported by Reader.Next (and by AddTypes for type
    units) instead of by New; a table that repeats a code gives a unit's
    first entry the first definition, not the last.
  - A DWARF 5 unit's bases (DW_AT_str_offsets_base and friends) are read
    once under a sync.Once instead of by whichever Reader gets there
    first, so that Readers on several goroutines may decode the same
    unit (the standard library races there); an error reading them is
    returned by every Reader that enters the unit, not only the first.
  - Reader.NextIf (an addition) steps over the entries a caller does not
    want (by tag, and by whether their abbreviation holds an attribute
    such as DW_AT_low_pc) by the sizes of their attribute forms, without
    decoding values: finding a unit's functions no longer decodes every
    type, variable and declaration in full.
  - LineReader.Mark and SeekMark (additions, linemark.go) save and
    restore the line-number program's position and registers as plain
    values, which a caller may keep between runs; Tell and Seek's
    LineReaderPos cannot be stored. Data.LineProgram (an addition) is
    LineReader without reading the directory and file tables, for a
    caller that kept the file names. A DW_LNS_set_file operand too large
    for an int no longer indexes the file table with a negative index
    (a panic); the row's File is nil, as for any index past the table.
  - A Data keeps its units' headers as fixed-width records
    (UnitHeaderTable) and makes a unit (and names its abbreviation
    table) from its header only when a Reader or lookup first reaches
    it, under a lock, into slots read without one (unitheaders.go:
    headerUnits); units are found by binary search over the headers.
    New writes the headers down instead of making every unit (unit.go:
    parseUnits, unitHeader), so that a libc's thousands of units, of
    which a trace reads a few, cost a record each. The standard library's
    indexing of Data.unit is unitAt (lazy.go), SeekPC counts the units
    with allUnits, and the abbreviation cache is behind a mutex.
  - Data.UnitHeaders and NewWithUnits (additions, unitheaders.go) let a
    caller keep the unit headers New reads from every unit of
    .debug_info and make a Data of the same sections without reading
    them again; NewWithUnitTable, UnitHeaderTable and AppendUnitHeaders
    take them as the records, which the Data reads in place (kept in a
    file, not decoded up front).
  - NewLazy (an addition, lazy.go) makes a Data whose .debug_info,
    .debug_abbrev and .debug_line are produced on demand from their start
    (compressed sections inflated as a stream): units' headers are read
    as far as a Reader, Seek or LineReader goes (the table of headers is
    published atomically as it grows), an abbreviation table that runs
    past what is read is parsed again with more, and a line table is read
    to its end before its header is. UnitAt finds a unit by its header's
    offset, as .debug_aranges gives it.

Everything else is the standard library's code, unchanged; the package
comment moved from open.go to this file.

# The original package comment

Package dwarf provides access to DWARF debugging information loaded from
executable files, as defined in the DWARF 2.0 Standard at
http://dwarfstd.org/doc/dwarf-2.0.0.pdf.

# Security

This package is not designed to be hardened against adversarial inputs, and is
outside the scope of https://go.dev/security/policy. In particular, only basic
validation is done when parsing object files. As such, care should be taken when
parsing untrusted inputs, as parsing malformed files may consume significant
resources, or cause panics.
*/
package dwarf
