package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// source is a JWKS source that the test changes: what ReloadKeySet
// returns, and whether KeySetChanged says it changed.
type source struct {
	mu      sync.Mutex
	set     jwk.Set
	err     error
	changed bool
}

func (s *source) put(set jwk.Set, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set, s.err, s.changed = set, err, true
}

func (s *source) load() (jwk.Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changed = false
	return s.set, s.err
}

func (s *source) hasChanged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// unusableSets are JWKS without a usable key, each named.
func unusableSets(t *testing.T) map[string]jwk.Set {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	onlyWeak := jwk.NewSet()
	addPublic(t, onlyWeak, "weak", weak)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	onlyEnc := jwk.NewSet()
	addPublic(t, onlyEnc, "enc", priv)
	k, _ := onlyEnc.Key(0)
	k.Set(jwk.KeyUsageKey, "enc")
	return map[string]jwk.Set{"empty set": jwk.NewSet(), "only RSA-1024": onlyWeak, "only use enc": onlyEnc}
}

// readyz returns the answer of /readyz.
func readyz(t *testing.T, e *env) response {
	t.Helper()
	return e.with(t).get("/readyz")
}

// wantNoKey checks that e accepts no token and says so on /readyz.
func wantNoKey(t *testing.T, e *env, tok string) {
	t.Helper()
	wantRefused(t, e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tok), decision("d-refused", "deny", nil)), 401)
	r := readyz(t, e)
	wantError(t, r, http.StatusServiceUnavailable, codeLogUnavailable)
	if !strings.Contains(string(r.body), "JWKS") {
		t.Errorf("/readyz does not say why: %s", r.body)
	}
	if v := metricValue(t, e, "govlog_auth_jwks_keys"); v != 0 {
		t.Errorf("govlog_auth_jwks_keys %v, want 0", v)
	}
}

// TestJWKSEmptied: a reload that yields no usable key — an empty set, only
// unusable keys, a source that cannot be read — leaves no key active
// (every token 401, /readyz 503 saying why), counts an error, and the
// next good set brings the keys back. The old keys were kept.
func TestJWKSEmptied(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	good := jwk.NewSet()
	addPublic(t, good, "a", key)
	src := &source{set: good}
	a := newJWT(t, JWTConfig{ReloadKeySet: src.load, KeySetChanged: src.hasChanged})
	e := newAuthEnv(t, func(c *Config) { c.Auth = a })
	tok := sign(t, jwa.EdDSA, key, "a", claims("ci", time.Now()), nil)

	cases := map[string]func(){}
	for name, set := range unusableSets(t) {
		cases[name] = func() { src.put(set, nil) }
	}
	cases["unreadable"] = func() { src.put(nil, errors.New("refusing jwks.json: mode 0666 lets the group or others write it")) }
	n := 0
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			src.put(good, nil)
			if r := e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tok), decision("d-"+strings.ReplaceAll(name, " ", "-"), "deny", nil)); r.status != http.StatusCreated {
				t.Fatalf("token of the good set: %s", r)
			}
			if r := readyz(t, e); r.status != http.StatusOK {
				t.Fatalf("/readyz with the good set: %s", r)
			}
			if v := metricValue(t, e, "govlog_auth_jwks_keys"); v != 1 {
				t.Errorf("govlog_auth_jwks_keys %v, want 1", v)
			}
			spoil()
			wantNoKey(t, e, tok)
			n++
			if v := metricValue(t, e, "govlog_auth_jwks_reload_errors_total"); v != float64(n) {
				t.Errorf("govlog_auth_jwks_reload_errors_total %v, want %d", v, n)
			}
		})
	}
}

// TestJWKSStartsWithoutKey: a source without a usable key at start is not
// an error (a restart after an emergency revocation must not differ from
// the reload that revoked): the authenticator starts refusing every token
// and becomes usable once the source has a key.
func TestJWKSStartsWithoutKey(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	good := jwk.NewSet()
	addPublic(t, good, "a", key)
	tok := sign(t, jwa.EdDSA, key, "a", claims("ci", time.Now()), nil)
	starts := map[string]func(*source){"unreadable": func(s *source) { s.put(nil, errors.New("no such file")) }}
	for name, set := range unusableSets(t) {
		starts[name] = func(s *source) { s.put(set, nil) }
	}
	for name, spoil := range starts {
		t.Run(name, func(t *testing.T) {
			src := &source{}
			spoil(src)
			a := newJWT(t, JWTConfig{ReloadKeySet: src.load, KeySetChanged: src.hasChanged})
			e := newAuthEnv(t, func(c *Config) { c.Auth = a })
			wantNoKey(t, e, tok)
			src.put(good, nil)
			if r := e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tok), decision("d-1", "deny", nil)); r.status != http.StatusCreated {
				t.Fatalf("token once the source has the key: %s", r)
			}
			if r := readyz(t, e); r.status != http.StatusOK {
				t.Fatalf("/readyz: %s", r)
			}
		})
	}
}

// TestJWKSURLEmptied: a JWKS URL that answers a set without a usable key
// (or garbage) leaves no key active; one that does not answer (an error
// status, no connection) keeps the keys of its last answer and counts
// the error.
func TestJWKSURLEmptied(t *testing.T) {
	_, keyA, _ := ed25519.GenerateKey(rand.Reader)
	_, keyB, _ := ed25519.GenerateKey(rand.Reader)
	setA := jwk.NewSet()
	addPublic(t, setA, "a", keyA)
	tokA := sign(t, jwa.EdDSA, keyA, "a", claims("ci", time.Now()), nil)
	tokB := sign(t, jwa.EdDSA, keyB, "b", claims("ci", time.Now()), nil) // an unknown kid: forces a fetch
	answers := map[string]func(j *jwksServer){"garbage": func(j *jwksServer) { j.serveRaw(200, "XYZZY") }}
	for name, set := range unusableSets(t) {
		answers[name] = func(j *jwksServer) { j.replace(set) }
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			js := newJWKSServer(t, setA)
			a := newJWT(t, JWTConfig{JWKSURL: js.srv.URL, MinRefreshInterval: time.Millisecond})
			e := newAuthEnv(t, func(c *Config) { c.Auth = a })
			if r := e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tokA), decision("d-1", "deny", nil)); r.status != http.StatusCreated {
				t.Fatalf("token of key a: %s", r)
			}
			answer(js)
			wantRefused(t, e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tokB), decision("d-2", "deny", nil)), 401)
			wantNoKey(t, e, tokA)
			if v := metricValue(t, e, "govlog_auth_jwks_reload_errors_total"); v < 1 {
				t.Errorf("govlog_auth_jwks_reload_errors_total %v", v)
			}
		})
	}
	for name, fail := range map[string]func(j *jwksServer){
		"error status": func(j *jwksServer) { j.serveRaw(http.StatusBadGateway, "bad gateway") },
		"no answer":    func(j *jwksServer) { j.srv.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			js := newJWKSServer(t, setA)
			a := newJWT(t, JWTConfig{JWKSURL: js.srv.URL, MinRefreshInterval: time.Millisecond})
			e := newAuthEnv(t, func(c *Config) { c.Auth = a })
			fail(js)
			wantRefused(t, e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tokB), decision("d-2", "deny", nil)), 401)
			if r := e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tokA), decision("d-1", "deny", nil)); r.status != http.StatusCreated {
				t.Fatalf("token of key a while the issuer does not answer: %s", r)
			}
			if r := readyz(t, e); r.status != http.StatusOK {
				t.Fatalf("/readyz: %s", r)
			}
			if v := metricValue(t, e, "govlog_auth_jwks_reload_errors_total"); v < 1 {
				t.Errorf("govlog_auth_jwks_reload_errors_total %v", v)
			}
		})
	}
}

// TestJWKSURLUnreachableAtStart: a JWKS URL that does not answer at start
// is fetched again in the background; until it answers no token is
// accepted and /readyz says why.
func TestJWKSURLUnreachableAtStart(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	set := jwk.NewSet()
	addPublic(t, set, "a", key)
	js := newJWKSServer(t, set)
	js.serveRaw(http.StatusServiceUnavailable, "starting")
	a := newJWT(t, JWTConfig{JWKSURL: js.srv.URL, MinRefreshInterval: 50 * time.Millisecond})
	e := newAuthEnv(t, func(c *Config) { c.Auth = a })
	tok := sign(t, jwa.EdDSA, key, "a", claims("ci", time.Now()), nil)
	wantNoKey(t, e, tok)
	js.replace(set)
	deadline := time.Now().Add(10 * time.Second)
	for readyz(t, e).status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready 10s after the JWKS URL answers")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tok), decision("d-1", "deny", nil)); r.status != http.StatusCreated {
		t.Fatalf("token once the JWKS URL answers: %s", r)
	}
}
