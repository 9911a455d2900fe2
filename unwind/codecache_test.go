package unwind

import (
	"reflect"
	"sync"
	"testing"
)

// Walks that share a CodeCache give the frames walks without one give;
// the cache fills, stays bounded, and may be used from several goroutines
// at once.
func TestCodeCacheShared(t *testing.T) {
	ch := fpChain(30, true)
	want, err := Walk(ch.mem, ch.regs, &Options{Code: ch.code})
	if err != nil {
		t.Fatal(err)
	}
	cc := new(CodeCache)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := Walk(ch.mem, ch.regs, &Options{Code: ch.code, CodeCache: cc})
			if err != nil {
				t.Error(err)
				return
			}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("with a shared CodeCache the frames differ")
			}
		}()
	}
	wg.Wait()
	cc.mu.Lock()
	n := len(cc.boundary)
	cc.mu.Unlock()
	if n == 0 {
		t.Error("the walks left nothing in the shared CodeCache")
	}
	for a := range uint64(maxCodeCache + 10) {
		cc.storeBoundary(1<<40+a, true)
	}
	if len(cc.boundary) > maxCodeCache {
		t.Errorf("CodeCache holds %d entries, more than %d", len(cc.boundary), maxCodeCache)
	}
}
