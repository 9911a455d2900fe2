package symbols

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// The large compressed DWARF sections (.debug_info, .debug_abbrev,
// .debug_line) are inflated only as far as the lookups of a run need: a
// zlib or zstd stream has no random access, but a trace's units usually
// lie in the first part of the sections (libc's abort trace needs 2 of
// .debug_info's 5.8 MB). The decompressor is kept between lookups and
// continues where it stopped. What was inflated is kept in the debug
// cache: the whole section under its name, as inflateSections keeps the
// small sections, or a prefix under name+".prefix" (see prefixTrailer),
// which a later run maps and inflates past only when it needs more.
//
// A stream's checksum (zlib's Adler-32, zstd's) comes at its end, so a
// prefix is used unchecked: damage the decompressor notices (a bad code, a
// stream cut short) is an error DebugInfoErr names with the file and
// section, while damage it cannot notice before the end gives the units
// past it whatever the DWARF reader makes of the bytes, as a file damaged
// without compression would.

// streamSection is a compressed debug section inflated on demand from its
// start (a dwarf.Lazy). It is safe for concurrent use.
type streamSection struct {
	p     packedSection
	path  string      // the file, for errors (dwarfStreams.err)
	raw   io.ReaderAt // the file, read where p.data is nil
	body  int64       // where the compressed stream starts in the section
	size  uint64      // the whole section's size, decompressed
	cache debugCache

	mu     sync.Mutex
	have   []byte // the prefix inflated or mapped from the cache; never changes
	buf    []byte // size bytes being inflated into, nil before the first inflation
	n      int    // bytes of buf inflated
	dec    io.Reader
	close  func()
	cached int // the length of the prefix the cache holds
	err    error
}

// streamStep is the least a section is inflated by at a time (lookups ask
// for a unit, a table at a time).
var streamStep = 64 << 10

// Prefix returns the first n bytes of the section or more (all of it when
// it is shorter), inflating as far as needed.
func (s *streamSection) Prefix(n int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= len(s.have) || uint64(len(s.have)) == s.size {
		return s.have, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	if err := s.inflateTo(uint64(n)); err != nil {
		s.err = fmt.Errorf("section %s: decompressing: %w", s.p.sec.Name, err)
		s.stop()
		return nil, s.err
	}
	return s.have, nil
}

// inflateTo inflates at least to n (all of the section when shorter).
func (s *streamSection) inflateTo(n uint64) error {
	if s.buf == nil {
		dec, closer, err := s.open()
		if err != nil {
			return err
		}
		s.dec, s.close = dec, closer
		s.buf = make([]byte, s.size)
	}
	end := min(s.size, max(n, uint64(s.n)+uint64(streamStep)))
	if _, err := io.ReadFull(s.dec, s.buf[s.n:end]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("inflating bytes %d to %d of %d: %w", s.n, end, s.size, err)
	}
	s.n = int(end)
	if s.n >= len(s.have) {
		s.have = s.buf[:s.n:s.n]
	}
	if end == s.size {
		s.stop()
		s.cache.store(s.p.name, s.have)
		s.cache.remove(s.p.name + prefixSuffix)
		s.cached = s.n
	}
	return nil
}

// open starts the decompressor at the section's start.
func (s *streamSection) open() (io.Reader, func(), error) {
	var src io.Reader
	if s.p.data != nil {
		// klauspost's inflater reads a *bytes.Reader faster than a
		// reader it has to wrap in bufio.
		src = bytes.NewReader(s.p.data)
	} else {
		src = io.NewSectionReader(s.raw, int64(s.p.sec.Offset)+s.body, int64(s.p.sec.FileSize)-s.body)
	}
	if s.p.zstd {
		dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDebugSection))
		if err != nil {
			return nil, nil, err
		}
		return dec, dec.Close, nil
	}
	zr, err := zlib.NewReader(src)
	if err != nil {
		return nil, nil, err
	}
	return zr, func() { zr.Close() }, nil
}

// stop releases the decompressor.
func (s *streamSection) stop() {
	if s.close != nil {
		s.close()
	}
	s.dec, s.close = nil, nil
}

// save keeps the prefix inflated so far in the debug cache, if it is
// longer than the one there.
func (s *streamSection) save() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n <= s.cached || uint64(s.n) == s.size {
		return
	}
	s.cache.storePrefix(s.p.name, s.buf[:s.n], s.size)
	s.cached = s.n
}

// errs returns why the section could not be inflated, or nil.
func (s *streamSection) errs() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wholeSection is a section that is all there (a dwarf.Lazy).
type wholeSection []byte

func (w wholeSection) Prefix(int) ([]byte, error) { return w, nil }

// prefixSuffix names a cached prefix of a section.
const prefixSuffix = ".prefix"

// A cached prefix is the prefix's bytes followed by a trailer: the magic
// and the whole section's size (little-endian uint64). A prefix file can
// never pass for the whole section: its name differs, and a section is
// only ever cached whole under its own name with exactly its size.
//
// Like a section cached whole, a prefix is checked by its size and
// trailer, not by a checksum of its bytes: it is a copy of what the
// inflater gave, written atomically, and a warm run maps it and reads
// only what its lookups need. (Format 1 had a CRC-32C of the bytes; for
// libc's 3 MB of prefixes it took 5% of a warm bt's CPU time, touching
// every page of them, and the whole sections beside them never had one.)
// Damaged bytes can give wrong or missing source lines and names, never
// a frame: CFI and the call-site check read the binary, not the cache.
const prefixMagic = "UWPREFX2"

const prefixTrailer = len(prefixMagic) + 8

// storePrefix caches the first len(b) bytes of section name, whose whole
// size is size.
func (c debugCache) storePrefix(name string, b []byte, size uint64) {
	if c == "" {
		return
	}
	t := make([]byte, 0, prefixTrailer)
	t = append(t, prefixMagic...)
	t = binary.LittleEndian.AppendUint64(t, size)
	c.storeParts(name+prefixSuffix, b, t)
}

// loadPrefix maps the cached prefix of section name whose whole size is
// size, or returns nil.
func (c debugCache) loadPrefix(name string, size uint64) []byte {
	if c == "" {
		return nil
	}
	fh, err := fileio.OpenRegular(filepath.Join(string(c), name+prefixSuffix))
	if err != nil {
		return nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil || fi.Size() <= int64(prefixTrailer) || uint64(fi.Size()) >= size+uint64(prefixTrailer) {
		return nil
	}
	b := mapReader(fh)
	if int64(len(b)) != fi.Size() {
		b = make([]byte, fi.Size())
		if n, _ := fh.ReadAt(b, 0); n != len(b) {
			return nil
		}
	}
	body, t := b[:len(b)-prefixTrailer], b[len(b)-prefixTrailer:]
	if string(t[:len(prefixMagic)]) != prefixMagic || binary.LittleEndian.Uint64(t[len(prefixMagic):]) != size {
		return nil
	}
	return body[:len(body):len(body)]
}

// remove deletes a cache entry (failing to is no error).
func (c debugCache) remove(name string) {
	if c != "" {
		os.Remove(filepath.Join(string(c), name))
	}
}

// saveDebugCache keeps in the debug cache what lookups inflated of the
// file's streamed sections, and closes the pack of its cached entries
// (Close calls it).
func (f *File) saveDebugCache() {
	if f.dw != nil {
		f.dw.streams.save()
		f.dw.packs.close()
	}
}

// streamErr returns why a streamed section of the file's DWARF could not
// be inflated as far as a lookup needed (the lookup found no lines), or nil.
func (f *File) streamErr() error {
	if f.dw == nil {
		return nil
	}
	if err := f.dw.streams.err(); err != nil {
		return fmt.Errorf("symbols: %w", err)
	}
	return nil
}
