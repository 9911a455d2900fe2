package linux

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/symbols"
)

// testEntry is a cache entry made from the synthetic fuzzLayout (as the
// DWARF's) and a copy of it with a module (as the BTF's).
func testEntry() *layoutEntry {
	btfish := mapLayout{"module": 0x300, "module.list": 8, "module.name": 0x18}
	for k, v := range fuzzLayout {
		btfish[k] = v
	}
	return &layoutEntry{
		offsets: kernelOffsets{taskStack: 0x18, taskPid: 0x34, taskComm: 0x58, hotCurrent: -1, hotTop: -1, hotIRQ: -1, tkXtimeSec: 0x70, haveDWARF: true},
		dwarf:   recordLayout(fuzzLayout, true),
		btf:     recordLayout(btfish, true),
	}
}

// An entry reads back as written; one of another key, or with any byte
// changed, or cut short, is not used.
func TestLayoutEntryCodec(t *testing.T) {
	e := testEntry()
	key := []byte("key of one vmlinux")
	b := encodeLayoutEntry(e, key)
	got := decodeLayoutEntry(b, key)
	if got == nil || fmt.Sprint(*got) != fmt.Sprint(*e) {
		t.Fatalf("decoded %+v\nwant %+v", got, e)
	}
	if v, ok := (&answerLayout{answers: got.btf.answers}).MemberOffset("module", "name"); !ok || v != 0x18 {
		t.Errorf("module.name %#x %v", v, ok)
	}
	if _, ok := (&answerLayout{answers: got.dwarf.answers, load: func() Layout { return nil }}).MemberOffset("module", "name"); ok {
		t.Error("the DWARF answers have module.name")
	}
	if !bytes.Equal(encodeLayoutEntry(got, key), b) {
		t.Error("re-encoded entry differs")
	}
	for _, other := range [][]byte{[]byte("key of one vmlinuy"), []byte("key of one vmlinu"), nil} {
		if decodeLayoutEntry(b, other) != nil {
			t.Errorf("entry used for key %q", other)
		}
	}
	for i := range b {
		bad := slices.Clone(b)
		bad[i] ^= 0x08
		if decodeLayoutEntry(bad, key) != nil {
			t.Errorf("entry with byte %d changed used", i)
		}
		if decodeLayoutEntry(b[:i], key) != nil {
			t.Errorf("entry cut to %d bytes used", i)
		}
	}
}

// modelText renders what Open and Tasks read with the layouts: the
// offsets, each CPU's current task, the tasks, the modules and the
// warnings.
func modelText(t *testing.T, k *Kernel) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "offsets %+v\n", k.offsets)
	for _, th := range k.CPUs() {
		fmt.Fprintf(&b, "cpu %d %d %q %v\n", th.CPU, th.TID, th.Comm, th.Crashed)
	}
	tasks, err := k.Tasks()
	fmt.Fprintf(&b, "tasks %d %v\n", len(tasks), err)
	for _, ts := range tasks {
		fmt.Fprintf(&b, "%+v\n", ts)
	}
	mods, err := k.Modules()
	fmt.Fprintf(&b, "modules %d %v\n", len(mods), err)
	for _, m := range mods {
		secs := make([]string, 0, len(m.Sections))
		for n, a := range m.Sections {
			secs = append(secs, fmt.Sprintf("%s=%#x", n, a))
		}
		slices.Sort(secs)
		fmt.Fprintf(&b, "%s %s %#x %#x %#x %#x %s %d %v %q %v\n", m.Name, m.State, m.Base, m.Size, m.TextEnd, m.Taints,
			m.TaintLetters, len(m.Symbols), m.ORC != nil, m.File, secs)
	}
	fmt.Fprintf(&b, "warnings %q\n", k.Warnings())
	return b.String()
}

// cachedModel returns modelText of the vmcore path opened with opts, and
// whether a layout was read for it (not all answers were cached): the
// kernel model's layout is not cached answers, or cached answers (the
// model's, or the modules') lacked one.
func cachedModel(t *testing.T, path string, opts dump.SymbolOptions) (*Kernel, string, bool) {
	t.Helper()
	n := layoutLoads.Load()
	k := openWith(t, path, opts)
	text := modelText(t, k)
	_, ok := k.layout.(*answerLayout)
	return k, text, !ok || layoutLoads.Load() != n
}

// The prod kdump opened with a debug cache: the first Open stores the
// layouts, a second uses them and reads no DWARF or BTF, with the same
// kernel model; a damaged entry, or another vmlinux's (the same build id
// without .debug_frame: another file), is ignored and made again; an entry
// of the right key is what Open believes (one with a wrong offset gives
// wrong tasks).
func TestLayoutCacheProd(t *testing.T) {
	dir, err := corpus.Find("prod")
	if err != nil {
		t.Skip(err)
	}
	cache := t.TempDir()
	t.Setenv("UNWIND_DEBUG_CACHE", cache)
	path := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	vmlinux := filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)
	opts := dump.SymbolOptions{Files: []string{vmlinux}}
	cold := openWith(t, path, opts)
	if _, ok := cold.layout.(*dwarfLayout); !ok {
		t.Fatalf("first Open: layout %T, want the DWARF's", cold.layout)
	}
	want := modelText(t, cold)
	entries, _ := filepath.Glob(filepath.Join(cache, "*", layoutCacheName))
	if len(entries) != 1 {
		t.Fatalf("cache entries %q", entries)
	}
	entry := entries[0]
	stored, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	e := decodeLayoutEntry(stored, nil)
	if e != nil {
		t.Fatal("entry decoded without its key")
	}

	warm, got, loaded := cachedModel(t, path, opts)
	if got != want {
		t.Fatalf("with the cached layouts:\n%s\nwant:\n%s", got, want)
	}
	if loaded {
		t.Errorf("second Open read the layouts (%T)", warm.layout)
	}

	// Damaged (task_struct.pid's offset changed, the checksum not):
	// ignored, the layouts read, the entry written again.
	bad := slices.Clone(stored)
	pid := []byte("\x00\x0btask_struct\x03pid")
	i := bytes.Index(bad, pid)
	if i < 0 {
		t.Fatal("no task_struct.pid in the entry")
	}
	bad[i+len(pid)] ^= 8
	if err := os.WriteFile(entry, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, got, loaded = cachedModel(t, path, opts)
	if !loaded {
		t.Error("damaged entry used")
	}
	if got != want {
		t.Fatalf("after a damaged entry:\n%s\nwant:\n%s", got, want)
	}
	if b, _ := os.ReadFile(entry); !bytes.Equal(b, stored) {
		t.Error("damaged entry not rewritten")
	}

	// The same build id, another file: its own key, its own layouts.
	stripped := strippedVmlinux(t, vmlinux)
	sopts := dump.SymbolOptions{Files: []string{stripped}}
	_, swant, loaded := cachedModel(t, path, sopts)
	if !loaded {
		t.Error("another file's entry used")
	}
	if b, _ := os.ReadFile(entry); bytes.Equal(b, stored) {
		t.Error("the stripped vmlinux's entry not written")
	}
	if _, got, loaded := cachedModel(t, path, sopts); loaded {
		t.Error("the stripped vmlinux's own entry not used")
	} else if got != swant {
		t.Errorf("stripped vmlinux, cached:\n%s\nwant:\n%s", got, swant)
	}
	_, got, loaded = cachedModel(t, path, opts)
	if !loaded {
		t.Error("the stripped vmlinux's entry used for vmlinux")
	}
	if got != want {
		t.Fatalf("after the stripped vmlinux's entry:\n%s\nwant:\n%s", got, want)
	}

	// An entry with the right key is believed: task_struct.pid moved.
	key := decodeKeyOf(t, stored)
	e = decodeLayoutEntry(stored, key)
	e.dwarf.answers[layoutQuery{st: "task_struct", member: "pid"}] = layoutAnswer{v: 8, ok: true}
	if err := os.WriteFile(entry, encodeLayoutEntry(e, key), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, got, loaded := cachedModel(t, path, opts); got == want || loaded {
		t.Error("a valid entry with another task_struct.pid offset was not used")
	}
}

// The prod vmlinux without its DWARF (objcopy --strip-debug; .BTF
// stays): the BTF's layout is the kernel model's, for the CPUs' current
// tasks and the task list too, and its cached answers serve all of it.
func TestLayoutCacheProdBTFOnly(t *testing.T) {
	dir, err := corpus.Find("prod")
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("UNWIND_DEBUG_CACHE", t.TempDir())
	path := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	opts := dump.SymbolOptions{Files: []string{noDWARFVmlinux(t, filepath.Join(dir, "kernel", "vmlinux-"+prodRelease))}}
	cold := openWith(t, path, opts)
	if _, ok := cold.layout.(*btfLayouts); !ok {
		t.Fatalf("first Open: layout %T, want the BTF's", cold.layout)
	}
	want := modelText(t, cold)
	if !strings.Contains(want, "tasks 60 <nil>") || !strings.Contains(want, "modules 8 <nil>") {
		t.Fatalf("without DWARF:\n%s", want)
	}
	warm, got, loaded := cachedModel(t, path, opts)
	if got != want {
		t.Fatalf("with the cached layouts:\n%s\nwant:\n%s", got, want)
	}
	if loaded {
		t.Errorf("second Open read the layouts (%T)", warm.layout)
	}
}

// noDWARFVmlinux returns the production vmlinux without its debug
// sections (objcopy --strip-debug); see objcopyVmlinux.
func noDWARFVmlinux(t *testing.T, vmlinux string) string {
	return objcopyVmlinux(t, vmlinux, "no-debug", "--strip-debug")
}

// decodeKeyOf returns the key a stored entry was written with.
func decodeKeyOf(t *testing.T, b []byte) []byte {
	t.Helper()
	d := layoutDecoder{p: b[len(layoutMagic):]}
	key := d.bytes(int(d.u32()))
	if d.bad || decodeLayoutEntry(b, key) == nil {
		t.Fatal("entry has no key")
	}
	return key
}

// FuzzLayoutEntry: a cache entry is outside input; decoding anything
// returns an entry or nil, never panics, and an entry it accepts encodes
// back to the same bytes.
func FuzzLayoutEntry(f *testing.F) {
	key := []byte("fuzz key")
	good := encodeLayoutEntry(testEntry(), key)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(encodeLayoutEntry(&layoutEntry{}, key))
	f.Add([]byte(layoutMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		e := decodeLayoutEntry(b, key)
		if e == nil {
			return
		}
		if got := encodeLayoutEntry(e, key); !bytes.Equal(got, b) {
			t.Fatalf("accepted %x, encodes as %x", b, got)
		}
	})
}

// btfFromFile gives the same layouts from the mapping of a symbols.File
// as from the file, and the same error for a file without .BTF.
func TestBTFFromFileMapped(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sf, err := symbols.Open(exe, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	_, err1 := btfFromFile(exe, nil)
	_, err2 := btfFromFile(exe, sf)
	if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
		t.Errorf("no .BTF: %v, mapped: %v", err1, err2)
	}

	dir, err := corpus.Find("prod")
	if err != nil {
		corpus.Unavailable(t, "prod", err)
	}
	path := filepath.Join(dir, "kernel", "vmlinux-"+prodRelease)
	if sf, err = symbols.Open(path, 0); err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	read, err := btfFromFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := btfFromFile(path, sf)
	if err != nil {
		t.Fatal(err)
	}
	want, err1 := readModuleLayout(read)
	got, err2 := readModuleLayout(mapped)
	if err1 != nil || err2 != nil || *got != *want {
		t.Errorf("mapped: %+v, %v; read: %+v, %v", got, err2, want, err1)
	}
}
