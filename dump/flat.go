package dump

import (
	"encoding/binary"
	"io"
	"sort"
)

// makedumpfile's flattened format (makedumpfile.h), what makedumpfile -F
// and QEMU's dump-guest-memory write when the output cannot seek: a
// 4096-byte header, then records of (offset, size) big-endian int64s and
// size bytes of the seekable file's contents at offset, ended by a record
// of (-1, -1). makedumpfile -R replays the records into the ordinary file.
const (
	flatSignature  = "makedumpfile"
	flatHeaderSize = 4096
	flatRecordHdr  = 16
	flatType       = 1
	maxFlatRecords = 1 << 24
)

// flatRecord is one record: the seekable file's bytes [off, off+size)
// are at stream offset data.
type flatRecord struct {
	off, size, data uint64
}

// flatReader presents a flattened stream as the seekable file it stands
// for. Records are indexed once (their headers only); a later record
// overrides an earlier one where they overlap, as makedumpfile -R does.
type flatReader struct {
	r    io.ReaderAt
	recs []flatRecord // sorted by off, not overlapping
	size int64        // the seekable file's size
}

// isFlat reports whether the first bytes of a file are a flattened
// header.
func isFlat(magic []byte) bool {
	return len(magic) >= len(flatSignature) && string(magic[:len(flatSignature)]) == flatSignature
}

// newFlatReader indexes the records of the flattened stream r of size
// bytes.
func newFlatReader(r io.ReaderAt, size int64) (*flatReader, error) {
	var h [flatHeaderSize]byte
	if size < flatHeaderSize {
		return nil, formatErr(0, ErrNotCore, "flattened dump too short (%d bytes)", size)
	}
	if _, err := r.ReadAt(h[:], 0); err != nil {
		return nil, formatErr(0, err, "reading the flattened header")
	}
	be := binary.BigEndian
	if t := be.Uint64(h[16:]); t != flatType {
		return nil, formatErr(16, ErrUnsupported, "flattened header type %d", t)
	}
	var recs []flatRecord
	pos := uint64(flatHeaderSize)
	end := uint64(0)
	for {
		var rh [flatRecordHdr]byte
		if pos > uint64(size) || uint64(size)-pos < flatRecordHdr {
			return nil, formatErr(int64(pos), nil, "flattened dump ends without its end record")
		}
		if _, err := r.ReadAt(rh[:], int64(pos)); err != nil {
			return nil, formatErr(int64(pos), err, "reading a flattened record")
		}
		off, n := be.Uint64(rh[:]), be.Uint64(rh[8:])
		if off == ^uint64(0) && n == ^uint64(0) {
			break
		}
		pos += flatRecordHdr
		if off >= 1<<62 || n > uint64(size)-pos {
			return nil, formatErr(int64(pos-flatRecordHdr), nil, "flattened record of %d bytes at offset %#x past the end of the stream", n, off)
		}
		if len(recs) >= maxFlatRecords {
			return nil, formatErr(int64(pos-flatRecordHdr), nil, "more than %d flattened records", maxFlatRecords)
		}
		if n > 0 {
			recs = append(recs, flatRecord{off, n, pos})
			end = max(end, off+n)
		}
		pos += n
	}
	return &flatReader{r: r, recs: resolveFlat(recs), size: int64(end)}, nil
}

// resolveFlat sorts records by offset and cuts away the parts that later
// records overwrite.
func resolveFlat(recs []flatRecord) []flatRecord {
	sorted := append([]flatRecord(nil), recs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].off < sorted[j].off })
	overlap := false
	for i := 1; i < len(sorted) && !overlap; i++ {
		overlap = sorted[i].off < sorted[i-1].off+sorted[i-1].size
	}
	if !overlap {
		return sorted
	}
	// Rare (a header rewritten after the data): replay in stream order,
	// each record cutting what it covers out of the spans before it.
	var spans []flatRecord
	for _, r := range recs {
		var next []flatRecord
		for _, s := range spans {
			if s.off+s.size <= r.off || r.off+r.size <= s.off {
				next = append(next, s)
				continue
			}
			if s.off < r.off {
				next = append(next, flatRecord{s.off, r.off - s.off, s.data})
			}
			if e := r.off + r.size; s.off+s.size > e {
				next = append(next, flatRecord{e, s.off + s.size - e, s.data + (e - s.off)})
			}
		}
		spans = append(next, r)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	return spans
}

// ReadAt implements io.ReaderAt over the seekable file's offsets. Bytes
// no record wrote read as zeros, as in the file makedumpfile -R makes.
func (f *flatReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= f.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := f.size - off; int64(want) > rest {
		want = int(rest)
	}
	done := 0
	for done < want {
		a := uint64(off) + uint64(done)
		i := sort.Search(len(f.recs), func(i int) bool { return f.recs[i].off+f.recs[i].size > a })
		q := p[done:want]
		if i == len(f.recs) || f.recs[i].off > a {
			// A hole up to the next record.
			n := len(q)
			if i < len(f.recs) {
				n = int(min(uint64(n), f.recs[i].off-a))
			}
			clear(q[:n])
			done += n
			continue
		}
		r := f.recs[i]
		n := int(min(uint64(len(q)), r.off+r.size-a))
		k, err := f.r.ReadAt(q[:n], int64(r.data+(a-r.off)))
		done += k
		if k < n {
			return done, err
		}
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}
