//go:build !unix

package symbols

import "io"

// mapReader maps nothing where there is no mmap: sections are read.
func mapReader(io.ReaderAt) []byte { return nil }

func unmapBytes([]byte) {}
