package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/audit"
)

func TestAudit(t *testing.T) {
	ctx := context.Background()
	r := startLog(t, t.TempDir())
	r.fill(t, "a", 699) // and the artifact key's entry: 700
	c := r.client(t)

	var progress []uint64
	rep, st, err := c.Audit(ctx, client.AuditOptions{Progress: func(done, total uint64) {
		if total != 700 {
			t.Errorf("total %d", total)
		}
		progress = append(progress, done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || st == nil || rep.Totals.Entries != 700 || rep.Audited.Allows != 466 || rep.Audited.Denies != 233 {
		t.Fatalf("audit of a clean log: %+v", rep)
	}
	if len(progress) != 3 || progress[2] != 700 {
		t.Fatalf("progress %v", progress)
	}

	// Incremental: only the bundles holding new entries are fetched.
	r.fill(t, "b", 300)
	before := r.bundles.Load()
	rep, st2, err := c.Audit(ctx, client.AuditOptions{State: st})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || st2 == nil || rep.Start != 700 || rep.Audited.Entries != 300 || rep.Totals.Entries != 1000 {
		t.Fatalf("incremental audit: %+v", rep)
	}
	if n := r.bundles.Load() - before; n != 2 { // 512..767 (from 700) and 768..999
		t.Fatalf("the incremental audit fetched %d bundles", n)
	}

	// A client without the log key cannot audit.
	bare, _ := client.New(r.url)
	if _, _, err := bare.Audit(ctx, client.AuditOptions{}); !errors.Is(err, client.ErrNoLogKey) {
		t.Fatalf("audit without a key: %v", err)
	}
}

// TestAuditTamperedDatabase changes one byte of one stored entry with SQL:
// the audit fails and names the entry.
func TestAuditTamperedDatabase(t *testing.T) {
	ctx := context.Background()
	r := startLog(t, t.TempDir())
	r.fill(t, "a", 599) // and the artifact key's entry: 600
	c := r.client(t)
	_, st, err := c.Audit(ctx, client.AuditOptions{})
	if err != nil || st == nil {
		t.Fatal(err)
	}
	r.tamper(t, `UPDATE entries SET leaf = CAST(replace(CAST(leaf AS TEXT), '"deploy"', '"deplOy"') AS BLOB) WHERE idx = 300`)
	rep, st2, err := c.Audit(ctx, client.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || st2 != nil {
		t.Fatal("a tampered database passes the audit")
	}
	var named bool
	for _, p := range rep.Failures {
		if p.Code == audit.ProblemLeafHashMismatch && p.Index != nil && *p.Index == 300 {
			named = true
		}
	}
	if !named {
		t.Fatalf("the audit does not name entry 300: %+v", rep.Failures)
	}
	// The incremental audit from before the tampering does not look at
	// entry 300 again, until the log grows past it; a new audit does.
	rep, _, _ = c.Audit(ctx, client.AuditOptions{State: st})
	if !rep.OK {
		t.Fatalf("nothing new, yet: %+v", rep.Failures)
	}

	// Deleting entries (a truncated log) fails the audit too.
	r.tamper(t, `DELETE FROM entries WHERE idx >= 590`)
	rep, _, _ = r.client(t, client.WithMaxAttempts(1)).Audit(ctx, client.AuditOptions{})
	if rep.OK {
		t.Fatal("a truncated log passes the audit")
	}
	found := false
	for _, p := range rep.Failures {
		if p.Code == audit.ProblemFetch && strings.Contains(p.Message, "entries 512 to 599") {
			found = true
		}
	}
	if !found {
		t.Fatalf("failures %+v", rep.Failures)
	}
}

// TestAuditFork audits a log, then a fork of it signed with the same key.
func TestAuditFork(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	a := startLog(t, dirA)
	a.fill(t, "a", 299) // and the artifact key's entry: 300
	_, st, err := a.client(t).Audit(ctx, client.AuditOptions{})
	if err != nil || st == nil {
		t.Fatal(err)
	}
	b := startLog(t, cloneKeys(t, dirA))
	b.fill(t, "b", 399)
	rep, st2, err := b.client(t).Audit(ctx, client.AuditOptions{State: st})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || st2 != nil || rep.Inconsistency == nil {
		t.Fatalf("a fork passes the audit: %+v", rep)
	}
	if rep.Failures[0].Code != audit.ProblemInconsistent || !strings.Contains(rep.Inconsistency.OldCheckpoint, "\n300\n") ||
		!strings.Contains(rep.Inconsistency.NewCheckpoint, "\n400\n") || len(rep.Inconsistency.Proof) == 0 {
		t.Fatalf("evidence %+v", rep.Inconsistency)
	}

	// A log rolled back to a smaller tree.
	c := startLog(t, cloneKeys(t, dirA))
	c.fill(t, "a", 200)
	rep, _, _ = c.client(t).Audit(ctx, client.AuditOptions{State: st})
	if rep.OK || rep.Failures[0].Code != audit.ProblemRollback {
		t.Fatalf("a rollback passes: %+v", rep.Failures)
	}
}

func TestTrustedState(t *testing.T) {
	ctx := context.Background()
	dirA := t.TempDir()
	a := startLog(t, dirA)
	a.fill(t, "a", 9) // and the artifact key's entry: 10
	state := filepath.Join(t.TempDir(), "trusted.checkpoint")
	ca := a.client(t, client.WithTrustedState(state))
	if _, ok, err := ca.TrustedCheckpoint(); ok || err != nil {
		t.Fatalf("a trusted checkpoint before any: %v %v", ok, err)
	}
	cp, err := ca.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trusted, ok, err := ca.TrustedCheckpoint()
	if err != nil || !ok || trusted.Size != 10 || trusted.Hash != cp.Hash {
		t.Fatalf("trusted %+v %v %v", trusted, ok, err)
	}
	// The log grows: consistent, trusted.
	a.fill(t, "b", 5)
	if _, _, err := ca.Submit(ctx, testDecision("c-1", "allow", "")); err != nil {
		t.Fatal(err)
	}
	if trusted, _, _ = ca.TrustedCheckpoint(); trusted.Size != 16 {
		t.Fatalf("trusted size %d after a submission", trusted.Size)
	}
	// An old receipt (its checkpoint is older than the trusted one) is
	// checked against it, and does not replace it.
	if _, err := ca.Decision(ctx, "a-0"); err != nil {
		t.Fatal(err)
	}
	if trusted, _, _ = ca.TrustedCheckpoint(); trusted.Size != 16 {
		t.Fatalf("trusted size %d", trusted.Size)
	}

	// The same client talks to a fork of the log: the split view is caught
	// with evidence.
	b := startLog(t, cloneKeys(t, dirA))
	b.fill(t, "z", 19)
	cb := b.client(t, client.WithTrustedState(state))
	_, err = cb.Checkpoint(ctx)
	var ie *verifier.InconsistencyError
	if !errors.As(err, &ie) || !errors.Is(err, verifier.ErrInconsistent) {
		t.Fatalf("a fork is not caught: %v", err)
	}
	if ie.Old.Size != 16 || ie.New.Size != 20 || len(ie.Proof) == 0 || len(ie.Old.Note) == 0 || len(ie.New.Note) == 0 {
		t.Fatalf("evidence %+v", ie)
	}
	// The evidence stands on its own.
	if _, _, err := verifier.Consistency(ie.Old.Note, ie.New.Note, ie.Proof, a.keys.Verifier); !errors.As(err, new(*verifier.InconsistencyError)) {
		t.Fatalf("the evidence does not verify as a fork: %v", err)
	}
	if trusted, _, _ = cb.TrustedCheckpoint(); trusted.Size != 16 {
		t.Fatalf("the fork replaced the trusted checkpoint: %d", trusted.Size)
	}
	// A smaller fork too, and a same-size one.
	c := startLog(t, cloneKeys(t, dirA))
	c.fill(t, "y", 11)
	if _, err := c.client(t, client.WithTrustedState(state)).Checkpoint(ctx); !errors.As(err, &ie) {
		t.Fatalf("a smaller fork is not caught: %v", err)
	}
	d := startLog(t, cloneKeys(t, dirA))
	d.fill(t, "x", 15)
	if _, err := d.client(t, client.WithTrustedState(state)).Checkpoint(ctx); !errors.As(err, &ie) || ie.Old.Size != 16 || ie.New.Size != 16 {
		t.Fatalf("a same-size fork is not caught: %v", err)
	}
	// A trusted state file of another log's key is refused.
	other := startLog(t, t.TempDir())
	if _, err := other.client(t, client.WithTrustedState(state)).Checkpoint(ctx); err == nil || errors.As(err, &ie) {
		t.Fatalf("another log's trusted state: %v", err)
	}
}
