package loadgen

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target for a process running a
// load (govlog bench, make bench), unless GOGC is set. What the generator
// allocates — decisions, answers, decoded receipts — is garbage as soon as
// the receipt is verified, and its live heap is small (a few MiB, a few
// times that with batches of 1,000): collecting 4× less often than Go's
// default saves CPU on the cores it shares with the server, for a larger
// heap, as govlogd's own setting does (docs/performance.md).
const GCPercent = 400

// SetGCPercent sets the process's garbage collector target to GCPercent
// unless the GOGC environment variable is set, and returns the function
// that restores the previous target.
func SetGCPercent() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(old) }
}
