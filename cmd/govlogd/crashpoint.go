//go:build crashpoint

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"syscall"

	"github.com/govlog/govlog/log"
)

// Test-only fault injection, for the crash suite (make test-crash), built
// only into a govlogd built with -tags crashpoint (the production binary
// has crashpoint_off.go instead, and reads none of this): with
// GOVLOG_TEST_CRASH_POINT set, govlogd kills itself with SIGKILL at that
// point of the GOVLOG_TEST_CRASH_BATCH-th batch that appends entries
// (default 1):
//
//	before-commit  inside the batch's storage transaction: entries, index
//	               rows and tiles written, the checkpoint being signed,
//	               nothing committed
//	after-commit   after the batch committed, before any submitter of it
//	               is answered
const (
	crashPointEnv = "GOVLOG_TEST_CRASH_POINT"
	crashBatchEnv = "GOVLOG_TEST_CRASH_BATCH"
)

// withCrashPoint wraps b as the environment asks; without
// GOVLOG_TEST_CRASH_POINT it returns b unchanged.
func withCrashPoint(b log.Backend, logger *slog.Logger) (log.Backend, error) {
	point := os.Getenv(crashPointEnv)
	if point == "" {
		return b, nil
	}
	if point != "before-commit" && point != "after-commit" {
		return nil, fmt.Errorf("%s must be before-commit or after-commit, not %q", crashPointEnv, point)
	}
	n := 1
	if s := os.Getenv(crashBatchEnv); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			return nil, fmt.Errorf("%s must be a positive integer, not %q", crashBatchEnv, s)
		}
	}
	logger.Warn("TEST ONLY: govlogd will kill itself", "point", point, "batch", n)
	c := &crashBackend{Backend: b, point: point, n: n}
	if tr, ok := b.(log.TileReader); ok {
		// Keep serving the backend's own tiles.
		return &crashTileBackend{crashBackend: c, TileReader: tr}, nil
	}
	return c, nil
}

// crashBackend kills the process at its point of its n-th batch.
type crashBackend struct {
	log.Backend
	point string
	n     int
	// batches counts the batches with entries; Append is called by one
	// goroutine at a time.
	batches int
}

type crashTileBackend struct {
	*crashBackend
	log.TileReader
}

func (c *crashBackend) Append(ctx context.Context, batch []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	hit := false
	if len(batch) > 0 {
		c.batches++
		hit = c.batches == c.n
	}
	if hit && c.point == "before-commit" {
		inner := sign
		sign = func(size uint64, hash [32]byte) (log.Checkpoint, error) {
			killSelf()
			return inner(size, hash)
		}
	}
	res, cp, err := c.Backend.Append(ctx, batch, sign)
	if hit && c.point == "after-commit" && err == nil {
		killSelf()
	}
	return res, cp, err
}

// killSelf sends SIGKILL to this process and waits for it.
func killSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
