package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/verifier"
)

// exampleLog starts a govlog server on a new log for an example; stop it
// with the returned function.
func exampleLog() (*realLog, func()) {
	dir, err := os.MkdirTemp("", "govlog-example-")
	if err != nil {
		panic(err)
	}
	t := &panicTB{}
	r := startLog(t, dir)
	return r, func() {
		for i := len(t.cleanups) - 1; i >= 0; i-- {
			t.cleanups[i]()
		}
		os.RemoveAll(dir)
	}
}

// A runtime checks the authorization artifact of an allow before it acts.
func ExampleClient_VerifyArtifact() {
	l, stop := exampleLog()
	defer stop()
	ctx := context.Background()

	// The control plane logs an allow and hands its artifact to the runtime.
	controlPlane, _ := client.New(l.url, client.WithLogKey(l.keys.Verifier))
	receipt, _, err := controlPlane.Submit(ctx, []byte(`{"id":"deploy-42","outcome":"allow",`+
		`"decided_at":"2026-11-25T18:00:00Z","subject":"agent-7","action":"deploy","resource":"svc/api",`+
		`"policy":{"id":"prod-deploy"}}`))
	if err != nil {
		fmt.Println(err)
		return
	}

	// The runtime knows the log's key and its own audience name; it fetches
	// (and caches) the artifact keys from the log.
	runtime, _ := client.New(l.url, client.WithLogKey(l.keys.Verifier), client.WithAudience("runtime.example"))
	claims, err := runtime.VerifyArtifact(ctx, receipt.Artifact, client.Authorization{Action: "deploy", Resource: "svc/api"})
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Printf("authorized: %s may %s %s (decision %s, entry %d)\n", claims.Subject, claims.Action, claims.Resource, claims.ID, claims.Govlog.Index)

	_, err = runtime.VerifyArtifact(ctx, receipt.Artifact, client.Authorization{Action: "delete", Resource: "svc/api"})
	fmt.Println("delete refused:", errors.Is(err, client.ErrNotAuthorized))
	// Output:
	// authorized: agent-7 may deploy svc/api (decision deploy-42, entry 1)
	// delete refused: true
}

// An auditor replays the whole log once, then only what is new.
func ExampleClient_Audit() {
	l, stop := exampleLog()
	defer stop()
	ctx := context.Background()
	l.fill(&panicTB{}, "d", 600)

	auditor, _ := client.New(l.url, client.WithLogKey(l.keys.Verifier))
	report, state, err := auditor.Audit(ctx, client.AuditOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("ok=%v: %d entries, %d allows, %d denies, tree size %d\n",
		report.OK, report.Totals.Entries, report.Totals.Allows, report.Totals.Denies, report.Checkpoint.Size)

	// Save the state (state.MarshalBinary), and next time audit only what
	// was logged since.
	l.fill(&panicTB{}, "e", 100)
	report, _, err = auditor.Audit(ctx, client.AuditOptions{State: state})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("ok=%v: entries %d to %d replayed\n", report.OK, report.Start, report.Start+report.Audited.Entries-1)
	// Output:
	// ok=true: 601 entries, 400 allows, 200 denies, tree size 601
	// ok=true: entries 601 to 700 replayed
}

// A client that keeps a trusted checkpoint catches a log that shows it
// two different histories.
func ExampleWithTrustedState() {
	l, stop := exampleLog()
	defer stop()
	ctx := context.Background()
	l.fill(&panicTB{}, "d", 9) // and the artifact key's entry

	dir, _ := os.MkdirTemp("", "govlog-example-state-")
	defer os.RemoveAll(dir)
	state := filepath.Join(dir, "trusted-checkpoint")
	c, _ := client.New(l.url, client.WithLogKey(l.keys.Verifier), client.WithTrustedState(state))
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("trusted size", cp.Size)

	// The operator forks the log: the same key signs another history.
	fork, stopFork := exampleForkOf(l)
	defer stopFork()
	fork.fill(&panicTB{}, "other", 11)
	c2, _ := client.New(fork.url, client.WithLogKey(l.keys.Verifier), client.WithTrustedState(state))
	_, err = c2.Checkpoint(ctx)
	var split *verifier.InconsistencyError
	if errors.As(err, &split) {
		fmt.Printf("split view: checkpoints of size %d and %d, consistency proof of %d hashes\n",
			split.Old.Size, split.New.Size, len(split.Proof))
	}
	// Output:
	// trusted size 10
	// split view: checkpoints of size 10 and 12, consistency proof of 3 hashes
}

// exampleForkOf starts a second log with the keys of l.
func exampleForkOf(l *realLog) (*realLog, func()) {
	t := &panicTB{}
	dir := cloneKeys(t, l.dir)
	r := startLog(t, dir)
	return r, func() {
		for i := len(t.cleanups) - 1; i >= 0; i-- {
			t.cleanups[i]()
		}
	}
}

// panicTB lets the examples use the test helpers: it panics on failure.
type panicTB struct {
	testing.TB
	cleanups []func()
}

func (p *panicTB) Helper()                           {}
func (p *panicTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (p *panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (p *panicTB) Cleanup(f func())                  { p.cleanups = append(p.cleanups, f) }
func (p *panicTB) TempDir() string {
	dir, err := os.MkdirTemp("", "govlog-example-")
	if err != nil {
		panic(err)
	}
	p.cleanups = append(p.cleanups, func() { os.RemoveAll(dir) })
	return dir
}
