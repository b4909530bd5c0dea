// Package gate is govlog-gate: a reverse proxy in front of an HTTP tool or
// API that lets a request through only with a valid, unused authorization
// from a govlog log, and logs what the tool did with it.
//
// # A request's way through the gate
//
//  1. Route. The request's method and path must match a route of the
//     configuration (a net/http ServeMux pattern such as
//     "POST /tools/{name}"), which names the action and resource it needs
//     ("tool.call", "tool/{name}"). No route: 403 no_route.
//
//  2. Authorization. In artifact mode the caller presents the artifact
//     ("Authorization: GovLog <jwt>", or the bare JWT in a configured
//     header). In policy mode the gate asks OPA (POST /v1/data/<path>,
//     the request as input), logs the decision, allow or deny, and on
//     allow takes the artifact from the log's answer; a deny is 403
//     policy_denied with the decision's id and index.
//
//  3. Verification, offline: the artifact's signature with the log's
//     artifact keys, its issuer (the log's origin), audience and lifetime,
//     and that it authorizes exactly this action and resource (and, when
//     the caller's identity is configured, this subject).
//
//  4. Claim. The gate logs a "started" execution report carrying the
//     artifact (wire contract §2b). The log answers 201 for the first use
//     within the authorization's limits and 409 with a recorded violation
//     for anything else (a replay, an expired or revoked authorization):
//     the gate forwards only on 201 (or 200: its own retry of the same
//     claim, whose id is fresh and random).
//
//  5. Forward. The request goes to the upstream, its body streamed (at
//     most Limits.MaxRequestBytes), the artifact header removed, with
//     Govlog-Decision-Id and Govlog-Claim-Id headers added; the response
//     is streamed back (at most Limits.MaxResponseBytes) while it is
//     hashed. (In policy mode the caller's headers, Authorization
//     included, are forwarded as they are.)
//
//  6. Report. Once the response is relayed, the gate logs the terminal
//     report ("claim_id" = the claim): "succeeded" when the whole response
//     was relayed with a status below 400, else "failed"; "result_digest"
//     is, for a whole response, "sha256:" and the hex SHA-256 of
//
//     the status code as three ASCII digits, a line feed (0x0A), then the
//     response body bytes exactly as the upstream sent them (after
//     transfer decoding, before any content decoding)
//
//     so that anyone who kept the response can recompute it. The report is
//     sent in the background after the response and retried; a report the
//     log could not take is logged and counted (the claim is the evidence
//     that the execution started).
//
// Fail-closed: any doubt — the log or OPA unreachable, a 409, an expired,
// forged or mismatched artifact, a malformed request — and the request is
// answered with a JSON error and never forwarded:
//
//	{"error":{"code":"uses_exhausted","message":"…"},"receipt":{…}}
//
// 403 for a refusal (no_route, artifact_missing, artifact_invalid,
// not_authorized, identity_missing, policy_denied, log_refused, or the
// violation code the log recorded, with its receipt), 413 too_large, 503
// for what may pass later (log_unavailable, policy_unavailable). After a
// claim, an upstream that cannot be reached is 502 upstream_unavailable
// (reported "failed"; the use is spent).
package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// Error codes of the gate's own refusals (the log's violation codes pass
// through).
const (
	codeNoRoute             = "no_route"
	codeTooLarge            = "too_large"
	codeArtifactMissing     = "artifact_missing"
	codeArtifactInvalid     = "artifact_invalid"
	codeNotAuthorized       = "not_authorized"
	codeIdentityMissing     = "identity_missing"
	codePolicyDenied        = "policy_denied"
	codePolicyUnavailable   = "policy_unavailable"
	codeLogUnavailable      = "log_unavailable"
	codeLogRefused          = "log_refused"
	codeUpstreamUnavailable = "upstream_unavailable"
)

// Response headers the upstream gets.
const (
	HeaderDecisionID = "Govlog-Decision-Id"
	HeaderClaimID    = "Govlog-Claim-Id"
)

// reportTimeout bounds the background submission of a terminal report,
// retries included.
const reportTimeout = time.Minute

// Options are what the gate gets from its main rather than from the
// configuration file.
type Options struct {
	// Logger receives the gate's logs. Default: discard.
	Logger *slog.Logger
	// Registry is where the gate registers its metrics. Default: a new
	// registry.
	Registry *prometheus.Registry
}

// Gate is the enforcement point: an http.Handler. Create it with New.
type Gate struct {
	cfg      *Config
	log      *client.Client
	upstream *url.URL
	mux      *http.ServeMux
	proxy    *httputil.ReverseProxy
	opa      *opaClient // nil in artifact mode
	metrics  *metrics
	registry *prometheus.Registry
	logger   *slog.Logger
	// reports counts the forwarded requests whose terminal report is not
	// sent yet.
	reports sync.WaitGroup
	// submitExecution logs an execution report: the log client's
	// SubmitExecution; tests replace it.
	submitExecution func(ctx context.Context, body []byte) (*log.Receipt, bool, error)
	// clock is the time artifacts must be valid at; tests replace it.
	clock func() time.Time
}

// New builds a gate from a validated configuration (Config.Validate).
func New(cfg *Config, opts Options) (*Gate, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	vkey, err := keys.ReadConfig(cfg.Log.LogKeyFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the log key: %w", err)
	}
	logKey, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return nil, fmt.Errorf("failed to parse the log key %s: %w", cfg.Log.LogKeyFile, err)
	}
	copts := []client.Option{
		client.WithLogKey(logKey),
		client.WithAudience(cfg.Log.Audience),
		client.WithHTTPClient(&http.Client{Transport: transport(0)}),
		client.WithLogger(opts.Logger),
		// A caller waits while the log is retried: a short wait, then 503.
		client.WithMaxRetryWait(2 * time.Second),
	}
	if cfg.Log.TokenFile != "" {
		tok, err := keys.ReadPrivateFile(cfg.Log.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read the log token: %w", err)
		}
		copts = append(copts, client.WithBearerToken(strings.TrimSpace(string(tok))))
	}
	lc, err := client.New(cfg.Log.URL, copts...)
	if err != nil {
		return nil, err
	}
	up, _ := url.Parse(cfg.Upstream) // Validate checked it
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	g := &Gate{
		cfg:             cfg,
		log:             lc,
		upstream:        up,
		mux:             http.NewServeMux(),
		metrics:         m,
		registry:        opts.Registry,
		logger:          opts.Logger,
		submitExecution: lc.SubmitExecution,
		clock:           time.Now,
	}
	if cfg.Mode == ModePolicy {
		g.opa = newOPAClient(cfg.OPA)
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      transport(time.Duration(cfg.Limits.UpstreamTimeout.or(DefaultUpstreamTimeout))),
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.upstreamError,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	for _, rt := range cfg.Routes {
		if err := g.register(rt); err != nil {
			return nil, err
		}
	}
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		g.refuse(w, time.Now(), &refusal{http.StatusForbidden, codeNoRoute, fmt.Sprintf("no route of the gate matches %s %s", r.Method, r.URL.Path), nil})
	})
	return g, nil
}

// register adds a route; ServeMux refuses (panics on) conflicting patterns.
func (g *Gate) register(rt Route) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("invalid route %q: %v", rt.pattern(), p)
		}
	}()
	g.mux.Handle(rt.pattern(), g.route(rt))
	return nil
}

// transport is an upstream transport that keeps connections alive.
func transport(responseHeaderTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.ResponseHeaderTimeout = responseHeaderTimeout
	return t
}

// ServeHTTP serves a caller's request.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.mux.ServeHTTP(w, r) }

// Wait waits until the terminal reports being sent are done, or ctx is.
func (g *Gate) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.reports.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("failed to send every execution report: %w", ctx.Err())
	}
}

// refusal is a request the gate does not forward.
type refusal struct {
	status  int
	code    string
	message string
	// extra members of the error body: "receipt", "decision_id", "index".
	extra map[string]any
}

func (r *refusal) Error() string { return r.code + ": " + r.message }

// refuse answers a refused request and counts it.
func (g *Gate) refuse(w http.ResponseWriter, start time.Time, ref *refusal) {
	g.metrics.refused.WithLabelValues(ref.code).Inc()
	g.metrics.duration.WithLabelValues("refused").Observe(time.Since(start).Seconds())
	body := map[string]any{"error": map[string]string{"code": ref.code, "message": ref.message}}
	for k, v := range ref.extra {
		body[k] = v
	}
	if ref.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, ref.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":{"code":"internal","message":"failed to encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// request is what the gate knows of a request it is judging.
type request struct {
	r        *http.Request
	start    time.Time
	action   string
	resource string
	identity string // "" when not configured
}

// route returns the handler of a route.
func (g *Gate) route(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := &request{r: r, start: time.Now()}
		req.action = expand(rt.Action, r.PathValue)
		req.resource = expand(rt.Resource, r.PathValue)
		claims, claimID, err := g.authorize(req)
		if err != nil {
			var ref *refusal
			if !errors.As(err, &ref) {
				ref = &refusal{http.StatusServiceUnavailable, codeLogUnavailable, err.Error(), nil}
			}
			g.refuse(w, req.start, ref)
			return
		}
		g.metrics.authorization.Observe(time.Since(req.start).Seconds())
		g.forward(w, req, claims, claimID)
	})
}

// authorize runs steps 2 to 4: it returns the verified claims of the
// artifact and the id of the accepted claim, or a *refusal.
func (g *Gate) authorize(req *request) (*log.ArtifactClaims, string, error) {
	r := req.r
	if r.ContentLength > g.cfg.Limits.MaxRequestBytes {
		return nil, "", &refusal{http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the request body exceeds %d bytes", g.cfg.Limits.MaxRequestBytes), nil}
	}
	var err error
	if req.identity, err = g.identity(r); err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Log.Timeout.or(DefaultLogTimeout))
	defer cancel()
	var token string
	if g.cfg.Mode == ModePolicy {
		if token, err = g.decide(ctx, req); err != nil {
			return nil, "", err
		}
	} else if token = g.artifact(r); token == "" {
		return nil, "", &refusal{http.StatusForbidden, codeArtifactMissing, g.missingArtifactMessage(), nil}
	}
	claims, err := g.log.VerifyArtifact(ctx, token, client.Authorization{Action: req.action, Resource: req.resource, Subject: req.identity, Now: g.clock()})
	switch {
	case errors.Is(err, client.ErrNotAuthorized):
		return nil, "", &refusal{http.StatusForbidden, codeNotAuthorized, err.Error(), nil}
	case errors.Is(err, artifact.ErrInvalid), errors.Is(err, verifier.ErrBadSignature), errors.Is(err, artifact.ErrBinding):
		return nil, "", &refusal{http.StatusForbidden, codeArtifactInvalid, err.Error(), nil}
	case err != nil:
		return nil, "", &refusal{http.StatusServiceUnavailable, codeLogUnavailable, err.Error(), nil}
	}
	claimID, err := g.claim(ctx, req, token, claims)
	if err != nil {
		return nil, "", err
	}
	return claims, claimID, nil
}

func (g *Gate) missingArtifactMessage() string {
	if strings.EqualFold(g.cfg.Artifact.Header, "Authorization") {
		return "the request carries no authorization artifact: send Authorization: GovLog <artifact>"
	}
	return "the request carries no authorization artifact in " + g.cfg.Artifact.Header
}

// artifact returns the artifact the caller presented, "" when none.
func (g *Gate) artifact(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get(g.cfg.Artifact.Header))
	if !strings.EqualFold(g.cfg.Artifact.Header, "Authorization") {
		return v
	}
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, ArtifactScheme) {
		return ""
	}
	return strings.TrimSpace(tok)
}

// identity returns the caller's identity: "" when none is configured.
func (g *Gate) identity(r *http.Request) (string, error) {
	switch {
	case g.cfg.Identity.Header != "":
		if id := strings.TrimSpace(r.Header.Get(g.cfg.Identity.Header)); id != "" {
			return id, nil
		}
		return "", &refusal{http.StatusForbidden, codeIdentityMissing, "the request carries no identity in " + g.cfg.Identity.Header, nil}
	case g.cfg.Identity.MTLS:
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cert := r.TLS.PeerCertificates[0]
			if len(cert.URIs) > 0 {
				return cert.URIs[0].String(), nil
			}
			if cert.Subject.CommonName != "" {
				return cert.Subject.CommonName, nil
			}
		}
		return "", &refusal{http.StatusForbidden, codeIdentityMissing, "the client certificate names no identity (URI SAN or common name)", nil}
	}
	return "", nil
}

// newID returns a fresh id for a decision or an execution report.
func newID() string { return "gate-" + strings.ToLower(rand.Text()) }

// report is an execution report (wire contract §2b).
type report struct {
	ID           string          `json:"id"`
	DecisionID   string          `json:"decision_id"`
	Status       string          `json:"status"`
	At           string          `json:"at"`
	Runtime      string          `json:"runtime"`
	Artifact     string          `json:"artifact,omitempty"`
	ClaimID      string          `json:"claim_id,omitempty"`
	ResultDigest string          `json:"result_digest,omitempty"`
	Context      json.RawMessage `json:"context,omitempty"`
}

// requestContext is the context of the gate's reports and decisions: the
// request's method and path (never its query, headers or body).
func requestContext(r *http.Request, extra map[string]any) json.RawMessage {
	c := map[string]any{"request": map[string]string{"method": r.Method, "path": r.URL.Path}}
	for k, v := range extra {
		c[k] = v
	}
	b, _ := json.Marshal(c)
	return b
}

// claim logs the started report carrying the artifact: the one use of
// the authorization this request takes. It returns the claim's id.
func (g *Gate) claim(ctx context.Context, req *request, token string, claims *log.ArtifactClaims) (string, error) {
	id := newID()
	body, err := json.Marshal(report{
		ID: id, DecisionID: claims.ID, Status: "started", At: now(), Runtime: g.cfg.Runtime,
		Artifact: token, Context: requestContext(req.r, nil),
	})
	if err != nil {
		return "", err
	}
	// 201: a new claim. 200: the log already held this very claim, which
	// only this gate can have sent (its id is fresh): a retry of its own.
	if _, _, err := g.submitExecution(ctx, body); err != nil {
		return "", logRefusal("the log did not accept the claim", err)
	}
	return id, nil
}

// logRefusal maps an error of the log to a refusal: a recorded violation
// (409, with its receipt) or a refused submission is 403 with the log's
// code, unavailability 503.
func logRefusal(what string, err error) *refusal {
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusConflict || ae.Status == http.StatusUnprocessableEntity:
			var extra map[string]any
			if ae.Receipt != nil {
				extra = map[string]any{"receipt": ae.Receipt}
			}
			return &refusal{http.StatusForbidden, ae.Code, what + ": " + ae.Message, extra}
		case ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests:
			return &refusal{http.StatusForbidden, codeLogRefused, what + ": " + ae.Error(), nil}
		}
	}
	return &refusal{http.StatusServiceUnavailable, codeLogUnavailable, what + ": " + err.Error(), nil}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// exchange is the state of one forwarded request, shared by the proxy's
// hooks (all called on the request's goroutine).
type exchange struct {
	decisionID, claimID string
	status              int       // the upstream's status; 0 before the response
	hash                hash.Hash // of the status line and the body
	complete            bool      // the whole body was read
	err                 error     // why the exchange failed, if it did
}

type exchangeKey struct{}

// forward runs steps 5 and 6.
func (g *Gate) forward(w http.ResponseWriter, req *request, claims *log.ArtifactClaims, claimID string) {
	x := &exchange{decisionID: claims.ID, claimID: claimID}
	r := req.r.WithContext(context.WithValue(req.r.Context(), exchangeKey{}, x))
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, g.cfg.Limits.MaxRequestBytes)
	}
	// The report is sent even when the proxy aborts the handler (a
	// response cut short panics with http.ErrAbortHandler). It is counted
	// from now, before any answer, so that Wait covers it.
	g.reports.Add(1)
	defer g.finish(req, x)
	g.proxy.ServeHTTP(w, r)
}

func (g *Gate) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	pr.SetURL(g.upstream)
	pr.SetXForwarded()
	if g.cfg.Mode == ModeArtifact && !g.cfg.Artifact.Forward {
		pr.Out.Header.Del(g.cfg.Artifact.Header)
	}
	pr.Out.Header.Set(HeaderDecisionID, x.decisionID)
	pr.Out.Header.Set(HeaderClaimID, x.claimID)
}

func (g *Gate) modifyResponse(resp *http.Response) error {
	x := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	x.status = resp.StatusCode
	x.hash = sha256.New()
	fmt.Fprintf(x.hash, "%03d\n", resp.StatusCode)
	resp.Body = &digestBody{rc: resp.Body, x: x, left: g.cfg.Limits.MaxResponseBytes}
	return nil
}

// errResponseTooLarge cuts a response longer than MaxResponseBytes.
var errResponseTooLarge = errors.New("the response exceeds the gate's limit")

// digestBody hashes a response body as the proxy relays it.
type digestBody struct {
	rc   io.ReadCloser
	x    *exchange
	left int64
}

func (b *digestBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.x.hash.Write(p[:n])
	if b.left -= int64(n); b.left < 0 {
		b.x.err = errResponseTooLarge
		return n, errResponseTooLarge
	}
	switch {
	case err == io.EOF:
		b.x.complete = true
	case err != nil:
		b.x.err = err
	}
	return n, err
}

func (b *digestBody) Close() error { return b.rc.Close() }

// upstreamError answers a request the upstream did not answer (or whose
// body was too large).
func (g *Gate) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	x := r.Context().Value(exchangeKey{}).(*exchange)
	x.err = err
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": map[string]string{
			"code": codeTooLarge, "message": fmt.Sprintf("the request body exceeds %d bytes", mbe.Limit)}})
	case r.Context().Err() != nil:
		// The caller went away: nobody to answer.
	default:
		g.logger.Warn("the upstream did not answer", "claim_id", x.claimID, "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]any{"error": map[string]string{
			"code": codeUpstreamUnavailable, "message": "the tool did not answer; the claim " + x.claimID + " is reported failed"}})
	}
}

// finish counts the request and sends its terminal report in the
// background.
func (g *Gate) finish(req *request, x *exchange) {
	g.metrics.allowed.Inc()
	g.metrics.duration.WithLabelValues("allowed").Observe(time.Since(req.start).Seconds())
	rep := report{ID: x.claimID + "-result", DecisionID: x.decisionID, Status: "failed", At: now(),
		Runtime: g.cfg.Runtime, ClaimID: x.claimID, Context: requestContext(req.r, nil)}
	if x.status != 0 && x.complete && x.err == nil {
		rep.ResultDigest = "sha256:" + hex.EncodeToString(x.hash.Sum(nil))
		if x.status < 400 {
			rep.Status = "succeeded"
		}
	}
	body, err := json.Marshal(rep)
	if err != nil {
		g.reports.Done()
		g.logger.Error("failed to encode an execution report", "claim_id", x.claimID, "err", err)
		return
	}
	go func() {
		defer g.reports.Done()
		ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
		defer cancel()
		if _, _, err := g.submitExecution(ctx, body); err != nil {
			g.metrics.reports.WithLabelValues("failed").Inc()
			g.logger.Error("failed to log an execution report", "id", rep.ID, "claim_id", x.claimID, "status", rep.Status, "err", err)
			return
		}
		g.metrics.reports.WithLabelValues("logged").Inc()
	}()
}
