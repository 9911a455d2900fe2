package dump

import (
	"io"
	"sync"
)

// pageCache is an io.ReaderAt that keeps the last pages read from r, so
// that a walk reading a stack word by word (and the code before each
// return address) makes one pread per page instead of one per word. It is
// direct-mapped: at most cacheSlots pages of cachePage bytes, allocated as
// they are first used, whatever the file's size.
type pageCache struct {
	r     io.ReaderAt
	mu    sync.Mutex
	slots [cacheSlots]*cachedPage
}

const (
	cachePage  = 4096
	cacheSlots = 128
)

type cachedPage struct {
	page int64 // file offset / cachePage
	n    int   // valid bytes (short at the end of the file)
	err  error // the error that cut the page short, if any
	lent bool  // window handed buf out: a miss reads into a new page
	buf  [cachePage]byte
}

func newPageCache(r io.ReaderAt) *pageCache {
	if c, ok := r.(*pageCache); ok {
		return c
	}
	return &pageCache{r: r}
}

// ReadAt implements io.ReaderAt. Reads of more than two pages go to the
// file directly.
func (c *pageCache) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || len(p) > 2*cachePage {
		return c.r.ReadAt(p, off)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for done < len(p) {
		o := off + int64(done)
		pg, err := c.page(o / cachePage)
		rel := int(o % cachePage)
		if rel >= pg.n {
			if err == nil {
				err = io.EOF
			}
			return done, err
		}
		k := copy(p[done:], pg.buf[rel:pg.n])
		done += k
		if done < len(p) && pg.n < cachePage {
			if err == nil {
				err = io.EOF
			}
			return done, err
		}
	}
	return done, nil
}

// page returns page i, reading it on a miss.
func (c *pageCache) page(i int64) (*cachedPage, error) {
	s := &c.slots[i%cacheSlots]
	if *s != nil && (*s).page == i {
		return *s, (*s).err
	}
	if *s == nil || (*s).lent {
		*s = new(cachedPage)
	}
	pg := *s
	n, err := c.r.ReadAt(pg.buf[:], i*cachePage)
	if n == cachePage {
		err = nil
	} else if err == nil {
		err = io.ErrUnexpectedEOF
	}
	pg.page, pg.n, pg.err = i, n, err
	if err != nil && err != io.EOF {
		// Do not keep a transient failure: the next read tries again.
		pg.page = -1
	}
	return pg, err
}

// window returns the cached bytes of the file from off to the end of its
// page (nil when none can be read there). They never change: a page that
// was lent is not reused for another.
func (c *pageCache) window(off int64) []byte {
	if off < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pg, _ := c.page(off / cachePage)
	rel := int(off % cachePage)
	if rel >= pg.n || pg.page != off/cachePage {
		return nil
	}
	pg.lent = true
	return pg.buf[rel:pg.n:pg.n]
}
