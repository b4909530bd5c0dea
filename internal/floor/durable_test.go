package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/rfc6962"
)

// groupCommit answers a decision only once its body and leaf hash are in
// the fsynced file, and reports a failed write to every decision of the
// group.
func TestGroupCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allow := []byte(`{"receipt":"allow","artifact":"aGVhZGVy.cGF5bG9hZA.c2ln"}`)
	deny := []byte(`{"receipt":"deny"}`)
	dir := t.TempDir()
	g, err := newGroupCommit(ctx, dir, [][]byte{allow, deny})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(g.artifact[&allow[0]]); got != "aGVhZGVy.cGF5bG9hZA" {
		t.Errorf("the allow's signing input is %q, want the artifact up to its signature", got)
	}
	if g.artifact[&deny[0]] != nil {
		t.Error("a denial's receipt has a signing input")
	}
	const n = 200
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		bodies[i] = fmt.Appendf(nil, `{"id":"decision-%03d"}`, i)
		receipt := allow
		if i%3 == 0 {
			receipt = deny
		}
		wg.Go(func() {
			if err := g.commit(ctx, bodies[i], receipt); err != nil {
				t.Errorf("commit %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	written, err := os.ReadFile(g.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		if !bytes.Contains(written, append(rfc6962.DefaultHasher.HashLeaf(b), b...)) {
			t.Fatalf("decision %d answered, but its leaf hash and body are not in the file", i)
		}
	}
	// A write that fails fails every decision waiting for it.
	g.f.Close()
	if err := g.commit(ctx, []byte(`{}`), deny); err == nil {
		t.Error("commit succeeded with the file closed")
	}
	// A decision whose request has ended stops waiting.
	done, stop := context.WithCancel(ctx)
	stop()
	cancel()
	if err := g.commit(done, []byte(`{}`), deny); err == nil {
		t.Error("commit succeeded with its context cancelled and the committer stopped")
	}
	if err := g.close(); err == nil {
		t.Error("close of a closed file: no error")
	}
	if _, err := os.Stat(g.f.Name()); !os.IsNotExist(err) {
		t.Errorf("close left the file: %v", err)
	}
}
