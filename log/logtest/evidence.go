package logtest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// Execution evidence (wire contract §2b-§2e): claims bound to artifacts,
// violations recorded, revocations, lineage that stops at a deny or a
// revoked allow. Each case appends directly, as the sequencer does.

// artifactKey is the suite's artifact signing key, logged as a key entry.
type artifactKey struct {
	kid  string
	priv ed25519.PrivateKey
}

func newArtifactKey(name string) artifactKey {
	seed := sha256.Sum256([]byte("govlog logtest artifact key " + name))
	return artifactKey{kid: name, priv: ed25519.NewKeyFromSeed(seed[:])}
}

func (k artifactKey) submission(t *testing.T, origin string) *log.Submission {
	t.Helper()
	c, err := log.NewKeyContent(k.kid, k.priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return log.KeySubmission(c, origin)
}

// sign returns the artifact of an allow appended with r (its result) as
// entry e, signed with k; edit may change the claims first.
func (k artifactKey) sign(t *testing.T, h *harness, e *log.Entry, r log.AppendResult, edit func(*log.ArtifactClaims)) string {
	t.Helper()
	lh := log.LeafHash(r.Leaf)
	c := &log.ArtifactClaims{Issuer: h.signer.Name(), Subject: "agent-7", ID: e.ID,
		IssuedAt: e.LoggedAt.Unix(), NotBefore: e.LoggedAt.Unix(), Expiry: e.AuthorizedUntil.Unix(), Action: "deploy",
		Govlog: log.ArtifactBinding{Index: r.Index, LeafHash: base64.StdEncoding.EncodeToString(lh[:]), TreeSize: r.Index + 1}}
	if edit != nil {
		edit(c)
	}
	payload, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": k.kid, "typ": log.ArtifactType})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	return input + "." + enc.EncodeToString(ed25519.Sign(k.priv, []byte(input)))
}

// report returns an execution report submission with optional artifact and
// claim_id, at the given time.
func report(t *testing.T, submitter, id, decisionID, status, artifact, claimID string, at time.Time) *log.Submission {
	t.Helper()
	obj := map[string]any{"id": id, "decision_id": decisionID, "status": status, "at": at.Format(time.RFC3339Nano)}
	if artifact != "" {
		obj["artifact"] = artifact
	}
	if claimID != "" {
		obj["claim_id"] = claimID
	}
	body, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	x, err := log.ParseExecution(body, at)
	if err != nil {
		t.Fatalf("ParseExecution(%s): %v", body, err)
	}
	return log.ExecutionSubmission(x, submitter)
}

func testEvidence(t *testing.T, h *harness) {
	ctx := context.Background()
	b := h.backend(t)
	key, other := newArtifactKey("k-1"), newArtifactKey("k-other")
	forged := artifactKey{kid: key.kid, priv: other.priv} // claims to be k-1
	at := baseTime().Add(time.Minute)

	batch := h.entries(t,
		key.submission(t, h.signer.Name()),
		allow(t, "single"),
		decision(t, "anonymous", "multi", log.OutcomeAllow, map[string]any{"max_executions": 2, "executor": "rt"}),
		deny(t, "denied"),
		allow(t, "to-revoke"),
	)
	res, _ := h.appendEntries(t, b, batch)
	for i := range res {
		checkResult(t, res[i], nil)
	}
	single := key.sign(t, h, batch[1], res[1], nil)
	multi := key.sign(t, h, batch[2], res[2], nil)
	toRevoke := key.sign(t, h, batch[4], res[4], nil)
	until := batch[1].AuthorizedUntil

	steps := []struct {
		name string
		sub  *log.Submission
		want error
	}{
		{"claim", report(t, "rt", "c-1", "single", "started", single, "", at), nil},
		{"identical resubmission", report(t, "rt", "c-1", "single", "started", single, "", at), errExisting},
		{"second claim of a single use", report(t, "rt", "c-2", "single", "started", single, "", at), violation(log.ViolationUsesExhausted)},
		{"terminal report of the claim", report(t, "rt", "c-1-done", "single", "succeeded", "", "c-1", at), nil},
		{"terminal report naming a claim of another decision", report(t, "rt", "c-x-done", "multi", "failed", "", "c-1", at), violation(log.ViolationUnknownClaim)},
		{"terminal report without claim_id is a claim", report(t, "rt", "c-3", "single", "succeeded", single, "", at), violation(log.ViolationUsesExhausted)},
		{"claim without artifact", report(t, "rt", "c-4", "multi", "started", "", "", at), violation(log.ViolationArtifactMissing)},
		{"forged artifact", report(t, "rt", "c-5", "multi", "started", forged.sign(t, h, batch[2], res[2], nil), "", at), violation(log.ViolationArtifactInvalid)},
		{"artifact of a key not logged", report(t, "rt", "c-6", "multi", "started", other.sign(t, h, batch[2], res[2], nil), "", at), violation(log.ViolationArtifactInvalid)},
		{"artifact of another decision", report(t, "rt", "c-7", "multi", "started", single, "", at), violation(log.ViolationArtifactInvalid)},
		{"artifact of another log", report(t, "rt", "c-8", "multi", "started", key.sign(t, h, batch[2], res[2], func(c *log.ArtifactClaims) { c.Issuer = "other.example/log" }), "", at), violation(log.ViolationArtifactInvalid)},
		{"artifact with another leaf hash", report(t, "rt", "c-9", "multi", "started", key.sign(t, h, batch[2], res[2], func(c *log.ArtifactClaims) { c.Govlog.LeafHash = c.Govlog.RootHash }), "", at), violation(log.ViolationArtifactInvalid)},
		{"report dated before its decision", report(t, "rt", "c-10", "multi", "started", multi, "", baseTime().Add(-time.Second)), violation(log.ViolationBeforeDecision)},
		{"claim after authorized_until", report(t, "rt", "c-11", "multi", "started", multi, "", until), violation(log.ViolationExpired)},
		{"claim by the wrong executor", report(t, "mallory", "c-12", "multi", "started", multi, "", at), violation(log.ViolationWrongExecutor)},
		{"first of two uses", report(t, "rt", "c-13", "multi", "started", multi, "", at), nil},
		{"second of two uses", report(t, "rt", "c-14", "multi", "started", multi, "", at), nil},
		{"third of two uses", report(t, "rt", "c-15", "multi", "started", multi, "", at), violation(log.ViolationUsesExhausted)},
		{"claim on a deny", report(t, "rt", "c-16", "denied", "started", single, "", at), violation(log.ViolationNotAuthorized)},
		{"claim on an unknown decision", report(t, "rt", "c-17", "nope", "started", single, "", at), violation(log.ViolationUnknownDecision)},
		{"revocation", revocation(t, "anonymous", "r-1", "to-revoke"), nil},
		{"identical revocation", revocation(t, "anonymous", "r-1", "to-revoke"), errExisting},
		{"claim after the revocation", report(t, "rt", "c-18", "to-revoke", "started", toRevoke, "", at), violation(log.ViolationRevoked)},
		{"child of a revoked allow", decision(t, "anonymous", "child-1", log.OutcomeAllow, map[string]any{"parent_id": "to-revoke"}), log.ErrParentRevoked},
		{"child of a deny", decision(t, "anonymous", "child-2", log.OutcomeAllow, map[string]any{"parent_id": "denied"}), log.ErrParentDenied},
		{"child of an active allow", decision(t, "anonymous", "child-3", log.OutcomeAllow, map[string]any{"parent_id": "multi"}), nil},
		{"revocation of a deny", revocation(t, "anonymous", "r-2", "denied"), log.ErrNotRevocable},
		{"revocation of an unknown decision", revocation(t, "anonymous", "r-3", "nope"), log.ErrUnknownDecision},
		{"key entry again", key.submission(t, h.signer.Name()), errExisting},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before, _ := b.Latest(ctx)
			res, cp := h.append(t, b, st.sub)
			checkResult(t, res[0], st.want)
			if st.want != nil && st.want != errExisting {
				if _, ok := st.want.(violation); !ok && cp.Size != before.Size {
					t.Fatalf("a refused submission grew the log from %d to %d", before.Size, cp.Size)
				}
			}
		})
	}

	checkAuthorizations := func(b log.Backend) {
		t.Helper()
		x := func(id string) log.EntryID { return log.EntryID{Kind: log.KindExecution, ID: id} }
		for _, w := range []struct {
			id      string
			uses    int
			revoked bool
			entries []log.EntryID
		}{
			{"single", 1, false, []log.EntryID{x("c-1")}},
			{"multi", 2, false, []log.EntryID{x("c-13"), x("c-14")}},
			{"to-revoke", 0, true, []log.EntryID{{Kind: log.KindRevocation, ID: "r-1"}}},
		} {
			a, err := b.Authorization(ctx, w.id)
			if err != nil {
				t.Fatalf("Authorization(%s): %v", w.id, err)
			}
			if a.Uses != w.uses || a.Revoked != w.revoked || !slices.Equal(a.Entries, w.entries) || a.Dirty {
				t.Errorf("Authorization(%s) = uses %d, revoked %v, entries %v, dirty %v; want %d, %v, %v",
					w.id, a.Uses, a.Revoked, a.Entries, a.Dirty, w.uses, w.revoked, w.entries)
			}
		}
		if a, err := b.Authorization(ctx, "multi"); err == nil && (a.MaxExecutions != 2 || a.Executor != "rt" ||
			a.LeafHash != log.LeafHash(res[2].Leaf) || !a.AuthorizedUntil.Equal(batch[2].AuthorizedUntil) || !a.DecidedAt.Equal(baseTime())) {
			t.Errorf("Authorization(multi) = %+v", a)
		}
		for _, id := range []string{"denied", "nope"} {
			_, err := b.Authorization(ctx, id)
			wantErr(t, "Authorization("+id+")", err, log.ErrNotFound)
		}
	}
	checkAuthorizations(b)

	// Uses and revocations survive a reopen.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = h.backend(t)
	checkAuthorizations(b)
	res, _ = h.append(t, b,
		report(t, "rt", "c-20", "single", "started", single, "", at),
		report(t, "rt", "c-21", "to-revoke", "started", toRevoke, "", at),
		decision(t, "anonymous", "child-4", log.OutcomeAllow, map[string]any{"parent_id": "to-revoke"}),
	)
	checkResult(t, res[0], violation(log.ViolationUsesExhausted))
	checkResult(t, res[1], violation(log.ViolationRevoked))
	checkResult(t, res[2], log.ErrParentRevoked)
}

// testEvidenceBatch: the rules see what earlier entries of the same batch
// did.
func testEvidenceBatch(t *testing.T, h *harness) {
	b := h.backend(t)
	key := newArtifactKey("k-1")
	at := baseTime().Add(time.Minute)
	batch := h.entries(t, key.submission(t, h.signer.Name()), allow(t, "a"), allow(t, "b"))
	res, _ := h.appendEntries(t, b, batch)
	a := key.sign(t, h, batch[1], res[1], nil)
	bArt := key.sign(t, h, batch[2], res[2], nil)
	var subs []*log.Submission
	for i := range 5 {
		subs = append(subs, report(t, "rt", fmt.Sprintf("a-%d", i), "a", "started", a, "", at))
	}
	subs = append(subs,
		revocation(t, "anonymous", "rb", "b"),
		report(t, "rt", "b-1", "b", "started", bArt, "", at),
		decision(t, "anonymous", "b-child", log.OutcomeAllow, map[string]any{"parent_id": "b"}),
		deny(t, "d"),
		decision(t, "anonymous", "d-child", log.OutcomeAllow, map[string]any{"parent_id": "d"}),
	)
	res, _ = h.append(t, b, subs...)
	checkResult(t, res[0], nil)
	for i := 1; i < 5; i++ {
		checkResult(t, res[i], violation(log.ViolationUsesExhausted))
	}
	checkResult(t, res[5], nil)
	checkResult(t, res[6], violation(log.ViolationRevoked))
	checkResult(t, res[7], log.ErrParentRevoked)
	checkResult(t, res[8], nil)
	checkResult(t, res[9], log.ErrParentDenied)
}
