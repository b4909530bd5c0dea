package verifier

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// DefaultLeeway is the clock skew Artifact tolerates on exp and nbf.
const DefaultLeeway = 30 * time.Second

// MaxArtifactBytes bounds an artifact token.
const MaxArtifactBytes = 8 << 10

// ArtifactOptions says what Artifact requires of an artifact.
type ArtifactOptions struct {
	// Origin is the log origin: the required iss. When empty, the origin of
	// Receipt's checkpoint is used; one of the two is required.
	Origin string
	// Audience is the required aud. When empty, the artifact must have no
	// aud: RFC 7519 says a JWT whose aud does not name its reader is
	// rejected.
	Audience string
	// Now is the time exp and nbf are checked against. Zero means
	// time.Now().
	Now time.Time
	// Leeway is the clock skew tolerated on exp and nbf. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
	// Receipt is the verified receipt the artifact came with (the one
	// returned by the same submission), or nil. When set, the artifact must
	// be bound to it: jti, sub, action and resource are its decision's, exp
	// is its authorized_until, iat and nbf its logged_at, and the govlog
	// claim names its index, leaf hash, tree size and root hash.
	Receipt *Verified
}

// artifactHeader is the whole protected header an artifact may have.
type artifactHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

var artifactClaimNames = []string{"iss", "sub", "jti", "iat", "nbf", "exp", "action", "govlog"}

// Artifact verifies an authorization artifact and returns its claims. The
// token must be a compact JWS in canonical base64url whose protected header
// has exactly alg "EdDSA", typ "govlog-authz+jwt" and a kid naming an
// Ed25519 key of jwks that verifies the signature. Its claims must be those
// of log.ArtifactClaims, each once, with iss the origin, aud as configured,
// and opts.Now within [nbf, exp) give or take the leeway; and, given
// opts.Receipt, bound to it. See ArtifactOptions.
func Artifact(token string, jwks jwk.Set, opts ArtifactOptions) (*log.ArtifactClaims, error) {
	origin := opts.Origin
	if opts.Receipt != nil {
		if origin == "" {
			origin = opts.Receipt.Checkpoint.Origin
		} else if origin != opts.Receipt.Checkpoint.Origin {
			return nil, fmt.Errorf("%w: the receipt is from log %q, not %q", ErrBinding, opts.Receipt.Checkpoint.Origin, origin)
		}
	}
	if origin == "" {
		return nil, errors.New("failed to verify artifact: ArtifactOptions needs an Origin or a Receipt")
	}
	if jwks == nil {
		return nil, errors.New("failed to verify artifact: no JWKS")
	}
	if len(token) > MaxArtifactBytes {
		return nil, fmt.Errorf("%w: artifact is %d bytes, the limit is %d", ErrBadArtifact, len(token), MaxArtifactBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: artifact is not a compact JWS of three parts", ErrBadArtifact)
	}
	var segs [3][]byte
	for i, p := range parts {
		var err error
		// The decoder skips CR and LF even when strict: only the
		// canonical encoding of what it decoded is the token's.
		if segs[i], err = base64.RawURLEncoding.Strict().DecodeString(p); err != nil ||
			base64.RawURLEncoding.EncodeToString(segs[i]) != p {
			return nil, fmt.Errorf("%w: artifact part %d is not canonical unpadded base64url", ErrBadArtifact, i+1)
		}
	}

	var hdr artifactHeader
	if err := decodeStrict(segs[0], &hdr); err != nil {
		return nil, fmt.Errorf("%w: artifact header: %w", ErrBadArtifact, err)
	}
	// encoding/json matches member names without regard to case: "ALG"
	// would be read as alg.
	if keys, _ := objectKeys(segs[0]); slices.ContainsFunc(keys, func(k string) bool { return k != "alg" && k != "kid" && k != "typ" }) {
		return nil, fmt.Errorf("%w: artifact header has members other than alg, kid and typ", ErrBadArtifact)
	}
	// Anything but EdDSA ("none", HMAC with the public key as secret, …) is
	// refused before any key is looked at.
	if hdr.Alg != jwa.EdDSA.String() {
		return nil, fmt.Errorf("%w: artifact algorithm is %q, only EdDSA is accepted", ErrBadArtifact, hdr.Alg)
	}
	if hdr.Typ != log.ArtifactType {
		return nil, fmt.Errorf("%w: artifact typ is %q, want %q", ErrBadArtifact, hdr.Typ, log.ArtifactType)
	}
	if hdr.Kid == "" {
		return nil, fmt.Errorf("%w: artifact header has no kid", ErrBadArtifact)
	}
	key, ok := jwks.LookupKeyID(hdr.Kid)
	if !ok {
		return nil, fmt.Errorf("%w: the JWKS has no key %q", ErrBadSignature, hdr.Kid)
	}
	pub, err := ed25519Key(key)
	if err != nil {
		return nil, err
	}
	if _, err := jws.Verify([]byte(token), jws.WithKey(jwa.EdDSA, pub), jws.WithCompact()); err != nil {
		return nil, fmt.Errorf("%w: artifact signature does not verify with key %q", ErrBadSignature, hdr.Kid)
	}

	var c log.ArtifactClaims
	if err := decodeStrict(segs[1], &c); err != nil {
		return nil, fmt.Errorf("%w: artifact claims: %w", ErrBadArtifact, err)
	}
	if err := checkClaims(&c, segs[1], origin, opts); err != nil {
		return nil, err
	}
	// The payload is the claims' RFC 8785 canonical JSON (log.ArtifactClaims
	// .Payload), byte for byte: one artifact, one encoding, read the same
	// by every JSON parser (encoding/json alone would take "ISS" for iss).
	if p, err := c.Payload(); err != nil || !bytes.Equal(p, segs[1]) {
		return nil, fmt.Errorf("%w: artifact claims are not the canonical JSON of govlog claims", ErrBadArtifact)
	}
	if opts.Receipt != nil {
		if err := checkBinding(&c, opts.Receipt); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// ed25519Key returns the Ed25519 public key of a JWKS key that may be used
// for EdDSA signatures.
func ed25519Key(key jwk.Key) (ed25519.PublicKey, error) {
	kid := key.KeyID()
	if alg := key.Algorithm().String(); alg != "" && alg != jwa.EdDSA.String() {
		return nil, fmt.Errorf("%w: JWKS key %q is for %s, not EdDSA", ErrBadSignature, kid, alg)
	}
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf("%w: JWKS key %q is for use %q, not signatures", ErrBadSignature, kid, use)
	}
	pk, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS key %q has no public key: %w", ErrBadSignature, kid, err)
	}
	var raw any
	if err := pk.Raw(&raw); err != nil {
		return nil, fmt.Errorf("%w: JWKS key %q: %w", ErrBadSignature, kid, err)
	}
	pub, ok := raw.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: JWKS key %q is not an Ed25519 key", ErrBadSignature, kid)
	}
	// ed25519.Verify panics on a key of another length, and jwk.Parse
	// takes any length of x.
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: JWKS key %q is %d bytes, an Ed25519 key is %d", ErrBadSignature, kid, len(pub), ed25519.PublicKeySize)
	}
	return pub, nil
}

// checkClaims checks the claims that do not depend on a receipt.
func checkClaims(c *log.ArtifactClaims, raw []byte, origin string, opts ArtifactOptions) error {
	keys, err := objectKeys(raw)
	if err != nil { // unreachable: decodeStrict checked it
		return fmt.Errorf("%w: artifact claims: %w", ErrBadArtifact, err)
	}
	for _, name := range artifactClaimNames {
		if !slices.Contains(keys, name) {
			return fmt.Errorf("%w: artifact has no %s claim", ErrBadArtifact, name)
		}
	}
	if c.Issuer != origin {
		return fmt.Errorf("%w: artifact issuer is %q, want %q", ErrBadArtifact, c.Issuer, origin)
	}
	switch {
	case opts.Audience == "" && c.Audience != "":
		return fmt.Errorf("%w: artifact is for audience %q, and no audience is configured", ErrBadArtifact, c.Audience)
	case c.Audience != opts.Audience:
		return fmt.Errorf("%w: artifact audience is %q, want %q", ErrBadArtifact, c.Audience, opts.Audience)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	leeway := opts.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	exp, nbf := time.Unix(c.Expiry, 0), time.Unix(c.NotBefore, 0)
	if !now.Before(exp.Add(leeway)) {
		return fmt.Errorf("%w: artifact expired at %s", ErrBadArtifact, exp.UTC().Format(time.RFC3339))
	}
	if now.Before(nbf.Add(-leeway)) {
		return fmt.Errorf("%w: artifact is not valid before %s", ErrBadArtifact, nbf.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkBinding checks that the claims are those of the artifact for the
// receipt's entry and checkpoint (wire contract §5).
func checkBinding(c *log.ArtifactClaims, v *Verified) error {
	d := v.Entry.Decision
	if v.Entry.Kind != log.KindDecision || d == nil || d.Outcome != log.OutcomeAllow {
		return fmt.Errorf("%w: the receipt's entry is not an allow decision", ErrBinding)
	}
	e := v.Entry
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"jti", c.ID, d.ID},
		{"sub", c.Subject, d.Subject},
		{"action", c.Action, d.Action},
		{"resource", c.Resource, d.Resource},
		{"exp", c.Expiry, e.AuthorizedUntil.Unix()},
		{"iat", c.IssuedAt, e.LoggedAt.Unix()},
		{"nbf", c.NotBefore, e.LoggedAt.Unix()},
		{"govlog.index", c.Govlog.Index, v.Index},
		{"govlog.leaf_hash", c.Govlog.LeafHash, base64.StdEncoding.EncodeToString(v.LeafHash[:])},
		{"govlog.tree_size", c.Govlog.TreeSize, v.Checkpoint.Size},
		{"govlog.root_hash", c.Govlog.RootHash, base64.StdEncoding.EncodeToString(v.Checkpoint.Hash[:])},
	} {
		if f.got != f.want {
			return fmt.Errorf("%w: artifact %s is %v, the receipt says %v", ErrBinding, f.name, f.got, f.want)
		}
	}
	return nil
}

// decodeStrict decodes one JSON object into v, refusing duplicate members,
// unknown members, null values (encoding/json leaves a field as it is for
// a null: a null exp would read as 0; SPEC: RFC 7519 §4.1.4: "Its value
// MUST be a number containing a NumericDate value.") and trailing data.
func decodeStrict(data []byte, v any) error {
	if _, err := objectKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
