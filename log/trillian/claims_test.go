package trillian

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// claimKey is the artifact key of the claim tests, logged as a key entry.
var claimKey = func() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("govlog trillian claim test key"))
	return ed25519.NewKeyFromSeed(seed[:])
}()

const claimKID = "claim-key"

func (f *fixture) keyEntry() *log.Submission {
	f.t.Helper()
	c, err := log.NewKeyContent(claimKID, claimKey.Public().(ed25519.PublicKey))
	if err != nil {
		f.t.Fatal(err)
	}
	return log.KeySubmission(c, "log")
}

// artifact signs the artifact of the allow e appended with result r.
func (f *fixture) artifact(e *log.Entry, r log.AppendResult) string {
	f.t.Helper()
	lh := log.LeafHash(r.Leaf)
	c := &log.ArtifactClaims{Issuer: "log", Subject: "agent-7", ID: e.ID, IssuedAt: e.LoggedAt.Unix(), NotBefore: e.LoggedAt.Unix(),
		Expiry: e.AuthorizedUntil.Unix(), Action: "deploy",
		Govlog: log.ArtifactBinding{Index: r.Index, LeafHash: base64.StdEncoding.EncodeToString(lh[:]), TreeSize: r.Index + 1}}
	payload, err := c.Payload()
	if err != nil {
		f.t.Fatal(err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": claimKID, "typ": log.ArtifactType})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	return input + "." + enc.EncodeToString(ed25519.Sign(claimKey, []byte(input)))
}

func (f *fixture) claim(id, decisionID, artifact string) *log.Submission {
	f.t.Helper()
	body, _ := json.Marshal(map[string]string{"id": id, "decision_id": decisionID, "status": "started",
		"at": baseTime().Add(time.Second).Format(time.RFC3339), "artifact": artifact})
	x, err := log.ParseExecution(body, baseTime())
	if err != nil {
		f.t.Fatal(err)
	}
	return log.ExecutionSubmission(x, "rt")
}

// TestReplicasClaimOnce: two replicas claim one single-use authorization
// at the same moment, again and again. Exactly one claim is accepted each
// time; the other is recorded as uses_exhausted, whichever replica it
// reached.
func TestReplicasClaimOnce(t *testing.T) {
	e := need(t)
	f := newFixture(t)
	ctx := context.Background()
	tree := e.newTree(t)
	a, b := e.open(t, tree), e.open(t, tree)
	defer a.Close()
	defer b.Close()
	f.append(a, f.keyEntry())
	const rounds = 8
	for round := range rounds {
		id := fmt.Sprintf("once-%d", round)
		allow := f.entries(f.decision(id, log.OutcomeAllow, ""))
		res, _, err := a.Append(ctx, allow, f.sign)
		if err != nil || res[0].Err != nil {
			t.Fatalf("allow %s: %v %v", id, err, res)
		}
		art := f.artifact(allow[0], res[0])
		var (
			wg   sync.WaitGroup
			out  [2]log.AppendResult
			errs [2]error
		)
		for j, r := range []*Backend{a, b} {
			batch := f.entries(f.claim(fmt.Sprintf("%s-claim-%d", id, j), id, art))
			wg.Go(func() {
				var got []log.AppendResult
				got, _, errs[j] = r.Append(ctx, batch, f.sign)
				if errs[j] == nil {
					out[j] = got[0]
				}
			})
		}
		wg.Wait()
		accepted := 0
		for j := range 2 {
			if errs[j] != nil || out[j].Err != nil || out[j].Existing {
				t.Fatalf("%s on replica %d: %v %+v", id, j, errs[j], out[j])
			}
			switch v := log.LeafViolation(out[j].Leaf); v {
			case "":
				accepted++
			case log.ViolationUsesExhausted:
			default:
				t.Fatalf("%s on replica %d: violation %q", id, j, v)
			}
		}
		if accepted != 1 {
			t.Fatalf("%s: %d claims accepted, want exactly 1", id, accepted)
		}
		for _, r := range []*Backend{a, b} {
			au, err := r.Authorization(ctx, id)
			if err != nil || au.Uses != 1 || len(au.Entries) != 1 {
				t.Fatalf("%s: authorization %+v, %v; want one use", id, au, err)
			}
		}
	}
}
