package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/govlog/govlog/log"
)

// JWT bearer tokens.
//
// A token is accepted only when all of this holds:
//
//   - it is a compact JWS with one signature, whose protected header names
//     an allowed algorithm — EdDSA (Ed25519), ES256 (P-256) or RS256 (RSA
//     of at least 2048 bits) — and a "kid", and has no "crit" (not even an
//     empty one) or "b64" parameter. "none" and every HMAC algorithm are
//     refused before any key is looked at, so a token "signed" HS256 with
//     a public key as the secret never verifies;
//   - the kid names a key of the JWKS whose type is the one of that
//     algorithm (and whose "alg" and "use", when set, are it and "sig"); the
//     signature verifies with that key alone;
//   - "iss" is the configured issuer and "aud" holds the configured
//     audience;
//   - "exp" is present and not past, "nbf" (when present) is past and
//     "iat" (when present) is not in the future, each with the configured
//     leeway (at most MaxLeeway); each is a JSON number (an RFC 7519
//     NumericDate: a string of digits is refused);
//   - "sub" is present and a ValidIdentity: it becomes the submitter.
//
// The JWKS is a fixed key set, a source read again when it changes (a
// file), or a URL fetched at start and again in the background. A token
// whose kid is not in the current set makes the authenticator reload the
// set once before answering, so that an issuer can rotate keys without a
// restart. Reloads are rate-limited so that garbage kids cannot turn the
// server into a load generator against the issuer: a budget of
// refreshBurst reloads that refills one every MinRefreshInterval, and a
// kid that a reload did not find triggers no other reload for
// MinRefreshInterval.
//
// The keys in use are always those of the source's latest answer, at start
// as at every reload: a set that is empty, holds no usable key, is not a
// JWKS, or cannot be read (a file that is missing, not a regular file, or
// writable by others) leaves no key in use — every token is refused and
// Ready says why — because emptying the set is how an issuer revokes
// every key at once. Only a JWKS URL that does not answer at all (no
// connection, a timeout, a status other than 200) leaves the keys of its
// last answer in use; it is fetched again sooner, from MinRefreshInterval
// doubling up to RefreshInterval. Every reload that yields no usable key
// is logged and counted (Collect).

// Limits of JWT authentication.
const (
	// MaxLeeway is the largest clock leeway JWTConfig accepts.
	MaxLeeway = 60 * time.Second
	// DefaultLeeway is the clock leeway of a JWTConfig without one.
	DefaultLeeway = 30 * time.Second
	// minRSABits is the smallest RSA modulus accepted.
	minRSABits = 2048
	// maxJWKS bounds the size of a fetched JWKS.
	maxJWKS = 1 << 20
)

// JWTConfig configures NewJWT. The zero value of each optional field selects
// the default named in its comment.
type JWTConfig struct {
	// JWKSURL is where the issuer publishes its JWKS: an https URL, or an
	// http URL of a loopback host. Exactly one of JWKSURL, KeySet and
	// ReloadKeySet is required (KeySet may come with ReloadKeySet).
	JWKSURL string
	// KeySet is a fixed JWKS; it must hold a usable key. With ReloadKeySet
	// it is the first set instead of what ReloadKeySet returns at start.
	KeySet jwk.Set
	// ReloadKeySet reads the JWKS from its source (a file): at start
	// unless KeySet is given, when KeySetChanged reports a change, and
	// (rate-limited, see MinRefreshInterval) when a token names a kid that
	// the current set lacks. The set it returns replaces the current one;
	// an error, or a set without a usable key, leaves no key in use.
	// Default: none.
	ReloadKeySet func() (jwk.Set, error)
	// KeySetChanged, with ReloadKeySet, reports whether the source of the
	// key set changed since it was last read, successfully or not — for a
	// file, its size, time, mode or inode, or whether it exists. It is
	// called for every token and must be cheap; when it reports a change
	// the set is reloaded at once, not rate-limited, so a key removed from
	// a file stops being accepted with the next token. Default: none.
	KeySetChanged func() bool
	// Issuer is the required "iss". Required.
	Issuer string
	// Audience must be one of the token's "aud". Required.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat, at most
	// MaxLeeway. Default DefaultLeeway (30s).
	Leeway time.Duration
	// Permissions gives each identity (each "sub") its permissions.
	// Default: every identity has DefaultPermissions.
	Permissions *PermissionTable
	// RefreshInterval is how often a JWKSURL is fetched again in the
	// background. Default 5 minutes; at least 1 second.
	RefreshInterval time.Duration
	// MinRefreshInterval rate-limits the reloads caused by unknown kids:
	// after a burst of refreshBurst, one every MinRefreshInterval; and a
	// kid that a reload did not find waits that long before it can cause
	// another. A JWKSURL that did not answer is fetched again after it,
	// then after twice as long, up to RefreshInterval. Default 5 seconds.
	MinRefreshInterval time.Duration
	// HTTPClient fetches JWKSURL; at most 1 MiB of an answer is read.
	// Default: a client with a 10 s timeout that follows no redirects.
	HTTPClient *http.Client
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// Logger receives warnings about unusable keys and failed fetches;
	// never token or key material. Default: discard.
	Logger *slog.Logger
}

// JWT authenticates JWT bearer tokens against an issuer's JWKS. Create it
// with NewJWT; Close stops its background refreshes. It is a
// prometheus.Collector of
//
//	govlog_auth_jwks_keys                  usable keys of the JWKS (0: every token is refused)
//	govlog_auth_jwks_reload_errors_total   reloads that yielded no usable key or no answer
type JWT struct {
	cfg    JWTConfig
	logger *slog.Logger
	client *http.Client
	// cancel stops the background refreshes of a JWKSURL; done is closed
	// once they have stopped. Both are nil without a JWKSURL.
	cancel context.CancelFunc
	done   chan struct{}
	// ring is the keyring of the current set; never nil after NewJWT.
	ring atomic.Pointer[keyring]
	// keys and reloadErrors are the metrics.
	keys         prometheus.GaugeFunc
	reloadErrors prometheus.Counter
	// refreshMu serializes reloads and guards the fields below it.
	refreshMu sync.Mutex
	// budget is how many reloads may start now; refilled is when it was
	// last brought up to date.
	budget   float64
	refilled time.Time
	// missed holds the kids a reload did not find, and when.
	missed map[string]time.Time
}

var (
	_ Authenticator        = (*JWT)(nil)
	_ prometheus.Collector = (*JWT)(nil)
)

// verifyKey is a usable key of the JWKS.
type verifyKey struct {
	alg jwa.SignatureAlgorithm
	raw any
}

// keyring is the usable keys of one JWKS, by kid.
type keyring struct {
	keys map[string]verifyKey
	// reason says why keys is empty, for Ready.
	reason string
}

// errNoAnswer marks a fetch of a JWKSURL that got no answer: no
// connection, a timeout, a status other than 200.
var errNoAnswer = errors.New("the JWKS URL did not answer")

// NewJWT validates cfg and builds the authenticator. It reads or fetches
// the set once; a source without a usable key is not an error (see Ready),
// except for a fixed KeySet, which could never get one.
func NewJWT(ctx context.Context, cfg JWTConfig) (*JWT, error) {
	sources := 0
	for _, given := range []bool{cfg.JWKSURL != "", cfg.KeySet != nil || cfg.ReloadKeySet != nil} {
		if given {
			sources++
		}
	}
	switch {
	case sources != 1:
		return nil, errors.New("failed to configure JWT authentication: give a JWKS URL or a key set, not both")
	case cfg.Issuer == "":
		return nil, errors.New("failed to configure JWT authentication: the issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("failed to configure JWT authentication: the audience is required")
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("failed to configure JWT authentication: the clock leeway must be between 0 and %v", MaxLeeway)
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("failed to configure JWT authentication: %w", err)
		}
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Minute
	}
	if cfg.RefreshInterval < time.Second {
		cfg.RefreshInterval = time.Second
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 5 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a := &JWT{cfg: cfg, logger: cfg.Logger, client: cfg.HTTPClient, budget: refreshBurst,
		refilled: cfg.Clock(), missed: map[string]time.Time{}}
	if a.client == nil {
		a.client = defaultJWKSClient()
	}
	a.reloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "govlog_auth_jwks_reload_errors_total",
		Help: "Reloads of the token issuer's JWKS that yielded no usable key (an unreadable or invalid set, a set without a usable key) or no answer from its URL.",
	})
	a.keys = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "govlog_auth_jwks_keys",
		Help: "Usable keys of the token issuer's JWKS; 0 refuses every bearer token.",
	}, func() float64 { return float64(len(a.ring.Load().keys)) })

	if cfg.KeySet != nil {
		ring, err := a.newKeyring(cfg.KeySet)
		if err != nil && cfg.ReloadKeySet == nil {
			return nil, fmt.Errorf("failed to configure JWT authentication: %w", err)
		}
		a.install(ring, err)
		return a, nil
	}
	fctx, fcancel := context.WithTimeout(ctx, 30*time.Second)
	defer fcancel()
	err := a.reload(fctx)
	if cfg.JWKSURL != "" {
		rctx, cancel := context.WithCancel(context.Background())
		a.cancel, a.done = cancel, make(chan struct{})
		go a.refreshLoop(rctx, errors.Is(err, errNoAnswer))
	}
	return a, nil
}

// Close stops the background refreshes of a JWKS URL.
func (a *JWT) Close() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
}

// Ready fails, saying why, when no key of the JWKS is usable: every token
// is refused then.
func (a *JWT) Ready() error {
	if ring := a.ring.Load(); len(ring.keys) == 0 {
		return fmt.Errorf("no bearer token can be accepted: %s", ring.reason)
	}
	return nil
}

// Describe implements prometheus.Collector.
func (a *JWT) Describe(ch chan<- *prometheus.Desc) {
	a.keys.Describe(ch)
	a.reloadErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (a *JWT) Collect(ch chan<- prometheus.Metric) {
	a.keys.Collect(ch)
	a.reloadErrors.Collect(ch)
}

// refreshLoop fetches the JWKSURL every RefreshInterval until ctx is done;
// after a fetch that got no answer, sooner (from MinRefreshInterval,
// doubling).
func (a *JWT) refreshLoop(ctx context.Context, failing bool) {
	defer close(a.done)
	retry := a.cfg.MinRefreshInterval
	for {
		wait := a.cfg.RefreshInterval
		if failing {
			wait = min(retry, wait)
			retry = min(2*retry, a.cfg.RefreshInterval)
		} else {
			retry = a.cfg.MinRefreshInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		a.refreshMu.Lock()
		err := a.reload(ctx)
		a.refreshMu.Unlock()
		failing = errors.Is(err, errNoAnswer)
	}
}

// checkJWKSURL accepts https URLs, and http URLs of loopback hosts (a
// local issuer, tests): keys fetched in clear over a network could be
// anyone's.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the JWKS URL %q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("the JWKS URL %q must use https (http is only accepted on loopback)", raw)
	}
	return fmt.Errorf("the JWKS URL %q must use https", raw)
}

// defaultJWKSClient fetches with a timeout and without redirects.
func defaultJWKSClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("the JWKS URL redirects; give the final URL")
		},
	}
}

// fetch gets the JWKSURL's set. Its error wraps errNoAnswer when the URL
// did not answer; any other error is an answer that is not a JWKS.
func (a *JWT) fetch(ctx context.Context) (jwk.Set, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: the status is %s", errNoAnswer, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("%w: failed to read the answer: %w", errNoAnswer, err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("the JWKS URL answered more than %d bytes", maxJWKS)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		// The parser's error could quote the answer.
		return nil, errors.New("the JWKS URL answered something that is not a JWKS (RFC 7517)")
	}
	return set, nil
}

// reload fetches or re-reads the JWKS now and installs what it yields (see
// the rules above); it returns why that is no usable key, or why the URL
// did not answer. The caller holds refreshMu, or is NewJWT.
func (a *JWT) reload(ctx context.Context) error {
	var set jwk.Set
	var err error
	if a.cfg.JWKSURL != "" {
		set, err = a.fetch(ctx)
	} else {
		set, err = a.cfg.ReloadKeySet()
	}
	switch {
	case errors.Is(err, errNoAnswer) && a.ring.Load() != nil:
		a.reloadErrors.Inc()
		a.logger.Warn("failed to fetch the JWKS of the token issuer; keeping the keys of its last answer", "err", err)
		return err
	case errors.Is(err, errNoAnswer):
		a.install(&keyring{reason: "the JWKS URL has not answered yet"}, err)
		return err
	case err != nil:
		a.install(&keyring{reason: "the JWKS cannot be read or is not a JWKS (the server log says why)"}, err)
		return err
	}
	ring, err := a.newKeyring(set)
	a.install(ring, err)
	return err
}

// install makes ring the keys in use; err says why it is empty.
func (a *JWT) install(ring *keyring, err error) {
	old := a.ring.Swap(ring)
	if err != nil {
		a.reloadErrors.Inc()
		a.logger.Error("no key of the token issuer's JWKS is usable: every bearer token is refused until it has one",
			"err", err)
		return
	}
	if old == nil || len(old.keys) == 0 {
		a.logger.Info("loaded the JWKS of the token issuer", "keys", len(ring.keys))
	}
}

// newKeyring keeps the keys of set that can verify tokens and logs why it
// skips the others. When no key is left it returns an empty keyring and
// the error that says so.
func (a *JWT) newKeyring(set jwk.Set) (*keyring, error) {
	ring := &keyring{keys: map[string]verifyKey{}}
	dup := map[string]bool{}
	for i := range set.Len() {
		key, _ := set.Key(i)
		kid := key.KeyID()
		vk, err := usableKey(key)
		if err != nil {
			a.logger.Warn("skipping a key of the token issuer's JWKS", "kid", kid, "reason", err.Error())
			continue
		}
		if _, ok := ring.keys[kid]; ok || dup[kid] {
			// Two keys under one kid: neither can be told apart.
			a.logger.Warn("skipping keys of the token issuer's JWKS: the kid names more than one key", "kid", kid)
			delete(ring.keys, kid)
			dup[kid] = true
			continue
		}
		ring.keys[kid] = vk
	}
	if len(ring.keys) == 0 {
		ring.reason = "the JWKS holds no usable key"
		return ring, errors.New("the JWKS holds no usable key (want Ed25519, P-256 or RSA ≥ 2048-bit public signing keys, each with a kid)")
	}
	return ring, nil
}

// usableKey returns the algorithm and raw public key of a JWKS key that can
// verify tokens, or why it cannot.
func usableKey(key jwk.Key) (verifyKey, error) {
	if key.KeyID() == "" {
		return verifyKey{}, errors.New("it has no kid")
	}
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return verifyKey{}, fmt.Errorf("its use is %q, not sig", use)
	}
	if private, err := jwk.IsPrivateKey(key); err != nil {
		return verifyKey{}, fmt.Errorf("its type %s is not an asymmetric key type", key.KeyType())
	} else if private {
		return verifyKey{}, errors.New("it is a private key: a JWKS publishes public keys only")
	}
	raw, err := jwk.PublicRawKeyOf(key)
	if err != nil {
		return verifyKey{}, errors.New("its public key cannot be read")
	}
	var vk verifyKey
	switch pub := raw.(type) {
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return verifyKey{}, errors.New("it is not an Ed25519 public key")
		}
		vk = verifyKey{jwa.EdDSA, pub}
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return verifyKey{}, errors.New("its curve is not P-256")
		}
		vk = verifyKey{jwa.ES256, pub}
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return verifyKey{}, fmt.Errorf("its RSA modulus has %d bits, fewer than %d", pub.N.BitLen(), minRSABits)
		}
		vk = verifyKey{jwa.RS256, pub}
	default:
		return verifyKey{}, fmt.Errorf("its type (%s) is not Ed25519, P-256 or RSA", key.KeyType())
	}
	if alg := key.Algorithm(); alg != nil && alg.String() != "" && alg.String() != vk.alg.String() {
		return verifyKey{}, fmt.Errorf("its alg %q is not %s", alg.String(), vk.alg)
	}
	return vk, nil
}

// lookup returns the key named kid, reloading the set once (rate-limited)
// when the current one lacks it.
func (a *JWT) lookup(ctx context.Context, kid string) (verifyKey, bool) {
	if a.cfg.ReloadKeySet != nil && a.cfg.KeySetChanged != nil && a.cfg.KeySetChanged() {
		a.refreshMu.Lock()
		if a.cfg.KeySetChanged() {
			a.reload(ctx) // it logs what goes wrong
		}
		a.refreshMu.Unlock()
	}
	if k, ok := a.ring.Load().keys[kid]; ok {
		return k, true
	}
	// A source that says when it changed was reloaded above if it did:
	// reading it again could not find the kid.
	if a.cfg.JWKSURL == "" && (a.cfg.ReloadKeySet == nil || a.cfg.KeySetChanged != nil) {
		return verifyKey{}, false
	}
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	// Another request may have reloaded while this one waited.
	if k, ok := a.ring.Load().keys[kid]; ok {
		return k, true
	}
	now := a.cfg.Clock()
	if !a.takeReload(kid, now) {
		return verifyKey{}, false
	}
	a.reload(ctx) // it logs what goes wrong
	k, ok := a.ring.Load().keys[kid]
	if !ok {
		if len(a.missed) >= maxMissedKids {
			clear(a.missed)
		}
		a.missed[kid] = now
	}
	return k, ok
}

// Reload rate limits.
const (
	// refreshBurst is how many reloads unknown kids may cause at once.
	refreshBurst = 5
	// maxMissedKids bounds the memory of kids that reloads did not find.
	maxMissedKids = 1024
)

// takeReload reports whether an unknown kid may cause a reload now, and
// takes it from the budget. The caller holds refreshMu.
func (a *JWT) takeReload(kid string, now time.Time) bool {
	if at, ok := a.missed[kid]; ok && now.Sub(at) < a.cfg.MinRefreshInterval {
		return false
	}
	if elapsed := now.Sub(a.refilled); elapsed > 0 {
		a.budget = min(refreshBurst, a.budget+float64(elapsed)/float64(a.cfg.MinRefreshInterval))
		a.refilled = now
	}
	if a.budget < 1 {
		return false
	}
	a.budget--
	return true
}

// allowedAlgs are the algorithms a token may be signed with.
var allowedAlgs = map[jwa.SignatureAlgorithm]bool{jwa.EdDSA: true, jwa.ES256: true, jwa.RS256: true}

// Authenticate implements Authenticator.
func (a *JWT) Authenticate(r *http.Request) (Identity, error) {
	token, err := BearerToken(r)
	if err != nil {
		return Identity{}, err
	}
	sub, err := a.verify(r.Context(), token)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Name: sub, Permissions: a.cfg.Permissions.Of(sub)}, nil
}

// verify checks token and returns its subject.
func (a *JWT) verify(ctx context.Context, token string) (string, error) {
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		return "", unauthenticatedf("the bearer token is not a JWT (a compact JWS)")
	}
	// Members given twice could be read differently by different parsers:
	// refuse them, in the header and in the claims.
	var objs [2]map[string]json.RawMessage
	for i, what := range []string{"header", "claims"} {
		var err error
		if objs[i], err = uniqueMembers(segs[i]); err != nil {
			return "", unauthenticatedf("the token's %s are not a JSON object with unique members", what)
		}
	}
	// SPEC: RFC 7515 §4.1.11: "Producers MUST NOT use the empty list "[]"
	// as the "crit" value." No extension is understood here, so any crit,
	// empty or not, is refused.
	if _, ok := objs[0]["crit"]; ok {
		return "", unauthenticatedf("the token has a crit header parameter, which is not supported")
	}
	// SPEC: RFC 7519 §4.1.4: "Its value MUST be a number containing a
	// NumericDate value." (and §4.1.5, §4.1.6 for nbf and iat). The JWT
	// parser would also take a string of digits.
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := objs[1][name]; ok && !isJSONNumber(v) {
			return "", unauthenticatedf("the token's %s is not a NumericDate (a JSON number)", name)
		}
	}
	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil {
		return "", unauthenticatedf("the bearer token is not a well-formed JWT")
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return "", unauthenticatedf("the bearer token is not a well-formed JWT")
	}
	hdr := sigs[0].ProtectedHeaders()
	alg := hdr.Algorithm()
	if !allowedAlgs[alg] {
		return "", unauthenticatedf("the token's algorithm %q is not allowed (EdDSA, ES256 or RS256)", clip(alg.String()))
	}
	if _, ok := objs[0]["b64"]; ok {
		return "", unauthenticatedf("the token has a b64 header parameter, which is not supported")
	}
	if hdr.Type() == log.ArtifactType {
		return "", unauthenticatedf("a %s token is not a submitter credential", log.ArtifactType)
	}
	kid := hdr.KeyID()
	if kid == "" {
		return "", unauthenticatedf("the token's header has no kid")
	}
	key, ok := a.lookup(ctx, kid)
	if !ok {
		return "", unauthenticatedf("the token's kid names no key of the issuer's JWKS")
	}
	if key.alg != alg {
		return "", unauthenticatedf("the token's algorithm %s is not the one of its key (%s)", alg, key.alg)
	}
	payload, err := jws.Verify([]byte(token), jws.WithKey(key.alg, key.raw))
	if err != nil {
		return "", unauthenticatedf("the token's signature does not verify")
	}
	tok, err := jwt.Parse(payload, jwt.WithVerify(false), jwt.WithValidate(false))
	if err != nil {
		return "", unauthenticatedf("the token's claims are not a JSON object of valid claims")
	}
	err = jwt.Validate(tok,
		jwt.WithClock(jwt.ClockFunc(a.cfg.Clock)),
		jwt.WithAcceptableSkew(a.cfg.Leeway),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithIssuer(a.cfg.Issuer),
		jwt.WithAudience(a.cfg.Audience),
	)
	if err != nil {
		return "", claimError(err)
	}
	// jwt.Validate skips an exp of 0 (as if absent).
	if tok.Expiration().Unix() <= 0 {
		return "", unauthenticatedf("the token has expired (exp)")
	}
	sub := tok.Subject()
	if err := ValidIdentity(sub); err != nil {
		return "", unauthenticatedf("the token's sub cannot be a submitter: %v", err)
	}
	return sub, nil
}

// uniqueMembers returns the members of seg, the base64url (unpadded)
// encoding of a JSON object, failing when a name is given twice.
func uniqueMembers(seg string) (map[string]json.RawMessage, error) {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	members := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		if _, ok := members[name]; ok {
			return nil, fmt.Errorf("member %q given twice", name)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		members[name] = value
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("not an object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the object")
	}
	return members, nil
}

// isJSONNumber reports whether v, a valid JSON value, is a number.
func isJSONNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || ('0' <= v[0] && v[0] <= '9'))
}

// claimError says which claim check failed, without quoting the token.
func claimError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return unauthenticatedf("the token has expired (exp)")
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return unauthenticatedf("the token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return unauthenticatedf("the token is issued in the future (iat)")
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return unauthenticatedf("the token's issuer (iss) is not the one this log trusts")
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return unauthenticatedf("the token's audience (aud) does not name this log")
	case errors.Is(err, jwt.ErrRequiredClaim()):
		return unauthenticatedf("the token lacks a required claim (exp and sub are required)")
	}
	return unauthenticatedf("the token's claims are not valid")
}
