package server

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/govlog/govlog/internal/b64"
	"github.com/govlog/govlog/log"
)

// artifact signs the authorization artifact of an allow decision logged
// with res: a compact JWS over the canonical claims, so that the same entry
// and checkpoint always give the same bytes.
func (s *Server) artifact(d *log.Decision, res *log.Result) (string, error) {
	audience := s.cfg.Audience
	if d.Executor != "" {
		audience = d.Executor
	}
	claims, err := log.NewArtifactClaims(s.log.Origin(), audience, d, res)
	if err != nil {
		return "", err
	}
	claims.Govlog.KeyIndex = &s.signer.keyIndex
	payload, err := claims.Payload()
	if err != nil {
		return "", err
	}
	return s.signer.sign(payload), nil
}

// artifactSigner makes compact JWS (RFC 7515 §7.1) artifacts with one key:
//
//	BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(Ed25519(key, the two parts))
//
// The protected header, {"alg":"EdDSA","kid":…,"typ":"govlog-authz+jwt"},
// depends on the key only: jwx encodes it once, as it would for every
// artifact, and each artifact then costs one base64 encoding and one
// Ed25519 signature. jwx still does what it is good at: the JWK, the JWKS,
// and parsing and verifying tokens.
type artifactSigner struct {
	header string // BASE64URL(UTF8(protected header))
	key    ed25519.PrivateKey
	// keyIndex is the index of the key's entry in the log (govlog.key_index).
	keyIndex uint64
	// log, when set, signs (Log.SignArtifact): it then knows the artifacts
	// it issued, and does not verify them again when they are claimed.
	log *log.Log
}

// newArtifactSigner returns the signer of artifacts with key, a private
// Ed25519 JWK with a key ID.
func newArtifactSigner(key jwk.Key) (*artifactSigner, error) {
	var raw ed25519.PrivateKey
	if err := key.Raw(&raw); err != nil {
		return nil, fmt.Errorf("failed to read the artifact key: %w", err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, log.ArtifactType); err != nil {
		return nil, fmt.Errorf("failed to set the artifact type: %w", err)
	}
	if err := hdr.Set(jws.KeyIDKey, key.KeyID()); err != nil {
		return nil, fmt.Errorf("failed to set the artifact key ID: %w", err)
	}
	// The header exactly as jwx writes it: the first part of a token it
	// signs.
	tok, err := jws.Sign([]byte("{}"), jws.WithKey(jwa.EdDSA, raw, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return nil, fmt.Errorf("failed to sign with the artifact key: %w", err)
	}
	header, _, ok := strings.Cut(string(tok), ".")
	if !ok || header == "" {
		return nil, errors.New("failed to encode the artifact header")
	}
	return &artifactSigner{header: header, key: raw}, nil
}

// sign returns the compact JWS of payload.
func (a *artifactSigner) sign(payload []byte) string {
	enc := base64.RawURLEncoding
	b := make([]byte, 0, len(a.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(ed25519.SignatureSize))
	b = append(b, a.header...)
	b = append(b, '.')
	b = b64.AppendRawURL(b, payload)
	// The signing input is the first two parts (RFC 7515 §5.1).
	if a.log != nil {
		return a.log.SignArtifact(a.key, b)
	}
	sig := ed25519.Sign(a.key, b)
	b = append(b, '.')
	b = b64.AppendRawURL(b, sig)
	return string(b)
}
