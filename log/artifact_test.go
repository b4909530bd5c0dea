package log_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
	"github.com/gowebpki/jcs"
)

// goldenResult is the Result of the golden log's entry i.
func goldenResult(t *testing.T, i int) (*log.Result, *log.ParsedEntry) {
	t.Helper()
	tree, entries, cp := goldenLog(t)
	leaf := []byte(entries[i].Leaf)
	p, err := log.ParseEntry(leaf)
	if err != nil {
		t.Fatal(err)
	}
	r := log.NewReceipt(p.ID, uint64(i), leaf, cp, inclusion(t, tree, uint64(i), tree.Size()))
	return &log.Result{Receipt: r, Created: true, Checkpoint: cp, LoggedAt: p.LoggedAt, AuthorizedUntil: p.AuthorizedUntil}, p
}

func TestArtifactClaimsGolden(t *testing.T) {
	for i, e := range entryVectors(t) {
		res, p := goldenResult(t, i)
		if p.Decision == nil || p.Decision.Outcome != log.OutcomeAllow {
			continue
		}
		t.Run(e.Name, func(t *testing.T) {
			c, err := log.NewArtifactClaims("example.com/govlog", vectors.Audience, p.Decision, res)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := c.Payload()
			if err != nil {
				t.Fatal(err)
			}
			if want := readFile(t, "artifacts/"+e.Name+".claims.json"); !bytes.Equal(payload, want) {
				t.Fatalf("payload\n%s\nwant\n%s", payload, want)
			}
			// Canonical and deterministic.
			canon, err := jcs.Transform(payload)
			if err != nil || !bytes.Equal(canon, payload) {
				t.Fatalf("payload is not RFC 8785 canonical: %v", err)
			}
			again, _ := c.Payload()
			c2, _ := log.NewArtifactClaims("example.com/govlog", vectors.Audience, p.Decision, res)
			third, _ := c2.Payload()
			if !bytes.Equal(again, payload) || !bytes.Equal(third, payload) {
				t.Fatal("payload is not deterministic")
			}

			// Each claim, from the contract.
			var m map[string]any
			if err := json.Unmarshal(payload, &m); err != nil {
				t.Fatal(err)
			}
			iat := float64(res.LoggedAt.Truncate(time.Second).Unix())
			gl := m["govlog"].(map[string]any)
			checks := map[string]any{
				"iss": "example.com/govlog", "sub": p.Decision.Subject, "jti": p.Decision.ID, "aud": vectors.Audience,
				"iat": iat, "nbf": iat, "exp": float64(res.AuthorizedUntil.Unix()), "action": p.Decision.Action,
			}
			for k, want := range checks {
				if m[k] != want {
					t.Errorf("%s = %v, want %v", k, m[k], want)
				}
			}
			if p.Decision.Resource != "" && m["resource"] != p.Decision.Resource {
				t.Errorf("resource = %v, want %q", m["resource"], p.Decision.Resource)
			}
			if _, ok := m["resource"]; p.Decision.Resource == "" && ok {
				t.Error("resource present for a decision without one")
			}
			if gl["index"] != float64(res.Receipt.Index) || gl["tree_size"] != float64(res.Checkpoint.Size) ||
				gl["leaf_hash"] != base64.StdEncoding.EncodeToString(res.Receipt.LeafHash) ||
				gl["root_hash"] != base64.StdEncoding.EncodeToString(res.Checkpoint.Hash[:]) {
				t.Errorf("govlog binding %v does not match the receipt", gl)
			}
			if len(m) != 9+btoi(p.Decision.Resource != "") {
				t.Errorf("%d claims: %v", len(m), m)
			}
			if exp := m["exp"].(float64) - m["iat"].(float64); exp != float64(e.TTLSeconds) {
				t.Errorf("exp - iat = %v, want the TTL %d", exp, e.TTLSeconds)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestArtifactClaimsRefusals(t *testing.T) {
	// The deny of the golden log.
	res, p := goldenResult(t, 1)
	if p.Decision.Outcome != log.OutcomeDeny {
		t.Fatal("test bug: entry 1 should be a deny")
	}
	if _, err := log.NewArtifactClaims("example.com/govlog", "", p.Decision, res); err == nil {
		t.Fatal("claims for a deny")
	}
	// An allow whose Result has no authorized_until.
	res, p = goldenResult(t, 0)
	res.AuthorizedUntil = time.Time{}
	if _, err := log.NewArtifactClaims("example.com/govlog", "", p.Decision, res); err == nil {
		t.Fatal("claims without authorized_until")
	}
}

func TestArtifactClaimsNoAudience(t *testing.T) {
	res, p := goldenResult(t, 4) // allow-escapes: a subject with <&>
	c, err := log.NewArtifactClaims("example.com/govlog", "", p.Decision, res)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(payload, []byte(`"aud"`)) {
		t.Fatalf("aud present without an audience: %s", payload)
	}
	// No HTML escaping: RFC 8785 writes <, > and & as themselves.
	if !bytes.Contains(payload, []byte(`<&>`)) || bytes.Contains(payload, []byte(`\u003c`)) {
		t.Fatalf("payload is HTML-escaped: %s", payload)
	}
}
