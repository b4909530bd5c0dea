package artifact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// ErrNotAuthorized: a valid artifact authorizes something other than what
// KeyBoundOptions.Expect says.
var ErrNotAuthorized = errors.New("the artifact does not authorize this")

// MaxKeysBytes bounds a GET /v1/keys answer read by VerifyWithKeys.
const MaxKeysBytes = 4 << 20

// Expected is what a runtime is about to do, which an artifact must
// authorize.
type Expected struct {
	// Action must be exactly the artifact's action. Required.
	Action string
	// Resource must be exactly the artifact's resource ("" for none).
	Resource string
	// Subject, when set, must be the artifact's sub.
	Subject string
}

// KeyBoundOptions says what VerifyKeyBound requires of an artifact.
type KeyBoundOptions struct {
	// Audience, Now, Leeway and Receipt are those of Options. Origin must
	// be empty or the log key's name, which is the required iss.
	Options
	// Policy, when set, is the witness policy the key receipt's checkpoint
	// must satisfy.
	Policy *verifier.Policy
	// Expect, when set, is what the artifact must authorize.
	Expect *Expected
}

// VerifyKeyBound verifies an authorization artifact with nothing but the
// log's note verifier key (wire contract §2e):
//
//  1. keyReceipt, the receipt of the signing key's key entry (a tlog-proof
//     or a JSON receipt), verifies with logKey (verifier.KeyReceipt) and,
//     given opts.Policy, its checkpoint satisfies the policy;
//  2. the artifact's header kid is the key entry's kid, and the artifact
//     verifies with the entry's public key as Verify checks it (alg, typ,
//     signature, claims, iss the log's origin, aud, exp and nbf);
//  3. the artifact's govlog.key_index is present and is the key receipt's
//     index;
//  4. given opts.Expect, it authorizes exactly that action and resource,
//     and that subject when set.
//
// It returns the claims and the verified key. Errors wrap ErrInvalid,
// ErrBinding (the artifact is not bound to the key receipt, or to
// opts.Receipt), ErrNotAuthorized, or an error of package verifier for the
// key receipt and the signature.
func VerifyKeyBound(token string, keyReceipt []byte, logKey note.Verifier, opts KeyBoundOptions) (*log.ArtifactClaims, *verifier.VerifiedKey, error) {
	if opts.Origin != "" && opts.Origin != logKey.Name() {
		return nil, nil, fmt.Errorf("failed to verify artifact: the origin %q is not the log key's name %q", opts.Origin, logKey.Name())
	}
	if opts.Expect != nil && opts.Expect.Action == "" {
		return nil, nil, errors.New("failed to verify artifact: Expected.Action is required")
	}
	vk, err := verifier.KeyReceipt(keyReceipt, logKey)
	if err != nil {
		return nil, nil, fmt.Errorf("key receipt: %w", err)
	}
	if opts.Policy != nil {
		if err := opts.Policy.Check(vk.Checkpoint.Note); err != nil {
			return nil, nil, fmt.Errorf("key receipt: %w", err)
		}
	}
	set, err := keySet(vk.Key)
	if err != nil {
		return nil, nil, err
	}
	o := opts.Options
	o.Origin = logKey.Name()
	c, err := Verify(token, set, o)
	if err != nil {
		return nil, nil, err
	}
	if c.Govlog.KeyIndex == nil {
		return nil, nil, fmt.Errorf("%w: the artifact has no govlog.key_index: it names no logged key", ErrBinding)
	}
	if *c.Govlog.KeyIndex != vk.Index {
		return nil, nil, fmt.Errorf("%w: the artifact's govlog.key_index is %d, the key receipt's index %d", ErrBinding, *c.Govlog.KeyIndex, vk.Index)
	}
	if e := opts.Expect; e != nil {
		switch {
		case c.Action != e.Action:
			return nil, nil, fmt.Errorf("%w: it authorizes action %q, not %q", ErrNotAuthorized, c.Action, e.Action)
		case c.Resource != e.Resource:
			return nil, nil, fmt.Errorf("%w: it authorizes resource %q, not %q", ErrNotAuthorized, c.Resource, e.Resource)
		case e.Subject != "" && c.Subject != e.Subject:
			return nil, nil, fmt.Errorf("%w: it authorizes subject %q, not %q", ErrNotAuthorized, c.Subject, e.Subject)
		}
	}
	return c, vk, nil
}

// keySet is the JWKS of one logged key. An artifact whose kid is another
// fails Verify with verifier.ErrBadSignature.
func keySet(k *log.KeyContent) (jwk.Set, error) {
	key, err := jwk.FromRaw(k.Public)
	if err != nil {
		return nil, fmt.Errorf("failed to use the logged key %q: %w", k.KID, err)
	}
	if err := key.Set(jwk.KeyIDKey, k.KID); err != nil {
		return nil, fmt.Errorf("failed to use the logged key %q: %w", k.KID, err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(key); err != nil {
		return nil, fmt.Errorf("failed to use the logged key %q: %w", k.KID, err)
	}
	return set, nil
}

// keysAnswer is the body of GET /v1/keys.
type keysAnswer struct {
	Keys []struct {
		Kid     string          `json:"kid"`
		JWK     json.RawMessage `json:"jwk"`
		Index   uint64          `json:"index"`
		Receipt json.RawMessage `json:"receipt"`
	} `json:"keys"`
}

// KeyReceiptFor returns, from a GET /v1/keys answer, the receipt of the key
// entry at index (an artifact's govlog.key_index). The receipt is not
// verified here: VerifyKeyBound does that.
func KeyReceiptFor(keys []byte, index uint64) ([]byte, error) {
	if len(keys) > MaxKeysBytes {
		return nil, fmt.Errorf("%w: the key list is %d bytes, the limit is %d", verifier.ErrMalformed, len(keys), MaxKeysBytes)
	}
	var a keysAnswer
	if err := json.Unmarshal(keys, &a); err != nil {
		return nil, fmt.Errorf("%w: the key list: %w", verifier.ErrMalformed, err)
	}
	for _, k := range a.Keys {
		if k.Index == index {
			return bytes.Clone(k.Receipt), nil
		}
	}
	return nil, fmt.Errorf("%w: the key list has no key at index %d", ErrBinding, index)
}

// KeyIndexOf reads, without verifying anything, the govlog.key_index an
// artifact names, to find its key receipt. ok is false when it names none.
func KeyIndexOf(token string) (index uint64, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > MaxBytes {
		return 0, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, false
	}
	var c struct {
		Govlog struct {
			KeyIndex *uint64 `json:"key_index"`
		} `json:"govlog"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Govlog.KeyIndex == nil {
		return 0, false
	}
	return *c.Govlog.KeyIndex, true
}

// VerifyWithKeys is VerifyKeyBound with the key receipt taken from a GET
// /v1/keys answer (keys): the receipt of the entry the artifact's
// govlog.key_index names.
func VerifyWithKeys(token string, keys []byte, logKey note.Verifier, opts KeyBoundOptions) (*log.ArtifactClaims, *verifier.VerifiedKey, error) {
	index, ok := KeyIndexOf(token)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the artifact names no govlog.key_index", ErrInvalid)
	}
	receipt, err := KeyReceiptFor(keys, index)
	if err != nil {
		return nil, nil, err
	}
	return VerifyKeyBound(token, receipt, logKey, opts)
}
