package log

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"unsafe"

	"github.com/govlog/govlog/internal/b64"
)

// maxIssued is how many artifacts a Log remembers signing: the most recent
// ones, about 3 MiB. A claim usually follows its allow within seconds; an
// older artifact is verified as any other.
const maxIssued = 1 << 15

// issuedArtifacts remembers artifacts the Log signed itself (SignArtifact):
// the SHA-256 of each one's public key and token. An Ed25519 signature the
// process made with a private key is valid for its public key, so a
// remembered token need not be verified again. Nothing else adds to it.
type issuedArtifacts struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

// issuedDigest is the record's key of an artifact: the SHA-256 of the
// public key followed by the token.
func issuedDigest(pub ed25519.PublicKey, token string) [32]byte {
	return sha256.Sum256(append(append(make([]byte, 0, len(pub)+len(token)), pub...), token...))
}

func (m *issuedArtifacts) add(d [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.set == nil {
		m.set = make(map[[32]byte]struct{})
	}
	if _, ok := m.set[d]; ok {
		return
	}
	if len(m.ring) < maxIssued {
		m.ring = append(m.ring, d)
	} else {
		delete(m.set, m.ring[m.next])
		m.ring[m.next] = d
		m.next = (m.next + 1) % maxIssued
	}
	m.set[d] = struct{}{}
}

func (m *issuedArtifacts) has(d [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.set[d]
	return ok
}

// SignArtifact returns the compact JWS (RFC 7515 §7.1) of signingInput,
// BASE64URL(header) '.' BASE64URL(payload), signed with key (EdDSA), and
// remembers it: a claim that presents this artifact later is not verified
// again (Ed25519 verification costs about twice the signature). The rule
// book still checks that key is the logged key its kid names, and the
// claims against the decision.
func (l *Log) SignArtifact(key ed25519.PrivateKey, signingInput []byte) string {
	// One buffer: the public key, then the token, for its digest.
	enc := base64.RawURLEncoding
	pub := key.Public().(ed25519.PublicKey)
	b := make([]byte, 0, len(pub)+len(signingInput)+1+enc.EncodedLen(ed25519.SignatureSize))
	b = append(append(b, pub...), signingInput...)
	sig := ed25519.Sign(key, b[len(pub):])
	b = append(b, '.')
	b = b64.AppendRawURL(b, sig)
	l.issued.add(sha256.Sum256(b))
	// b is not written again: the token shares its bytes.
	return unsafe.String(&b[len(pub)], len(b)-len(pub))
}

// signedHere reports whether the Log signed token with the private key of
// pub (SignArtifact) recently.
func (l *Log) signedHere(pub ed25519.PublicKey, token string) bool {
	return l.issued.has(issuedDigest(pub, token))
}
