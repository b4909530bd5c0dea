package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Artifact key rotation.
//
// An authorization artifact is verified by runtimes against the log's JWKS
// until it expires, so the public key that signed it must stay published
// that long. RotateArtifact therefore does two things, in this order:
//
//  1. it appends the current key's public half to artifact-retired.jwks,
//     stamped with "retired_at" (when it was retired, RFC 3339);
//  2. it replaces artifact.jwk with a new key.
//
// govlogd, restarted, signs with the new key and publishes both the new key
// and every retired one. Once every artifact signed by a retired key has
// expired — the artifact TTL after the restart that stopped using it —
// PruneRetired removes it. artifact-retired.jwks is a JWKS (RFC 7517) of
// public Ed25519 keys:
//
//	{"keys":[
//	 {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
//	  "kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k","alg":"EdDSA","use":"sig",
//	  "retired_at":"2026-01-02T03:04:05Z"}
//	]}
//
// A crash between the two steps leaves the current key in both files;
// Load ignores the retired copy and a second RotateArtifact completes the
// rotation. The old private key is not kept anywhere: nothing can sign with
// a retired key.

// RetiredFile is the name of the retired artifact keys in a data directory.
const RetiredFile = "artifact-retired.jwks"

// maxConfigFile bounds the size of a file read by ReadConfig.
const maxConfigFile = 1 << 20

// retiredKey is one key of the retired file.
type retiredKey struct {
	key       jwk.Key   // public Ed25519 key with kid, alg and use
	retiredAt time.Time // zero when the file does not say
}

// retiredJWK is the stored form of a retired key.
type retiredJWK struct {
	Kty       string  `json:"kty"`
	Crv       string  `json:"crv"`
	X         string  `json:"x"`
	Kid       string  `json:"kid"`
	Alg       string  `json:"alg,omitempty"`
	Use       string  `json:"use,omitempty"`
	RetiredAt string  `json:"retired_at,omitempty"`
	D         *string `json:"d,omitempty"`
}

type retiredSet struct {
	Keys []retiredJWK `json:"keys"`
}

// loadRetired reads the retired keys of dir; none when the file is absent.
func loadRetired(dir string) ([]retiredKey, error) {
	path := filepath.Join(dir, RetiredFile)
	data, err := readFile(path, maxKeyFile, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var set retiredSet
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("failed to parse %s: not a JWKS of retired artifact keys", path)
	}
	var out []retiredKey
	seen := map[string]bool{}
	for i, j := range set.Keys {
		if j.D != nil {
			return nil, fmt.Errorf("refusing %s: key %d holds private key material; it must hold public keys only", path, i+1)
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if j.Kty != "OKP" || j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("failed to parse %s: key %d is not a public Ed25519 JWK", path, i+1)
		}
		if j.Kid == "" || seen[j.Kid] {
			return nil, fmt.Errorf("failed to parse %s: key %d has no kid, or the kid of another key", path, i+1)
		}
		seen[j.Kid] = true
		if (j.Alg != "" && j.Alg != jwa.EdDSA.String()) || (j.Use != "" && j.Use != string(jwk.ForSignature)) {
			return nil, fmt.Errorf("failed to parse %s: key %q is not an EdDSA signing key", path, j.Kid)
		}
		r := retiredKey{}
		if j.RetiredAt != "" {
			if r.retiredAt, err = time.Parse(time.RFC3339, j.RetiredAt); err != nil {
				return nil, fmt.Errorf("failed to parse %s: key %q: retired_at is not an RFC 3339 time", path, j.Kid)
			}
		}
		if r.key, err = publicArtifactKey(ed25519.PublicKey(x), j.Kid); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// publicArtifactKey returns pub as a JWK with kid, alg EdDSA and use sig.
func publicArtifactKey(pub ed25519.PublicKey, kid string) (jwk.Key, error) {
	key, err := jwk.FromRaw(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to build a public artifact JWK: %w", err)
	}
	for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: jwa.EdDSA, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := key.Set(k, v); err != nil {
			return nil, fmt.Errorf("failed to set %q of a public artifact JWK: %w", k, err)
		}
	}
	return key, nil
}

// writeRetired replaces the retired file of dir with keys.
func writeRetired(dir string, keys []retiredKey) error {
	set := retiredSet{Keys: []retiredJWK{}}
	for _, r := range keys {
		okp, ok := r.key.(jwk.OKPPublicKey)
		if !ok {
			return errors.New("failed to write the retired artifact keys: not an Ed25519 key")
		}
		j := retiredJWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(okp.X()),
			Kid: r.key.KeyID(), Alg: jwa.EdDSA.String(), Use: string(jwk.ForSignature)}
		if !r.retiredAt.IsZero() {
			j.RetiredAt = r.retiredAt.UTC().Format(time.RFC3339)
		}
		set.Keys = append(set.Keys, j)
	}
	var buf bytes.Buffer
	buf.WriteString("{\"keys\":[")
	for i, j := range set.Keys {
		b, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("failed to encode the retired artifact keys: %w", err)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n ")
		buf.Write(b)
	}
	buf.WriteString("\n]}\n")
	return WriteFile(dir, RetiredFile, buf.Bytes(), 0o644, true)
}

// RotateArtifact retires the artifact key of dir and writes a new one (see
// the rotation procedure above): the current public key is appended to
// artifact-retired.jwks with retired_at = now, then artifact.jwk is
// replaced. It loads dir first (Load), so it refuses a data directory that
// govlogd would refuse. It returns the kids of the retired and the new key.
func RotateArtifact(dir string, now time.Time) (retiredKID, newKID string, err error) {
	k, err := Load(dir)
	if err != nil {
		return "", "", err
	}
	retired, err := loadRetired(dir)
	if err != nil {
		return "", "", err
	}
	cur := k.Artifact.KeyID()
	var priv ed25519.PrivateKey
	if err := k.Artifact.Raw(&priv); err != nil {
		return "", "", errors.New("failed to read the current artifact key")
	}
	pub, err := publicArtifactKey(priv.Public().(ed25519.PublicKey), cur)
	if err != nil {
		return "", "", err
	}
	kept := retired[:0]
	for _, r := range retired {
		if r.key.KeyID() != cur {
			kept = append(kept, r)
		}
	}
	kept = append(kept, retiredKey{key: pub, retiredAt: now.UTC().Truncate(time.Second)})
	if err := writeRetired(dir, kept); err != nil {
		return "", "", err
	}
	jwkJSON, err := newArtifactKey()
	if err != nil {
		return "", "", err
	}
	if err := WriteFile(dir, ArtifactFile, append(jwkJSON, '\n'), 0o600, true); err != nil {
		return "", "", err
	}
	next, err := parseArtifactKey(jwkJSON)
	if err != nil {
		return "", "", fmt.Errorf("failed to read back the new artifact key: %w", err)
	}
	return cur, next.KeyID(), nil
}

// PruneRetired removes from artifact-retired.jwks the keys retired at
// least olderThan before now: pass at least the artifact TTL plus the time
// between the rotation and the restart of govlogd. Keys without retired_at
// are kept. It returns the kids it removed.
func PruneRetired(dir string, olderThan time.Duration, now time.Time) ([]string, error) {
	if olderThan < 0 {
		return nil, errors.New("failed to prune retired artifact keys: the age must not be negative")
	}
	retired, err := loadRetired(dir)
	if err != nil {
		return nil, err
	}
	var kept []retiredKey
	var removed []string
	for _, r := range retired {
		if !r.retiredAt.IsZero() && !now.Before(r.retiredAt.Add(olderThan)) {
			removed = append(removed, r.key.KeyID())
			continue
		}
		kept = append(kept, r)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	if err := writeRetired(dir, kept); err != nil {
		return nil, err
	}
	return removed, nil
}

// ReadConfig reads a file that holds no secret but decides what is trusted
// — an issuer's JWKS, a token file (hashes only), a permission file, a
// witness policy, a published checkpoint, a TLS certificate, a verifier
// key. It must be a regular file of at most 1 MiB, owned by the current
// user, that neither the group nor others may write: whoever can write it
// can let themselves in. A missing file is an error wrapping
// fs.ErrNotExist.
func ReadConfig(path string) ([]byte, error) {
	return readFile(path, maxConfigFile, false)
}
