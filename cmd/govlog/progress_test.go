package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		done, total uint64
		elapsed     time.Duration
		want        string
	}{
		{0, 100, time.Second, "[                              ] 0/100 entries, 0/s"},
		{50, 100, 5 * time.Second, "[===============               ] 50/100 entries, 10/s, 5s left"},
		{100, 100, 10 * time.Second, "[==============================] 100/100 entries, 10/s"},
		{120, 0, 2 * time.Second, "120 entries, 60/s"},
	} {
		if got := progressLine(tc.done, tc.total, "entries", tc.elapsed); got != tc.want {
			t.Errorf("progressLine(%d, %d, %v) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

// TestQuietWithoutTerminal: progress and waiting messages are for a
// terminal only; tests run without one.
func TestQuietWithoutTerminal(t *testing.T) {
	if terminal() != nil {
		t.Skip("stderr is a terminal")
	}
	if p := newProgress(false, "entries"); p != nil {
		t.Fatal("a progress display without a terminal")
	}
	var p *progress
	p.update(1, 2) // a nil display does nothing
	p.finish()
	waiting(false, "x")()
	// The retry lines escape what the server said.
	var b strings.Builder
	retryLogger(&b, "govlog submit").Warn("retrying govlog request", "attempt", 2, "wait", 1500*time.Millisecond,
		"error", errors.New("503 log_unavailable: a\n\x1b[2Kb"))
	if got := b.String(); got != "\r\x1b[Kgovlog submit: attempt 2: 503 log_unavailable: a\\n\\x1b[2Kb; retrying in 1.5s\n" {
		t.Errorf("retry line %q", got)
	}
}
