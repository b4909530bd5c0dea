package loadgen

import (
	"runtime/debug"
	"testing"
)

func TestSetGCPercent(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	// percent returns the target now (setting it back).
	percent := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	restore := SetGCPercent(1)
	if got := percent(); got != GCPercent {
		t.Fatalf("single submissions: GOGC %d, want %d", got, GCPercent)
	}
	restore()
	if got := percent(); got != 100 {
		t.Fatalf("restored: GOGC %d, want 100", got)
	}
	SetGCPercent(1000)
	if got := percent(); got != 100 {
		t.Fatalf("batches: GOGC %d, want it left at 100", got)
	}
	t.Setenv("GOGC", "50")
	SetGCPercent(1)
	if got := percent(); got != 100 {
		t.Fatalf("GOGC set: %d, want it left alone", got)
	}
}
