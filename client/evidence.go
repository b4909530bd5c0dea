package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// AuthorizationStatus is the status of a decision's authorization (wire
// contract §2d), with the receipts that prove it.
type AuthorizationStatus struct {
	DecisionID string `json:"decision_id"`
	// Status is "active", "expired", "revoked", "exhausted" or "denied".
	Status          string `json:"status"`
	AuthorizedUntil string `json:"authorized_until,omitempty"`
	MaxExecutions   int    `json:"max_executions,omitempty"`
	Executor        string `json:"executor,omitempty"`
	Uses            int    `json:"uses"`
	Checkpoint      string `json:"checkpoint"`
	// Receipts are those of the decision, then of its accepted claims and
	// its revocation, in log order, all against Checkpoint.
	Receipts []*log.Receipt `json:"receipts"`
}

// Authorization returns the status of decision id's authorization. With a
// log key, every receipt is verified against the answer's checkpoint, the
// first must be the decision's, and the uses and the status must be what
// the receipts prove (a revoked status needs a revocation's receipt, uses
// count the claims'). A decision the log does not hold is an *APIError
// with Status 404. Retries as Submit does.
func (c *Client) Authorization(ctx context.Context, id string) (*AuthorizationStatus, error) {
	res, err := c.roundTrip(ctx, http.MethodGet, "/v1/authorizations/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get the authorization of %q: %w", id, err)
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("failed to get the authorization of %q: unexpected status %d", id, res.status)
	}
	var st AuthorizationStatus
	if err := json.Unmarshal(res.body, &st); err != nil {
		return nil, fmt.Errorf("failed to decode the authorization of %q: %w", id, err)
	}
	if c.logKey == nil {
		return &st, nil
	}
	if err := c.checkAuthorization(ctx, id, &st); err != nil {
		return nil, fmt.Errorf("failed to verify the authorization of %q: %w", id, err)
	}
	return &st, nil
}

func (c *Client) checkAuthorization(ctx context.Context, id string, st *AuthorizationStatus) error {
	cp, err := log.OpenCheckpoint([]byte(st.Checkpoint), c.logKey)
	if err != nil {
		return err
	}
	if len(st.Receipts) == 0 || st.DecisionID != id {
		return fmt.Errorf("the answer holds no receipt of decision %q", id)
	}
	uses, revoked := 0, false
	for i, r := range st.Receipts {
		if r == nil {
			return fmt.Errorf("receipt %d is null", i)
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		v, err := verifier.ReceiptJSON(b, c.logKey)
		if err != nil {
			return fmt.Errorf("receipt %d: %w", i, err)
		}
		if v.Checkpoint.Size != cp.Size || v.Checkpoint.Hash != cp.Hash {
			return fmt.Errorf("receipt %d is not against the answer's checkpoint", i)
		}
		p, err := log.ParseEntry(r.Entry)
		if err != nil {
			return fmt.Errorf("receipt %d: %w", i, err)
		}
		switch {
		case i == 0:
			if p.Decision == nil || p.ID != id {
				return fmt.Errorf("the first receipt is not the decision's")
			}
			if deny := p.Decision.Outcome == log.OutcomeDeny; deny != (st.Status == "denied") {
				return fmt.Errorf("status %q for a decision whose outcome is %s", st.Status, p.Decision.Outcome)
			}
		case p.Revocation != nil && p.Revocation.DecisionID == id:
			revoked = true
		case p.Execution != nil && p.Execution.DecisionID == id && p.Violation == "" && p.Submission().IsClaim():
			uses++
		default:
			return fmt.Errorf("receipt %d is neither a claim nor a revocation of %q", i, id)
		}
	}
	if uses != st.Uses || revoked != (st.Status == "revoked") {
		return fmt.Errorf("the receipts prove %d uses, revoked %v; the answer says %d uses, status %q", uses, revoked, st.Uses, st.Status)
	}
	return c.observe(ctx, cp)
}

// LoggedKey is an artifact signing key logged as an entry (wire contract
// §2e).
type LoggedKey struct {
	KID     string          `json:"kid"`
	JWK     json.RawMessage `json:"jwk"`
	Index   uint64          `json:"index"`
	Receipt *log.Receipt    `json:"receipt"`
}

// Keys returns the artifact keys the log holds as entries. With a log key,
// each key's receipt is verified and its entry must be that key.
func (c *Client) Keys(ctx context.Context) ([]LoggedKey, error) {
	res, err := c.roundTrip(ctx, http.MethodGet, "/v1/keys", nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get the keys: %w", err)
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("failed to get the keys: unexpected status %d", res.status)
	}
	var out struct {
		Keys []LoggedKey `json:"keys"`
	}
	if err := json.Unmarshal(res.body, &out); err != nil {
		return nil, fmt.Errorf("failed to decode the keys: %w", err)
	}
	if c.logKey == nil {
		return out.Keys, nil
	}
	for _, k := range out.Keys {
		if k.Receipt == nil {
			return nil, fmt.Errorf("failed to verify key %q: no receipt", k.KID)
		}
		b, err := json.Marshal(k.Receipt)
		if err != nil {
			return nil, err
		}
		v, err := verifier.ReceiptJSON(b, c.logKey)
		if err != nil {
			return nil, fmt.Errorf("failed to verify key %q: %w", k.KID, err)
		}
		p, err := log.ParseEntry(k.Receipt.Entry)
		if err != nil || p.Key == nil || p.Key.KID != k.KID || v.Index != k.Index {
			return nil, fmt.Errorf("failed to verify key %q: its receipt is not the entry of that key", k.KID)
		}
		if err := c.observe(ctx, v.Checkpoint); err != nil {
			return nil, fmt.Errorf("failed to verify key %q: %w", k.KID, err)
		}
	}
	return out.Keys, nil
}
