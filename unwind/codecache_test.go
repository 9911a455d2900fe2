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
	nb, ns, nc := cc.boundary.len(), cc.sites.len(), cc.calls.len()
	if nb == 0 || ns == 0 || nc == 0 {
		t.Errorf("the walks left %d instruction boundaries, %d call sites, %d call targets in the shared CodeCache", nb, ns, nc)
	}

	// A verdict is shared with the bytes it was decoded from: a walk over
	// memory whose call before a return address is gone (patched to
	// NOPs) does not take the verdict the other walks left.
	text := append([]byte(nil), ch.code.text...)
	ra := want[3].PC
	copy(text[ra-5-textBase:], []byte{0x90, 0x90, 0x90, 0x90, 0x90})
	mem := SplicedMemory{{Addr: textBase, Data: text}, ch.stk.region()}
	want, _ = Walk(mem, ch.regs, &Options{Code: ch.code})
	if len(want) < 4 || want[3].PC != ra || want[3].Reliable {
		t.Fatalf("the walk over the patched memory does not doubt frame 3: %+v", want)
	}
	if got, _ := Walk(mem, ch.regs, &Options{Code: ch.code, CodeCache: cc}); !reflect.DeepEqual(want, got) {
		t.Errorf("with a shared CodeCache the walk over patched memory differs")
	}

	for a := range uint64(maxCodeCache + 10) {
		cc.boundary.store(1<<40+a, true)
		cc.sites.store(siteKey{ra: 1<<40 + a}, siteVal{})
		cc.calls.store(callKey{site: siteKey{ra: 1<<40 + a}}, true)
	}
	if cc.boundary.len() > maxCodeCache || cc.sites.len() > maxCodeCache || cc.calls.len() > maxCodeCache {
		t.Errorf("CodeCache holds %d, %d, %d entries, more than %d", cc.boundary.len(), cc.sites.len(), cc.calls.len(), maxCodeCache)
	}
}
