package log

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/govlog/govlog/internal/b64"
)

// ArtifactType is the JWT "typ" header of an authorization artifact.
const ArtifactType = "govlog-authz+jwt"

// ArtifactClaims are the claims of an authorization artifact (wire contract
// §5): a short-lived JWT, signed EdDSA, that a runtime requires before it
// executes an allowed action. The govlog claim binds it to the log entry.
type ArtifactClaims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	ID        string          `json:"jti"`
	IssuedAt  int64           `json:"iat"`
	NotBefore int64           `json:"nbf"`
	Expiry    int64           `json:"exp"`
	Audience  string          `json:"aud,omitempty"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource,omitempty"`
	Govlog    ArtifactBinding `json:"govlog"`
}

// ArtifactBinding ties an artifact to its entry and the checkpoint of its
// receipt; hashes are standard base64, byte-identical to the receipt's.
type ArtifactBinding struct {
	Index uint64 `json:"index"`
	// KeyIndex is the index of the key entry (§2e) of the key that signs
	// the artifact: a verifier holding only the log key checks the
	// artifact with the key of that entry. Nil in artifacts that predate
	// key entries.
	KeyIndex *uint64 `json:"key_index,omitempty"`
	LeafHash string  `json:"leaf_hash"`
	TreeSize uint64  `json:"tree_size"`
	RootHash string  `json:"root_hash"`
}

// NewArtifactClaims returns the claims of the artifact for an allow decision
// logged with res. It fails for anything but an allow decision.
func NewArtifactClaims(origin, audience string, d *Decision, res *Result) (*ArtifactClaims, error) {
	if d.Outcome != OutcomeAllow || res.AuthorizedUntil.IsZero() {
		return nil, fmt.Errorf("failed to build artifact claims: decision %q is not an allow", d.ID)
	}
	iat := res.LoggedAt.Unix() // truncated to the second
	return &ArtifactClaims{
		Issuer:    origin,
		Subject:   d.Subject,
		ID:        d.ID,
		IssuedAt:  iat,
		NotBefore: iat,
		Expiry:    res.AuthorizedUntil.Unix(),
		Audience:  audience,
		Action:    d.Action,
		Resource:  d.Resource,
		Govlog: ArtifactBinding{
			Index:    res.Receipt.Index,
			LeafHash: b64.Std(res.Receipt.LeafHash),
			TreeSize: res.Checkpoint.Size,
			RootHash: b64.Std(res.Checkpoint.Hash[:]),
		},
	}, nil
}

// Payload returns the claims as RFC 8785 canonical JSON: the same claims
// always give the same JWT payload, so an identical retry gets a
// byte-identical artifact (Ed25519 signatures are deterministic). The
// members are written in RFC 8785 order, each value in canonical form; the
// tests check the result against a JCS implementation.
func (c *ArtifactClaims) Payload() ([]byte, error) {
	b := make([]byte, 0, 512)
	var err error
	str := func(name, v string) {
		if err == nil && !utf8.ValidString(v) {
			err = errors.New("not valid UTF-8")
		}
		b = appendJCSString(append(b, name...), v)
	}
	num := func(name string, v int64) {
		b = append(b, name...)
		b = strconv.AppendInt(b, v, 10)
	}
	str(`{"action":`, c.Action)
	if c.Audience != "" {
		str(`,"aud":`, c.Audience)
	}
	num(`,"exp":`, c.Expiry)
	b = append(b, `,"govlog":{"index":`...)
	b = strconv.AppendUint(b, c.Govlog.Index, 10)
	if c.Govlog.KeyIndex != nil {
		b = append(b, `,"key_index":`...)
		b = strconv.AppendUint(b, *c.Govlog.KeyIndex, 10)
	}
	str(`,"leaf_hash":`, c.Govlog.LeafHash)
	str(`,"root_hash":`, c.Govlog.RootHash)
	b = append(b, `,"tree_size":`...)
	b = strconv.AppendUint(b, c.Govlog.TreeSize, 10)
	b = append(b, '}')
	num(`,"iat":`, c.IssuedAt)
	str(`,"iss":`, c.Issuer)
	str(`,"jti":`, c.ID)
	num(`,"nbf":`, c.NotBefore)
	if c.Resource != "" {
		str(`,"resource":`, c.Resource)
	}
	str(`,"sub":`, c.Subject)
	b = append(b, '}')
	if err != nil {
		return nil, fmt.Errorf("failed to encode artifact claims: %w", err)
	}
	return b, nil
}
