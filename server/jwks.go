package server

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// addRetiredKeys adds to set the public keys of artifacts signed before the
// current key (kid current) was in use: runtimes must still verify those
// artifacts until they expire. Each is published with kty, crv, x, kid,
// alg and use only, whatever else its JWK held. A retired key under the
// current kid is the current key (a rotation interrupted half-way) and is
// skipped.
func addRetiredKeys(set jwk.Set, current string, retired []jwk.Key) error {
	seen := map[string]bool{current: true}
	for _, key := range retired {
		if key == nil {
			return errors.New("a retired artifact key is nil")
		}
		kid := key.KeyID()
		if kid == "" {
			return errors.New("a retired artifact key has no key ID (kid)")
		}
		if kid == current {
			continue
		}
		if seen[kid] {
			return fmt.Errorf("the retired artifact key %q is given twice", kid)
		}
		seen[kid] = true
		okp, ok := key.(jwk.OKPPublicKey)
		if !ok || okp.Crv() != jwa.Ed25519 || len(okp.X()) != ed25519.PublicKeySize {
			return fmt.Errorf("the retired artifact key %q is not a public Ed25519 JWK", kid)
		}
		pub, err := jwk.FromRaw(ed25519.PublicKey(okp.X()))
		if err != nil {
			return fmt.Errorf("failed to rebuild the retired artifact key %q: %w", kid, err)
		}
		for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.EdDSA, jwk.KeyUsageKey: jwk.ForSignature} {
			if err := pub.Set(k, v); err != nil {
				return fmt.Errorf("failed to set %s of the retired artifact key %q: %w", k, kid, err)
			}
		}
		if err := set.AddKey(pub); err != nil {
			return fmt.Errorf("failed to add the retired artifact key %q to the JWKS: %w", kid, err)
		}
	}
	return nil
}
