package symbols

import (
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/unwind-dev/unwind/internal/corpus"
	"github.com/unwind-dev/unwind/internal/dwarf"
)

// dwarfFiles are the files the line tests read: the test program (DWARF 5)
// and module (placed as the module loader would), and from the corpora libc's separate
// compressed debug file, the lab vmlinux (DWARF 4) and the production one
// (DWARF 5; not with -short).
func dwarfFiles(t *testing.T) []*File {
	type file struct{ path, debug string }
	files := []file{{path: "testdata/prog"}}
	if dir, err := corpus.Find("user"); err == nil {
		libc := filepath.Join(dir, "lib", "libc.so.6")
		files = append(files, file{libc, libc + ".debug"})
	}
	if dir, err := corpus.Find("kernel"); err == nil {
		files = append(files, file{path: filepath.Join(dir, "fp", "vmlinux")})
	}
	if dir, err := corpus.Find("prod"); err == nil && !testing.Short() {
		files = append(files, file{path: filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")})
	}
	out := []*File{openRelocmod(t, Placement{Sections: relocmodPlacement})}
	for _, fl := range files {
		f, err := Open(fl.path, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if fl.debug != "" {
			if err := f.AttachDebug(fl.debug); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, f)
	}
	for _, f := range out {
		f.dwarfOnce.Do(f.loadDWARF)
		if f.dw == nil {
			t.Fatalf("%s: no DWARF: %v", f.Path, f.dwErr)
		}
	}
	return out
}

// unitLineReader returns the line table reader of the unit at off.
func unitLineReader(t *testing.T, d *dwarf.Data, off dwarf.Offset) *dwarf.LineReader {
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	lr, err := d.LineReader(e)
	if err != nil {
		t.Fatal(err)
	}
	return lr
}

// unitLineProgram returns the line program reader (no file table) of the
// unit at off.
func unitLineProgram(t *testing.T, d *dwarf.Data, off dwarf.Offset) *dwarf.LineReader {
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	lr, err := d.LineProgram(e)
	if err != nil || lr == nil {
		t.Fatalf("no line program: %v", err)
	}
	if len(lr.Files()) != 0 {
		t.Fatalf("line program with %d files", len(lr.Files()))
	}
	return lr
}

// TestSeqLines: lines read from a sequence's marks (seqLine, by a reader
// of the line program without its file table, naming files by index) are those of
// the whole table's sorted rows (readRows) at every row's address, the
// addresses next to it, and the ends of every sequence, in every unit of
// the test files that lineIndex indexes; most units are indexed.
func TestSeqLines(t *testing.T) {
	for _, f := range dwarfFiles(t) {
		x := f.dw
		indexed, units, checked := 0, 0, 0
		step := max(1, x.tab.numStarts()/150)
		for i := 0; i < x.tab.numStarts(); i += step {
			lr := unitLineReader(t, x.d, x.tab.start(i))
			if lr == nil {
				continue
			}
			units++
			seqs, ok := lineIndex(lr)
			if !ok {
				continue
			}
			indexed++
			fast := &cuInfo{}
			fast.useSeqs(unitLineProgram(t, x.d, x.tab.start(i)), seqs, fileNames(lr.Files()))
			slow := &cuInfo{}
			slow.readRows(unitLineReader(t, x.d, x.tab.start(i)))
			var pcs []uint64
			for _, row := range slow.lines {
				pcs = append(pcs, row.addr-1, row.addr, row.addr+1)
			}
			for _, s := range seqs {
				pcs = append(pcs, s.lo-1, s.lo, s.end-1, s.end)
			}
			for _, pc := range pcs {
				gf, gl, gok := fast.line(pc)
				wf, wl, wok := slow.line(pc)
				if gf != wf || gl != wl || gok != wok {
					t.Fatalf("%s: unit %#x at %#x: %s:%d %v, want %s:%d %v", f.Path, x.tab.start(i), pc, gf, gl, gok, wf, wl, wok)
				}
				checked++
			}
		}
		t.Logf("%s: %d of %d units indexed, %d pcs", f.Path, indexed, units, checked)
		if indexed*2 < units || checked == 0 {
			t.Errorf("%s: only %d of %d units indexed", f.Path, indexed, units)
		}
	}
}

// lineProgram builds the DWARF 4 sections of one unit whose line table
// has the given sequences (each rows of address, file and line, then its
// end address), every address set with DW_LNE_set_address.
func lineProgram(t testing.TB, seqs []testSeq) *dwarf.Data {
	abbrev := []byte{1, 0x11, 0, 0x10, 0x17, 0, 0, 0} // compile unit: stmt_list sec_offset
	info := binary.LittleEndian.AppendUint32(nil, 2+4+1+1+4)
	info = binary.LittleEndian.AppendUint16(info, 4)
	info = binary.LittleEndian.AppendUint32(info, 0)
	info = append(info, 8, 1, 0, 0, 0, 0)
	hdr := []byte{1, 1, 1, 0xfb, 14, 13, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1}
	hdr = append(hdr, 0) // no directories
	hdr = append(hdr, "a.c\x00\x00\x00\x00b.c\x00\x00\x00\x00\x00"...)
	var prog []byte
	setAddr := func(a uint64) {
		prog = append(prog, 0, 9, 2)
		prog = binary.LittleEndian.AppendUint64(prog, a)
	}
	for _, s := range seqs {
		line := 1
		for _, r := range s.rows {
			setAddr(r.addr)
			prog = append(prog, 4)
			prog = binary.AppendUvarint(prog, uint64(r.file))
			prog = append(prog, 3)
			prog = appendSLEB(prog, int64(r.line-line))
			line = r.line
			prog = append(prog, 1) // DW_LNS_copy
		}
		setAddr(s.end)
		prog = append(prog, 0, 1, 1) // DW_LNE_end_sequence
	}
	line := binary.LittleEndian.AppendUint32(nil, uint32(2+4+len(hdr)+len(prog)))
	line = binary.LittleEndian.AppendUint16(line, 4)
	line = binary.LittleEndian.AppendUint32(line, uint32(len(hdr)))
	line = append(append(line, hdr...), prog...)
	d, err := dwarf.New(abbrev, nil, nil, info, line, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// appendSLEB appends v as a signed LEB128.
func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

type testRow struct {
	addr       uint64
	file, line int
}

type testSeq struct {
	rows []testRow
	end  uint64
}

// TestSeqLinesRandom: on random line tables (sequences in any order,
// touching or overlapping, with rows at their end address, empty, with
// repeated or decreasing addresses), every table lineIndex indexes gives
// the sorted rows' line at every address; enough are indexed, and enough
// have a sequence ending with rows where a sequence earlier in the
// program starts, for the ties to be tested.
func TestSeqLinesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	indexed, ties := 0, 0
	for iter := 0; iter < 20000; iter++ {
		seqs := make([]testSeq, 1+rng.IntN(4))
		for i := range seqs {
			a := uint64(16 * rng.IntN(6))
			n := 1 + rng.IntN(4)
			if rng.IntN(8) == 0 {
				n = 100 + rng.IntN(200) // past a few marks
			}
			for range n {
				seqs[i].rows = append(seqs[i].rows, testRow{a, 1 + rng.IntN(2), 1 + rng.IntN(50)})
				switch rng.IntN(20) {
				case 0:
					a -= min(a, 1) // down
				case 1, 2, 3:
				default:
					a += uint64(rng.IntN(3))
				}
			}
			last := seqs[i].rows[n-1].addr
			end := last + uint64(rng.IntN(3))
			if rng.IntN(3) == 0 {
				end = (last/16 + 1) * 16 // where another may start
			}
			if rng.IntN(3) == 0 {
				seqs[i].rows = append(seqs[i].rows, testRow{end, 1 + rng.IntN(2), 1 + rng.IntN(50)})
			}
			seqs[i].end = end
		}
		d := lineProgram(t, seqs)
		lr := unitLineReader(t, d, 0xb)
		got, ok := lineIndex(lr)
		if !ok {
			continue
		}
		indexed++
		fast := &cuInfo{}
		fast.useSeqs(unitLineProgram(t, d, 0xb), got, fileNames(lr.Files()))
		slow := &cuInfo{}
		slow.readRows(unitLineReader(t, d, 0xb))
		for i := 1; i < len(got); i++ {
			if p, s := got[i-1], got[i]; p.end == s.lo && p.stray && p.ord > s.ord {
				ties++
			}
		}
		var le dwarf.LineEntry
		for lr := unitLineReader(t, d, 0xb); lr.Next(&le) == nil; {
			if le.Line < 1 || le.Line > 50 {
				t.Fatalf("line program built wrong: %+v", le)
			}
		}
		for pc := uint64(0); pc < 16*6+320*2+8; pc++ {
			gf, gl, gok := fast.line(pc)
			wf, wl, wok := slow.line(pc)
			if gf != wf || gl != wl || gok != wok {
				t.Fatalf("%+v: at %#x: %s:%d %v, want %s:%d %v", seqs, pc, gf, gl, gok, wf, wl, wok)
			}
		}
	}
	t.Logf("%d tables indexed, %d with a sequence's end row tie", indexed, ties)
	if indexed < 2000 || ties < 10 {
		t.Errorf("%d tables indexed, %d ties: not enough tested", indexed, ties)
	}
}

// TestSeqLinesStrayAtMark: a sequence whose row at its end address is the
// row a mark was taken after (its 64th, 128th, ...) or the one after it,
// with different lines at and before its end: the lines past the end are
// that row's, as readRows has them.
func TestSeqLinesStrayAtMark(t *testing.T) {
	for _, n := range []int{lineMarkEvery - 1, lineMarkEvery, lineMarkEvery + 1, 2 * lineMarkEvery, 2*lineMarkEvery + 1} {
		var s testSeq
		for i := range n - 1 {
			s.rows = append(s.rows, testRow{uint64(i), 1, 1 + i%40})
		}
		s.end = uint64(n + 3)
		s.rows = append(s.rows, testRow{s.end, 2, 45}) // the stray row, row n
		d := lineProgram(t, []testSeq{s, {rows: []testRow{{s.end + 8, 1, 7}}, end: s.end + 12}})
		got, ok := lineIndex(unitLineReader(t, d, 0xb))
		if !ok || !got[0].stray {
			t.Fatalf("%d rows: indexed %v, %+v", n, ok, got)
		}
		fast := &cuInfo{}
		lr := unitLineReader(t, d, 0xb)
		fast.useSeqs(unitLineProgram(t, d, 0xb), got, fileNames(lr.Files()))
		slow := &cuInfo{}
		slow.readRows(unitLineReader(t, d, 0xb))
		for pc := uint64(0); pc < s.end+16; pc++ {
			gf, gl, gok := fast.line(pc)
			wf, wl, wok := slow.line(pc)
			if gf != wf || gl != wl || gok != wok {
				t.Fatalf("%d rows: at %#x: %s:%d %v, want %s:%d %v", n, pc, gf, gl, gok, wf, wl, wok)
			}
		}
		if _, l, _ := fast.line(s.end + 1); l != 45 {
			t.Fatalf("%d rows: line %d past the end, want the stray row's 45", n, l)
		}
	}
}
