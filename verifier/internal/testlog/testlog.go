// Package testlog holds what the tests of the verifier packages share: an
// in-memory RFC 6962 log of real govlog entries signed with a fixed key,
// its receipts and proofs, and fixed artifact keys. Test use only.
package testlog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

const (
	Origin = "example.com/govlog"
	TTL    = 300 * time.Second
)

// Start is the logged_at of entry 0; entry i is logged i seconds later.
var Start = time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)

// NoteKey returns a note key pair derived from a fixed seed byte.
func NoteKey(t testing.TB, name string, seed byte) (note.Signer, note.Verifier, string) {
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

// Log is an in-memory RFC 6962 log of real govlog entries, signed with
// a fixed key.
type Log struct {
	T         testing.TB
	Signer    note.Signer
	Verifier  note.Verifier
	Tree      *testonly.Tree
	Entries   []*log.Entry
	Decisions []*log.Decision // nil for execution reports
}

// New returns an empty Log signed with the key of seed 1.
func New(t testing.TB) *Log {
	s, v, _ := NoteKey(t, Origin, 1)
	return &Log{T: t, Signer: s, Verifier: v, Tree: testonly.New(rfc6962.DefaultHasher)}
}

// DecisionJSON is decision i: allow when i is even, deny when odd.
func DecisionJSON(i int) []byte {
	outcome := "allow"
	if i%2 == 1 {
		outcome = "deny"
	}
	return fmt.Appendf(nil, `{"id":"d-%d","outcome":%q,"decided_at":"2026-11-25T18:00:00Z","subject":"agent-%d",`+
		`"action":"deploy","resource":"svc/%d","policy":{"id":"prod-deploy","version":"v3"},"reasons":["ok <&>"]}`,
		i, outcome, i%7, i)
}

// AddDecision logs a decision body.
func (l *Log) AddDecision(body []byte) *log.Entry {
	l.T.Helper()
	loggedAt := Start.Add(time.Duration(len(l.Entries)) * time.Second)
	d, err := log.ParseDecision(body, loggedAt)
	if err != nil {
		l.T.Fatal(err)
	}
	e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), loggedAt, TTL)
	if err != nil {
		l.T.Fatal(err)
	}
	l.Append(e, d)
	return e
}

// AddExecution logs an execution report of decision id.
func (l *Log) AddExecution(id, decisionID string) *log.Entry {
	l.T.Helper()
	loggedAt := Start.Add(time.Duration(len(l.Entries)) * time.Second)
	x, err := log.ParseExecution(fmt.Appendf(nil, `{"id":%q,"decision_id":%q,"status":"succeeded","at":"2026-11-25T18:00:01Z"}`, id, decisionID), loggedAt)
	if err != nil {
		l.T.Fatal(err)
	}
	e, err := log.NewEntry(log.ExecutionSubmission(x, "runtime-1"), loggedAt, TTL)
	if err != nil {
		l.T.Fatal(err)
	}
	l.Append(e, nil)
	return e
}

// Append logs an entry (and its decision, nil for an execution report).
func (l *Log) Append(e *log.Entry, d *log.Decision) {
	l.Entries = append(l.Entries, e)
	l.Decisions = append(l.Decisions, d)
	l.Tree.AppendData(e.Leaf)
}

// Grow logs decisions (and every fifth an execution report of the decision
// before it) until the log has n entries.
func (l *Log) Grow(n int) {
	l.T.Helper()
	for i := len(l.Entries); i < n; i++ {
		if i%5 == 4 {
			l.AddExecution(fmt.Sprintf("x-%d", i), fmt.Sprintf("d-%d", i-2))
		} else {
			l.AddDecision(DecisionJSON(i))
		}
	}
}

// GrowClean logs decisions (and every fifth an execution report of an
// allow before it) until the log has n entries.
func (l *Log) GrowClean(n int) {
	l.T.Helper()
	for i := len(l.Entries); i < n; i++ {
		if i%5 == 4 {
			j := i - 1
			if j%2 == 1 {
				j = i - 2
			}
			l.AddExecution(fmt.Sprintf("x-%d", i), fmt.Sprintf("d-%d", j))
		} else {
			l.AddDecision(DecisionJSON(i))
		}
	}
}

// Checkpoint signs the tree head of size.
func (l *Log) Checkpoint(size uint64) log.Checkpoint {
	l.T.Helper()
	cp, err := log.SignCheckpoint(l.Signer, size, [32]byte(l.Tree.HashAt(size)))
	if err != nil {
		l.T.Fatal(err)
	}
	return cp
}

// Inclusion is the inclusion proof of index in the tree of size.
func (l *Log) Inclusion(index, size uint64) [][32]byte {
	l.T.Helper()
	p, err := l.Tree.InclusionProof(index, size)
	if err != nil {
		l.T.Fatal(err)
	}
	out := make([][32]byte, len(p))
	for i := range p {
		out[i] = [32]byte(p[i])
	}
	return out
}

// Consistency is the consistency proof between two sizes.
func (l *Log) Consistency(from, to uint64) [][]byte {
	l.T.Helper()
	p, err := l.Tree.ConsistencyProof(from, to)
	if err != nil {
		l.T.Fatal(err)
	}
	return p
}

// Result is what the sequencer returns for entry index against the
// checkpoint of size.
func (l *Log) Result(index, size uint64) *log.Result {
	l.T.Helper()
	e := l.Entries[index]
	cp := l.Checkpoint(size)
	return &log.Result{
		Receipt:         log.NewReceipt(e.ID, index, e.Leaf, cp, l.Inclusion(index, size)),
		Created:         true,
		Checkpoint:      cp,
		LoggedAt:        e.LoggedAt,
		AuthorizedUntil: e.AuthorizedUntil,
	}
}

// Receipt is the receipt of entry index against the checkpoint of size.
func (l *Log) Receipt(index, size uint64) *log.Receipt {
	l.T.Helper()
	return l.Result(index, size).Receipt
}

// ReceiptJSON is the receipt as the REST API serves it.
func ReceiptJSON(t testing.TB, r *log.Receipt) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ArtifactKey is a fixed Ed25519 artifact key as the server holds it, and
// the JWKS it publishes.
func ArtifactKey(t testing.TB, kid string, seed byte) (jwk.Key, jwk.Set) {
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

// SignArtifact signs claims as the server does: EdDSA, with the protected
// headers typ and kid.
func SignArtifact(t testing.TB, key jwk.Key, c *log.ArtifactClaims) string {
	t.Helper()
	payload, err := c.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return SignPayload(t, jwa.EdDSA, key, payload, map[string]any{"typ": log.ArtifactType, "kid": key.KeyID()})
}

// SignPayload signs payload with alg and key, with the protected headers.
func SignPayload(t testing.TB, alg jwa.SignatureAlgorithm, key any, payload []byte, headers map[string]any) string {
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

// WrapsOne reports whether err wraps exactly one of sentinels.
func WrapsOne(err error, sentinels ...error) bool {
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1
}

// Sentinels are the errors of package verifier: every error it returns
// wraps exactly one.
var Sentinels = []error{
	verifier.ErrMalformed, verifier.ErrBadSignature, verifier.ErrBadCheckpoint, verifier.ErrBadProof,
	verifier.ErrBadEntry, verifier.ErrMismatch, verifier.ErrInconsistent,
}
