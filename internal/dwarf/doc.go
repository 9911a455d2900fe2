// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

/*
Package dwarf is a copy of the Go standard library's debug/dwarf (Go
1.26.8, src/debug/dwarf; BSD licence, see LICENSE), changed only where
unwind needs it to be faster. Its API is the standard library's; the
standard library's documentation applies.

# What is changed and why

Nothing yet: this is the verbatim copy (the package comment moved from
open.go to this file).

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
