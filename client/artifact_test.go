package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// countingTransport counts the JWKS fetches.
type countingTransport struct{ jwks atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks.json") {
		c.jwks.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestVerifyArtifact(t *testing.T) {
	ctx := context.Background()
	r := startLog(t, t.TempDir())
	receipt, _, err := r.client(t).Submit(ctx, testDecision("d-1", "allow", ""))
	if err != nil || receipt.Artifact == "" {
		t.Fatalf("submit: %v", err)
	}
	deny, _, err := r.client(t).Submit(ctx, testDecision("d-2", "deny", ""))
	if err != nil {
		t.Fatal(err)
	}
	other := startLog(t, t.TempDir()) // same origin, other keys
	foreign, _, err := other.client(t).Submit(ctx, testDecision("d-1", "allow", ""))
	if err != nil {
		t.Fatal(err)
	}

	ct := &countingTransport{}
	rt := r.client(t, client.WithAudience("runtime.example"), client.WithHTTPClient(&http.Client{Transport: ct}))
	want := client.Authorization{Action: "deploy", Resource: "svc/api"}
	claims, err := rt.VerifyArtifact(ctx, receipt.Artifact, want)
	if err != nil {
		t.Fatal(err)
	}
	if claims.ID != "d-1" || claims.Subject != "agent-7" || claims.Govlog.Index != receipt.Index {
		t.Fatalf("claims %+v", claims)
	}
	withReceipt := want
	withReceipt.Receipt = []byte(receipt.TLogProof)
	withReceipt.Subject = "agent-7"
	if _, err := rt.VerifyArtifact(ctx, receipt.Artifact, withReceipt); err != nil {
		t.Fatalf("with its receipt: %v", err)
	}

	for _, tc := range []struct {
		name  string
		token string
		want  client.Authorization
		err   error
	}{
		{"other action", receipt.Artifact, client.Authorization{Action: "delete", Resource: "svc/api"}, client.ErrNotAuthorized},
		{"other resource", receipt.Artifact, client.Authorization{Action: "deploy", Resource: "svc/db"}, client.ErrNotAuthorized},
		{"no resource", receipt.Artifact, client.Authorization{Action: "deploy"}, client.ErrNotAuthorized},
		{"other subject", receipt.Artifact, client.Authorization{Action: "deploy", Resource: "svc/api", Subject: "agent-8"}, client.ErrNotAuthorized},
		{"expired", receipt.Artifact, client.Authorization{Action: "deploy", Resource: "svc/api", Now: time.Now().Add(time.Hour)}, artifact.ErrInvalid},
		{"not yet valid", receipt.Artifact, client.Authorization{Action: "deploy", Resource: "svc/api", Now: time.Now().Add(-time.Hour)}, artifact.ErrInvalid},
		{"another log's key", foreign.Artifact, want, verifier.ErrBadSignature},
		{"flipped signature", flipLast(receipt.Artifact), want, verifier.ErrBadSignature},
		{"another receipt", receipt.Artifact, client.Authorization{Action: "deploy", Resource: "svc/api", Receipt: []byte(deny.TLogProof)}, artifact.ErrBinding},
		{"garbage", "a.b.c", want, artifact.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.VerifyArtifact(ctx, tc.token, tc.want)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	// The key set is fetched once: an unknown key id fetches it again only
	// 30s after the last fetch, so forged tokens cannot hammer the log.
	if n := ct.jwks.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches", n)
	}
	// Without the audience configured, an artifact for one is refused.
	if _, err := r.client(t).VerifyArtifact(ctx, receipt.Artifact, want); !errors.Is(err, artifact.ErrInvalid) {
		t.Fatalf("audience: %v", err)
	}
	// Pinned keys: no request at all.
	set, err := jwk.Fetch(ctx, r.url+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	offline, err := client.New("http://127.0.0.1:1", client.WithLogKey(r.keys.Verifier), client.WithJWKS(set), client.WithAudience("runtime.example"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := offline.VerifyArtifact(ctx, receipt.Artifact, want); err != nil {
		t.Fatalf("offline: %v", err)
	}
	if _, err := offline.VerifyArtifact(ctx, foreign.Artifact, want); !errors.Is(err, verifier.ErrBadSignature) {
		t.Fatalf("offline, another key: %v", err)
	}
}

// flipLast changes the last character of a token's signature.
func flipLast(token string) string {
	b := []byte(token)
	i := len(b) - 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestVerifyReceipt(t *testing.T) {
	ctx := context.Background()
	r := startLog(t, t.TempDir())
	c := r.client(t)
	receipt, _, err := c.Submit(ctx, testDecision("d-1", "allow", ""))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.VerifyReceipt([]byte(receipt.TLogProof)); err != nil || v.Entry.ID != "d-1" {
		t.Fatalf("tlog-proof: %v", err)
	}
	// Every bit of the proof matters.
	proof := []byte(receipt.TLogProof)
	for i := range proof {
		for _, bit := range []byte{1, 0x20} {
			bad := []byte(receipt.TLogProof)
			bad[i] ^= bit
			if _, err := c.VerifyReceipt(bad); err == nil && !isSigOfOtherKey(proof, i) {
				t.Fatalf("a receipt with bit %x of byte %d flipped verifies", bit, i)
			}
		}
	}
	other := startLog(t, t.TempDir())
	if _, err := other.client(t).VerifyReceipt(proof); !errors.Is(err, verifier.ErrBadSignature) {
		t.Fatalf("another log's key: %v", err)
	}
	if _, err := (&client.Client{}).VerifyReceipt(proof); !errors.Is(err, client.ErrNoLogKey) {
		t.Fatalf("no key: %v", err)
	}
}

// isSigOfOtherKey reports whether byte i is in a signature line of another
// key than the log's (the checkpoint has none, so never).
func isSigOfOtherKey([]byte, int) bool { return false }
