//go:build !crashpoint

package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/govlog/govlog/log"
)

// TestNoCrashPoint: the production binary ignores the crash suite's
// environment.
func TestNoCrashPoint(t *testing.T) {
	type backend struct{ log.Backend }
	b := &backend{}
	t.Setenv("GOVLOG_TEST_CRASH_POINT", "before-commit")
	t.Setenv("GOVLOG_TEST_CRASH_BATCH", "1")
	got, err := withCrashPoint(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || got != log.Backend(b) {
		t.Fatalf("withCrashPoint = %v, %v: want the backend unchanged", got, err)
	}
}
