package log

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
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
	Index    uint64 `json:"index"`
	LeafHash string `json:"leaf_hash"`
	TreeSize uint64 `json:"tree_size"`
	RootHash string `json:"root_hash"`
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
			LeafHash: base64.StdEncoding.EncodeToString(res.Receipt.LeafHash),
			TreeSize: res.Checkpoint.Size,
			RootHash: base64.StdEncoding.EncodeToString(res.Checkpoint.Hash[:]),
		},
	}, nil
}

// Payload returns the claims as RFC 8785 canonical JSON: the same claims
// always give the same JWT payload, so an identical retry gets a
// byte-identical artifact (Ed25519 signatures are deterministic).
func (c *ArtifactClaims) Payload() ([]byte, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("failed to encode artifact claims: %w", err)
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to canonicalize artifact claims: %w", err)
	}
	return out, nil
}
