package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	// A server answering every submission with one real receipt of
	// another decision: each verifies, but only the first is of the
	// decision submitted.
	var (
		mu     sync.Mutex
		replay []byte
	)
	replayer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/decisions" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if replay == nil {
			resp, err := http.Post(d.url+r.URL.Path, "application/json", r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusCreated {
				http.Error(w, fmt.Sprintf("%d %v %s", resp.StatusCode, err, body), http.StatusBadGateway)
				return
			}
			replay = body
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(replay)
	}))
	defer replayer.Close()
	for _, replayed := range []bool{false, true} {
		rep, err = loadgen.Run(ctx, loadgen.Config{URL: replayer.URL, N: 10, Concurrency: 1, LogKey: d.logKey(t), Replayed: replayed})
		if err != nil {
			t.Fatal(err)
		}
		want := loadgen.Report{Acknowledged: 1, VerifyFailures: 9}
		if replayed {
			want = loadgen.Report{Acknowledged: 10}
		}
		if rep.Acknowledged != want.Acknowledged || rep.VerifyFailures != want.VerifyFailures || len(rep.Errors) != 0 {
			t.Fatalf("replayed receipts (Replayed %v): %+v", replayed, rep)
		}
		if !replayed && !strings.Contains(rep.FirstVerifyErr, "not of") {
			t.Errorf("replayed receipts: first failure %q does not name the entry", rep.FirstVerifyErr)
		}
	}
	rep, err = loadgen.RunProofs(ctx, loadgen.Config{URL: d.url, N: 500, Concurrency: 8, LogKey: d.logKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Acknowledged != 500 || rep.VerifyFailures != 0 {
		t.Fatalf("proofs: %+v", rep)
	}
}
