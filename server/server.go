// Package server is govlogd's HTTP API: the REST endpoints of the wire
// contract (v1) in front of a log.Log.
//
// Handlers are thin: they decode the request, call a process function that
// knows nothing about HTTP, and encode its result. Every error, whatever its
// source (a log sentinel, a bad query parameter, an unknown route), becomes
// the JSON error body
//
//	{"error":{"code":"invalid_request","message":"tree_size: must be a decimal integer"}}
//
// in one place, the Echo HTTPErrorHandler, which maps the log package's
// sentinel errors to HTTP statuses with errors.Is. Bad input is never a
// 500: anything unexpected (a storage failure, a panic) is 503
// log_unavailable with Retry-After, which means "not acknowledged" — no
// receipt and no artifact were given, and resubmitting is safe.
//
// # Submissions
//
//	POST /v1/decisions          one decision → 201 receipt (200 for an identical resubmission)
//	POST /v1/decisions/batch    {"decisions":[…]} → 200 {"results":[receipt or {"error":…}, …]}
//	POST /v1/executions         one execution report → 201 / 200 receipt; 409 {"error","receipt"} for a recorded violation
//	POST /v1/revocations        one revocation of an allow → 201 / 200 receipt
//	GET /v1/authorizations/{id} the status of a decision's authorization, with receipts on one checkpoint
//	GET /v1/keys                the logged artifact keys, with receipts
//	POST /v1/opa/decision-logs  OPA's decision-log upload → 200 (opa.go)
//
// The request body must be application/json (a charset parameter, when
// present, must be utf-8) and at most 64 KiB (4 MiB for a batch, 1000
// items). An allow decision's receipt carries an authorization artifact: a
// JWT signed EdDSA over the RFC 8785 canonical claims of
// log.NewArtifactClaims. Ed25519 is deterministic and the claims depend
// only on the entry and the checkpoint that first covered it, so a retry
// gets the byte-identical artifact.
//
// The items of a batch are judged one by one but submitted together, so
// they share group commits. An item whose parent_id or id names an earlier
// item of the batch is submitted once that item is resolved, so lineage
// within a batch works and a repeated id is a resubmission.
//
// # Reads
//
//	GET /v1/decisions/{id}, /v1/executions/{id}   receipt against the latest checkpoint, no artifact
//	GET /v1/checkpoint                            the latest signed checkpoint, text/plain
//	GET /v1/proofs/inclusion?index=I&tree_size=N  (or leaf_hash=<base64 or base64url> in place of index)
//	GET /v1/proofs/consistency?from=M&to=N
//	GET /v1/entries?start=S&count=C
//	GET /v1/search?filters&after=CURSOR&limit=N    entries matching filters, in index order
//	GET /v1/export?filters                        their evidence bundle (govlog-evidence/v1), streamed
//	GET /v1/log, /.well-known/jwks.json, /healthz, /readyz, /metrics
//	GET /openapi.json                             the OpenAPI 3.1 description of this API (docs/openapi.json)
//	GET /checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>]   C2SP tlog-tiles
//	GET /, /search, /entries/{index}, /checkpoints, /verify, /explorer/…  the explorer (explorer.go)
//
// Query parameters are parsed strictly: unknown or repeated parameters and
// numbers that are not canonical decimals ("+1", "01", " 1", "1.0") are 400
// invalid_request.
//
// # HTTP conventions
//
// A method that a route does not serve gets 405 method_not_allowed with an
// Allow header listing those it does ("POST", or "GET, HEAD"). OPTIONS is
// one of them: there is no CORS, so a browser on another origin cannot
// call the API (the explorer is served from the same origin). A header
// that may appear once but appears twice is refused, never read as its
// first value: Content-Type (415), Authorization (401).
//
// # Authentication and limits
//
// With Config.Auth, writes need a bearer token (a JWT verified against an
// issuer's JWKS, or a static token; auth.go, jwt.go): its identity is the
// entry's submitter, 401 unauthenticated without valid credentials, 403
// forbidden without the permission, decided before the body is read.
// Config.AuthRead extends this to reads. Config.RateLimit gives each
// identity a token bucket (ratelimit.go): 429 overloaded with Retry-After.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govlog/govlog/log"
)

// Limits of the API.
const (
	// MaxBatchItems is the most decisions in one batch request.
	MaxBatchItems = 1000
	// MaxBatchBytes is the largest batch request body.
	MaxBatchBytes = 4 << 20
	// MaxEntries is the most entries one GET /v1/entries returns.
	MaxEntries = 1000
	// Anonymous is the submitter of every entry while authentication is
	// not configured.
	Anonymous = "anonymous"
	// JWKSPath is where the artifact keys are published.
	JWKSPath = "/.well-known/jwks.json"
)

// Config configures a Server. The zero value of each optional field selects
// the default named in its comment.
type Config struct {
	// Log is the log to serve. Required. Once New succeeds the Server owns
	// it: Close closes it.
	Log *log.Log
	// ArtifactKey signs authorization artifacts: a private Ed25519 JWK with
	// a key ID ("kid"). Required.
	ArtifactKey jwk.Key
	// Audience is the "aud" claim of artifacts. Default: none. (The
	// artifacts' issuer and lifetime are the Log's: Log.Origin() and
	// Log.ArtifactTTL().)
	Audience string
	// VerifierKey is the log's note verifier key text. Required.
	VerifierKey string
	// Logger receives operational logs; it never receives key material.
	// Default: discard.
	Logger *slog.Logger
	// Registry is where the server registers its metrics and what GET
	// /metrics serves. Default: a new registry private to the Server.
	Registry *prometheus.Registry
	// Metrics are the collectors the server updates. Create them with
	// NewMetrics before the Log, to wire Metrics.ObserveBatch into
	// log.Config.OnBatch. Default: NewMetrics(Registry).
	Metrics *Metrics
	// Clock returns the current time: the reference for the future limit
	// of decided_at and at. Default time.Now.
	Clock func() time.Time
	// SubmitTimeout bounds how long a submission waits for the log before
	// it is answered 503. Default 30s.
	SubmitTimeout time.Duration
	// Witnessing, when set, gets the log's checkpoints cosigned by
	// witnesses, in async or sync mode (witnesses.go). Default nil: no
	// witnesses.
	Witnessing *Witnessing
	// Auth authenticates clients (auth.go): writes need a bearer token and
	// the identity becomes the entry's submitter. Default nil: no
	// authentication, every entry's submitter is Anonymous.
	Auth Authenticator
	// AuthRead makes every read except /healthz, /readyz, /metrics and the
	// JWKS need the read permission. Only with Auth. Default false: reads
	// are public.
	AuthRead bool
	// RateLimit is each identity's sustained submission rate, per second
	// (ratelimit.go). Default 0: unlimited.
	RateLimit float64
	// RateBurst is the most submissions an identity may send at once.
	// Default: RateLimit rounded up.
	RateBurst int
	// RetiredArtifactKeys are public Ed25519 JWKs that signed artifacts
	// before ArtifactKey: the JWKS publishes them until those artifacts
	// have expired. Default: none.
	RetiredArtifactKeys []jwk.Key
	// OPA configures POST /v1/opa/decision-logs, where OPA's decision_logs
	// plugin uploads (opa.go). Default: the zero OPAConfig.
	OPA OPAConfig
	// NoExplorer turns off the explorer, the web page for people served at
	// / (explorer.go). Default false: the explorer is served.
	NoExplorer bool
}

// Server serves the API. It is an http.Handler. Create it with New.
type Server struct {
	cfg Config
	// exportLimit, when > 0, replaces the export limit
	// (verifier.MaxBundleEntries); a test hook.
	exportLimit int
	log         *log.Log
	echo        *echo.Echo
	logger      *slog.Logger
	metrics     *Metrics
	jwks        []byte
	// promHandler serves the registry for GET /metrics.
	promHandler http.Handler
	// routes maps each registered route path to its Allow header, the
	// methods it serves ("GET, HEAD" or "POST"). Its keys are the route
	// label of metrics (anything else is "other", so unknown URLs cannot
	// grow the label set).
	routes map[string]string

	// draining is set by Drain: readiness and submissions are refused.
	draining atomic.Bool
	// treeSize is the last tree size seen, for the metric when the
	// storage cannot be read.
	treeSize atomic.Uint64

	// mu guards active and idle. active counts the requests being served;
	// idle, when set, is closed once active drops to zero.
	mu     sync.Mutex
	active int
	idle   chan struct{}

	// closeMu serializes Close; closed is set once the log is closed.
	closeMu sync.Mutex
	closed  bool

	// signer signs artifacts with cfg.ArtifactKey (artifact.go).
	signer *artifactSigner
	// tiles serves the tlog-tiles API (tiles.go).
	tiles tileSource
	// limiter enforces cfg.RateLimit; nil when there is none.
	limiter *rateLimiter
}

// handlerFunc is a route's handler; q holds its parsed query parameters.
type handlerFunc func(c echo.Context, q query) error

// New validates cfg and builds the Server. It does not mutate cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		return nil, errors.New("failed to create server: Log is required")
	}
	if cfg.VerifierKey == "" {
		return nil, errors.New("failed to create server: VerifierKey is required")
	}
	if cfg.Witnessing != nil && cfg.Witnessing.Distributor == nil {
		return nil, errors.New("failed to create server: Witnessing needs a Distributor")
	}
	if cfg.AuthRead && cfg.Auth == nil {
		return nil, errors.New("failed to create server: AuthRead needs Auth")
	}
	if cfg.RateLimit < 0 || cfg.RateBurst < 0 {
		return nil, errors.New("failed to create server: RateLimit and RateBurst must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SubmitTimeout <= 0 {
		cfg.SubmitTimeout = DefaultSubmitTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Metrics == nil {
		m, err := NewMetrics(cfg.Registry)
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	jwks, err := publicJWKS(cfg.ArtifactKey, cfg.RetiredArtifactKeys...)
	if err != nil {
		return nil, err
	}
	signer, err := newArtifactSigner(cfg.ArtifactKey)
	if err != nil {
		return nil, fmt.Errorf("failed to create server: %w", err)
	}
	signer.log = cfg.Log
	// The artifact key is logged before anything is signed with it.
	keyCtx, cancel := context.WithTimeout(context.Background(), keyTimeout)
	signer.keyIndex, err = logKey(keyCtx, cfg.Log, cfg.ArtifactKey)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("failed to create server: %w", err)
	}
	s := &Server{
		signer:  signer,
		limiter: newRateLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Clock),
		cfg:     cfg,
		log:     cfg.Log,
		logger:  cfg.Logger,
		metrics: cfg.Metrics,
		jwks:    jwks,
		routes:  make(map[string]string),
		promHandler: promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError,
		}),
	}
	if c, ok := cfg.Auth.(prometheus.Collector); ok {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register the metrics of authentication: %w", err)
		}
	}
	if err := cfg.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "govlog_tree_size",
		Help: "Size of the latest checkpoint of the log.",
	}, s.observeTreeSize)); err != nil {
		return nil, fmt.Errorf("failed to register the tree size metric: %w", err)
	}

	s.echo = s.newEcho()

	s.handle(http.MethodPost, "/v1/decisions", s.postDecision)
	s.handle(http.MethodPost, "/v1/decisions/batch", s.postBatch)
	s.handle(http.MethodGet, "/v1/decisions/:id", s.getReceipt(log.KindDecision))
	s.handle(http.MethodPost, "/v1/executions", s.postExecution)
	s.handle(http.MethodGet, "/v1/executions/:id", s.getReceipt(log.KindExecution))
	s.handle(http.MethodPost, "/v1/revocations", s.postRevocation)
	s.handle(http.MethodGet, "/v1/revocations/:id", s.getReceipt(log.KindRevocation))
	s.handle(http.MethodGet, "/v1/authorizations/:id", s.getAuthorization)
	s.handle(http.MethodGet, "/v1/keys", s.getKeys)
	s.handle(http.MethodGet, "/v1/checkpoint", s.getCheckpoint)
	s.handle(http.MethodGet, "/v1/proofs/inclusion", s.getInclusion, "index", "leaf_hash", "tree_size")
	s.handle(http.MethodGet, "/v1/proofs/consistency", s.getConsistency, "from", "to")
	s.handle(http.MethodGet, "/v1/entries", s.getEntries, "start", "count")
	s.handle(http.MethodGet, "/v1/search", s.getSearch, append(slices.Clone(searchFilters), "after", "limit")...)
	s.handle(http.MethodGet, "/v1/export", s.getExport, searchFilters...)
	s.handle(http.MethodGet, "/v1/log", s.getLogInfo)
	s.handle(http.MethodGet, "/openapi.json", s.getOpenAPI)
	s.handle(http.MethodGet, JWKSPath, s.getJWKS)
	s.handle(http.MethodGet, "/healthz", s.getHealthz)
	s.handle(http.MethodGet, "/readyz", s.getReadyz)
	s.handle(http.MethodGet, "/metrics", s.getMetrics)
	// The C2SP tlog-tiles read API (tiles.go).
	s.handle(http.MethodGet, "/checkpoint", s.getTilesCheckpoint)
	s.handle(http.MethodGet, "/tile/*", s.getTile)
	// OPA's decision-log uploads (opa.go).
	if err := s.handleOPA(); err != nil {
		return nil, err
	}
	// The explorer (explorer.go).
	if !cfg.NoExplorer {
		s.handleExplorer()
	}
	return s, nil
}

// newEcho returns the router with the server's error handler and
// middleware, without routes.
func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observe, s.conventions, s.requireRead)
	return e
}

// handle routes method and path to h, with strict parsing of the query
// parameters named in params (any other parameter is refused).
func (s *Server) handle(method, path string, h handlerFunc, params ...string) {
	allow := method
	if method == http.MethodGet {
		allow += ", " + http.MethodHead
	}
	if s.routes[path] != "" {
		allow = s.routes[path] + ", " + allow
	}
	s.routes[path] = allow
	handler := func(c echo.Context) error {
		q, err := parseQuery(c.QueryString(), params...)
		if err != nil {
			return err
		}
		return h(c, q)
	}
	s.echo.Add(method, path, handler)
	if method == http.MethodGet {
		// HEAD is GET without the body (net/http drops it), as HTTP says.
		s.echo.Add(http.MethodHead, path, handler)
	}
}

// conventions answers what the router would answer in its own way: a
// method the route does not serve — OPTIONS too, which Echo would answer
// 204 for a CORS preflight — gets 405 with the JSON error and the route's
// Allow header; a path that is a route of its own (POST
// /v1/decisions/batch) is never served by a route with a parameter that
// matches it (GET /v1/decisions/:id); and a header that may appear once
// but appears more often is refused rather than read as its first value.
// There is no CORS: the explorer is served from the same origin.
func (s *Server) conventions(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodOptions && r.RequestURI == "*" {
			// The server-wide OPTIONS (RFC 9110 §9.3.7) is an OPTIONS too.
			c.Response().Header().Set(echo.HeaderAllow, "GET, HEAD, POST")
			return &apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed, "OPTIONS is not allowed: there is no CORS"}
		}
		// The router sets the Allow value when the path is a route's but
		// the method is not.
		if c.Get(echo.ContextKeyHeaderAllow) != nil {
			return s.methodNotAllowed(c, c.Path())
		}
		if _, ok := s.routes[r.URL.Path]; ok && r.URL.Path != c.Path() {
			return s.methodNotAllowed(c, r.URL.Path)
		}
		// SPEC: RFC 9110 §5.3: "A sender MUST NOT generate multiple field
		// lines with the same name in a message ... unless ... that
		// field's definition allows multiple field line values to be
		// recombined as a comma-separated list"; Content-Type's does not.
		if len(r.Header.Values(echo.HeaderContentType)) > 1 {
			return &apiError{http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
				"Content-Type is given more than once; give it once, as application/json"}
		}
		return next(c)
	}
}

// methodNotAllowed is the 405 answer on route, with its Allow header.
func (s *Server) methodNotAllowed(c echo.Context, route string) error {
	c.Response().Header().Set(echo.HeaderAllow, s.routes[route])
	return &apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed,
		clip(fmt.Sprintf("%s is not allowed on this resource; it allows %s", c.Request().Method, s.routes[route]))}
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Drain starts a graceful shutdown: from now on /readyz answers 503 and
// new submissions get 503 log_unavailable. Submissions already accepted
// are still answered. Drain never blocks.
func (s *Server) Drain() {
	if !s.draining.Swap(true) {
		s.logger.Info("draining: refusing new submissions")
	}
}

// Close drains the server (see Drain), waits until every request being
// served is answered (the log keeps committing meanwhile, so each waiting
// submission gets its receipt), then closes the log, which commits
// whatever is still queued and closes the storage. Requests that arrive
// after that get 503. It returns ctx's error if this does not finish in
// time; Close may then be called again.
func (s *Server) Close(ctx context.Context) error {
	s.Drain()
	if err := s.waitIdle(ctx); err != nil {
		return fmt.Errorf("failed to wait for requests in flight: %w", err)
	}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	if err := s.closeWitnessing(); err != nil {
		s.logger.Error("failed to stop witnessing cleanly", "err", err)
	}
	if err := s.log.Close(ctx); err != nil {
		return fmt.Errorf("failed to close the log: %w", err)
	}
	s.closed = true
	return nil
}

// enter and leave count the requests being served.
func (s *Server) enter() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
}

func (s *Server) leave() {
	s.mu.Lock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// waitIdle returns once no request is being served.
func (s *Server) waitIdle(ctx context.Context) error {
	s.mu.Lock()
	if s.active == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// accepting fails with ErrUnavailable once the server is draining.
func (s *Server) accepting() error {
	if s.draining.Load() {
		return fmt.Errorf("%w: %w", log.ErrUnavailable, errShuttingDown)
	}
	return nil
}

func (s *Server) observeTreeSize() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cp, err := s.log.Latest(ctx); err == nil {
		s.noteTreeSize(cp.Size)
	}
	return float64(s.treeSize.Load())
}

// noteTreeSize records a tree size seen; sizes only grow.
func (s *Server) noteTreeSize(size uint64) {
	for {
		cur := s.treeSize.Load()
		if size <= cur || s.treeSize.CompareAndSwap(cur, size) {
			return
		}
	}
}

// publicJWKS checks the artifact key and returns the JWKS that publishes
// its public half, followed by the retired keys.
func publicJWKS(key jwk.Key, retired ...jwk.Key) ([]byte, error) {
	if key == nil {
		return nil, errors.New("failed to create server: ArtifactKey is required")
	}
	okp, ok := key.(jwk.OKPPrivateKey)
	if !ok || okp.Crv() != jwa.Ed25519 {
		return nil, errors.New("failed to create server: ArtifactKey must be a private Ed25519 JWK")
	}
	if key.KeyID() == "" {
		return nil, errors.New("failed to create server: ArtifactKey has no key ID (kid)")
	}
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return nil, fmt.Errorf("failed to create server: failed to derive the public artifact key: %w", err)
	}
	for k, v := range map[string]any{jwk.AlgorithmKey: jwa.EdDSA, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := pub.Set(k, v); err != nil {
			return nil, fmt.Errorf("failed to create server: failed to set %s of the public artifact key: %w", k, err)
		}
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, fmt.Errorf("failed to create server: failed to build the JWKS: %w", err)
	}
	if err := addRetiredKeys(set, key.KeyID(), retired); err != nil {
		return nil, fmt.Errorf("failed to create server: %w", err)
	}
	return encodeJSON(set)
}
