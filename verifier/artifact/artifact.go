// Package artifact verifies govlog authorization artifacts offline.
//
// An authorization artifact is a compact JWS (JWT) with the protected
// header {"alg":"EdDSA","kid":…,"typ":"govlog-authz+jwt"} and the claims
// of log.ArtifactClaims. Verify checks its Ed25519 signature with the key
// of its kid in a JWKS (never "none", never HMAC), its issuer, lifetime
// and audience, and, given the verified receipt it came with
// (verifier.Receipt), that it is bound to exactly that entry and
// checkpoint.
//
// It is a package of its own because JWKS handling (github.com/lestrrat-go/jwx)
// brings net/http with it: the receipt and checkpoint verifier of package
// verifier does without.
package artifact

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/strictjson"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Errors of Verify, besides verifier.ErrBadSignature for an artifact not
// signed by a key of the JWKS. Every error it returns wraps exactly one of
// the three; test with errors.Is.
var (
	// ErrInvalid: an artifact is malformed, not valid at the given time,
	// or not for this issuer or audience.
	ErrInvalid = errors.New("bad authorization artifact")
	// ErrBinding: a valid artifact is not bound to the given receipt.
	ErrBinding = errors.New("artifact is not bound to the receipt")
)

// DefaultLeeway is the clock skew Verify tolerates on exp and nbf.
const DefaultLeeway = 30 * time.Second

// MaxBytes bounds an artifact token.
const MaxBytes = 8 << 10

// Options says what Verify requires of an artifact.
type Options struct {
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
	Receipt *verifier.Verified
}

// artifactHeader is the whole protected header an artifact may have.
type artifactHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

var artifactClaimNames = []string{"iss", "sub", "jti", "iat", "nbf", "exp", "action", "govlog"}

// Verify verifies an authorization artifact and returns its claims. The
// token must be a compact JWS in canonical base64url whose protected header
// has exactly alg "EdDSA", typ "govlog-authz+jwt" and a kid naming an
// Ed25519 key of jwks that verifies the signature. Its claims must be those
// of log.ArtifactClaims, each once, with iss the origin, aud as configured,
// and opts.Now within [nbf, exp) give or take the leeway; and, given
// opts.Receipt, bound to it. See Options.
func Verify(token string, jwks jwk.Set, opts Options) (*log.ArtifactClaims, error) {
	origin := opts.Origin
	if opts.Receipt != nil {
		if origin == "" {
			origin = opts.Receipt.Checkpoint.Origin
		} else if origin != opts.Receipt.Checkpoint.Origin {
			return nil, fmt.Errorf("%w: the receipt is from log %q, not %q", ErrBinding, opts.Receipt.Checkpoint.Origin, origin)
		}
	}
	if origin == "" {
		return nil, errors.New("failed to verify artifact: Options needs an Origin or a Receipt")
	}
	if jwks == nil {
		return nil, errors.New("failed to verify artifact: no JWKS")
	}
	if len(token) > MaxBytes {
		return nil, fmt.Errorf("%w: artifact is %d bytes, the limit is %d", ErrInvalid, len(token), MaxBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: artifact is not a compact JWS of three parts", ErrInvalid)
	}
	var segs [3][]byte
	for i, p := range parts {
		var err error
		if segs[i], err = log.DecodeBase64(base64.RawURLEncoding, p); err != nil {
			return nil, fmt.Errorf("%w: artifact part %d is not canonical unpadded base64url", ErrInvalid, i+1)
		}
	}

	var hdr artifactHeader
	if err := strictjson.DecodeStrict(segs[0], &hdr); err != nil {
		return nil, fmt.Errorf("%w: artifact header: %w", ErrInvalid, err)
	}
	// encoding/json matches member names without regard to case: "ALG"
	// would be read as alg.
	if keys, _ := strictjson.ObjectKeys(segs[0]); slices.ContainsFunc(keys, func(k string) bool { return k != "alg" && k != "kid" && k != "typ" }) {
		return nil, fmt.Errorf("%w: artifact header has members other than alg, kid and typ", ErrInvalid)
	}
	// Anything but EdDSA ("none", HMAC with the public key as secret, …) is
	// refused before any key is looked at.
	if hdr.Alg != jwa.EdDSA.String() {
		return nil, fmt.Errorf("%w: artifact algorithm is %q, only EdDSA is accepted", ErrInvalid, hdr.Alg)
	}
	if hdr.Typ != log.ArtifactType {
		return nil, fmt.Errorf("%w: artifact typ is %q, want %q", ErrInvalid, hdr.Typ, log.ArtifactType)
	}
	if hdr.Kid == "" {
		return nil, fmt.Errorf("%w: artifact header has no kid", ErrInvalid)
	}
	key, ok := jwks.LookupKeyID(hdr.Kid)
	if !ok {
		return nil, fmt.Errorf("%w: the JWKS has no key %q", verifier.ErrBadSignature, hdr.Kid)
	}
	pub, err := ed25519Key(key)
	if err != nil {
		return nil, err
	}
	if _, err := jws.Verify([]byte(token), jws.WithKey(jwa.EdDSA, pub), jws.WithCompact()); err != nil {
		return nil, fmt.Errorf("%w: artifact signature does not verify with key %q", verifier.ErrBadSignature, hdr.Kid)
	}

	var c log.ArtifactClaims
	if err := strictjson.DecodeStrict(segs[1], &c); err != nil {
		return nil, fmt.Errorf("%w: artifact claims: %w", ErrInvalid, err)
	}
	if err := checkClaims(&c, segs[1], origin, opts); err != nil {
		return nil, err
	}
	// The payload is the claims' RFC 8785 canonical JSON (log.ArtifactClaims
	// .Payload), byte for byte: one artifact, one encoding, read the same
	// by every JSON parser (encoding/json alone would take "ISS" for iss).
	if p, err := c.Payload(); err != nil || !bytes.Equal(p, segs[1]) {
		return nil, fmt.Errorf("%w: artifact claims are not the canonical JSON of govlog claims", ErrInvalid)
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
		return nil, fmt.Errorf("%w: JWKS key %q is for %s, not EdDSA", verifier.ErrBadSignature, kid, alg)
	}
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf("%w: JWKS key %q is for use %q, not signatures", verifier.ErrBadSignature, kid, use)
	}
	pk, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: JWKS key %q has no public key: %w", verifier.ErrBadSignature, kid, err)
	}
	var raw any
	if err := pk.Raw(&raw); err != nil {
		return nil, fmt.Errorf("%w: JWKS key %q: %w", verifier.ErrBadSignature, kid, err)
	}
	pub, ok := raw.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: JWKS key %q is not an Ed25519 key", verifier.ErrBadSignature, kid)
	}
	// ed25519.Verify panics on a key of another length, and jwk.Parse
	// takes any length of x.
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: JWKS key %q is %d bytes, an Ed25519 key is %d", verifier.ErrBadSignature, kid, len(pub), ed25519.PublicKeySize)
	}
	return pub, nil
}

// checkClaims checks the claims that do not depend on a receipt.
func checkClaims(c *log.ArtifactClaims, raw []byte, origin string, opts Options) error {
	keys, err := strictjson.ObjectKeys(raw)
	if err != nil { // unreachable: DecodeStrict checked it
		return fmt.Errorf("%w: artifact claims: %w", ErrInvalid, err)
	}
	for _, name := range artifactClaimNames {
		if !slices.Contains(keys, name) {
			return fmt.Errorf("%w: artifact has no %s claim", ErrInvalid, name)
		}
	}
	if c.Issuer != origin {
		return fmt.Errorf("%w: artifact issuer is %q, want %q", ErrInvalid, c.Issuer, origin)
	}
	switch {
	case opts.Audience == "" && c.Audience != "":
		return fmt.Errorf("%w: artifact is for audience %q, and no audience is configured", ErrInvalid, c.Audience)
	case c.Audience != opts.Audience:
		return fmt.Errorf("%w: artifact audience is %q, want %q", ErrInvalid, c.Audience, opts.Audience)
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
		return fmt.Errorf("%w: artifact expired at %s", ErrInvalid, exp.UTC().Format(time.RFC3339))
	}
	if now.Before(nbf.Add(-leeway)) {
		return fmt.Errorf("%w: artifact is not valid before %s", ErrInvalid, nbf.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkBinding checks that the claims are those of the artifact for the
// receipt's entry and checkpoint (wire contract §5).
func checkBinding(c *log.ArtifactClaims, v *verifier.Verified) error {
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
