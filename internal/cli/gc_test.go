package cli

import (
	"os"
	"runtime/debug"
	"testing"
)

// Main's collector target applies unless the user set GOGC.
func TestSetProcessGC(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	gogc, had := os.LookupEnv("GOGC")
	defer func() {
		if had {
			os.Setenv("GOGC", gogc)
		} else {
			os.Unsetenv("GOGC")
		}
	}()

	os.Unsetenv("GOGC")
	setProcessGC()
	if got := debug.SetGCPercent(100); got != processGCPercent {
		t.Errorf("GOGC unset: collector target %d%%, want %d%%", got, processGCPercent)
	}
	os.Setenv("GOGC", "100")
	setProcessGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100 set by the user: collector target %d%%, want it kept", got)
	}
}
