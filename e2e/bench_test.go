package e2e

import (
	"context"
	"crypto/rand"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/internal/loadgen"
)

// TestBenchTool runs the load generator behind `govlog bench` against the
// real binary: every submission must be acknowledged and every receipt and
// proof verified.
func TestBenchTool(t *testing.T) {
	d := startDaemon(t, t.TempDir(), "")
	ctx := context.Background()
	for _, batch := range []int{0, 50} {
		rep, err := loadgen.Run(ctx, loadgen.Config{URL: d.url, N: 400, Concurrency: 8, Batch: batch, LogKey: d.logKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Acknowledged != 400 || rep.VerifyFailures != 0 || len(rep.Errors) != 0 {
			t.Fatalf("batch %d: %+v", batch, rep)
		}
	}
	// A wrong log key: nothing verifies, and the report says so.
	_, vkey, err := note.GenerateKey(rand.Reader, d.logKey(t).Name())
	if err != nil {
		t.Fatal(err)
	}
	other, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: d.url, N: 20, Concurrency: 2, LogKey: other})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Acknowledged != 0 || rep.VerifyFailures != 20 {
		t.Fatalf("with another key: %+v", rep)
	}
	rep, err = loadgen.RunProofs(ctx, loadgen.Config{URL: d.url, N: 500, Concurrency: 8, LogKey: d.logKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Acknowledged != 500 || rep.VerifyFailures != 0 {
		t.Fatalf("proofs: %+v", rep)
	}
}
