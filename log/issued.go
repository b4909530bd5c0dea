package log

import (
	"crypto/ed25519"
	"crypto/sha256"
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
	h := sha256.New()
	h.Write(pub)
	h.Write(unsafe.Slice(unsafe.StringData(token), len(token)))
	var d [32]byte
	h.Sum(d[:0])
	return d
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
//
// The token is signingInput with '.' and the signature appended, in
// signingInput's spare capacity when it has room for them (a caller that
// leaves it saves a copy of the token): the caller must not write to
// signingInput's array afterwards.
func (l *Log) SignArtifact(key ed25519.PrivateKey, signingInput []byte) string {
	sig := ed25519.Sign(key, signingInput)
	b := append(signingInput, '.')
	b = b64.AppendRawURL(b, sig)
	// b is not written again: the token shares its bytes.
	token := unsafe.String(unsafe.SliceData(b), len(b))
	// The public key is the private key's second half (crypto/ed25519).
	l.issued.add(issuedDigest(ed25519.PublicKey(key[ed25519.SeedSize:]), token))
	return token
}

// signedHere reports whether the Log signed token with the private key of
// pub (SignArtifact) recently.
func (l *Log) signedHere(pub ed25519.PublicKey, token string) bool {
	return l.issued.has(issuedDigest(pub, token))
}
