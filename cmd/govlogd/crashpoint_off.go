//go:build !crashpoint

package main

import (
	"log/slog"

	"github.com/govlog/govlog/log"
)

// withCrashPoint returns b unchanged: the crash points of the crash suite
// exist only in a govlogd built with -tags crashpoint (crashpoint.go).
func withCrashPoint(b log.Backend, _ *slog.Logger) (log.Backend, error) { return b, nil }
