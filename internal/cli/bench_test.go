package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/unwind-dev/unwind/internal/corpus"
)

// The whole-command benchmarks run `unwind bt` through Run, as the binary
// does: open the dump, find and read the symbols, walk, format and write
// the output, all inside the loop. Each reports frames/s and ns/frame
// beside B/op and allocs/op (go test -bench Bt -benchmem ./internal/cli).

// deepCore unpacks fixtures/deepcore/deep.core.zst (a 100,000-frame
// recursion, see fixtures/deepcore/make.sh) into a temporary file.
func deepCore(tb testing.TB) (core, exe string) {
	tb.Helper()
	dir := filepath.Join("..", "..", "fixtures", "deepcore")
	zf, err := os.Open(filepath.Join(dir, "deep.core.zst"))
	if err != nil {
		tb.Fatal(err)
	}
	defer zf.Close()
	zr, err := zstd.NewReader(zf)
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	core = filepath.Join(tb.TempDir(), "deep.core")
	out, err := os.Create(core)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return core, filepath.Join(dir, "deep")
}

// benchRun runs args b.N times and reports frames (counted by count in
// the output of one run) per second and nanoseconds per frame. The output
// is discarded, as by a pipe to another process: B/op is the command's
// own (not a buffer holding 77 MB of JSON).
func benchRun(b *testing.B, wantCode int, frames int, args ...string) {
	b.Helper()
	var errOut bytes.Buffer
	ios := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errOut}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		errOut.Reset()
		if code := Run(ios, args); code != wantCode {
			b.Fatalf("exit %d, want %d: %s", code, wantCode, errOut.String())
		}
	}
	b.StopTimer()
	reportFrames(b, frames)
}

func reportFrames(b *testing.B, frames int) {
	if frames <= 0 {
		b.Fatalf("no frames")
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(frames)
	b.ReportMetric(ns, "ns/frame")
	b.ReportMetric(1e9/ns, "frames/s")
}

// The deep core ends in _start, which has no CFI saying it is outermost:
// the trace is printed and flagged (exit 3) after its 100,000 frames.
const deepFrames = 100000

func BenchmarkBtDeepText(b *testing.B) {
	core, exe := deepCore(b)
	benchRun(b, ExitPartial, deepFrames, "bt", core, "--exe", exe, "--max-frames", "0")
}

func BenchmarkBtDeepJSON(b *testing.B) {
	core, exe := deepCore(b)
	benchRun(b, ExitPartial, deepFrames, "bt", core, "--exe", exe, "--max-frames", "0", "-o", "json")
}

// The same recursion 1,000,096 frames deep (deepenCore): ns/frame and
// B/op per frame as at 100,000 frames, the command being linear.
func BenchmarkBtDeepMillionText(b *testing.B) {
	core, exe := deepCore(b)
	deep, n := deepenCore(b, core, 900000)
	benchRun(b, ExitPartial, n, "bt", deep, "--exe", exe, "--max-frames", "0")
}

func BenchmarkBtDeepMillionJSON(b *testing.B) {
	core, exe := deepCore(b)
	deep, n := deepenCore(b, core, 900000)
	benchRun(b, ExitPartial, n, "bt", deep, "--exe", exe, "--max-frames", "0", "-o", "json")
}

// A small dynamic core whose libc frames are symbolized from libc's
// separate, compressed debug file (the corpus's b_abort/O2cfi), with the
// debug cache a first run leaves (its own: prefixes of libc's sections,
// as far as the trace read them, and the indexes made from them), as a
// user's second run finds it. (A cache that other commands, such as
// bt --locals, filled with whole sections answers faster still.)
func BenchmarkBtSmallDynamic(b *testing.B) {
	dir := corpus.Dir(b, "user")
	root := sysroot(b, dir)
	core := filepath.Join(dir, "b_abort", "O2cfi", "core")
	b.Setenv("UNWIND_DEBUG_CACHE", b.TempDir())
	out, errOut, code := runTB(b, "bt", core, "--sysroot", root, "-o", "json")
	if code != ExitOK {
		b.Fatalf("exit %d: %s", code, errOut)
	}
	benchRun(b, ExitOK, strings.Count(out, `"index"`), "bt", core, "--sysroot", root)
}

// The same core as a first run: every op starts with a new, empty debug
// cache (UNWIND_DEBUG_CACHE), so libc's compressed debug sections are
// decompressed and its unit index made inside the loop, as by the first
// `unwind bt` on a machine.
func BenchmarkBtSmallDynamicCold(b *testing.B) {
	dir := corpus.Dir(b, "user")
	root := sysroot(b, dir)
	core := filepath.Join(dir, "b_abort", "O2cfi", "core")
	benchRunCold(b, "bt", core, "--sysroot", root)
}

// benchRunCold runs args (a bt command) b.N times, each with a new, empty
// debug cache (UNWIND_DEBUG_CACHE), as a first run on a machine does, and
// reports frames/s and ns/frame like benchRun. The exit status is what a
// set-up run gave (0, or 3 where a trace is unreliable).
func benchRunCold(b *testing.B, args ...string) {
	b.Helper()
	caches := b.TempDir()
	b.Setenv("UNWIND_DEBUG_CACHE", filepath.Join(caches, "setup"))
	out, errOut, code := runTB(b, append(slices.Clone(args), "-o", "json")...)
	if code != ExitOK && code != ExitPartial {
		b.Fatalf("exit %d: %s", code, errOut)
	}
	frames := strings.Count(out, `"index"`)
	var errBuf bytes.Buffer
	ios := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errBuf}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cache := filepath.Join(caches, strconv.Itoa(i))
		os.Setenv("UNWIND_DEBUG_CACHE", cache)
		errBuf.Reset()
		b.StartTimer()
		if got := Run(ios, args); got != code {
			b.Fatalf("exit %d, want %d: %s", got, code, errBuf.String())
		}
		b.StopTimer()
		if _, err := os.Stat(cache); err != nil {
			b.Fatalf("the run made no debug cache: %v", err)
		}
		os.RemoveAll(cache)
		b.StartTimer()
	}
	b.StopTimer()
	reportFrames(b, frames)
}

// Every CPU of a lab vmcore (the nmibt capture) with its vmlinux.
func BenchmarkBtVmcoreCPUs(b *testing.B) {
	core := corpus.Vmcore(b, "nmibt", "nmibt")
	vmlinux := filepath.Join(corpus.Dir(b, "kernel"), "fp", "vmlinux")
	out, errOut, code := runTB(b, "bt", core, "--sym", vmlinux, "-o", "json")
	if code != ExitOK {
		b.Fatalf("exit %d: %s", code, errOut)
	}
	benchRun(b, ExitOK, strings.Count(out, `"index"`), "bt", core, "--sym", vmlinux)
}

// Every task of the production kdump (60 in this dump): bt --tasks, which
// reads the task list and unwinds and prints each task's stack. The exit
// status is whatever the set-up run gave (0, or 3 where a trace is
// unreliable); every timed run must give the same.
func BenchmarkBtProdTasks(b *testing.B) {
	dir := corpus.Dir(b, "prod")
	core := filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo")
	vmlinux := filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64")
	out, errOut, code := runTB(b, "bt", core, "--sym", vmlinux, "--tasks", "-o", "json")
	if code != ExitOK && code != ExitPartial {
		b.Fatalf("exit %d: %s", code, errOut)
	}
	benchRun(b, code, strings.Count(out, `"index"`), "bt", core, "--sym", vmlinux, "--tasks")
}

// Every task of the ~300-task dump scripts/make-taskdump.sh makes (Debian
// 12's 6.1 kernel, the prod corpus's vmlinux): issue 17's size, where the
// prod kdump has 60 tasks. Skipped, naming the folder, when the dump was
// not made (UNWIND_TASKDUMP or ~/.cache/unwind-corpus/taskdump).
func BenchmarkBtTasks300(b *testing.B) {
	core, vmlinux := corpus.TaskDump(b)
	out, errOut, code := runTB(b, "bt", core, "--sym", vmlinux, "--tasks", "-o", "json")
	if code != ExitOK && code != ExitPartial {
		b.Fatalf("exit %d: %s", code, errOut)
	}
	benchRun(b, code, strings.Count(out, `"index"`), "bt", core, "--sym", vmlinux, "--tasks")
	b.ReportMetric(float64(strings.Count(out, `"tid"`)), "traces")
}

// The same two kernel commands as a first run: a new, empty debug cache
// per op (vmlinux's symbol table, structure layouts, unit index and the
// units' lines and functions all read from the files).
func BenchmarkBtProdTasksCold(b *testing.B) {
	dir := corpus.Dir(b, "prod")
	benchRunCold(b, "bt", filepath.Join(dir, "kdump-sysrqc", "vmcore.kdump-lzo"),
		"--sym", filepath.Join(dir, "kernel", "vmlinux-6.1.0-47-cloud-amd64"), "--tasks")
}

func BenchmarkBtTasks300Cold(b *testing.B) {
	core, vmlinux := corpus.TaskDump(b)
	benchRunCold(b, "bt", core, "--sym", vmlinux, "--tasks")
}

// runTB is run for a benchmark's set-up.
func runTB(tb testing.TB, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := Run(&IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	return out.String(), errOut.String(), code
}
