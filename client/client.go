// Package client is the Go SDK of govlog's REST API (wire contract v1).
//
// A control plane logs each decision with Submit and keeps the receipt it
// gets back; a runtime reports what it did with SubmitExecution; anyone
// fetches receipts with Decision and Execution, and the latest checkpoint
// with Checkpoint.
//
// Submitting is idempotent: the decision id is the idempotency key, and
// resubmitting an identical decision returns the original receipt. So
// Submit retries on its own when the log is overloaded (429), unavailable
// (503, which means "not acknowledged"), behind a failing gateway (502,
// 504) or unreachable, honouring Retry-After, within a bounded number of
// attempts and the context's deadline.
//
// With WithLogKey, every receipt is verified offline (package verifier)
// before it is returned, and checked to hold exactly what was submitted.
// Without a log key, receipts are returned as the server sent them.
//
// A runtime calls VerifyArtifact before it executes an action: the
// artifact's signature against the log's artifact keys (cached), its
// issuer, audience and lifetime, and that it authorizes exactly that
// action on that resource (artifact.go). VerifyReceipt verifies a receipt
// offline. WithTrustedState keeps the latest checkpoint the client trusts
// in a file and checks every checkpoint it sees against it, returning a
// *verifier.InconsistencyError, with both signed checkpoints and the
// proof, for a log that shows it two histories (trust.go). Audit replays
// the log through its C2SP tlog-tiles API and checks everything, only what
// is new since the previous audit's state (audit.go, tiles.go).
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"golang.org/x/mod/sumdb/note"
)

// Defaults of the options.
const (
	// DefaultMaxAttempts is how many times a request is sent at most.
	DefaultMaxAttempts = 5
	// DefaultMaxRetryWait is the longest Retry-After the client waits for;
	// a server asking for longer gets its error returned instead.
	DefaultMaxRetryWait = time.Minute
	// maxResponseBytes bounds every response body read.
	maxResponseBytes = 1 << 20
	// backoffBase and backoffMax shape the wait between attempts when the
	// server says nothing: exponential, with jitter.
	backoffBase = 200 * time.Millisecond
	backoffMax  = 5 * time.Second
)

// ErrNoLogKey is returned by methods that need the log key (WithLogKey) to
// verify what they return.
var ErrNoLogKey = errors.New("no log key configured")

// APIError is an error answer of the API: its HTTP status and the code and
// message of its JSON error body (wire contract §4). Code is "" when the
// body was not a JSON error.
type APIError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
	// Method and URL are the request's (the URL without its password, if
	// any): a 404 usually means a URL that is not a govlog API.
	Method, URL string
	// Receipt is the receipt an error body carries, nil when none: an
	// execution report recorded with a violation is answered 409 with the
	// receipt of its entry (wire contract §2b). It is not verified.
	Receipt *log.Receipt
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("govlog API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("govlog API: %d %s: %s", e.Status, e.Code, e.Message)
}

// Client is a client of one govlog server. It is safe for concurrent use.
type Client struct {
	base         *url.URL
	http         *http.Client
	token        string
	logKey       note.Verifier
	maxAttempts  int
	maxRetryWait time.Duration
	logger       *slog.Logger
	// sleep waits for d or until ctx is done. Tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// extras holds the trusted state and the artifact key cache (trust.go).
	extras
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default http.DefaultClient). Its
// Timeout, if any, bounds each attempt; bound the whole call with the
// context.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithBearerToken sends "Authorization: Bearer token" with every request.
func WithBearerToken(token string) Option { return func(c *Client) { c.token = token } }

// WithLogKey sets the log's note verifier key: receipts and checkpoints are
// then verified before they are returned.
func WithLogKey(v note.Verifier) Option { return func(c *Client) { c.logKey = v } }

// WithMaxAttempts sets how many times a request is sent at most (default
// DefaultMaxAttempts; values below 1 mean 1).
func WithMaxAttempts(n int) Option { return func(c *Client) { c.maxAttempts = max(n, 1) } }

// WithMaxRetryWait sets the longest Retry-After the client honours by
// waiting (default DefaultMaxRetryWait).
func WithMaxRetryWait(d time.Duration) Option { return func(c *Client) { c.maxRetryWait = d } }

// WithLogger sets the logger of retries (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// New returns a client of the server at baseURL (for example
// "https://govlog.example.com" or "http://127.0.0.1:8080/prefix").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("failed to parse the server URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("failed to parse the server URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("failed to parse the server URL %q: it must have no query or fragment", baseURL)
	}
	c := &Client{
		base:         u,
		http:         http.DefaultClient,
		maxAttempts:  DefaultMaxAttempts,
		maxRetryWait: DefaultMaxRetryWait,
		sleep:        sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Submit logs a decision (the JSON body of wire contract §2) and returns
// its receipt; created is false when the log already held this exact
// decision, whose original receipt (and artifact) is then returned.
// Errors from the API are *APIError.
func (c *Client) Submit(ctx context.Context, decision []byte) (r *log.Receipt, created bool, err error) {
	return c.submit(ctx, log.KindDecision, decision)
}

// SubmitExecution logs an execution report (wire contract §2b) and returns
// its receipt, as Submit does.
func (c *Client) SubmitExecution(ctx context.Context, report []byte) (r *log.Receipt, created bool, err error) {
	return c.submit(ctx, log.KindExecution, report)
}

// Revoke logs a revocation of an allow (wire contract §2c: {"id",
// "decision_id", "revoked_at", "reason"?}) and returns its receipt, as
// Submit does, with the same retries.
func (c *Client) Revoke(ctx context.Context, revocation []byte) (r *log.Receipt, created bool, err error) {
	return c.submit(ctx, log.KindRevocation, revocation)
}

func (c *Client) submit(ctx context.Context, kind log.Kind, body []byte) (*log.Receipt, bool, error) {
	path := "/v1/decisions"
	switch kind {
	case log.KindExecution:
		path = "/v1/executions"
	case log.KindRevocation:
		path = "/v1/revocations"
	}
	res, err := c.roundTrip(ctx, http.MethodPost, path, body)
	if err != nil {
		return nil, false, fmt.Errorf("failed to submit %v: %w", kind, err)
	}
	if res.status != http.StatusCreated && res.status != http.StatusOK {
		return nil, false, fmt.Errorf("failed to submit %v: unexpected status %d", kind, res.status)
	}
	r, v, err := c.receipt(res.body)
	if err != nil {
		return nil, false, fmt.Errorf("failed to submit %v: %w", kind, err)
	}
	if v != nil {
		if err := sameContent(kind, body, v); err != nil {
			return nil, false, fmt.Errorf("failed to submit %v: %w", kind, err)
		}
		if err := c.observe(ctx, v.Checkpoint); err != nil {
			return nil, false, fmt.Errorf("failed to submit %v: %w", kind, err)
		}
	}
	return r, res.status == http.StatusCreated, nil
}

// sameContent checks that a verified entry holds exactly the submitted
// decision or execution report, canonicalized as the log does. The log
// judged the submission; this compares contents, by the rules of logged
// entries (a log of an earlier version may have accepted more).
func sameContent(kind log.Kind, body []byte, v *verifier.Verified) error {
	var canonical []byte
	switch kind {
	case log.KindDecision:
		if d, err := log.ParseLoggedDecision(body, v.Entry.LoggedAt); err == nil {
			canonical = d.Canonical
		}
	case log.KindExecution:
		if x, err := log.ParseLoggedExecution(body, v.Entry.LoggedAt); err == nil {
			canonical = x.Canonical
		}
	case log.KindRevocation:
		if r, err := log.ParseLoggedRevocation(body, v.Entry.LoggedAt); err == nil {
			canonical = r.Canonical
		}
	}
	if v.Entry.Kind != kind || canonical == nil || !bytes.Equal(canonical, v.Entry.Content) {
		return fmt.Errorf("the receipt's entry %d does not hold the submitted %v", v.Index, kind)
	}
	return nil
}

// Decision returns the receipt of a logged decision against the latest
// checkpoint (without artifact). A decision the log does not hold is an
// *APIError with Status 404.
func (c *Client) Decision(ctx context.Context, id string) (*log.Receipt, error) {
	return c.lookup(ctx, log.KindDecision, id)
}

// Execution returns the receipt of a logged execution report, as Decision.
func (c *Client) Execution(ctx context.Context, id string) (*log.Receipt, error) {
	return c.lookup(ctx, log.KindExecution, id)
}

func (c *Client) lookup(ctx context.Context, kind log.Kind, id string) (*log.Receipt, error) {
	path := "/v1/decisions/" + url.PathEscape(id)
	if kind == log.KindExecution {
		path = "/v1/executions/" + url.PathEscape(id)
	}
	res, err := c.roundTrip(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to get %v %q: %w", kind, id, err)
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("failed to get %v %q: unexpected status %d", kind, id, res.status)
	}
	r, v, err := c.receipt(res.body)
	if err != nil {
		return nil, fmt.Errorf("failed to get %v %q: %w", kind, id, err)
	}
	if v != nil && (v.Entry.Kind != kind || v.Entry.ID != id) {
		return nil, fmt.Errorf("failed to get %v %q: the server sent the receipt of %v %q", kind, id, v.Entry.Kind, v.Entry.ID)
	}
	if v != nil {
		if err := c.observe(ctx, v.Checkpoint); err != nil {
			return nil, fmt.Errorf("failed to get %v %q: %w", kind, id, err)
		}
	}
	return r, nil
}

// receipt decodes a JSON receipt and, with a log key, verifies it.
func (c *Client) receipt(body []byte) (*log.Receipt, *verifier.Verified, error) {
	var r log.Receipt
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, nil, fmt.Errorf("failed to decode the receipt: %w", err)
	}
	if c.logKey == nil {
		return &r, nil, nil
	}
	v, err := verifier.ReceiptJSON(body, c.logKey)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to verify the receipt: %w", err)
	}
	return &r, v, nil
}

// Checkpoint returns the log's latest checkpoint, verified with the log
// key; it needs WithLogKey.
func (c *Client) Checkpoint(ctx context.Context) (log.Checkpoint, error) {
	if c.logKey == nil {
		return log.Checkpoint{}, fmt.Errorf("failed to get the checkpoint: %w", ErrNoLogKey)
	}
	res, err := c.roundTrip(ctx, http.MethodGet, "/v1/checkpoint", nil)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("failed to get the checkpoint: %w", err)
	}
	if res.status != http.StatusOK {
		return log.Checkpoint{}, fmt.Errorf("failed to get the checkpoint: unexpected status %d", res.status)
	}
	cp, err := verifier.Checkpoint(res.body, c.logKey)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("failed to verify the checkpoint: %w", err)
	}
	if err := c.observe(ctx, cp); err != nil {
		return log.Checkpoint{}, err
	}
	return cp, nil
}

// response is a 2xx answer.
type response struct {
	status int
	body   []byte
}

// roundTrip sends a request until it gets a 2xx answer, a final error
// answer (returned as *APIError), or runs out of attempts or time. Every
// request of the API may be repeated: reads are safe, and submissions are
// idempotent by id.
func (c *Client) roundTrip(ctx context.Context, method, path string, body []byte) (*response, error) {
	u := c.base.JoinPath(path).String()
	var res *response
	err := c.retry(ctx, method, path, func() (retryAfter time.Duration, err error) {
		res, retryAfter, err = c.attempt(ctx, method, u, body)
		return retryAfter, err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// retry calls once until it succeeds, fails with an error that is not
// retryable, or runs out of attempts, time or patience: it waits the
// server's Retry-After (once returns it, or 0) or an exponential backoff
// between attempts.
func (c *Client) retry(ctx context.Context, method, path string, once func() (time.Duration, error)) error {
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := once()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		}
		if !retryable(err) {
			return err
		}
		last = err
		if attempt >= c.maxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, last)
		}
		wait := retryAfter
		if wait == 0 {
			wait = backoff(attempt)
		}
		if wait > c.maxRetryWait {
			return fmt.Errorf("the server asks to retry after %v, longer than %v: %w", wait, c.maxRetryWait, last)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("gave up after %d attempts: the next one, due in %v, would come after the deadline (%w): %w",
				attempt, wait, context.DeadlineExceeded, last)
		}
		c.logger.LogAttrs(ctx, slog.LevelWarn, "retrying govlog request", slog.String("method", method),
			slog.String("path", path), slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("error", last))
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%w (last attempt: %w)", err, last)
		}
	}
}

// backoff is the wait before attempt+1 when the server gave no
// Retry-After: exponential from backoffBase, capped, with full jitter.
func backoff(attempt int) time.Duration {
	d := min(backoffBase<<min(attempt-1, 16), backoffMax)
	return d/2 + rand.N(d/2+1)
}

// transportError is a request that got no HTTP answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryable reports whether a failed attempt may succeed when repeated.
func retryable(err error) bool {
	var te *transportError
	if errors.As(err, &te) {
		var cert *tls.CertificateVerificationError
		return !errors.As(err, &cert)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// attempt sends one request. It returns the 2xx answer, or an error: a
// *transportError, or an *APIError with the Retry-After it carried.
func (c *Client) attempt(ctx context.Context, method, u string, body []byte) (*response, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to build the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/plain")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, &transportError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, 0, &transportError{fmt.Errorf("failed to read the response: %w", err)}
	}
	if len(data) > maxResponseBytes {
		return nil, 0, fmt.Errorf("the response is larger than %d bytes", maxResponseBytes)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return &response{status: resp.StatusCode, body: data}, 0, nil
	}
	ae := apiError(resp, data)
	return nil, ae.RetryAfter, ae
}

// apiError reads an error answer.
func apiError(resp *http.Response, body []byte) *APIError {
	ae := &APIError{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if resp.Request != nil {
		ae.Method, ae.URL = resp.Request.Method, resp.Request.URL.Redacted()
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Receipt *log.Receipt `json:"receipt"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		ae.Code, ae.Message, ae.Receipt = e.Error.Code, e.Error.Message, e.Receipt
		return ae
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = "(no body)"
	}
	ae.Message = msg
	return ae
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date (RFC 9110 §10.2.3). It returns zero when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
