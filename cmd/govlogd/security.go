package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/govlog/govlog/internal/connlimit"
	"github.com/govlog/govlog/internal/keys"
	"github.com/govlog/govlog/server"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// SecurityConfig is the part of Config that decides who may talk to the
// server and how. The zero value is no authentication (loopback only), no
// TLS, no rate limit, the default connection bound.
type SecurityConfig struct {
	// AuthJWKS is the JWKS of the issuer of bearer JWTs: a file, or an
	// https URL (http on loopback). With AuthIssuer and AuthAudience it
	// turns JWT authentication on. Default: off.
	AuthJWKS string
	// AuthIssuer is the "iss" tokens must carry. Required with AuthJWKS.
	AuthIssuer string
	// AuthAudience is the "aud" tokens must carry. Required with AuthJWKS.
	AuthAudience string
	// AuthLeeway is the clock leeway on exp, nbf and iat, at most 60s.
	// Default 30s.
	AuthLeeway time.Duration
	// AuthTokensFile holds static bearer tokens (server.ParseTokens);
	// instead of AuthJWKS. Default: off.
	AuthTokensFile string
	// AuthPermissionsFile gives JWT identities their permissions
	// (server.ParsePermissionTable). Default: every identity may submit
	// decisions and execution reports.
	AuthPermissionsFile string
	// AuthRead makes reads need the read permission. Default false.
	AuthRead bool
	// TLSCert and TLSKey, both or neither, serve HTTPS. TLSKey must be
	// 0600 and owned by the user. Default: plain HTTP.
	TLSCert, TLSKey string
	// RateLimit is each identity's submissions per second; RateBurst its
	// burst. Default 0: unlimited.
	RateLimit float64
	RateBurst int
	// MaxConns bounds the connections served at once; more wait to be
	// accepted, and while more than half are open idle ones are closed
	// after 5s (connlimit). Default 4096; negative: unbounded.
	MaxConns int
	// MaxConnsPerAddr bounds the connections of one client address (an
	// IPv6 /64); more are closed at once. Behind a proxy every client has
	// the proxy's address: raise it to MaxConns. Default: a quarter of
	// MaxConns; negative: unbounded.
	MaxConnsPerAddr int
}

// defaultMaxConns is MaxConns when unset.
const defaultMaxConns = 4096

// authConfigured reports whether clients must authenticate.
func (c *SecurityConfig) authConfigured() bool {
	return c.AuthJWKS != "" || c.AuthTokensFile != ""
}

// validate checks the security flags; it touches no file.
func (c *SecurityConfig) validate() error {
	jwtMode := c.AuthJWKS != "" || c.AuthIssuer != "" || c.AuthAudience != ""
	switch {
	case jwtMode && c.AuthTokensFile != "":
		return errors.New("--auth-tokens cannot be combined with --auth-jwks, --auth-issuer or --auth-audience: choose JWTs or static tokens")
	case jwtMode && (c.AuthJWKS == "" || c.AuthIssuer == "" || c.AuthAudience == ""):
		return errors.New("JWT authentication needs all of --auth-jwks, --auth-issuer and --auth-audience")
	case c.AuthPermissionsFile != "" && c.AuthJWKS == "":
		return errors.New("--auth-permissions goes with --auth-jwks (static tokens carry their permissions in --auth-tokens)")
	case c.AuthRead && !c.authConfigured():
		return errors.New("--auth-read needs authentication (--auth-jwks or --auth-tokens)")
	case c.AuthLeeway < 0 || c.AuthLeeway > server.MaxLeeway:
		return fmt.Errorf("--auth-leeway must be between 0 and %v", server.MaxLeeway)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.RateLimit < 0 || c.RateBurst < 0:
		return errors.New("--rate-limit and --rate-burst must not be negative")
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.MaxConnsPerAddr == 0 && c.MaxConns > 0 {
		c.MaxConnsPerAddr = max(1, c.MaxConns/4)
	}
	return nil
}

// buildAuth reads the authentication files and returns the authenticator
// (nil without authentication) and the function that releases it.
func (c *SecurityConfig) buildAuth(ctx context.Context, logger *slog.Logger) (server.Authenticator, func(), error) {
	noop := func() {}
	switch {
	case c.AuthTokensFile != "":
		data, err := keys.ReadConfig(c.AuthTokensFile)
		if err != nil {
			return nil, noop, fmt.Errorf("failed to read --auth-tokens: %w", err)
		}
		t, err := server.ParseTokens(data)
		if err != nil {
			return nil, noop, fmt.Errorf("%s: %w", c.AuthTokensFile, err)
		}
		return t, noop, nil
	case c.AuthJWKS != "":
		cfg := server.JWTConfig{
			Issuer:   c.AuthIssuer,
			Audience: c.AuthAudience,
			Leeway:   c.AuthLeeway,
			Logger:   logger,
		}
		if c.AuthPermissionsFile != "" {
			data, err := keys.ReadConfig(c.AuthPermissionsFile)
			if err != nil {
				return nil, noop, fmt.Errorf("failed to read --auth-permissions: %w", err)
			}
			if cfg.Permissions, err = server.ParsePermissionTable(data); err != nil {
				return nil, noop, fmt.Errorf("%s: %w", c.AuthPermissionsFile, err)
			}
		}
		// A JWKS without a usable key — emptied, garbage, unreadable,
		// unreachable — does not stop the start: no token is accepted and
		// /readyz says why until it has one, as after a reload (jwt.go).
		if isURL(c.AuthJWKS) {
			cfg.JWKSURL = c.AuthJWKS
		} else {
			f := &jwksFile{path: c.AuthJWKS}
			cfg.ReloadKeySet, cfg.KeySetChanged = f.load, f.changed
		}
		a, err := server.NewJWT(ctx, cfg)
		if err != nil {
			return nil, noop, err
		}
		return a, a.Close, nil
	}
	return nil, noop, nil
}

// jwksFile is a JWKS file that is read again when it changes.
type jwksFile struct {
	path string
	mu   sync.Mutex
	read bool        // guarded by mu: load was called
	seen os.FileInfo // guarded by mu: the file as last read, nil when it was missing
}

// load reads and parses the file, remembering what it read even when that
// fails, so that a broken file is not read again until it changes.
func (f *jwksFile) load() (jwk.Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read = true
	f.seen, _ = os.Stat(f.path)
	data, err := keys.ReadConfig(f.path)
	if err != nil {
		return nil, fmt.Errorf("failed to read --auth-jwks: %w", err)
	}
	set, err := jwk.Parse(data)
	if err != nil {
		// The parser's error could quote the file.
		return nil, fmt.Errorf("--auth-jwks %s is not a JWKS (RFC 7517)", f.path)
	}
	return set, nil
}

// changed reports whether the file is another file, is missing or back, or
// has another size, modification time or mode than when it was last read.
func (f *jwksFile) changed() bool {
	fi, _ := os.Stat(f.path)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.read:
		return true
	case fi == nil || f.seen == nil:
		return (fi == nil) != (f.seen == nil)
	}
	return !os.SameFile(fi, f.seen) || !fi.ModTime().Equal(f.seen.ModTime()) || fi.Size() != f.seen.Size() ||
		fi.Mode() != f.seen.Mode()
}

// isURL reports whether s names a JWKS by URL rather than by file.
func isURL(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// tlsConfig loads the TLS key pair, or returns nil without one.
func (c *SecurityConfig) tlsConfig() (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := keys.LoadTLS(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// limit bounds the connections hs serves on ln (connlimit).
func (c *SecurityConfig) limit(ln net.Listener, hs *http.Server, logger *slog.Logger) net.Listener {
	return connlimit.Wrap(ln, hs, connlimit.Config{Max: c.MaxConns, PerAddr: c.MaxConnsPerAddr, Logger: logger, CoalesceWrites: true})
}

// announce logs how clients are authenticated, once the server listens.
func (c *SecurityConfig) announce(logger *slog.Logger, addr string) {
	switch {
	case c.AuthJWKS != "":
		logger.Info("authentication: JWT bearer tokens", "jwks", c.AuthJWKS, "issuer", c.AuthIssuer,
			"audience", c.AuthAudience, "reads_need_token", c.AuthRead)
	case c.AuthTokensFile != "":
		logger.Info("authentication: static bearer tokens", "file", c.AuthTokensFile, "reads_need_token", c.AuthRead)
	default:
		logger.Warn("authentication is not configured: every client is the anonymous submitter; " +
			"serving on loopback only")
	}
	if c.authConfigured() && c.TLSCert == "" && checkLoopback(addr) != nil {
		logger.Warn("serving bearer-token authentication over plain HTTP on a non-loopback address: " +
			"tokens cross the network in clear unless a TLS proxy fronts govlogd (--tls-cert, --tls-key)")
	}
}

// addSecurityFlags defines the flags of c on fs.
func addSecurityFlags(fs *flag.FlagSet, c *SecurityConfig) {
	fs.StringVar(&c.AuthJWKS, "auth-jwks", "", "JWT authentication: the token issuer's JWKS, a file or an https URL (`file-or-url`; refreshed, cached); needs --auth-issuer and --auth-audience")
	fs.StringVar(&c.AuthIssuer, "auth-issuer", "", "JWT authentication: the required \"iss\" of tokens")
	fs.StringVar(&c.AuthAudience, "auth-audience", "", "JWT authentication: the \"aud\" tokens must name")
	fs.DurationVar(&c.AuthLeeway, "auth-leeway", server.DefaultLeeway, "JWT authentication: clock leeway on exp, nbf and iat (at most 60s)")
	fs.StringVar(&c.AuthPermissionsFile, "auth-permissions", "", "JWT authentication: `file` of \"identity permissions\" lines (default: every identity may submit decisions and executions)")
	fs.StringVar(&c.AuthTokensFile, "auth-tokens", "", "static bearer tokens instead of JWTs: `file` of \"identity sha256-hex-of-token [permissions]\" lines")
	fs.BoolVar(&c.AuthRead, "auth-read", false, "reads need a token with the read permission too (/healthz, /readyz, /metrics and the JWKS stay public)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate chain `file` (with --tls-key)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the PEM private key `file` of --tls-cert (must be 0600 and owned by the user)")
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "each identity's sustained submissions per second; a batch counts its items (default 0: unlimited)")
	fs.IntVar(&c.RateBurst, "rate-burst", 0, "each identity's burst of submissions (default: --rate-limit rounded up)")
	fs.IntVar(&c.MaxConns, "max-conns", defaultMaxConns, "most connections served at once; more wait to be accepted, and over half of them idle ones are closed after 5s (negative: unbounded)")
	fs.IntVar(&c.MaxConnsPerAddr, "max-conns-per-addr", 0, "most connections of one client address (an IPv6 /64); more are closed at once; behind a proxy raise it to --max-conns (default: a quarter of --max-conns; negative: unbounded)")
}
