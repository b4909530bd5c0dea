package log

import (
	"crypto/ed25519"
	"crypto/sha512"

	"filippo.io/edwards25519"
)

// appendEd25519 appends the Ed25519 signature (RFC 8032 §5.1.6) of msg
// with key to dst: byte for byte what crypto/ed25519.Sign returns (the
// tests and a fuzz target hold it to it). It encodes the point R once,
// where crypto/ed25519 encodes it twice (for the hash k and for the
// signature), and each encoding costs a field inversion: about an eighth
// of a signature. key must be a valid private key (64 bytes: the seed and
// its public key).
func appendEd25519(dst []byte, key ed25519.PrivateKey, msg []byte) []byte {
	if len(key) != ed25519.PrivateKeySize {
		panic("ed25519: bad private key length")
	}
	// The expanded key: the secret scalar s and the prefix.
	h := sha512.Sum512(key[:ed25519.SeedSize])
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic("ed25519: internal error: setting scalar failed")
	}
	// r = SHA-512(prefix ‖ msg), R = rB.
	var digest [sha512.Size]byte
	mh := sha512.New()
	mh.Write(h[32:])
	mh.Write(msg)
	r, err := edwards25519.NewScalar().SetUniformBytes(mh.Sum(digest[:0]))
	if err != nil {
		panic("ed25519: internal error: setting scalar failed")
	}
	R := (&edwards25519.Point{}).ScalarBaseMult(r).Bytes()
	// k = SHA-512(R ‖ A ‖ msg), S = k·s + r.
	kh := sha512.New()
	kh.Write(R)
	kh.Write(key[ed25519.SeedSize:])
	kh.Write(msg)
	k, err := edwards25519.NewScalar().SetUniformBytes(kh.Sum(digest[:0]))
	if err != nil {
		panic("ed25519: internal error: setting scalar failed")
	}
	S := edwards25519.NewScalar().MultiplyAdd(k, s, r)
	dst = append(dst, R...)
	return append(dst, S.Bytes()...)
}
