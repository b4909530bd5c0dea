package log

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Execution evidence (wire contract §2b–§2e): what the rule book needs to
// judge execution reports, revocations and artifact keys.

// Violations the log records in an execution report's entry (the
// "violation" member), in the order the rule book tests them: the first
// that applies is the one recorded.
const (
	ViolationUnknownDecision = "unknown_decision"
	ViolationNotAuthorized   = "not_authorized"
	ViolationArtifactMissing = "artifact_missing"
	ViolationArtifactInvalid = "artifact_invalid"
	ViolationBeforeDecision  = "before_decision"
	ViolationRevoked         = "revoked"
	ViolationExpired         = "expired"
	ViolationWrongExecutor   = "wrong_executor"
	ViolationUsesExhausted   = "uses_exhausted"
	ViolationUnknownClaim    = "unknown_claim"
)

// Violations lists every violation code, in the rule book's order.
var Violations = []string{ViolationUnknownDecision, ViolationNotAuthorized, ViolationArtifactMissing,
	ViolationArtifactInvalid, ViolationBeforeDecision, ViolationRevoked, ViolationExpired,
	ViolationWrongExecutor, ViolationUsesExhausted, ViolationUnknownClaim}

// Anonymous is the submitter of an unauthenticated submission. An allow's
// executor binds only authenticated reports: the log cannot tell who sent
// an anonymous one.
const Anonymous = "anonymous"

// StatusStarted is the status of a report that starts an execution.
const StatusStarted = "started"

// Authorization is what storage holds of one allow decision: what the rule
// book judges its reports, revocations and children by. Backends keep one
// per allow (written when the allow is appended, from its Entry) and
// update Uses and Revoked as Judge says (Dirty).
type Authorization struct {
	// DecidedAt is the decision's decided_at.
	DecidedAt time.Time
	// AuthorizedUntil is the entry's authorized_until.
	AuthorizedUntil time.Time
	// MaxExecutions is how many claims the allow permits (at least 1).
	MaxExecutions int
	// Executor is the identity that may execute the allow, "" for any.
	Executor string
	// LeafHash is the RFC 6962 leaf hash of the decision's entry: an
	// artifact's govlog.leaf_hash must be it.
	LeafHash [32]byte
	// Uses counts the accepted claims.
	Uses int
	// Revoked is true once a revocation of the allow is logged.
	Revoked bool
	// Entries are the accepted claims and the revocations of the allow,
	// in the order the log judged them: the evidence of its status.
	Entries []EntryID
	// Dirty is set by Judge when it created or changed the authorization
	// (an allow appended, a claim accepted, a revocation appended): the
	// backend writes it with the batch.
	Dirty bool
}

// NewAuthorization returns the authorization an appended allow entry
// starts with; leafHash is the leaf hash of its leaf.
func NewAuthorization(e *Entry, leafHash [32]byte) *Authorization {
	return &Authorization{DecidedAt: e.DecidedAt, AuthorizedUntil: e.AuthorizedUntil,
		MaxExecutions: max(e.MaxExecutions, 1), Executor: e.Executor, LeafHash: leafHash}
}

// EncodeEntries writes Entries for storage: "KIND:ID" lines (KIND the
// kind's number).
func (a *Authorization) EncodeEntries() string {
	var b strings.Builder
	for i, e := range a.Entries {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%d:%s", e.Kind, e.ID)
	}
	return b.String()
}

// DecodeEntries reads what EncodeEntries wrote into Entries.
func (a *Authorization) DecodeEntries(s string) error {
	a.Entries = nil
	if s == "" {
		return nil
	}
	for line := range strings.SplitSeq(s, "\n") {
		k, id, ok := strings.Cut(line, ":")
		if !ok || len(k) != 1 || k[0] < '1' || k[0] > '9' || id == "" {
			return fmt.Errorf("failed to read the entries of an authorization: %q", clip(line))
		}
		a.Entries = append(a.Entries, EntryID{Kind(k[0] - '0'), id})
	}
	return nil
}

// IsClaim reports whether an execution report is a claim: a started report,
// or a terminal one that names no claim.
func (s *Submission) IsClaim() bool {
	return s.Kind == KindExecution && (s.Status == StatusStarted || s.ClaimID == "")
}

// AuthorizationStatus is what GET /v1/authorizations answers about an
// authorization at time now: "denied" for a deny, else "revoked",
// "exhausted", "expired" or "active", first match.
func AuthorizationStatus(a *Authorization, now time.Time) string {
	switch {
	case a == nil:
		return "denied"
	case a.Revoked:
		return "revoked"
	case a.Uses >= a.MaxExecutions:
		return "exhausted"
	case now.After(a.AuthorizedUntil):
		return "expired"
	}
	return "active"
}

// KeyContent is the content of a key entry (wire contract §2e): an
// artifact signing key's id and its public JWK.
type KeyContent struct {
	KID string
	// Public is the Ed25519 public key.
	Public ed25519.PublicKey
	// Canonical is {"jwk":{"crv":"Ed25519","kty":"OKP","x":…},"kid":…} in
	// RFC 8785 form.
	Canonical []byte
}

// NewKeyContent returns the key entry content of an Ed25519 artifact key.
func NewKeyContent(kid string, pub ed25519.PublicKey) (*KeyContent, error) {
	if !validKID(kid) {
		return nil, fmt.Errorf("failed to build a key entry: kid %q is not 1 to 128 characters of A-Z a-z 0-9 . _ : -", clip(kid))
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("failed to build a key entry: the public key is %d bytes", len(pub))
	}
	b := []byte(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`)
	b = base64.RawURLEncoding.AppendEncode(b, pub)
	b = append(b, `"},"kid":`...)
	b = appendJCSString(b, kid)
	b = append(b, '}')
	return &KeyContent{KID: kid, Public: pub, Canonical: b}, nil
}

// validKID reports whether kid may name a key entry: an id's characters
// and "_" (an RFC 7638 thumbprint in base64url may start with "-" or "_").
func validKID(kid string) bool {
	if kid == "" || len(kid) > 128 {
		return false
	}
	for _, c := range []byte(kid) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// KeySubmission wraps a key entry; submitter is the log's own name for
// itself (govlogd uses the log origin).
func KeySubmission(k *KeyContent, submitter string) *Submission {
	return &Submission{Kind: KindKey, ID: k.KID, Submitter: submitter, Content: k.Canonical}
}

// ParseKeyContent parses the content of a key entry, which must be exactly
// what NewKeyContent writes.
func ParseKeyContent(content []byte) (*KeyContent, error) {
	var j struct {
		JWK struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		} `json:"jwk"`
		KID string `json:"kid"`
	}
	dec := json.NewDecoder(bytes.NewReader(content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("key entry: %w", err)
	}
	if j.JWK.Crv != "Ed25519" || j.JWK.Kty != "OKP" {
		return nil, fmt.Errorf("key entry: the jwk is not an Ed25519 OKP key")
	}
	pub, err := base64.RawURLEncoding.Strict().DecodeString(j.JWK.X)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key entry: the jwk's x is not a base64url Ed25519 public key")
	}
	k, err := NewKeyContent(j.KID, pub)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(k.Canonical, content) {
		return nil, fmt.Errorf("key entry: the content is not in canonical form")
	}
	return k, nil
}

// artifactKID returns the kid of a compact JWS's protected header, "" when
// it has none or the header does not decode.
func artifactKID(token string) string {
	h, _, ok := strings.Cut(token, ".")
	if !ok {
		return ""
	}
	hdr, err := decodeArtifactHeader(h)
	if err != nil {
		return ""
	}
	return hdr.KID
}

type artifactHeader struct {
	Alg string `json:"alg"`
	KID string `json:"kid"`
	Typ string `json:"typ"`
}

// lastHeader is the last artifact header that decoded, with its base64url
// form. A log's artifacts carry one header for each artifact key, so a
// claim's header is nearly always the one decoded before it (twice for
// each claim: its key entry's name, then its check), and the decoding
// (encoding/json's Decoder, ~15,000 instructions) is the most of it.
var lastHeader atomic.Pointer[decodedHeader]

type decodedHeader struct {
	b64 string
	hdr artifactHeader
}

func decodeArtifactHeader(h string) (*artifactHeader, error) {
	if last := lastHeader.Load(); last != nil && last.b64 == h {
		hdr := last.hdr
		return &hdr, nil
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("the header is not base64url")
	}
	var hdr artifactHeader
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("the header is not the artifact header: %w", err)
	}
	lastHeader.Store(&decodedHeader{b64: strings.Clone(h), hdr: hdr})
	return &hdr, nil
}

// Checking an artifact presented with a report on a decision: it must be
// an EdDSA compact JWS of type ArtifactType, signed by the key of the
// logged key entry its kid names, whose claims name the decision (jti),
// this log (iss = origin, when known) and the decision's entry
// (govlog.leaf_hash), with the decision's authorized_until as exp. The
// check is in two parts: verifyArtifact (the key, no other fact) and
// verifiedArtifact.check (the decision).

// verifiedArtifact is the part of an artifact's check that depends on no
// fact but the key: its header decoded, its signature verified with one
// key, its claims decoded. Building it is the costly part (Ed25519
// verification, JSON); the log builds it in the submitter's goroutine,
// before the sequencer, with the key its kid names as the log last read
// it, and the rule book uses it only when that key is the one the facts
// hold (see Judge). It is never built from anything but the token itself
// and a key: it is not part of any wire format.
type verifiedArtifact struct {
	token, kid string
	// why is the first reason the artifact is invalid that does not
	// depend on the decision ("" when none).
	why string
	// key is the key the signature was verified with (nil when none was
	// given), keyLeaf the key entry's leaf it came from (nil when the key
	// came from another source).
	key     ed25519.PublicKey
	keyLeaf []byte
	claims  ArtifactClaims
}

// verifyArtifact decodes token and verifies its signature with the key
// keyOf returns for its kid (nil: no key is logged for it) with the leaf
// of the key entry it was read from (nil when unknown).
//
// signed, when not nil, tells whether the process itself signed token
// with the private key of a public key (Log.SignArtifact): such a
// signature is valid without verifying it again.
func verifyArtifact(token string, keyOf func(kid string) (ed25519.PublicKey, []byte), signed func(ed25519.PublicKey, string) bool) *verifiedArtifact {
	v := &verifiedArtifact{token: token}
	h, rest, dot := strings.Cut(token, ".")
	p, s, _ := strings.Cut(rest, ".")
	hdr, err := decodeArtifactHeader(h)
	if err != nil {
		v.why = err.Error()
		return v
	}
	var key ed25519.PublicKey
	if dot && hdr.KID != "" { // the kid artifactKID reads
		v.kid = hdr.KID
		key, v.keyLeaf = keyOf(hdr.KID)
		v.key = key
	}
	if hdr.Alg != "EdDSA" || hdr.Typ != ArtifactType {
		v.why = fmt.Sprintf("the header says alg %q, typ %q; want EdDSA, %s", clip(hdr.Alg), clip(hdr.Typ), ArtifactType)
		return v
	}
	if key == nil {
		v.why = fmt.Sprintf("no artifact key %q is logged", clip(hdr.KID))
		return v
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(sig) != ed25519.SignatureSize ||
		(signed == nil || !signed(key, token)) && !ed25519.Verify(key, []byte(token[:len(h)+1+len(p)]), sig) {
		v.why = fmt.Sprintf("the signature does not verify with the logged key %q", clip(hdr.KID))
		return v
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(p)
	if err != nil {
		v.why = "the payload is not base64url"
		return v
	}
	if err := json.Unmarshal(payload, &v.claims); err != nil {
		v.why = "the payload is not the artifact claims"
	}
	return v
}

// verifiedWith reports whether v was verified with the key of the stored
// key entry k: the same leaf (key entries are never rewritten), or the
// same key for an entry that holds one.
func (v *verifiedArtifact) verifiedWith(k Stored) bool {
	switch {
	case v.key == nil:
		return false
	case k.Leaf != nil && v.keyLeaf != nil:
		return bytes.Equal(k.Leaf, v.keyLeaf)
	case k.Key != nil:
		return v.key.Equal(k.Key)
	}
	return false
}

// check returns why the artifact is invalid for decision decisionID of
// authorization a, "" when it is valid.
func (v *verifiedArtifact) check(decisionID, origin string, a *Authorization) string {
	c := &v.claims
	switch {
	case v.why != "":
		return v.why
	case c.ID != decisionID:
		return fmt.Sprintf("it is the artifact of decision %q", clip(c.ID))
	case origin != "" && c.Issuer != origin:
		return fmt.Sprintf("it was issued by %q, not this log", clip(c.Issuer))
	case c.Govlog.LeafHash != base64.StdEncoding.EncodeToString(a.LeafHash[:]):
		return "its govlog.leaf_hash is not the decision's entry"
	case c.Expiry != a.AuthorizedUntil.Unix():
		return "its exp is not the decision's authorized_until"
	}
	return ""
}

// AuthorizationEvidence is the status of one decision's authorization with
// the receipts that prove it, all against one checkpoint (wire contract
// §2d).
type AuthorizationEvidence struct {
	DecisionID string
	// Status is AuthorizationStatus at the time of the answer.
	Status string
	// Authorization is nil for a deny. Its Uses, Revoked and Entries count
	// only what Checkpoint covers.
	Authorization *Authorization
	Checkpoint    Checkpoint
	// Receipts are those of the decision, then of each entry of
	// Authorization.Entries, against Checkpoint, without artifact.
	Receipts []*Receipt
}

// Authorization returns the status of decision decisionID's authorization
// with its proof, or ErrNotFound when no such decision is logged.
func (l *Log) Authorization(ctx context.Context, decisionID string) (*AuthorizationEvidence, error) {
	_, leaf, err := l.backend.Lookup(ctx, KindDecision, decisionID)
	if err != nil {
		return nil, err
	}
	p, err := ParseEntry(leaf)
	if err != nil || p.Decision == nil {
		return nil, fmt.Errorf("%w: the entry of decision %q does not parse: %w", ErrUnavailable, decisionID, err)
	}
	ev := &AuthorizationEvidence{DecisionID: decisionID}
	var stored *Authorization
	if p.Decision.Outcome == OutcomeAllow {
		if stored, err = l.backend.Authorization(ctx, decisionID); err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if stored == nil {
			// Never claimed nor revoked (a backend need not store it
			// then), or logged before authorizations were kept.
			stored = &Authorization{DecidedAt: p.Decision.DecidedAt, AuthorizedUntil: p.AuthorizedUntil,
				MaxExecutions: max(p.Decision.MaxExecutions, 1), Executor: p.Decision.Executor, LeafHash: LeafHash(leaf)}
		}
	}
	// The checkpoint is read after the authorization: every entry the
	// authorization names that it covers gets a receipt; later ones are
	// left out, and out of the counts.
	cp, err := l.backend.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: failed to read the latest checkpoint: %w", ErrUnavailable, err)
	}
	ev.Checkpoint = cp
	rec, err := l.receiptAt(ctx, KindDecision, decisionID, cp)
	if err != nil {
		return nil, err
	}
	ev.Receipts = append(ev.Receipts, rec)
	if stored != nil {
		a := *stored
		a.Uses, a.Revoked, a.Entries = 0, false, nil
		for _, id := range stored.Entries {
			rec, err := l.receiptAt(ctx, id.Kind, id.ID, cp)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			ev.Receipts = append(ev.Receipts, rec)
			a.Entries = append(a.Entries, id)
			if id.Kind == KindRevocation {
				a.Revoked = true
			} else {
				a.Uses++
			}
		}
		ev.Authorization = &a
	}
	ev.Status = AuthorizationStatus(ev.Authorization, l.cfg.Clock())
	return ev, nil
}

// LookupAt returns the receipt of a logged entry against cp (without
// artifact), ErrNotFound when cp does not cover it.
func (l *Log) LookupAt(ctx context.Context, kind Kind, id string, cp Checkpoint) (*Receipt, error) {
	return l.receiptAt(ctx, kind, id, cp)
}

// receiptAt returns the receipt of a logged entry against cp, ErrNotFound
// when cp does not cover it.
func (l *Log) receiptAt(ctx context.Context, kind Kind, id string, cp Checkpoint) (*Receipt, error) {
	index, leaf, err := l.backend.Lookup(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	if index >= cp.Size {
		return nil, fmt.Errorf("%v %q is not covered by the checkpoint of size %d: %w", kind, id, cp.Size, ErrNotFound)
	}
	proof, err := l.backend.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("failed to build the inclusion proof of entry %d: %w", index, err)
	}
	return NewReceipt(id, index, leaf, cp, proof), nil
}
