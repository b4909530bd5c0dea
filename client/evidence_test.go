package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
)

func TestClaimsRevocationsStatusKeys(t *testing.T) {
	ctx := context.Background()
	r := startLog(t, t.TempDir())
	c := r.client(t)
	rec, _, err := c.Submit(ctx, testDecision("d-1", "allow", `,"max_executions":2`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	claim := func(id string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"decision_id":"d-1","status":"started","at":%q,"artifact":%q}`, id, at, rec.Artifact)
	}
	for _, id := range []string{"x-1", "x-2"} {
		if _, created, err := c.SubmitExecution(ctx, claim(id)); err != nil || !created {
			t.Fatalf("claim %s: %v", id, err)
		}
	}
	// A third claim is recorded, and refused: 409 with the receipt.
	_, _, err = c.SubmitExecution(ctx, claim("x-3"))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != log.ViolationUsesExhausted || ae.Receipt == nil || ae.Receipt.ID != "x-3" {
		t.Fatalf("third claim: %v", err)
	}
	st, err := c.Authorization(ctx, "d-1")
	if err != nil || st.Status != "exhausted" || st.Uses != 2 || len(st.Receipts) != 3 {
		t.Fatalf("status %+v, %v", st, err)
	}
	if _, created, err := c.Revoke(ctx, fmt.Appendf(nil, `{"id":"r-1","decision_id":"d-1","revoked_at":%q}`, at)); err != nil || !created {
		t.Fatalf("revoke: %v", err)
	}
	if st, err = c.Authorization(ctx, "d-1"); err != nil || st.Status != "revoked" || len(st.Receipts) != 4 {
		t.Fatalf("status after the revocation %+v, %v", st, err)
	}
	if _, err := c.Authorization(ctx, "nope"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("unknown decision: %v", err)
	}
	keys, err := c.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].KID != r.keys.Artifact.KeyID() || keys[0].Index != 0 {
		t.Fatalf("keys %+v, %v", keys, err)
	}
}
