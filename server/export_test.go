package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

func TestExport(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := range 40 {
		outcome := "allow"
		if i%4 == 0 {
			outcome = "deny"
		}
		if r := e.post("/v1/decisions", decision(fmt.Sprintf("d-%d", i), outcome, map[string]any{"subject": fmt.Sprintf("agent-%d", i%3)})); r.status != http.StatusCreated {
			t.Fatalf("submit: %s", r)
		}
	}
	if r := e.post("/v1/executions", execution("x-1", "d-1")); r.status != http.StatusCreated && r.status != http.StatusConflict {
		t.Fatalf("execution: %s", r)
	}

	r := e.get("/v1/export?subject=agent-1")
	if r.status != http.StatusOK {
		t.Fatalf("export: %s", r)
	}
	rep, err := verifier.Bundle(bytes.NewReader(r.body), e.verifier, nil, nil)
	if err != nil {
		t.Fatalf("the exported bundle does not verify: %v", err)
	}
	c := rep.Subjects["agent-1"]
	// i%3 == 1: 13 decisions, of which i%4 == 0 (4, 16, 28, 40-) deny: 4, 16, 28 -> 3.
	if rep.Entries != 13 || c == nil || c.Allowed != 10 || c.Denied != 3 || rep.Query["subject"] != "agent-1" {
		t.Fatalf("report: %d entries, %+v, query %v", rep.Entries, c, rep.Query)
	}

	t.Run("third-party libraries only", func(t *testing.T) {
		verifyWithLibraries(t, r.body, e.keys.VerifierKey)
	})

	t.Run("executions of a decision", func(t *testing.T) {
		r := e.get("/v1/export?decision_id=d-1")
		rep, err := verifier.Bundle(bytes.NewReader(r.body), e.verifier, nil, nil)
		if err != nil || rep.Entries != 1 || rep.Kinds["execution"] != 1 {
			t.Fatalf("decision_id export: %v %+v (%s)", err, rep, r)
		}
	})

	t.Run("keys", func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(nil)
		kc, err := log.NewKeyContent("k-export", pub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.srv.log.Submit(context.Background(), log.KeySubmission(kc, e.srv.log.Origin())); err != nil {
			t.Fatal(err)
		}
		r := e.get("/v1/export?kind=key")
		rep, err := verifier.Bundle(bytes.NewReader(r.body), e.verifier, nil, nil)
		// The server's own artifact key (entry 0) and k-export.
		if err != nil || rep.Entries != 2 || len(rep.Keys) != 2 || rep.Keys[1].KID != "k-export" {
			t.Fatalf("key export: %v %+v (%s)", err, rep, r)
		}
		// A key's JWK that is not the logged one is refused.
		x := base64.RawURLEncoding.EncodeToString(pub)
		other := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		tampered := bytes.Replace(r.body, []byte(`{"kid":"k-export","jwk":{"crv":"Ed25519","kty":"OKP","x":"`+x), []byte(`{"kid":"k-export","jwk":{"crv":"Ed25519","kty":"OKP","x":"`+other), 1)
		if bytes.Equal(tampered, r.body) {
			t.Fatalf("no key to tamper with in %s", r.body)
		}
		if _, err := verifier.Bundle(bytes.NewReader(tampered), e.verifier, nil, nil); !errors.Is(err, verifier.ErrMismatch) {
			t.Fatalf("a bundle with another JWK: %v, want ErrMismatch", err)
		}
	})

	t.Run("nothing matches", func(t *testing.T) {
		r := e.get("/v1/export?subject=nobody")
		rep, err := verifier.Bundle(bytes.NewReader(r.body), e.verifier, nil, nil)
		if err != nil || rep.Entries != 0 {
			t.Fatalf("empty export: %v %+v", err, rep)
		}
	})

	t.Run("too large", func(t *testing.T) {
		e.srv.exportLimit = 5
		defer func() { e.srv.exportLimit = 0 }()
		r := e.get("/v1/export?subject=agent-2")
		wantError(t, r, http.StatusRequestEntityTooLarge, "too_large")
		if !strings.Contains(string(r.body), "at least 13 entries match") {
			t.Fatalf("the refusal does not name the count: %s", r.body)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, q := range []string{"limit=10", "after=AAAAAAAAAAA", "nope=1", "kind=nope", "from=x"} {
			wantError(t, e.get("/v1/export?"+q), http.StatusBadRequest, "invalid_request")
		}
	})

	t.Run("tampered", func(t *testing.T) {
		var b map[string]any
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		entries := b["entries"].([]any)
		first := entries[0].(map[string]any)
		leaf, _ := base64.StdEncoding.DecodeString(first["entry"].(string))
		leaf = bytes.Replace(leaf, []byte(`"allow"`), []byte(`"deny"`), 1)
		first["entry"] = base64.StdEncoding.EncodeToString(leaf)
		tampered := marshalOrdered(t, b)
		if _, err := verifier.Bundle(bytes.NewReader(tampered), e.verifier, nil, nil); !errors.Is(err, verifier.ErrBadProof) {
			t.Fatalf("a changed entry: %v, want ErrBadProof", err)
		}
		// Truncated: a bundle is evidence only whole.
		if _, err := verifier.Bundle(bytes.NewReader(r.body[:len(r.body)/2]), e.verifier, nil, nil); !errors.Is(err, verifier.ErrMalformed) {
			t.Fatalf("a truncated bundle: %v, want ErrMalformed", err)
		}
	})
}

// marshalOrdered writes a decoded bundle back with its members in bundle
// order.
func marshalOrdered(t *testing.T, b map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("{")
	for i, k := range []string{"format", "origin", "verifier_key", "checkpoint", "query", "entries", "keys"} {
		if i > 0 {
			buf.WriteString(",")
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(b[k])
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(kb)
		buf.WriteString(":")
		buf.Write(vb)
	}
	buf.WriteString("}")
	return buf.Bytes()
}

// verifyWithLibraries checks a bundle as a third party would, with
// x/mod's note and transparency-dev/merkle only: the checkpoint's
// signature, then each entry's RFC 6962 inclusion proof.
func verifyWithLibraries(t *testing.T, bundle []byte, vkey string) {
	t.Helper()
	var b struct {
		Format     string `json:"format"`
		Origin     string `json:"origin"`
		Checkpoint string `json:"checkpoint"`
		Entries    []struct {
			Index          uint64   `json:"index"`
			Entry          []byte   `json:"entry"`
			InclusionProof [][]byte `json:"inclusion_proof"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint signature: %v", err)
	}
	// C2SP tlog-checkpoint: origin, size, base64 root hash, one a line.
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != b.Origin || b.Format != "govlog-evidence/v1" {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Entries) == 0 {
		t.Fatal("no entries")
	}
	for _, e := range b.Entries {
		leafHash := rfc6962.DefaultHasher.HashLeaf(e.Entry)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Index, size, leafHash, e.InclusionProof, root); err != nil {
			t.Fatalf("entry %d: %v", e.Index, err)
		}
		var entry map[string]any
		if err := json.Unmarshal(e.Entry, &entry); err != nil || entry["decision"] == nil {
			t.Fatalf("entry %d is not a decision entry: %s", e.Index, e.Entry)
		}
	}
}
