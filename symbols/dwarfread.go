package symbols

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/internal/dwarf"
	"github.com/unwind-dev/unwind/internal/fileio"
)

// maxDebugSection caps one DWARF section read from a file (a corrupt
// section header must not make us allocate gigabytes).
const maxDebugSection = 1 << 30

// readDWARF loads the DWARF sections of ef, read from r (the file at path),
// with one exact-size read each.
// debug/elf's own (*File).DWARF reads through a growing buffer, which for a
// kernel's 100+ MiB of DWARF costs more than the reads themselves; here
// only relocatable files take that path.
//
// mapped is the file r reads mapped read-only (the File's mapping, never
// unmapped), or nil: the sections are then slices of it, which the DWARF
// data refers to for as long as the process may look lines up.
// Compressed sections (SHF_COMPRESSED with zlib or zstd, GNU .zdebug_) are
// decompressed once and kept in the debug cache (DebugCacheDir), which
// later runs map: the small ones whole and in parallel, .debug_info,
// .debug_abbrev and .debug_line only as far as lookups read them
// (streamSection; st lists them, with .debug_aranges to find units by).
//
// key identifies the sections for the unit index cached beside them (see
// dwarfKey); it is nil for a relocatable file.
func readDWARF(ef *elf.File, r io.ReaderAt, path string, mapped []byte) (d *dwarf.Data, key []byte, st *dwarfStreams, err error) {
	if ef.Type == elf.ET_REL {
		d, err = relDWARF(ef)
		return d, nil, nil, err
	}
	raw := r
	if mapped != nil {
		raw = bytes.NewReader(mapped)
	}
	sec := map[string][]byte{}
	var infoAt io.ReaderAt        // .debug_info in the file, when sec["info"] is mapped
	keySec := map[string][]byte{} // what dwarfKey reads: a streamed section's compressed bytes
	var packed []packedSection
	for _, s := range ef.Sections {
		name, gnu := s.Name, false
		switch {
		case strings.HasPrefix(name, ".debug_"):
			name = name[len(".debug_"):]
		case strings.HasPrefix(name, ".zdebug_"):
			name, gnu = name[len(".zdebug_"):], true
		default:
			continue
		}
		if s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		if s.FileSize > maxDebugSection {
			return nil, nil, nil, fmt.Errorf("section %s: size %d too large", s.Name, s.FileSize)
		}
		if s.Flags&elf.SHF_COMPRESSED != 0 || gnu {
			if !dwarfDataSections[name] && name != "aranges" {
				continue // not read through dwarf.Data: not worth inflating here
			}
			packed = append(packed, packedSection{name: name, sec: s, gnu: gnu})
			continue
		}
		b, err := sectionBytes(s, r, mapped)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("section %s: %w", s.Name, err)
		}
		sec[name] = b
		if name == "info" && mapped != nil && r != nil && s.Offset+s.Size <= uint64(len(mapped)) {
			// Mapped: its unit headers are read from the file (newDWARFUnits).
			infoAt = io.NewSectionReader(r, int64(s.Offset), int64(s.Size))
		}
	}
	cache := debugCacheFor(ef, path)
	var whole []packedSection
	for i := range packed {
		p := &packed[i]
		size, body, err := compressedSize(p, raw)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("section %s: %w", p.sec.Name, err)
		}
		if off, n := p.sec.Offset+uint64(body), p.sec.FileSize-uint64(body); mapped != nil && off <= uint64(len(mapped)) && n <= uint64(len(mapped))-off {
			p.data = mapped[off : off+n]
		}
		// The key reads a compressed section as it is in the file, whether
		// it is inflated whole, streamed or mapped from the cache, so that
		// what the cache holds keyed by it outlives a prefix becoming whole.
		if keySec[p.name], err = rawSection(p.sec, raw, mapped); err != nil {
			return nil, nil, nil, fmt.Errorf("section %s: %w", p.sec.Name, err)
		}
		if !streamedSections[p.name] {
			whole = append(whole, *p)
			continue
		}
		if b := cache.load(p.name, size); b != nil {
			sec[p.name] = b
			continue
		}
		if st == nil {
			st = &dwarfStreams{sec: map[string]*streamSection{}}
		}
		ss := &streamSection{p: *p, path: path, raw: raw, body: body, size: size, cache: cache}
		ss.have = cache.loadPrefix(p.name, size)
		ss.cached = len(ss.have)
		st.sec[p.name] = ss
	}
	if st == nil {
		// Nothing streamed: .debug_aranges is not needed.
		whole = slices.DeleteFunc(whole, func(p packedSection) bool { return p.name == "aranges" })
	}
	if len(whole) > 0 {
		if err := inflateSections(cache, raw, whole, sec); err != nil {
			return nil, nil, nil, err
		}
	}
	for name, b := range sec {
		if _, ok := keySec[name]; !ok {
			keySec[name] = b
		}
	}
	if st == nil {
		key = dwarfKey(keySec)
		d, err = newDWARFUnits(sec, cache, key, infoAt)
		if err != nil {
			return nil, nil, nil, err
		}
		if ar := sec["aranges"]; ar != nil {
			// Nothing streamed, but the units are still found by
			// .debug_aranges: reading every unit's entry is most of a
			// first run over a vmlinux (2,000+ units in 160 MiB).
			st = &dwarfStreams{aranges: ar}
		}
		return d, key, st, nil
	}
	st.aranges = sec["aranges"]
	lazy := func(name string) dwarf.Lazy {
		if s, ok := st.sec[name]; ok {
			return s
		}
		if b, ok := sec[name]; ok {
			return wholeSection(b)
		}
		return nil
	}
	key = dwarfKey(keySec)
	seed := cache.loadLazyUnitHeaders(key)
	d, err = newLazyDWARF(lazy("abbrev"), lazy("info"), lazy("line"), sec, seed)
	if err != nil && seed != nil {
		seed = nil // headers that do not fit: read them again
		d, err = newLazyDWARF(lazy("abbrev"), lazy("info"), lazy("line"), sec, nil)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	st.d, st.key, st.cache, st.seeded = d, key, cache, seed.Len()
	return d, key, st, err
}

// dwarfDataSections are the debug sections dwarf.Data reads (without
// ".debug_"); the others (aranges, frame, location lists, macros) are read
// on their own where needed, so readDWARF does not decompress them (but
// .debug_aranges where .debug_info is streamed: the units are found by it).
var dwarfDataSections = map[string]bool{
	"abbrev": true, "info": true, "line": true, "ranges": true, "str": true,
	"addr": true, "line_str": true, "str_offsets": true, "rnglists": true, "types": true,
}

// streamedSections are the sections inflated only as far as lookups need
// (without ".debug_").
var streamedSections = map[string]bool{"info": true, "abbrev": true, "line": true}

// dwarfStreams are the streamed sections of one file's DWARF (none where
// nothing is compressed) and its .debug_aranges.
type dwarfStreams struct {
	sec     map[string]*streamSection // by name without ".debug_"
	aranges []byte                    // .debug_aranges, whole; nil if the file has none

	// The lazy Data over the streams, its sections' key, and how many
	// of its unit headers came from the cache ("unithdrs-lazy"): save
	// keeps those it has read since.
	d      *dwarf.Data
	key    []byte
	cache  debugCache
	seeded int
}

// err returns why a streamed section could not be read to the end, or nil.
func (st *dwarfStreams) err() error {
	if st == nil {
		return nil
	}
	var errs []error
	for _, name := range []string{"info", "abbrev", "line"} {
		if s := st.sec[name]; s != nil {
			if err := s.errs(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// save keeps what was inflated in the debug cache.
func (st *dwarfStreams) save() {
	if st == nil {
		return
	}
	for _, s := range st.sec {
		s.save()
	}
	if st.d != nil && st.key != nil {
		if t := st.d.UnitHeadersRead(); t.Len() > st.seeded {
			st.cache.storeLazyUnitHeaders(t, st.key)
			st.seeded = t.Len()
		}
	}
}

// cachedSectionBytes is sectionBytes for a debug section read on its own
// (.debug_loclists, .debug_loc, .debug_addr for variables): a compressed
// one (SHF_COMPRESSED, zlib or zstd) is inflated once and kept whole in
// the debug cache c, which later runs map.
func cachedSectionBytes(s *elf.Section, r io.ReaderAt, mapped []byte, c debugCache) ([]byte, error) {
	if s.Flags&elf.SHF_COMPRESSED == 0 || s.Type == elf.SHT_NOBITS || !strings.HasPrefix(s.Name, ".debug_") {
		return sectionBytes(s, r, mapped)
	}
	raw := r
	if mapped != nil {
		raw = bytes.NewReader(mapped)
	}
	p := packedSection{name: s.Name[len(".debug_"):], sec: s}
	size, body, err := compressedSize(&p, raw)
	if err != nil {
		return nil, fmt.Errorf("section %s: %w", s.Name, err)
	}
	if off, n := s.Offset+uint64(body), s.FileSize-uint64(body); mapped != nil && off <= uint64(len(mapped)) && n <= uint64(len(mapped))-off {
		p.data = mapped[off : off+n]
	}
	if b := c.load(p.name, size); b != nil {
		return b, nil
	}
	b, err := inflate(&p, raw, body, size)
	if err != nil {
		return nil, fmt.Errorf("section %s: %w", s.Name, err)
	}
	c.store(p.name, b)
	return b, nil
}

// rawSection returns a section's bytes as they are in the file.
func rawSection(s *elf.Section, raw io.ReaderAt, mapped []byte) ([]byte, error) {
	if mapped != nil && s.Offset <= uint64(len(mapped)) && s.FileSize <= uint64(len(mapped))-s.Offset {
		return mapped[s.Offset : s.Offset+s.FileSize], nil
	}
	b := make([]byte, s.FileSize)
	if n, err := raw.ReadAt(b, int64(s.Offset)); uint64(n) != s.FileSize {
		return nil, shortRead(err)
	}
	return b, nil
}

// newLazyDWARF is newDWARF with .debug_abbrev, .debug_info and .debug_line
// read on demand.
// seed is the headers of the units an earlier run read (nil for none).
func newLazyDWARF(abbrev, info, line dwarf.Lazy, sec map[string][]byte, seed dwarf.UnitHeaderTable) (*dwarf.Data, error) {
	if abbrev == nil {
		abbrev = wholeSection(nil)
	}
	if info == nil {
		info = wholeSection(nil)
	}
	d, err := dwarf.NewLazyWithUnits(abbrev, info, line, sec["ranges"], sec["str"], seed)
	if err != nil {
		return nil, err
	}
	return d, addDWARF5(d, sec)
}

// newDWARF builds DWARF data from debug sections named without their
// ".debug_" prefix, the DWARF 5 and .debug_types sections added the way
// debug/elf adds them.
func newDWARF(sec map[string][]byte) (*dwarf.Data, error) {
	d, err := dwarf.New(sec["abbrev"], sec["aranges"], sec["frame"], sec["info"], sec["line"], sec["pubnames"], sec["ranges"], sec["str"])
	if err != nil {
		return nil, err
	}
	if err := addDWARF5(d, sec); err != nil {
		return nil, err
	}
	return d, nil
}

// addDWARF5 adds the DWARF 5 sections and .debug_types in sec to d.
func addDWARF5(d *dwarf.Data, sec map[string][]byte) error {
	for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists", "loclists"} {
		if b, ok := sec[name]; ok {
			if err := d.AddSection(".debug_"+name, b); err != nil {
				return err
			}
		}
	}
	if b, ok := sec["types"]; ok {
		if err := d.AddTypes("types", b); err != nil {
			return err
		}
	}
	return nil
}

// relDWARF reads the DWARF of a relocatable object as debug/elf's
// (*File).DWARF does: every debug section decompressed, with its
// R_X86_64_64 and R_X86_64_32 relocations applied as symbol plus addend
// (sections at address 0), each .debug_types section added on its own.
// Kernel modules placed at run-time addresses take moduleDWARF instead.
func relDWARF(ef *elf.File) (*dwarf.Data, error) {
	syms, symErr := ef.Symbols()
	sec := map[string][]byte{}
	var types []int
	for i, s := range ef.Sections {
		name := ""
		switch {
		case strings.HasPrefix(s.Name, ".debug_"):
			name = s.Name[len(".debug_"):]
		case strings.HasPrefix(s.Name, ".zdebug_"):
			name = s.Name[len(".zdebug_"):]
		default:
			continue
		}
		if s.FileSize > maxDebugSection || s.Size > maxDebugSection {
			return nil, fmt.Errorf("section %s: size %d too large", s.Name, s.Size)
		}
		b, err := s.Data()
		if err != nil && uint64(len(b)) < s.Size {
			return nil, err
		}
		for _, rs := range ef.Sections {
			if rs.Type != elf.SHT_RELA && rs.Type != elf.SHT_REL || int(rs.Info) != i {
				continue
			}
			rels, err := rs.Data()
			if err != nil {
				return nil, err
			}
			if len(rels)%relaSize != 0 {
				return nil, errors.New("length of relocation section is not a multiple of 24")
			}
			if symErr != nil {
				return nil, symErr
			}
			for ; len(rels) > 0; rels = rels[relaSize:] {
				off := binary.LittleEndian.Uint64(rels)
				info := binary.LittleEndian.Uint64(rels[8:])
				addend := int64(binary.LittleEndian.Uint64(rels[16:]))
				n := info >> 32
				if n == 0 || n > uint64(len(syms)) || addend < 0 {
					continue
				}
				sym := &syms[n-1]
				if sym.Section == elf.SHN_UNDEF || sym.Section >= elf.SHN_LORESERVE {
					continue
				}
				size := uint64(0)
				switch elf.R_X86_64(info & 0xffff) {
				case elf.R_X86_64_64:
					size = 8
				case elf.R_X86_64_32:
					size = 4
				default:
					continue
				}
				if off+size > uint64(len(b)) || off+size < off {
					continue
				}
				if size == 8 {
					binary.LittleEndian.PutUint64(b[off:], sym.Value+uint64(addend))
				} else {
					binary.LittleEndian.PutUint32(b[off:], uint32(sym.Value)+uint32(addend))
				}
			}
		}
		if name == "types" {
			types = append(types, i)
			sec[fmt.Sprintf("types-%d", i)] = b
			continue
		}
		sec[name] = b
	}
	d, err := newDWARF(sec)
	if err != nil {
		return nil, err
	}
	for _, i := range types {
		name := fmt.Sprintf("types-%d", i)
		if err := d.AddTypes(name, sec[name]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// packedSection is a compressed debug section to inflate.
type packedSection struct {
	name string // without .debug_ / .zdebug_
	sec  *elf.Section
	data []byte // the compressed stream in the file's mapping, or nil: read it from the file
	gnu  bool   // .zdebug_: "ZLIB", big-endian size, zlib stream
	zstd bool   // SHF_COMPRESSED with ELFCOMPRESS_ZSTD (else zlib)
}

// maxInflateRatio bounds a compressed section's claimed size.
const maxInflateRatio = 1032

// ELF compression types (Elf64_Chdr.ch_type).
const (
	elfCompressZlib = 1
	elfCompressZstd = 2
)

// inflateSections fills sec with the decompressed contents of packed,
// from the debug cache where it holds them, else decompressing each on a
// goroutine of its own and storing the result in the cache.
func inflateSections(cache debugCache, raw io.ReaderAt, packed []packedSection, sec map[string][]byte) error {
	out := make([][]byte, len(packed))
	errs := make([]error, len(packed))
	var wg sync.WaitGroup
	for i := range packed {
		p := &packed[i]
		size, body, err := compressedSize(p, raw)
		if err != nil {
			return fmt.Errorf("section %s: %w", p.sec.Name, err)
		}
		if b := cache.load(p.name, size); b != nil {
			out[i] = b
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := inflate(p, raw, body, size)
			if err != nil {
				errs[i] = fmt.Errorf("section %s: %w", p.sec.Name, err)
				return
			}
			out[i] = b
			cache.store(p.name, b)
		}()
	}
	wg.Wait()
	for i := range packed {
		if errs[i] != nil {
			return errs[i]
		}
		sec[packed[i].name] = out[i]
	}
	return nil
}

// compressedSize reads a compressed section's header: the size of its
// contents once decompressed, and where the compressed stream starts; it
// notes in p which codec the stream uses.
func compressedSize(p *packedSection, raw io.ReaderAt) (size uint64, body int64, err error) {
	var h [24]byte
	n, _ := raw.ReadAt(h[:], int64(p.sec.Offset))
	switch {
	case p.gnu:
		if n < 12 || string(h[:4]) != "ZLIB" {
			return 0, 0, fmt.Errorf("no ZLIB header at file offset %#x", p.sec.Offset)
		}
		size, body = binary.BigEndian.Uint64(h[4:12]), 12
	default:
		if n < 24 {
			return 0, 0, fmt.Errorf("compression header cut short at file offset %#x", p.sec.Offset)
		}
		typ := binary.LittleEndian.Uint32(h[:4])
		if typ != elfCompressZlib && typ != elfCompressZstd {
			return 0, 0, fmt.Errorf("unknown compression type %d at file offset %#x", typ, p.sec.Offset)
		}
		p.zstd = typ == elfCompressZstd
		size, body = binary.LittleEndian.Uint64(h[8:16]), 24
	}
	if uint64(body) > p.sec.FileSize {
		return 0, 0, fmt.Errorf("header larger than the section")
	}
	// Deflate expands at most 1032 times; no debug section compresses
	// better with zstd. A larger claim is a corrupt header, not a reason to
	// allocate it.
	if size > maxDebugSection || size > (p.sec.FileSize-uint64(body))*maxInflateRatio+4096 {
		return 0, 0, fmt.Errorf("decompressed size %d impossible for %d compressed bytes", size, p.sec.FileSize-uint64(body))
	}
	return size, body, nil
}

// inflate decompresses one section into a buffer of exactly size bytes.
func inflate(p *packedSection, raw io.ReaderAt, body int64, size uint64) ([]byte, error) {
	var src io.Reader = io.NewSectionReader(raw, int64(p.sec.Offset)+body, int64(p.sec.FileSize)-body)
	if p.data != nil {
		src = bytes.NewReader(p.data) // klauspost's inflaters read it faster than through bufio
	}
	out := make([]byte, size)
	var r io.Reader
	if p.zstd {
		dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDebugSection))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		r = dec
	} else {
		zr, err := zlib.NewReader(src)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("decompressing %d bytes: %w", size, err)
	}
	return out, nil
}

// DebugCacheDir is where decompressed debug sections are kept between
// runs, one folder per file (named by its build id, else by its path, size
// and time), with indexes made from them, such as the DWARF unit index and
// unit headers, each unit's line-table marks and functions (unit-*) and
// each function's inlined scopes (scope-*) read so far. It is the user cache directory's
// unwind/debug, or what the environment variable UNWIND_DEBUG_CACHE names
// ("off" turns the cache off). Deleting it is always safe.
func DebugCacheDir() string {
	if v := os.Getenv("UNWIND_DEBUG_CACHE"); v != "" {
		if v == "off" {
			return ""
		}
		return v
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "unwind", "debug")
}

// debugCache is one file's folder in the debug cache ("" when off).
type debugCache string

func debugCacheFor(ef *elf.File, path string) debugCache {
	root := DebugCacheDir()
	if root == "" {
		return ""
	}
	key := ""
	if id := readBuildID(ef); len(id) > 0 {
		key = "id-" + hex.EncodeToString(id)
	} else if abs, err := filepath.Abs(path); err == nil {
		fi, err := os.Stat(abs)
		if err != nil {
			return ""
		}
		h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", abs, fi.Size(), fi.ModTime().UnixNano()))
		key = "path-" + hex.EncodeToString(h[:12])
	} else {
		return ""
	}
	return debugCache(filepath.Join(root, key))
}

// load maps the cached section name when the cache holds it with exactly
// size bytes, else returns nil.
func (c debugCache) load(name string, size uint64) []byte {
	if c == "" {
		return nil
	}
	fh, err := fileio.OpenRegular(filepath.Join(string(c), name))
	if err != nil {
		return nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil || uint64(fi.Size()) != size {
		return nil
	}
	if b := mapReader(fh); uint64(len(b)) == size {
		return b
	}
	b := make([]byte, size)
	if n, _ := fh.ReadAt(b, 0); uint64(n) != size {
		return nil
	}
	return b
}

// store writes a decompressed section to the cache, atomically; failing
// to is no error (the cache only saves time).
func (c debugCache) store(name string, b []byte) {
	c.storeParts(name, b, nil)
}

// storeParts writes parts one after the other to the cache entry name, as
// store does.
func (c debugCache) storeParts(name string, parts ...[]byte) {
	if c == "" {
		return
	}
	if err := os.MkdirAll(string(c), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(string(c), name+".tmp*")
	if err != nil {
		return
	}
	var werr error
	for _, b := range parts {
		if _, err := tmp.Write(b); err != nil && werr == nil {
			werr = err
		}
	}
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), filepath.Join(string(c), name)) != nil {
		os.Remove(tmp.Name())
	}
}
