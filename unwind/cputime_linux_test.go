//go:build linux

package unwind

import (
	"runtime"
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling OS thread, so benchmarks can
// report frames per CPU-second on a loaded machine. lock pins the goroutine.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func lockThread() func() { runtime.LockOSThread(); return runtime.UnlockOSThread }
