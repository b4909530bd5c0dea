package log

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"sync"
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

func issuedDigest(pub ed25519.PublicKey, token string) [32]byte {
	h := sha256.New()
	h.Write(pub)
	h.Write([]byte(token))
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
func (l *Log) SignArtifact(key ed25519.PrivateKey, signingInput []byte) string {
	enc := base64.RawURLEncoding
	b := make([]byte, 0, len(signingInput)+1+enc.EncodedLen(ed25519.SignatureSize))
	b = append(b, signingInput...)
	sig := ed25519.Sign(key, b)
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	token := string(b)
	l.issued.add(issuedDigest(key.Public().(ed25519.PublicKey), token))
	return token
}

// signedHere reports whether the Log signed token with the private key of
// pub (SignArtifact) recently.
func (l *Log) signedHere(pub ed25519.PublicKey, token string) bool {
	return l.issued.has(issuedDigest(pub, token))
}
