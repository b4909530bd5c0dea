package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// Defaults of the artifact key cache.
const (
	// DefaultJWKSCacheTTL is how long a fetched JWKS is used before it is
	// fetched again.
	DefaultJWKSCacheTTL = 5 * time.Minute
	// jwksMinRefresh is the least time between two fetches caused by an
	// unknown key id (a key rotation), so that forged tokens cannot make
	// the client hammer the log.
	jwksMinRefresh = 30 * time.Second
	// jwksPath is where govlogd publishes the artifact keys.
	jwksPath = "/.well-known/jwks.json"
)

// ErrNotAuthorized is returned by VerifyArtifact for a valid artifact that
// authorizes something else than what the runtime is about to do.
var ErrNotAuthorized = errors.New("the artifact does not authorize this")

// WithAudience sets the audience ("aud") artifacts must name, as govlogd's
// --artifact-audience. Default: none, and then an artifact naming one is
// refused.
func WithAudience(aud string) Option { return func(c *Client) { c.audience = aud } }

// WithJWKS pins the artifact keys: VerifyArtifact never fetches them, so
// it is fully offline.
func WithJWKS(set jwk.Set) Option { return func(c *Client) { c.jwks.pinned = set } }

// WithJWKSURL sets where the artifact keys are fetched (default: the
// server's /.well-known/jwks.json), and how long they are cached (zero:
// DefaultJWKSCacheTTL).
func WithJWKSURL(u string, ttl time.Duration) Option {
	return func(c *Client) { c.jwks.url, c.jwks.ttl = u, ttl }
}

// Authorization is what a runtime is about to do, which an artifact must
// authorize.
type Authorization struct {
	// Action is the action about to be executed: the artifact's "action"
	// must be exactly this. Required.
	Action string
	// Resource is what it acts on: the artifact's "resource" must be
	// exactly this ("" for an action on no resource).
	Resource string
	// Subject, when set, must be the artifact's "sub": the identity of the
	// agent about to act.
	Subject string
	// Receipt, when set, is the receipt that came with the artifact (a
	// tlog-proof or a JSON receipt): it is verified, and the artifact must
	// be bound to it.
	Receipt []byte
	// Now is the time the artifact must be valid at. Zero means now.
	Now time.Time
}

// VerifyArtifact is what a runtime calls before it executes an action: it
// verifies an authorization artifact (a JWT) against the log's artifact
// keys (a JWKS, fetched from the log and cached, or pinned with WithJWKS),
// the log's origin (the name of the log key, WithLogKey), the audience
// (WithAudience) and the time, and checks that it authorizes exactly
// want. It returns the artifact's claims. Errors wrap
// artifact.ErrInvalid, verifier.ErrBadSignature or artifact.ErrBinding
// for an artifact that is not valid, and ErrNotAuthorized for a valid one
// that authorizes something else.
func (c *Client) VerifyArtifact(ctx context.Context, token string, want Authorization) (*log.ArtifactClaims, error) {
	if c.logKey == nil {
		return nil, fmt.Errorf("failed to verify the artifact: %w", ErrNoLogKey)
	}
	if want.Action == "" {
		return nil, errors.New("failed to verify the artifact: Authorization.Action is required")
	}
	opts := artifact.Options{Origin: c.logKey.Name(), Audience: c.audience, Now: want.Now}
	if want.Receipt != nil {
		v, err := c.VerifyReceipt(want.Receipt)
		if err != nil {
			return nil, fmt.Errorf("failed to verify the artifact's receipt: %w", err)
		}
		opts.Receipt = v
	}
	set, err := c.artifactKeys(ctx, false)
	if err != nil {
		return nil, err
	}
	claims, err := artifact.Verify(token, set, opts)
	if errors.Is(err, verifier.ErrBadSignature) && c.jwks.pinned == nil {
		// Perhaps a key the cached set does not have yet.
		if fresh, ferr := c.artifactKeys(ctx, true); ferr == nil && fresh != set {
			claims, err = artifact.Verify(token, fresh, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to verify the artifact: %w", err)
	}
	switch {
	case claims.Action != want.Action:
		return nil, fmt.Errorf("%w: it authorizes action %q, not %q", ErrNotAuthorized, claims.Action, want.Action)
	case claims.Resource != want.Resource:
		return nil, fmt.Errorf("%w: it authorizes resource %q, not %q", ErrNotAuthorized, claims.Resource, want.Resource)
	case want.Subject != "" && claims.Subject != want.Subject:
		return nil, fmt.Errorf("%w: it authorizes subject %q, not %q", ErrNotAuthorized, claims.Subject, want.Subject)
	}
	return claims, nil
}

// artifactKeys returns the artifact key set: pinned, cached, or fetched.
// refresh asks for a fetch even when the cache is fresh (at most every
// jwksMinRefresh).
func (c *Client) artifactKeys(ctx context.Context, refresh bool) (jwk.Set, error) {
	j := &c.jwks
	if j.pinned != nil {
		return j.pinned, nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	ttl := j.ttl
	if ttl <= 0 {
		ttl = DefaultJWKSCacheTTL
	}
	age := time.Since(j.fetched)
	if j.set != nil && ((!refresh && age < ttl) || (refresh && age < jwksMinRefresh)) {
		return j.set, nil
	}
	data, err := c.fetchJWKS(ctx)
	if err != nil {
		if j.set != nil && !refresh {
			// A stale set is better than none; the fetch is retried next time.
			c.logger.Warn("failed to refresh the artifact keys; using the cached ones", "error", err)
			return j.set, nil
		}
		return nil, err
	}
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the artifact keys: %w", err)
	}
	j.set, j.fetched = set, time.Now()
	return set, nil
}

func (c *Client) fetchJWKS(ctx context.Context) ([]byte, error) {
	if c.jwks.url == "" {
		data, err := c.fetch(ctx, jwksPath, maxResponseBytes, false)
		if err != nil {
			return nil, fmt.Errorf("failed to get the artifact keys: %w", err)
		}
		return data, nil
	}
	u, err := url.Parse(c.jwks.url)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the JWKS URL: %w", err)
	}
	u = c.base.ResolveReference(u)
	data, err := c.fetchURL(ctx, u, maxResponseBytes, false)
	if err != nil {
		return nil, fmt.Errorf("failed to get the artifact keys from %s: %w", u, err)
	}
	return data, nil
}

// VerifyReceipt verifies a receipt offline with the log key (WithLogKey):
// a C2SP tlog-proof, or the JSON receipt of the API. See package verifier
// for what is checked. It does not consult the trusted state (it makes no
// request); pass the receipt's checkpoint to Observe for that.
func (c *Client) VerifyReceipt(receipt []byte) (*verifier.Verified, error) {
	if c.logKey == nil {
		return nil, fmt.Errorf("failed to verify the receipt: %w", ErrNoLogKey)
	}
	var (
		v   *verifier.Verified
		err error
	)
	if t := bytes.TrimLeft(receipt, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		v, err = verifier.ReceiptJSON(receipt, c.logKey)
	} else {
		v, err = verifier.Receipt(receipt, c.logKey)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to verify the receipt: %w", err)
	}
	return v, nil
}
