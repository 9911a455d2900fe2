package symbols

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/unwind-dev/unwind/internal/fileio"
)

// The debug cache keeps its small entries (a unit's lines and functions,
// unitdetail.go; a function's scopes, scopecache.go) in packs: files named
// "pack-*" in the file's cache folder, each one process's entries one
// after the other. A first run over the tasks of a kernel dump stores
// about 80 such entries; as files of their own, creating them (a create
// and a rename each) took 10-25 ms of the run's system time. A process
// creates at most one pack per cached file and appends to it.
//
// A pack is packMagic, then records: the name's length (2 bytes, little
// endian), the entry's length (4 bytes), the name, the entry. Entries
// carry their own key and checksum, which their readers check: a damaged
// record, or one another process has only half written, is at worst an
// entry that is not used. A record that does not fit ends the pack.
const (
	packMagic  = "UWPACK01"
	packPrefix = "pack-"
	// packsAtMost is how many packs a folder may hold: finding more, a
	// reader writes their entries to one pack and removes them.
	packsAtMost = 8
	// maxPackFile bounds a pack read (a folder's entries are a few MB).
	maxPackFile = 1 << 30
	// maxPackEntry bounds one entry, stored or read.
	maxPackEntry = 64 << 20
)

// packCache is the packed entries of one cache folder: those its packs
// held when first asked (read once), and this process's pack, created on
// the first store.
type packCache struct {
	dir debugCache

	once    sync.Once
	entries map[string][]byte // name -> entry, into the packs' bytes

	mu  sync.Mutex
	w   *os.File // this process's pack, or nil
	bad bool     // creating or writing it failed: store no more
}

// newPackCache returns the packs of dir, or nil when dir is "" (no cache).
func newPackCache(dir debugCache) *packCache {
	if dir == "" {
		return nil
	}
	return &packCache{dir: dir}
}

// load returns the entry name, or nil when no pack holds it or it is
// larger than max. The bytes may be a read-only mapping of the pack.
func (p *packCache) load(name string, max int) []byte {
	if p == nil {
		return nil
	}
	p.once.Do(p.read)
	p.mu.Lock()
	b := p.entries[name]
	p.mu.Unlock()
	if len(b) > max {
		return nil
	}
	return b
}

// store appends the entry name to this process's pack, creating it and
// the folder on first use; failing to is no error (the cache only saves
// time). Later loads of name in this process return b, which the caller
// must not change.
func (p *packCache) store(name string, b []byte) {
	if p == nil || len(name) > 0xffff || len(b) > maxPackEntry {
		return
	}
	p.once.Do(p.read)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries[name] = b
	if p.bad {
		return
	}
	if p.w == nil {
		if p.w = createPack(string(p.dir)); p.w == nil {
			p.bad = true
			return
		}
	}
	rec := make([]byte, 0, 6+len(name)+len(b))
	rec = appendPackRecord(rec, name, b)
	if _, err := p.w.Write(rec); err != nil {
		p.bad = true
	}
}

// close closes this process's pack; later stores create another.
func (p *packCache) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		p.w.Close()
		p.w = nil
	}
}

// createPack creates a new, empty pack in dir, or returns nil.
func createPack(dir string) *os.File {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	fh, err := os.CreateTemp(dir, packPrefix+"*")
	if err != nil {
		return nil
	}
	if _, err := fh.WriteString(packMagic); err != nil {
		fh.Close()
		os.Remove(fh.Name())
		return nil
	}
	return fh
}

func appendPackRecord(b []byte, name string, entry []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(entry)))
	b = append(b, name...)
	return append(b, entry...)
}

// read reads the folder's packs into p.entries, and packs them into one
// when there are more than packsAtMost.
func (p *packCache) read() {
	p.entries = map[string][]byte{}
	names := packFiles(string(p.dir))
	for _, n := range names {
		if b := readPackFile(filepath.Join(string(p.dir), n)); b != nil {
			parsePack(b, p.entries)
		}
	}
	if len(names) > packsAtMost {
		if writePack(string(p.dir), p.entries) {
			for _, n := range names {
				os.Remove(filepath.Join(string(p.dir), n))
			}
		}
	}
}

// packFiles returns the names of the packs in dir, and removes the files
// that held one entry each before packs ("unit-…", "scope-…", and their
// unfinished ".tmp…" copies), which nothing reads any more.
func packFiles(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		switch {
		case !e.Type().IsRegular():
		case strings.HasPrefix(n, packPrefix) && !strings.HasSuffix(n, ".tmp"):
			names = append(names, n)
		case strings.HasPrefix(n, "unit-") || strings.HasPrefix(n, "scope-"):
			os.Remove(filepath.Join(dir, n))
		}
	}
	return names
}

// readPackFile maps or reads the pack at path, or returns nil (no regular
// file, too large, not a pack).
func readPackFile(path string) []byte {
	fh, err := fileio.OpenRegular(path)
	if err != nil {
		return nil
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil || fi.Size() < int64(len(packMagic)) || fi.Size() > maxPackFile {
		return nil
	}
	b := mapReader(fh)
	if int64(len(b)) != fi.Size() {
		b = make([]byte, fi.Size())
		if n, _ := fh.ReadAt(b, 0); int64(n) != fi.Size() {
			return nil
		}
	}
	if !bytes.HasPrefix(b, []byte(packMagic)) {
		return nil
	}
	return b
}

// parsePack adds the records of pack b to entries, a later record of a
// name replacing an earlier; a record that does not fit ends it.
func parsePack(b []byte, entries map[string][]byte) {
	if !bytes.HasPrefix(b, []byte(packMagic)) {
		return
	}
	b = b[len(packMagic):]
	for len(b) >= 6 {
		nl := int(binary.LittleEndian.Uint16(b))
		el := uint64(binary.LittleEndian.Uint32(b[2:]))
		b = b[6:]
		if el > maxPackEntry || uint64(nl)+el > uint64(len(b)) {
			return
		}
		entries[string(b[:nl])] = b[nl : nl+int(el) : nl+int(el)]
		b = b[nl+int(el):]
	}
}

// writePack writes entries to a new pack in dir, whole or not at all, and
// reports whether it did.
func writePack(dir string, entries map[string][]byte) bool {
	tmp, err := os.CreateTemp(dir, packPrefix+"*.tmp")
	if err != nil {
		return false
	}
	b := []byte(packMagic)
	for name, e := range entries {
		b = appendPackRecord(b, name, e)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), strings.TrimSuffix(tmp.Name(), ".tmp")) != nil {
		os.Remove(tmp.Name())
		return false
	}
	return true
}
