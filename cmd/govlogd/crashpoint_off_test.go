//go:build !crashpoint

package main

import (
	"crypto/rand"
	"io"
	"log/slog"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
)

// TestNoCrashPoint: the production binary ignores the crash suite's
// environment.
func TestNoCrashPoint(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/crash")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	b, _ := publishedLog(t, signer, "c", 1)
	t.Setenv("GOVLOG_TEST_CRASH_POINT", "before-commit")
	t.Setenv("GOVLOG_TEST_CRASH_BATCH", "1")
	got, err := withCrashPoint(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || got != log.Backend(b) {
		t.Fatalf("withCrashPoint = %v, %v: want the backend unchanged", got, err)
	}
}
