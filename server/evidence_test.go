package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// wantViolation checks the answer to a report the log recorded with a
// violation: 409, the code, and the receipt of the recorded entry, which
// verifies and holds the violation and (when the report carried one) the
// artifact's digest, never the artifact.
func (e *env) wantViolation(r response, id, code string) *receipt {
	e.t.Helper()
	if r.status != http.StatusConflict {
		e.t.Fatalf("status %d, want 409 %s: %s", r.status, code, r.body)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Receipt json.RawMessage `json:"receipt"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		e.t.Fatalf("violation body %s: %v", r.body, err)
	}
	if body.Error.Code != code || body.Error.Message == "" {
		e.t.Fatalf("error %+v, want code %s", body.Error, code)
	}
	rec := parseReceipt(e.t.(*testing.T), body.Receipt)
	e.verifyReceipt(rec, id)
	p, err := log.ParseEntry(rec.Entry)
	if err != nil {
		e.t.Fatal(err)
	}
	if p.Violation != code {
		e.t.Fatalf("the entry records violation %q, want %q", p.Violation, code)
	}
	if rec.Artifact != "" || bytes.Contains(rec.Entry, []byte(`"artifact"`)) {
		e.t.Fatalf("the receipt or entry holds an artifact: %s", rec.Entry)
	}
	return rec
}

func report(id, decisionID, status string, fields map[string]any) []byte {
	m := map[string]any{"id": id, "decision_id": decisionID, "status": status, "at": time.Now().UTC().Format(time.RFC3339Nano)}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func TestViolations(t *testing.T) {
	e := newEnv(t, envOptions{ttl: 60 * time.Second})
	post := func(path string, body []byte) response { return e.post(path, body) }
	allow := func(id string, fields map[string]any) string {
		r := post("/v1/decisions", decision(id, "allow", fields))
		if r.status != http.StatusCreated {
			t.Fatalf("decision %s: %s", id, r)
		}
		return parseReceipt(t, r.body).Artifact
	}
	single := allow("single", nil)
	other := allow("other", nil)
	revoked := allow("to-revoke", nil)
	if r := post("/v1/decisions", decision("denied", "deny", nil)); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	// A forged artifact: the signature of another payload.
	parts := strings.Split(single, ".")
	forged := parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2]

	// The one accepted claim of a single-use authorization.
	ok := post("/v1/executions", claim("c-1", "single", single))
	if ok.status != http.StatusCreated {
		t.Fatalf("claim: %s", ok)
	}
	if r := post("/v1/executions", report("c-1-done", "single", "succeeded", map[string]any{"claim_id": "c-1"})); r.status != http.StatusCreated {
		t.Fatalf("terminal report: %s", r)
	}
	if r := post("/v1/revocations", revocation("r-1", "to-revoke", nil)); r.status != http.StatusCreated {
		t.Fatalf("revocation: %s", r)
	}
	later := time.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339Nano)
	earlier := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	for _, tc := range []struct {
		name, id string
		body     []byte
		code     string
	}{
		{"second claim of a single use", "c-2", claim("c-2", "single", single), log.ViolationUsesExhausted},
		{"claim without artifact", "c-3", report("c-3", "other", "started", nil), log.ViolationArtifactMissing},
		{"forged artifact", "c-4", claim("c-4", "other", forged), log.ViolationArtifactInvalid},
		{"artifact of another decision", "c-5", claim("c-5", "other", single), log.ViolationArtifactInvalid},
		{"report dated before its decision", "c-6", report("c-6", "other", "started", map[string]any{"artifact": other, "at": earlier}), log.ViolationBeforeDecision},
		{"claim after authorized_until", "c-7", report("c-7", "other", "started", map[string]any{"artifact": other, "at": later}), log.ViolationExpired},
		{"claim on a deny", "c-8", claim("c-8", "denied", single), log.ViolationNotAuthorized},
		{"claim on an unknown decision", "c-9", claim("c-9", "nope", single), log.ViolationUnknownDecision},
		{"claim after a revocation", "c-10", claim("c-10", "to-revoke", revoked), log.ViolationRevoked},
		{"terminal report of an unknown claim", "c-11", report("c-11", "other", "failed", map[string]any{"claim_id": "nope"}), log.ViolationUnknownClaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			r := e.post("/v1/executions", tc.body)
			first := e.wantViolation(r, tc.id, tc.code)
			// A resubmission gets the same answer, the same receipt.
			again := e.post("/v1/executions", tc.body)
			if again.status != http.StatusConflict || !bytes.Equal(again.body, r.body) {
				t.Fatalf("resubmission: %s\nwant %s", again, r.body)
			}
			if g := e.get("/v1/executions/" + tc.id); g.status != http.StatusOK || parseReceipt(t, g.body).Index != first.Index {
				t.Fatalf("GET: %s", g)
			}
		})
	}
	// A submitted violation member is an unknown field: refused, not logged.
	wantError(t, post("/v1/executions", report("c-12", "other", "started", map[string]any{"artifact": other, "violation": "none"})), 400, "invalid_execution")
	// Lineage stops at a revoked allow.
	wantError(t, post("/v1/decisions", decision("child", "allow", map[string]any{"parent_id": "to-revoke"})), 409, "parent_revoked")
	// The other authorization is still unused: its one claim is accepted.
	if r := post("/v1/executions", claim("c-13", "other", other)); r.status != http.StatusCreated {
		t.Fatalf("claim of other: %s", r)
	}
}

func TestWrongExecutor(t *testing.T) {
	e := newTokenEnv(t, false)
	r := e.call(http.MethodPost, "/v1/decisions", bearer(staticTokens["ci"]),
		decision("d-x", "allow", map[string]any{"executor": "runtime", "max_executions": 2}))
	if r.status != http.StatusCreated {
		t.Fatal(r)
	}
	rec := parseReceipt(t, r.body)
	e.verifyArtifact(rec, decision("d-x", "allow", map[string]any{"executor": "runtime", "max_executions": 2}))
	// The artifact's aud is the executor.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(rec.Artifact, ".")[1])
	if !strings.Contains(string(payload), `"aud":"runtime"`) {
		t.Errorf("artifact claims %s, want aud runtime", payload)
	}
	e.wantViolation(e.call(http.MethodPost, "/v1/executions", bearer(staticTokens["everyone"]), claim("x-1", "d-x", rec.Artifact)), "x-1", log.ViolationWrongExecutor)
	if r := e.call(http.MethodPost, "/v1/executions", bearer(staticTokens["runtime"]), claim("x-2", "d-x", rec.Artifact)); r.status != http.StatusCreated {
		t.Fatalf("the executor's claim: %s", r)
	}
}

func TestAuthorizationStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.post("/v1/decisions", decision("a-1", "allow", map[string]any{"max_executions": 2}))
	if r.status != http.StatusCreated {
		t.Fatal(r)
	}
	art := parseReceipt(t, r.body).Artifact
	e.post("/v1/decisions", decision("n-1", "deny", nil))
	status := func(id string) (authorizationBody, [][]byte) {
		t.Helper()
		g := e.get("/v1/authorizations/" + id)
		if g.status != http.StatusOK {
			t.Fatalf("GET %s: %s", id, g)
		}
		var b struct {
			authorizationBody
			Receipts []json.RawMessage `json:"receipts"`
		}
		if err := json.Unmarshal(g.body, &b); err != nil {
			t.Fatal(err)
		}
		cp, err := log.OpenCheckpoint([]byte(b.Checkpoint), e.verifier)
		if err != nil {
			t.Fatal(err)
		}
		var entries [][]byte
		for _, raw := range b.Receipts {
			rec := parseReceipt(t, raw)
			if rc := e.verifyReceipt(rec, rec.ID); rc.Size != cp.Size || rc.Hash != cp.Hash {
				t.Fatalf("receipt of %s is against size %d, the answer's checkpoint is %d", rec.ID, rc.Size, cp.Size)
			}
			entries = append(entries, rec.Entry)
		}
		return b.authorizationBody, entries
	}
	if b, recs := status("a-1"); b.Status != "active" || b.Uses != 0 || b.MaxExecutions != 2 || len(recs) != 1 {
		t.Fatalf("new allow: %+v, %d receipts", b, len(recs))
	}
	for i, id := range []string{"x-1", "x-2"} {
		if r := e.post("/v1/executions", claim(id, "a-1", art)); r.status != http.StatusCreated {
			t.Fatalf("claim %d: %s", i, r)
		}
	}
	e.post("/v1/executions", claim("x-3", "a-1", art)) // uses_exhausted: not a use
	if b, recs := status("a-1"); b.Status != "exhausted" || b.Uses != 2 || len(recs) != 3 {
		t.Fatalf("after two claims: %+v, %d receipts", b, len(recs))
	}
	if r := e.post("/v1/revocations", revocation("r-1", "a-1", map[string]any{"reason": "trust degraded"})); r.status != http.StatusCreated {
		t.Fatal(r)
	}
	// Idempotent.
	if r := e.post("/v1/revocations", revocation("r-1", "a-1", map[string]any{"reason": "trust degraded"})); r.status != http.StatusOK && r.status != http.StatusConflict {
		t.Fatalf("revocation again: %s", r)
	}
	b, recs := status("a-1")
	if b.Status != "revoked" || len(recs) != 4 {
		t.Fatalf("after the revocation: %+v, %d receipts", b, len(recs))
	}
	if p, err := log.ParseEntry(recs[3]); err != nil || p.Revocation == nil || p.Revocation.ID != "r-1" {
		t.Fatalf("the last receipt is not the revocation's: %v", err)
	}
	if b, recs := status("n-1"); b.Status != "denied" || len(recs) != 1 {
		t.Fatalf("deny: %+v", b)
	}
	wantError(t, e.get("/v1/authorizations/nope"), 404, "not_found")
	if g := e.get("/v1/revocations/r-1"); g.status != http.StatusOK {
		t.Fatalf("GET revocation: %s", g)
	}
}

func TestKeys(t *testing.T) {
	e := newEnv(t, envOptions{})
	g := e.get("/v1/keys")
	if g.status != http.StatusOK {
		t.Fatal(g)
	}
	var b struct {
		Keys []struct {
			KID     string          `json:"kid"`
			JWK     json.RawMessage `json:"jwk"`
			Index   uint64          `json:"index"`
			Receipt json.RawMessage `json:"receipt"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(g.body, &b); err != nil || len(b.Keys) != 1 {
		t.Fatalf("%v: %s", err, g.body)
	}
	k := b.Keys[0]
	rec := parseReceipt(t, k.Receipt)
	e.verifyReceipt(rec, k.KID)
	p, err := log.ParseEntry(rec.Entry)
	if err != nil || p.Key == nil || k.KID != e.keys.Artifact.KeyID() || k.Index != 0 || rec.Index != 0 {
		t.Fatalf("key %s at %d: %v", k.KID, k.Index, err)
	}
	pub, err := e.keys.Artifact.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := pub.Raw(&raw); err == nil && !bytes.Equal(raw, p.Key.Public) {
		t.Fatal("the logged key is not the artifact key")
	}
	// A restart with the same key logs nothing new.
	l := e.srv.log
	if _, err := logKey(context.Background(), l, e.keys.Artifact); err != nil {
		t.Fatal(err)
	}
	if cp, _ := l.Latest(context.Background()); cp.Size != 1 {
		t.Fatalf("the key was logged again: size %d", cp.Size)
	}
}
