package loadgen

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target for a process running a
// load of single submissions, claims or proof lookups (govlog bench, make
// bench), unless GOGC is set. What the generator allocates — decisions,
// answers, decoded receipts — is garbage as soon as the receipt is
// verified, and its live heap is small: collecting 4× less often than
// Go's default saves CPU on the cores it shares with the server, as
// govlogd's own setting does. Not through the batch endpoint: a batch's
// body and answer are megabytes, and the larger heap cost more CPU than
// the collections it saved (docs/performance-log.md, *The load generator's CPU
// per decision*).
const GCPercent = 400

// SetGCPercent sets the process's garbage collector target to GCPercent
// for a load of batch decisions per request, when batch ≤ 1 and the GOGC
// environment variable is not set, and returns the function that restores
// the previous target.
func SetGCPercent(batch int) (restore func()) {
	if batch > 1 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(GCPercent)
	return func() { debug.SetGCPercent(old) }
}
