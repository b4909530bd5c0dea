package verifier_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

const (
	testOrigin = "example.com/govlog"
	testTTL    = 300 * time.Second
)

// testStart is the logged_at of entry 0; entry i is logged i seconds later.
var testStart = time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)

// noteKey returns a note key pair derived from a fixed seed byte.
func noteKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, vkey
}

// testLog is an in-memory RFC 6962 log of real govlog entries, signed with
// a fixed key.
type testLog struct {
	t         testing.TB
	signer    note.Signer
	verifier  note.Verifier
	tree      *testonly.Tree
	entries   []*log.Entry
	decisions []*log.Decision // nil for execution reports
}

func newTestLog(t testing.TB) *testLog {
	s, v, _ := noteKey(t, testOrigin, 1)
	return &testLog{t: t, signer: s, verifier: v, tree: testonly.New(rfc6962.DefaultHasher)}
}

// decisionJSON is decision i: allow when i is even, deny when odd.
func decisionJSON(i int) []byte {
	outcome := "allow"
	if i%2 == 1 {
		outcome = "deny"
	}
	return fmt.Appendf(nil, `{"id":"d-%d","outcome":%q,"decided_at":"2026-11-25T18:00:00Z","subject":"agent-%d",`+
		`"action":"deploy","resource":"svc/%d","policy":{"id":"prod-deploy","version":"v3"},"reasons":["ok <&>"]}`,
		i, outcome, i%7, i)
}

// addDecision logs a decision body.
func (l *testLog) addDecision(body []byte) *log.Entry {
	l.t.Helper()
	loggedAt := testStart.Add(time.Duration(len(l.entries)) * time.Second)
	d, err := log.ParseDecision(body, loggedAt)
	if err != nil {
		l.t.Fatal(err)
	}
	e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), loggedAt, testTTL)
	if err != nil {
		l.t.Fatal(err)
	}
	l.append(e, d)
	return e
}

// addExecution logs an execution report of decision id.
func (l *testLog) addExecution(id, decisionID string) *log.Entry {
	l.t.Helper()
	loggedAt := testStart.Add(time.Duration(len(l.entries)) * time.Second)
	x, err := log.ParseExecution(fmt.Appendf(nil, `{"id":%q,"decision_id":%q,"status":"succeeded","at":"2026-11-25T18:00:01Z"}`, id, decisionID), loggedAt)
	if err != nil {
		l.t.Fatal(err)
	}
	e, err := log.NewEntry(log.ExecutionSubmission(x, "runtime-1"), loggedAt, testTTL)
	if err != nil {
		l.t.Fatal(err)
	}
	l.append(e, nil)
	return e
}

func (l *testLog) append(e *log.Entry, d *log.Decision) {
	l.entries = append(l.entries, e)
	l.decisions = append(l.decisions, d)
	l.tree.AppendData(e.Leaf)
}

// grow logs decisions (and every fifth an execution report of the decision
// before it) until the log has n entries.
func (l *testLog) grow(n int) {
	l.t.Helper()
	for i := len(l.entries); i < n; i++ {
		if i%5 == 4 {
			l.addExecution(fmt.Sprintf("x-%d", i), fmt.Sprintf("d-%d", i-2))
		} else {
			l.addDecision(decisionJSON(i))
		}
	}
}

func (l *testLog) checkpoint(size uint64) log.Checkpoint {
	l.t.Helper()
	cp, err := log.SignCheckpoint(l.signer, size, [32]byte(l.tree.HashAt(size)))
	if err != nil {
		l.t.Fatal(err)
	}
	return cp
}

func (l *testLog) inclusion(index, size uint64) [][32]byte {
	l.t.Helper()
	p, err := l.tree.InclusionProof(index, size)
	if err != nil {
		l.t.Fatal(err)
	}
	out := make([][32]byte, len(p))
	for i := range p {
		out[i] = [32]byte(p[i])
	}
	return out
}

func (l *testLog) consistency(from, to uint64) [][]byte {
	l.t.Helper()
	p, err := l.tree.ConsistencyProof(from, to)
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

// result is what the sequencer returns for entry index against the
// checkpoint of size.
func (l *testLog) result(index, size uint64) *log.Result {
	l.t.Helper()
	e := l.entries[index]
	cp := l.checkpoint(size)
	return &log.Result{
		Receipt:         log.NewReceipt(e.ID, index, e.Leaf, cp, l.inclusion(index, size)),
		Created:         true,
		Checkpoint:      cp,
		LoggedAt:        e.LoggedAt,
		AuthorizedUntil: e.AuthorizedUntil,
	}
}

func (l *testLog) receipt(index, size uint64) *log.Receipt {
	l.t.Helper()
	return l.result(index, size).Receipt
}

func receiptJSON(t testing.TB, r *log.Receipt) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// artifactKey is a fixed Ed25519 artifact key as the server holds it, and
// the JWKS it publishes.
func artifactKey(t testing.TB, kid string, seed byte) (jwk.Key, jwk.Set) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	k, err := jwk.FromRaw(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.AlgorithmKey, jwa.EdDSA); err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	return k, set
}

// signArtifact signs claims as the server does: EdDSA, with the protected
// headers typ and kid.
func signArtifact(t testing.TB, key jwk.Key, c *log.ArtifactClaims) string {
	t.Helper()
	payload, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, jwa.EdDSA, key, payload, map[string]any{"typ": log.ArtifactType, "kid": key.KeyID()})
}

func signPayload(t testing.TB, alg jwa.SignatureAlgorithm, key any, payload []byte, headers map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range headers {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}
