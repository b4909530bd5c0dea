package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the note key type of Ed25519 cosignature/v1 keys.
const algCosignatureV1 = 0x04

// GenerateKey generates an Ed25519 cosignature/v1 key pair for a witness
// named name: the private key skey, in the note signer key format with key
// type 0x04, and its verifier key vkey, the one to give to logs and
// clients. The key ID of both is SHA-256(name || "\n" || 0x04 || public
// key)[:4], as tlog-cosignature specifies.
func GenerateKey(name string) (skey, vkey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("failed to generate a witness key: %q is not a valid key name (non-empty, no spaces or '+')", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("failed to generate a witness key: %w", err)
	}
	id := keyID(name, pub)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, id,
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	return skey, verifierKey(name, pub), nil
}

// VerifierKeyOf returns the cosignature/v1 verifier key of a witness's
// private key (as New accepts it).
func VerifierKeyOf(skey string) (string, error) {
	_, vkey, err := parseKey(skey)
	return vkey, err
}

// parseKey parses a witness's private key and returns its cosignature/v1
// signer and verifier key. Errors never quote the key.
func parseKey(skey string) (note.Signer, string, error) {
	skey = strings.TrimSpace(skey)
	errKey := errors.New("the witness key is not a note signer key of type Ed25519 (0x01) or Ed25519 cosignature/v1 (0x04)")
	// The base64 may itself hold '+': split off the first four fields.
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" || !validName(parts[2]) {
		return nil, "", errKey
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || (raw[0] != 0x01 && raw[0] != algCosignatureV1) {
		return nil, "", errKey
	}
	name := parts[2]
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	if raw[0] == algCosignatureV1 && parts[3] != fmt.Sprintf("%08x", keyID(name, pub)) {
		return nil, "", errors.New("the witness key's key ID does not match its key")
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, "", errKey
	}
	vkey := verifierKey(name, pub)
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || v.KeyHash() != signer.KeyHash() || v.Name() != signer.Name() {
		return nil, "", errors.New("the witness key does not give a usable cosignature/v1 key pair")
	}
	return signer, vkey, nil
}

// verifierKey is the cosignature/v1 vkey of a public key.
func verifierKey(name string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
}

// keyID is the cosignature/v1 key ID.
//
// SPEC: "The key ID for Ed25519 cosignatures MUST be computed as
// SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public
// key)[:4]"
func keyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName reports whether name can be a note key name: non-empty valid
// UTF-8 without Unicode spaces or '+'.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}
