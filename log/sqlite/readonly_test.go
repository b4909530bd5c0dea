package sqlite

import (
	"context"
	"errors"
	"testing"

	"github.com/govlog/govlog/log"
)

// TestFailureKeptByBatchWithoutWrites: after a failed Append, a batch that
// writes nothing (an identical resubmission, a refused entry) succeeds
// from the reloaded state but does not clear the failure, so that Ready
// keeps probing storage: on a read-only file system reads and such
// batches work while every write fails, and readiness must not say yes.
// The failure clears once a batch commits.
func TestFailureKeptByBatchWithoutWrites(t *testing.T) {
	ctx := context.Background()
	b := openAt(t, tempDB(t), Options{})
	sign, _ := newSign(t)
	logged := decision(t, "d-0", decisionOpts{})
	mustAppend(t, b, sign, logged)

	// Writes fail.
	b.hooks.beforeCommit = func() error { return errors.New("read-only file system") }
	_, _, err := b.Append(ctx, []*log.Entry{decision(t, "d-1", decisionOpts{})}, sign)
	wantErr(t, "Append", err, log.ErrUnavailable)

	// Nothing to write: answered, and still failed.
	res, cp := mustAppend(t, b, sign, logged, decision(t, "d-2", decisionOpts{parent: "nothing"}))
	if !res[0].Existing || res[0].Index != 0 || !errors.Is(res[1].Err, log.ErrUnknownParent) || cp.Size != 1 {
		t.Fatalf("batch without writes: %+v, size %d", res, cp.Size)
	}
	if b.failure.Load() == nil {
		t.Fatal("a batch that wrote nothing cleared the storage failure")
	}
	// A write still fails.
	_, _, err = b.Append(ctx, []*log.Entry{decision(t, "d-1", decisionOpts{})}, sign)
	wantErr(t, "Append", err, log.ErrUnavailable)

	// Writes work again: the next batch that commits clears the failure.
	b.hooks.beforeCommit = nil
	res, cp = mustAppend(t, b, sign, decision(t, "d-1", decisionOpts{}))
	if res[0].Existing || res[0].Index != 1 || cp.Size != 2 {
		t.Fatalf("after recovery: %+v, size %d", res, cp.Size)
	}
	if f := b.failure.Load(); f != nil {
		t.Fatalf("the failure is not cleared by a committed batch: %v", f.err)
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}
