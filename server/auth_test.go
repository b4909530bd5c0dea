package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/govlog/govlog/log"
)

// newAuthEnv is newEnv with the server configuration edited by configure.
func newAuthEnv(t testing.TB, configure func(*Config)) *env {
	t.Helper()
	return newEnv(t, envOptions{configure: configure})
}

// call sends a request with an Authorization header (none when auth is "").
func (e *env) call(method, path, auth string, body []byte) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return e.send(req)
}

// treeSize is the size of the latest checkpoint, read past the API, less
// the entry of the artifact key that New logs first.
func (e *env) treeSize() uint64 {
	e.t.Helper()
	cp, err := e.srv.log.Latest(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if cp.Size == 0 {
		e.t.Fatal("the log has no key entry")
	}
	return cp.Size - 1
}

// submitter returns the submitter of a receipt's entry.
func submitterOf(t *testing.T, body []byte) string {
	t.Helper()
	rec := parseReceipt(t, body)
	entry, err := log.ParseEntry(rec.Entry)
	if err != nil {
		t.Fatal(err)
	}
	return entry.Submitter
}

// wantRefused checks a 401 or 403 answer and its challenge.
func wantRefused(t *testing.T, r response, status int) {
	t.Helper()
	code := codeUnauthenticated
	if status == http.StatusForbidden {
		code = codeForbidden
	}
	wantError(t, r, status, code)
	if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, `Bearer realm="govlog"`) {
		t.Errorf("WWW-Authenticate %q", ch)
	}
}

func TestParsePermissions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Permission
		ok   bool
	}{
		{"decisions", PermDecisions, true},
		{"executions", PermExecutions, true},
		{"read", PermRead, true},
		{"decisions,executions", DefaultPermissions, true},
		{"read,decisions", PermRead | PermDecisions, true},
		{"*", PermAll, true},
		{"none", PermNone, true},
		{"", 0, false},
		{"write", 0, false},
		{"decisions,", 0, false},
		{"decisions,decisions", 0, false},
		{"none,read", 0, false},
		{"Decisions", 0, false},
		{"decisions, read", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePermissions(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("ParsePermissions(%q) = %v, %v", tc.in, got, err)
			}
			if tc.ok {
				back, err := ParsePermissions(got.String())
				if err != nil || back != got {
					t.Errorf("String %q does not parse back: %v %v", got.String(), back, err)
				}
			}
		})
	}
}

func TestValidIdentity(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ci-pipeline", true},
		{"spiffe://example.org/ns/prod/sa/deployer", true},
		{"Jörg Müller", true},
		{strings.Repeat("é", 256), true},
		{strings.Repeat("é", 257), false},
		{"", false},
		{"anonymous", false},
		{"*", false},
		{"a\nb", false},
		{"a\x00b", false},
		{"\xff", false},
	} {
		if err := ValidIdentity(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidIdentity(%q) = %v", tc.name, err)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		want    string
	}{
		{"plain", []string{"Bearer abc.def-_~+/="}, "abc.def-_~+/="},
		{"lower scheme", []string{"bearer tok"}, "tok"},
		{"spaces", []string{"Bearer   tok"}, "tok"},
		{"missing", nil, ""},
		{"twice", []string{"Bearer a", "Bearer a"}, ""},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, ""},
		{"no token", []string{"Bearer"}, ""},
		{"empty token", []string{"Bearer "}, ""},
		{"space inside", []string{"Bearer a b"}, ""},
		{"only padding", []string{"Bearer ==="}, ""},
		{"padding inside", []string{"Bearer a=b"}, ""},
		{"comma", []string{"Bearer a,b"}, ""},
		{"quote", []string{`Bearer "a"`}, ""},
		{"non-ascii", []string{"Bearer tökén"}, ""},
		{"too long", []string{"Bearer " + strings.Repeat("a", maxBearer+1)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/decisions", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := BearerToken(r)
			if tc.want == "" {
				if err == nil || !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("BearerToken = %q, %v; want ErrUnauthenticated", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("BearerToken = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseTokens(t *testing.T) {
	h1, h2 := TokenHash("token-one"), TokenHash("token-two")
	good := "# comment\n\nci " + h1 + "\n\tauditor\t" + strings.ToUpper(h2) + "\tread\n"
	tok, err := ParseTokens([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.entries) != 2 || tok.entries[0].id != (Identity{"ci", DefaultPermissions}) || tok.entries[1].id != (Identity{"auditor", PermRead}) {
		t.Errorf("entries %+v", tok.entries)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "# nothing\n", "no token"},
		{"one field", "ci\n", "line 1"},
		{"four fields", "ci " + h1 + " read x\n", "line 1"},
		{"short hash", "ci abcd\n", "64 hex"},
		{"not hex", "ci " + strings.Repeat("g", 64) + "\n", "64 hex"},
		{"duplicate hash", "a " + h1 + "\nb " + h1 + "\n", "line 2"},
		{"bad permission", "ci " + h1 + " write\n", "unknown permission"},
		{"reserved identity", "anonymous " + h1 + "\n", "reserved"},
		{"star identity", "* " + h1 + "\n", "reserved"},
		{"invalid utf-8", "c\xffi " + h1 + "\n", "UTF-8"},
		{"long line", "ci " + strings.Repeat("a", maxConfigLine) + "\n", "failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTokens([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseTokens: %v; want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), h1) {
				t.Errorf("error quotes a hash: %v", err)
			}
		})
	}
	// An identity may hold several tokens (rotation).
	if _, err := ParseTokens([]byte("ci " + h1 + "\nci " + h2 + "\n")); err != nil {
		t.Errorf("two tokens for one identity: %v", err)
	}
}

func TestParsePermissionTable(t *testing.T) {
	pt, err := ParsePermissionTable([]byte("# who\nci decisions\nrt executions\naudit read,decisions\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Permission{"ci": PermDecisions, "rt": PermExecutions, "audit": PermRead | PermDecisions, "other": DefaultPermissions} {
		if got := pt.Of(name); got != want {
			t.Errorf("Of(%q) = %v, want %v", name, got, want)
		}
	}
	pt, err = ParsePermissionTable([]byte("ci *\n* none\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pt.Of("ci") != PermAll || pt.Of("other") != PermNone {
		t.Errorf("with a default line: ci %v, other %v", pt.Of("ci"), pt.Of("other"))
	}
	var nilTable *PermissionTable
	if nilTable.Of("x") != DefaultPermissions {
		t.Error("a nil table does not give the default")
	}
	for _, bad := range []string{"ci\n", "ci read x\n", "ci read\nci read\n", "* read\n* none\n", "anonymous read\n", "ci bogus\n"} {
		if _, err := ParsePermissionTable([]byte(bad)); err == nil {
			t.Errorf("ParsePermissionTable(%q) succeeded", bad)
		}
	}
}

// staticTokens are the tokens of the static token tests.
var staticTokens = map[string]string{
	"ci":       "ci-token-4f1d0a5e9b",
	"runtime":  "runtime-token-77c2",
	"auditor":  "auditor-token-0b3e",
	"everyone": "all-token-1234",
}

func newTokenEnv(t *testing.T, authRead bool) *env {
	t.Helper()
	file := "ci " + TokenHash(staticTokens["ci"]) + " decisions\n" +
		"runtime " + TokenHash(staticTokens["runtime"]) + " executions\n" +
		"auditor " + TokenHash(staticTokens["auditor"]) + " read\n" +
		"everyone " + TokenHash(staticTokens["everyone"]) + " *\n"
	tok, err := ParseTokens([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return newAuthEnv(t, func(c *Config) { c.Auth, c.AuthRead = tok, authRead })
}

func bearer(tok string) string { return "Bearer " + tok }

func TestStaticTokens(t *testing.T) {
	e := newTokenEnv(t, false)

	refusals := []struct {
		name, path, auth string
		status           int
	}{
		{"no token", "/v1/decisions", "", 401},
		{"no token batch", "/v1/decisions/batch", "", 401},
		{"no token execution", "/v1/executions", "", 401},
		{"unknown token", "/v1/decisions", bearer("not-a-token"), 401},
		{"token prefix", "/v1/decisions", bearer(staticTokens["ci"][:10]), 401},
		{"token hash as token", "/v1/decisions", bearer(TokenHash(staticTokens["ci"])), 401},
		{"basic scheme", "/v1/decisions", "Basic " + base64.StdEncoding.EncodeToString([]byte("ci:"+staticTokens["ci"])), 401},
		{"execution without permission", "/v1/executions", bearer(staticTokens["ci"]), 403},
		{"decision without permission", "/v1/decisions", bearer(staticTokens["runtime"]), 403},
		{"batch without permission", "/v1/decisions/batch", bearer(staticTokens["auditor"]), 403},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			body := decision("refused-"+strings.ReplaceAll(tc.name, " ", "-"), "allow", nil)
			switch tc.path {
			case "/v1/decisions/batch":
				body = []byte(`{"decisions":[` + string(body) + `]}`)
			case "/v1/executions":
				body = execution("x-refused", "d-none")
			}
			r := e.call(http.MethodPost, tc.path, tc.auth, body)
			wantRefused(t, r, tc.status)
			if strings.Contains(string(r.body), staticTokens["ci"]) {
				t.Errorf("the answer quotes the token: %s", r.body)
			}
		})
	}
	if n := e.treeSize(); n != 0 {
		t.Fatalf("refused requests logged %d entries", n)
	}

	// Valid tokens work, and the identity is the submitter.
	r := e.call(http.MethodPost, "/v1/decisions", bearer(staticTokens["ci"]), decision("d-ci", "allow", nil))
	if r.status != http.StatusCreated {
		t.Fatalf("POST with the ci token: %s", r)
	}
	if got := submitterOf(t, r.body); got != "ci" {
		t.Errorf("submitter %q, want ci", got)
	}
	ci := parseReceipt(t, r.body)
	e.verifyReceipt(ci, "d-ci")
	r = e.call(http.MethodPost, "/v1/executions", bearer(staticTokens["runtime"]), claim("x-1", "d-ci", ci.Artifact))
	if r.status != http.StatusCreated || submitterOf(t, r.body) != "runtime" {
		t.Fatalf("POST execution with the runtime token: %s", r)
	}
	r = e.call(http.MethodPost, "/v1/decisions/batch", bearer(staticTokens["everyone"]),
		[]byte(`{"decisions":[`+string(decision("d-b1", "deny", nil))+`]}`))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"id":"d-b1"`) {
		t.Fatalf("batch with the * token: %s", r)
	}
	// The same decision from another identity is another submitter's.
	r = e.call(http.MethodPost, "/v1/decisions", bearer(staticTokens["everyone"]), decision("d-ci", "allow", nil))
	wantError(t, r, http.StatusConflict, codeIDConflict)

	// Reads are public.
	for _, path := range []string{"/v1/checkpoint", "/v1/log", "/v1/decisions/d-ci", "/v1/entries?start=0", JWKSPath, "/healthz", "/readyz", "/metrics"} {
		if r := e.get(path); r.status != http.StatusOK {
			t.Errorf("GET %s without a token: %s", path, r)
		}
	}
	if n := e.treeSize(); n != 3 {
		t.Errorf("tree size %d, want 3", n)
	}
}

func TestAuthRead(t *testing.T) {
	e := newTokenEnv(t, true)
	r := e.call(http.MethodPost, "/v1/decisions", bearer(staticTokens["ci"]), decision("d-1", "deny", nil))
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %s", r)
	}
	for _, path := range []string{"/v1/checkpoint", "/v1/log", "/v1/decisions/d-1", "/v1/entries?start=0", "/v1/proofs/inclusion?index=0", "/checkpoint", "/tile/0/000", "/v1/no-such-path"} {
		t.Run(path, func(t *testing.T) {
			e := e.with(t)
			wantRefused(t, e.call(http.MethodGet, path, "", nil), 401)
			if r := e.call(http.MethodHead, path, bearer("wrong"), nil); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("HEAD with a wrong token: %d %v", r.status, r.header)
			}
			wantRefused(t, e.call(http.MethodGet, path, bearer(staticTokens["ci"]), nil), 403)
			r := e.call(http.MethodGet, path, bearer(staticTokens["auditor"]), nil)
			if r.status == 401 || r.status == 403 {
				t.Fatalf("GET %s with a read token: %s", path, r)
			}
		})
	}
	for _, path := range []string{JWKSPath, "/healthz", "/readyz", "/metrics"} {
		if r := e.get(path); r.status != http.StatusOK {
			t.Errorf("GET %s without a token: %s", path, r)
		}
	}
}

// issuer is a token issuer of the JWT tests: its keys, some published.
type issuer struct {
	ed      ed25519.PrivateKey
	ec      *ecdsa.PrivateKey
	rsa     *rsa.PrivateKey
	weakRSA *rsa.PrivateKey
	gone    ed25519.PrivateKey // removed from the JWKS
	set     jwk.Set
}

const (
	testIssuer    = "https://idp.example.com"
	testAudience2 = "govlog.example.com"
)

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	is := &issuer{}
	var err error
	_, is.ed, _ = ed25519.GenerateKey(rand.Reader)
	_, is.gone, _ = ed25519.GenerateKey(rand.Reader)
	if is.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if is.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if is.weakRSA, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		t.Fatal(err)
	}
	is.set = jwk.NewSet()
	for kid, priv := range map[string]any{"ed": is.ed, "ec": is.ec, "rsa": is.rsa, "weak": is.weakRSA} {
		addPublic(t, is.set, kid, priv)
	}
	return is
}

// addPublic adds the public half of priv to set under kid.
func addPublic(t testing.TB, set jwk.Set, kid string, priv any) {
	t.Helper()
	k, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	if err := set.AddKey(k); err != nil {
		t.Fatal(err)
	}
}

// claims returns valid claims for sub.
func claims(sub string, now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience2, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

// sign signs claims into a compact JWS with header alg, kid and extra.
func sign(t testing.TB, alg jwa.SignatureAlgorithm, key any, kid string, c map[string]any, extra map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if kid != "" {
		hdr.Set(jws.KeyIDKey, kid)
	}
	hdr.Set(jws.TypeKey, "JWT")
	for k, v := range extra {
		if err := hdr.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// unsigned builds a compact JWS from raw header and payload JSON and sig.
func unsigned(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

// signRaw signs header and payload, given as JSON text, with EdDSA.
func signRaw(header, payload string, key ed25519.PrivateKey) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	return input + "." + enc.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// with returns c with the changes of edit (a nil value deletes).
func with(c map[string]any, edit map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range edit {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func newJWT(t testing.TB, cfg JWTConfig) *JWT {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = testAudience2
	}
	a, err := NewJWT(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// badTokens are the tokens that must all be refused, with a name each.
func badTokens(t *testing.T, is *issuer, now time.Time) map[string]string {
	good := claims("ci", now)
	goodPayload, _ := json.Marshal(good)
	edPub := is.ed.Public().(ed25519.PublicKey)
	edJWK, _ := jwk.PublicKeyOf(edPub)
	edJWKJSON, _ := json.Marshal(edJWK)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&is.rsa.PublicKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})

	valid := sign(t, jwa.EdDSA, is.ed, "ed", good, nil)
	parts := strings.Split(valid, ".")
	otherPayload, _ := json.Marshal(with(good, map[string]any{"sub": "admin"}))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(otherPayload) + "." + parts[2]
	es := sign(t, jwa.ES256, is.ec, "ec", good, nil)
	esParts := strings.Split(es, ".")
	flippedSig := []byte(parts[2])
	flippedSig[3] ^= 0x01

	return map[string]string{
		"alg none":                    unsigned(`{"alg":"none","kid":"ed","typ":"JWT"}`, string(goodPayload), nil),
		"alg none no kid":             unsigned(`{"alg":"none"}`, string(goodPayload), nil),
		"alg None":                    unsigned(`{"alg":"None","kid":"ed"}`, string(goodPayload), nil),
		"HS256 with raw public key":   sign(t, jwa.HS256, []byte(edPub), "ed", good, nil),
		"HS256 with public JWK":       sign(t, jwa.HS256, edJWKJSON, "ed", good, nil),
		"HS256 with public PEM":       sign(t, jwa.HS256, rsaPEM, "rsa", good, nil),
		"HS384 with public PEM":       sign(t, jwa.HS384, rsaPEM, "rsa", good, nil),
		"HS512 with public key":       sign(t, jwa.HS512, []byte(edPub), "ed", good, nil),
		"PS256":                       sign(t, jwa.PS256, is.rsa, "rsa", good, nil),
		"ES384 header on ES256 sig":   unsigned(`{"alg":"ES384","kid":"ec"}`, string(goodPayload), []byte("x")),
		"RS256 header on EdDSA key":   sign(t, jwa.RS256, is.rsa, "ed", good, nil),
		"EdDSA header on RSA key":     sign(t, jwa.EdDSA, is.ed, "rsa", good, nil),
		"expired":                     sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), nil),
		"expired long ago":            sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": now.Add(-24 * time.Hour).Unix(), "iat": now.Add(-25 * time.Hour).Unix(), "nbf": nil}), nil),
		"exp zero":                    sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": 0}), nil),
		"no exp":                      sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": nil}), nil),
		"exp string":                  sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": "tomorrow"}), nil),
		"not yet valid":               sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}), nil),
		"issued in the future":        sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"iat": now.Add(5 * time.Minute).Unix()}), nil),
		"wrong iss":                   sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"iss": "https://evil.example.com"}), nil),
		"no iss":                      sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"iss": nil}), nil),
		"wrong aud":                   sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"aud": "other.example.com"}), nil),
		"wrong aud list":              sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"aud": []string{"a", "b"}}), nil),
		"no aud":                      sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"aud": nil}), nil),
		"no sub":                      sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"sub": nil}), nil),
		"empty sub":                   sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"sub": ""}), nil),
		"anonymous sub":               sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"sub": "anonymous"}), nil),
		"long sub":                    sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"sub": strings.Repeat("a", 257)}), nil),
		"control sub":                 sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"sub": "a\nb"}), nil),
		"unknown kid":                 sign(t, jwa.EdDSA, is.ed, "nope", good, nil),
		"no kid":                      sign(t, jwa.EdDSA, is.ed, "", good, nil),
		"key removed from the JWKS":   sign(t, jwa.EdDSA, is.gone, "gone", good, nil),
		"other key under a known kid": sign(t, jwa.EdDSA, is.gone, "ed", good, nil),
		"weak RSA key":                sign(t, jwa.RS256, is.weakRSA, "weak", good, nil),
		"tampered payload":            tampered,
		"tampered signature":          parts[0] + "." + parts[1] + "." + string(flippedSig),
		"signature of another token":  parts[0] + "." + parts[1] + "." + esParts[2],
		"no signature":                parts[0] + "." + parts[1] + ".",
		"two parts":                   parts[0] + "." + parts[1],
		"JWE shape":                   parts[0] + ".." + parts[1] + ".." + parts[2],
		"crit header":                 sign(t, jwa.EdDSA, is.ed, "ed", good, map[string]any{"crit": []string{"exp"}}),
		"empty crit header":           signRaw(`{"alg":"EdDSA","kid":"ed","crit":[]}`, string(goodPayload), is.ed),
		"null crit header":            signRaw(`{"alg":"EdDSA","kid":"ed","crit":null}`, string(goodPayload), is.ed),
		"exp numeric string":          sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10)}), nil),
		"exp null":                    sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": json.RawMessage("null")}), nil),
		"exp true":                    sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": true}), nil),
		"exp object":                  sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": map[string]any{"$date": 1}}), nil),
		"nbf numeric string":          sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"nbf": strconv.FormatInt(now.Unix(), 10)}), nil),
		"nbf null":                    sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"nbf": json.RawMessage("null")}), nil),
		"iat numeric string":          sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"iat": strconv.FormatInt(now.Unix(), 10)}), nil),
		"iat RFC 3339 string":         sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"iat": now.UTC().Format(time.RFC3339)}), nil),
		"b64 header":                  signRaw(`{"alg":"EdDSA","kid":"ed","b64":true}`, string(goodPayload), is.ed),
		"artifact type":               sign(t, jwa.EdDSA, is.ed, "ed", good, map[string]any{jws.TypeKey: log.ArtifactType}),
		"payload not JSON":            signRaw(`{"alg":"EdDSA","kid":"ed"}`, "not json", is.ed),
		"payload a JSON array":        signRaw(`{"alg":"EdDSA","kid":"ed"}`, `["sub"]`, is.ed),
		"header not JSON":             signRaw(`not json`, string(goodPayload), is.ed),
		"duplicate alg":               signRaw(`{"alg":"none","alg":"EdDSA","kid":"ed"}`, string(goodPayload), is.ed),
		"garbage":                     "a.b.c",
	}
}

func TestJWTAuthenticate(t *testing.T) {
	is := newIssuer(t)
	now := time.Now()
	a := newJWT(t, JWTConfig{KeySet: is.set, Clock: func() time.Time { return now }})
	if _, ok := a.ring.Load().keys["weak"]; ok {
		t.Error("a 1024-bit RSA key is usable")
	}
	good := claims("ci", now)
	for name, tok := range map[string]string{
		"EdDSA":             sign(t, jwa.EdDSA, is.ed, "ed", good, nil),
		"ES256":             sign(t, jwa.ES256, is.ec, "ec", good, nil),
		"RS256":             sign(t, jwa.RS256, is.rsa, "rsa", good, nil),
		"aud list":          sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"aud": []string{"x", testAudience2}}), nil),
		"expired in leeway": sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"exp": now.Add(-10 * time.Second).Unix()}), nil),
		"nbf in leeway":     sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"nbf": now.Add(10 * time.Second).Unix()}), nil),
		"no nbf, no iat":    sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"nbf": nil, "iat": nil}), nil),
		"no typ":            sign(t, jwa.EdDSA, is.ed, "ed", good, map[string]any{jws.TypeKey: "at+jwt"}),
		"unicode sub":       sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"sub": "Jörg"}), nil),
		"extra claims":      sign(t, jwa.EdDSA, is.ed, "ed", with(good, map[string]any{"scope": "x", "jti": "1"}), nil),
	} {
		t.Run("valid/"+name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			id, err := a.Authenticate(r)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if id.Permissions != DefaultPermissions || (id.Name != "ci" && id.Name != "Jörg") {
				t.Errorf("identity %+v", id)
			}
		})
	}
	for name, tok := range badTokens(t, is, now) {
		t.Run("refused/"+name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			id, err := a.Authenticate(r)
			if err == nil || !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Authenticate = %+v, %v; want ErrUnauthenticated", id, err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Errorf("the error quotes the token: %v", err)
			}
		})
	}
}

// TestJWTServer runs the refusals through the server: each gets a JSON 401
// (or 403), nothing is logged, and a valid token still works.
func TestJWTServer(t *testing.T) {
	is := newIssuer(t)
	pt, err := ParsePermissionTable([]byte("reader read\nrunner executions\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a := newJWT(t, JWTConfig{KeySet: is.set, Permissions: pt})
	e := newAuthEnv(t, func(c *Config) { c.Auth = a })

	for name, tok := range badTokens(t, is, now) {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			wantRefused(t, e.call(http.MethodPost, "/v1/decisions", bearer(tok), decision("d-"+strings.ReplaceAll(name, " ", "-"), "allow", nil)), 401)
		})
	}
	for _, sub := range []string{"reader", "runner"} {
		t.Run("forbidden "+sub, func(t *testing.T) {
			e := e.with(t)
			tok := sign(t, jwa.EdDSA, is.ed, "ed", claims(sub, now), nil)
			r := e.call(http.MethodPost, "/v1/decisions", bearer(tok), decision("d-"+sub, "allow", nil))
			wantRefused(t, r, 403)
			if !strings.Contains(string(r.body), sub) {
				t.Errorf("the message does not name the identity: %s", r.body)
			}
		})
	}
	if n := e.treeSize(); n != 0 {
		t.Fatalf("refused requests logged %d entries", n)
	}

	tok := sign(t, jwa.ES256, is.ec, "ec", claims("deployer@example.com", now), nil)
	body := decision("d-ok", "allow", nil)
	r := e.call(http.MethodPost, "/v1/decisions", bearer(tok), body)
	if r.status != http.StatusCreated {
		t.Fatalf("valid token: %s", r)
	}
	rec := parseReceipt(t, r.body)
	e.verifyReceipt(rec, "d-ok")
	e.verifyArtifact(rec, body)
	if got := submitterOf(t, r.body); got != "deployer@example.com" {
		t.Errorf("submitter %q", got)
	}
	runner := sign(t, jwa.RS256, is.rsa, "rsa", claims("runner", now), nil)
	if r := e.call(http.MethodPost, "/v1/executions", bearer(runner), claim("x-1", "d-ok", rec.Artifact)); r.status != http.StatusCreated {
		t.Fatalf("runner execution: %s", r)
	}
	if n := e.treeSize(); n != 2 {
		t.Errorf("tree size %d, want 2", n)
	}
}

// jwksServer serves a JWKS that the test can replace, counting fetches.
type jwksServer struct {
	mu      sync.Mutex
	set     jwk.Set
	status  int    // with body, what is served instead of set when not 0
	body    string //
	fetches atomic.Int64
	srv     *httptest.Server
}

func newJWKSServer(t *testing.T, set jwk.Set) *jwksServer {
	j := &jwksServer{set: set}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		b, err := json.Marshal(j.set)
		status, body := j.status, j.body
		j.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if status != 0 {
			w.WriteHeader(status)
			b = []byte(body)
		}
		w.Write(b)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) replace(set jwk.Set) {
	j.mu.Lock()
	j.set, j.status = set, 0
	j.mu.Unlock()
}

// serveRaw serves status and body instead of the set.
func (j *jwksServer) serveRaw(status int, body string) {
	j.mu.Lock()
	j.status, j.body = status, body
	j.mu.Unlock()
}

func TestJWKSURLRotation(t *testing.T) {
	_, keyA, _ := ed25519.GenerateKey(rand.Reader)
	_, keyB, _ := ed25519.GenerateKey(rand.Reader)
	_, keyC, _ := ed25519.GenerateKey(rand.Reader)
	setA := jwk.NewSet()
	addPublic(t, setA, "a", keyA)
	js := newJWKSServer(t, setA)

	var clock atomic.Int64
	start := time.Now()
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	a := newJWT(t, JWTConfig{JWKSURL: js.srv.URL + "/jwks.json", Clock: now, MinRefreshInterval: time.Minute})
	e := newAuthEnv(t, func(c *Config) { c.Auth = a })
	post := func(t *testing.T, tok, id string) response {
		return e.with(t).call(http.MethodPost, "/v1/decisions", bearer(tok), decision(id, "deny", nil))
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	if r := post(t, sign(t, jwa.EdDSA, keyA, "a", claims("ci", start), nil), "d-a"); r.status != http.StatusCreated {
		t.Fatalf("token of key a: %s", r)
	}

	// The issuer rotates to b and drops a: a token of b makes the
	// authenticator fetch once; a's tokens are refused from then on.
	setB := jwk.NewSet()
	addPublic(t, setB, "b", keyB)
	js.replace(setB)
	if r := post(t, sign(t, jwa.EdDSA, keyB, "b", claims("ci", start), nil), "d-b"); r.status != http.StatusCreated {
		t.Fatalf("token of the new key b: %s", r)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after an unknown kid, want 2", n)
	}
	wantRefused(t, post(t, sign(t, jwa.EdDSA, keyA, "a", claims("ci", start), nil), "d-a2"), 401)

	// A flood of garbage kids spends the reload budget (refreshBurst, one
	// used above) and then fetches nothing more, however many arrive.
	var wg sync.WaitGroup
	for i := range 3 * refreshBurst {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Authorization", bearer(sign(t, jwa.EdDSA, keyC, "garbage-"+string(rune('a'+i)), claims("ci", start), nil)))
			if _, err := a.Authenticate(r); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("garbage kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := js.fetches.Load(); n != 1+refreshBurst {
		t.Fatalf("%d fetches after a flood of garbage kids, want %d", n, 1+refreshBurst)
	}

	// The issuer adds c; with the budget spent its tokens wait; once the
	// budget refills one fetch lets them in.
	setBC := jwk.NewSet()
	addPublic(t, setBC, "b", keyB)
	addPublic(t, setBC, "c", keyC)
	js.replace(setBC)
	tokC := sign(t, jwa.EdDSA, keyC, "c", claims("ci", start), nil)
	wantRefused(t, post(t, tokC, "d-c"), 401)
	clock.Add(int64(time.Minute))
	if r := post(t, tokC, "d-c"); r.status != http.StatusCreated {
		t.Fatalf("token of key c after the interval: %s", r)
	}
	if n := js.fetches.Load(); n != 2+refreshBurst {
		t.Fatalf("%d fetches, want %d", n, 2+refreshBurst)
	}
	// A kid that a reload did not find causes no other reload for the
	// interval, even with budget left.
	clock.Add(int64(refreshBurst * time.Minute))
	garbage := sign(t, jwa.EdDSA, keyC, "never", claims("ci", start), nil)
	for range 3 {
		wantRefused(t, post(t, garbage, "d-g"), 401)
	}
	if n := js.fetches.Load(); n != 3+refreshBurst {
		t.Fatalf("%d fetches after one kid repeated, want %d", n, 3+refreshBurst)
	}
	if n := e.treeSize(); n != 3 {
		t.Errorf("tree size %d, want 3", n)
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	_, keyA, _ := ed25519.GenerateKey(rand.Reader)
	_, keyB, _ := ed25519.GenerateKey(rand.Reader)
	setA := jwk.NewSet()
	addPublic(t, setA, "a", keyA)
	js := newJWKSServer(t, setA)
	a := newJWT(t, JWTConfig{JWKSURL: js.srv.URL, RefreshInterval: time.Second, MinRefreshInterval: time.Hour})
	setB := jwk.NewSet()
	addPublic(t, setB, "b", keyB)
	js.replace(setB)
	// The periodic refresh drops a and adds b without any unknown kid.
	deadline := time.Now().Add(15 * time.Second)
	tokA := sign(t, jwa.EdDSA, keyA, "a", claims("ci", time.Now()), nil)
	for {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", bearer(tokA))
		if _, err := a.Authenticate(r); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the removed key is still accepted after the refresh interval")
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", bearer(sign(t, jwa.EdDSA, keyB, "b", claims("ci", time.Now()), nil)))
	if _, err := a.Authenticate(r); err != nil {
		t.Fatalf("key b after the refresh: %v", err)
	}
}

func TestJWKSFileReload(t *testing.T) {
	_, keyA, _ := ed25519.GenerateKey(rand.Reader)
	_, keyB, _ := ed25519.GenerateKey(rand.Reader)
	setA := jwk.NewSet()
	addPublic(t, setA, "a", keyA)
	setAB := jwk.NewSet()
	addPublic(t, setAB, "a", keyA)
	addPublic(t, setAB, "b", keyB)
	var reloads atomic.Int64
	a := newJWT(t, JWTConfig{KeySet: setA, ReloadKeySet: func() (jwk.Set, error) {
		reloads.Add(1)
		return setAB, nil
	}})
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", bearer(sign(t, jwa.EdDSA, keyB, "b", claims("ci", time.Now()), nil)))
	if _, err := a.Authenticate(r); err != nil {
		t.Fatalf("token of a key added to the file: %v", err)
	}
	if reloads.Load() != 1 {
		t.Errorf("%d reloads, want 1", reloads.Load())
	}
	// Known kids never reload.
	for range 3 {
		if _, err := a.Authenticate(r); err != nil {
			t.Fatal(err)
		}
	}
	if reloads.Load() != 1 {
		t.Errorf("%d reloads, want 1", reloads.Load())
	}
}

// TestJWKSFileChanged: with KeySetChanged, a changed source is reloaded
// for the next token, without rate limit, so removed keys stop at once.
func TestJWKSFileChanged(t *testing.T) {
	_, keyA, _ := ed25519.GenerateKey(rand.Reader)
	_, keyB, _ := ed25519.GenerateKey(rand.Reader)
	setA := jwk.NewSet()
	addPublic(t, setA, "a", keyA)
	setB := jwk.NewSet()
	addPublic(t, setB, "b", keyB)
	var mu sync.Mutex
	current, changed := setA, false
	var reloads atomic.Int64
	a := newJWT(t, JWTConfig{
		KeySet: setA,
		ReloadKeySet: func() (jwk.Set, error) {
			reloads.Add(1)
			mu.Lock()
			defer mu.Unlock()
			changed = false
			return current, nil
		},
		KeySetChanged: func() bool {
			mu.Lock()
			defer mu.Unlock()
			return changed
		},
		MinRefreshInterval: time.Hour,
	})
	auth := func(key ed25519.PrivateKey, kid string) error {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", bearer(sign(t, jwa.EdDSA, key, kid, claims("ci", time.Now()), nil)))
		_, err := a.Authenticate(r)
		return err
	}
	for range 3 {
		if err := auth(keyA, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if reloads.Load() != 0 {
		t.Fatalf("%d reloads of an unchanged source", reloads.Load())
	}
	mu.Lock()
	current, changed = setB, true
	mu.Unlock()
	if err := auth(keyA, "a"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a key removed from the changed source: %v", err)
	}
	if err := auth(keyB, "b"); err != nil {
		t.Fatalf("a key added to the changed source: %v", err)
	}
	if reloads.Load() != 1 {
		t.Errorf("%d reloads, want 1", reloads.Load())
	}
}

func TestNewJWTConfig(t *testing.T) {
	is := newIssuer(t)
	oct := jwk.NewSet()
	k, _ := jwk.FromRaw([]byte("a symmetric secret of 32 bytes!!"))
	k.Set(jwk.KeyIDKey, "hmac")
	oct.AddKey(k)
	private := jwk.NewSet()
	pk, _ := jwk.FromRaw(is.ed)
	pk.Set(jwk.KeyIDKey, "priv")
	private.AddKey(pk)
	noKid := jwk.NewSet()
	nk, _ := jwk.FromRaw(is.ed.Public())
	noKid.AddKey(nk)
	encUse := jwk.NewSet()
	ek, _ := jwk.FromRaw(is.ed.Public())
	ek.Set(jwk.KeyIDKey, "enc")
	ek.Set(jwk.KeyUsageKey, "enc")
	encUse.AddKey(ek)
	wrongAlg := jwk.NewSet()
	wk, _ := jwk.FromRaw(is.ed.Public())
	wk.Set(jwk.KeyIDKey, "w")
	wk.Set(jwk.AlgorithmKey, jwa.HS256)
	wrongAlg.AddKey(wk)
	p384 := jwk.NewSet()
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	addPublic(t, p384, "p384", ec384)
	dup := jwk.NewSet()
	addPublic(t, dup, "same", is.ed)
	addPublic(t, dup, "same", is.gone)

	for _, tc := range []struct {
		name string
		cfg  JWTConfig
		want string
	}{
		{"no source", JWTConfig{Issuer: "i", Audience: "a"}, "JWKS URL or a key set"},
		{"both sources", JWTConfig{KeySet: is.set, JWKSURL: "https://x", Issuer: "i", Audience: "a"}, "not both"},
		{"no issuer", JWTConfig{KeySet: is.set, Audience: "a"}, "issuer"},
		{"no audience", JWTConfig{KeySet: is.set, Issuer: "i"}, "audience"},
		{"leeway too large", JWTConfig{KeySet: is.set, Issuer: "i", Audience: "a", Leeway: 61 * time.Second}, "leeway"},
		{"negative leeway", JWTConfig{KeySet: is.set, Issuer: "i", Audience: "a", Leeway: -time.Second}, "leeway"},
		{"only a symmetric key", JWTConfig{KeySet: oct, Issuer: "i", Audience: "a"}, "no usable key"},
		{"only a private key", JWTConfig{KeySet: private, Issuer: "i", Audience: "a"}, "no usable key"},
		{"no kid", JWTConfig{KeySet: noKid, Issuer: "i", Audience: "a"}, "no usable key"},
		{"encryption key", JWTConfig{KeySet: encUse, Issuer: "i", Audience: "a"}, "no usable key"},
		{"HMAC alg on a key", JWTConfig{KeySet: wrongAlg, Issuer: "i", Audience: "a"}, "no usable key"},
		{"P-384", JWTConfig{KeySet: p384, Issuer: "i", Audience: "a"}, "no usable key"},
		{"duplicate kid", JWTConfig{KeySet: dup, Issuer: "i", Audience: "a"}, "no usable key"},
		{"http URL", JWTConfig{JWKSURL: "http://idp.example.com/jwks", Issuer: "i", Audience: "a"}, "https"},
		{"ftp URL", JWTConfig{JWKSURL: "ftp://idp.example.com/jwks", Issuer: "i", Audience: "a"}, "https"},
		{"relative URL", JWTConfig{JWKSURL: "jwks.json", Issuer: "i", Audience: "a"}, "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewJWT(context.Background(), tc.cfg)
			if err == nil {
				a.Close()
				t.Fatalf("NewJWT succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewJWT: %v; want %q", err, tc.want)
			}
		})
	}

	// A JWKS URL that cannot be reached, answers too much or redirects
	// is not an error at start, but no token is accepted.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", maxJWKS) + `"}`))
	}))
	defer big.Close()
	redirect := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/jwks", http.StatusFound))
	defer redirect.Close()
	for name, url := range map[string]string{
		"unreachable URL": "http://127.0.0.1:1/jwks",
		"JWKS too large":  big.URL,
		"redirect":        redirect.URL,
	} {
		t.Run(name, func(t *testing.T) {
			a := newJWT(t, JWTConfig{JWKSURL: url, Issuer: "i", Audience: "a"})
			if err := a.Ready(); err == nil || !strings.Contains(err.Error(), "JWKS") {
				t.Fatalf("Ready = %v", err)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	tok, err := ParseTokens([]byte("a " + TokenHash("ta") + "\nb " + TokenHash("tb") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := newAuthEnv(t, func(c *Config) {
		c.Auth, c.Clock, c.RateLimit, c.RateBurst = tok, now, 1, 2
	})
	post := func(who, id string) response {
		return e.call(http.MethodPost, "/v1/decisions", bearer("t"+who), decision(id, "deny", nil))
	}
	for i, id := range []string{"d-1", "d-2"} {
		if r := post("a", id); r.status != http.StatusCreated {
			t.Fatalf("submission %d within the burst: %s", i, r)
		}
	}
	r := post("a", "d-3")
	wantError(t, r, http.StatusTooManyRequests, codeOverloaded)
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	// Another identity has its own bucket.
	if r := post("b", "d-b1"); r.status != http.StatusCreated {
		t.Fatalf("identity b: %s", r)
	}
	if n := e.treeSize(); n != 3 {
		t.Fatalf("tree size %d, want 3: the refused submission was logged?", n)
	}
	clock.Add(int64(time.Second))
	if r := post("a", "d-3"); r.status != http.StatusCreated {
		t.Fatalf("after a second: %s", r)
	}
	// A batch counts its items: with a full bucket a batch of 5 passes and
	// leaves a debt of 3; the next submission waits 4 s.
	clock.Add(int64(10 * time.Second))
	var items []string
	for i := range 5 {
		items = append(items, string(decision("b-"+string(rune('0'+i)), "deny", nil)))
	}
	r = e.call(http.MethodPost, "/v1/decisions/batch", bearer("ta"), []byte(`{"decisions":[`+strings.Join(items, ",")+`]}`))
	if r.status != http.StatusOK {
		t.Fatalf("batch: %s", r)
	}
	r = post("a", "d-4")
	wantError(t, r, http.StatusTooManyRequests, codeOverloaded)
	if ra := r.header.Get("Retry-After"); ra != "4" {
		t.Errorf("Retry-After %q, want 4", ra)
	}
	// Executions count too.
	r = e.call(http.MethodPost, "/v1/executions", bearer("ta"), execution("x-1", "d-1"))
	wantError(t, r, http.StatusTooManyRequests, codeOverloaded)
	// Reads are not limited.
	if r := e.get("/v1/checkpoint"); r.status != http.StatusOK {
		t.Errorf("read: %s", r)
	}
	// Without authentication the anonymous submitter has one bucket.
	anon := newAuthEnv(t, func(c *Config) { c.Clock, c.RateLimit = now, 1 })
	if r := anon.post("/v1/decisions", decision("n-1", "deny", nil)); r.status != http.StatusCreated {
		t.Fatalf("anonymous: %s", r)
	}
	wantError(t, anon.post("/v1/decisions", decision("n-2", "deny", nil)), http.StatusTooManyRequests, codeOverloaded)
}

func TestRateLimiter(t *testing.T) {
	if newRateLimiter(0, 5, time.Now) != nil {
		t.Error("a zero rate made a limiter")
	}
	now := time.Unix(1000, 0)
	l := newRateLimiter(2.5, 0, func() time.Time { return now })
	if l.burst != 3 {
		t.Errorf("default burst %v, want 3", l.burst)
	}
	for i := range 3 {
		if w := l.take("x", 1); w != 0 {
			t.Fatalf("take %d: wait %v", i, w)
		}
	}
	if w := l.take("x", 1); w != 400*time.Millisecond {
		t.Errorf("wait %v, want 400ms", w)
	}
	now = now.Add(400 * time.Millisecond)
	if w := l.take("x", 1); w != 0 {
		t.Errorf("after 400ms: wait %v", w)
	}
	// Full buckets are forgotten when the map is large.
	for i := range maxBuckets + 10 {
		l.take("id-"+string(rune(i)), 1)
	}
	now = now.Add(time.Hour)
	l.take("new", 1)
	if len(l.buckets) > 2 {
		t.Errorf("%d buckets kept after the sweep", len(l.buckets))
	}
}

func TestRetiredArtifactKeys(t *testing.T) {
	_, old1, _ := ed25519.GenerateKey(rand.Reader)
	_, old2, _ := ed25519.GenerateKey(rand.Reader)
	var retired []jwk.Key
	for kid, priv := range map[string]ed25519.PrivateKey{"old-1": old1, "old-2": old2} {
		k, _ := jwk.FromRaw(priv.Public())
		k.Set(jwk.KeyIDKey, kid)
		k.Set("retired_at", "2026-01-01T00:00:00Z")
		retired = append(retired, k)
	}
	var current string
	e := newAuthEnv(t, func(c *Config) {
		current = c.ArtifactKey.KeyID()
		// The current key among the retired ones (an interrupted
		// rotation) is published once.
		cur, _ := jwk.PublicKeyOf(c.ArtifactKey)
		c.RetiredArtifactKeys = append(retired, cur)
	})
	set := e.jwks()
	if set.Len() != 3 {
		t.Fatalf("JWKS has %d keys, want 3", set.Len())
	}
	r := e.get(JWKSPath)
	if strings.Contains(string(r.body), "retired_at") || strings.Contains(string(r.body), `"d"`) {
		t.Errorf("the JWKS publishes more than public keys: %s", r.body)
	}
	for _, kid := range []string{current, "old-1", "old-2"} {
		if _, ok := set.LookupKeyID(kid); !ok {
			t.Errorf("JWKS lacks %q", kid)
		}
	}
	// An artifact signed by a retired key verifies against the JWKS.
	tok := sign(t, jwa.EdDSA, old1, "old-1", map[string]any{"x": 1}, nil)
	if _, err := jws.Verify([]byte(tok), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
		t.Errorf("a retired key's signature does not verify against the JWKS: %v", err)
	}
	body := decision("d-1", "allow", nil)
	resp := e.post("/v1/decisions", body)
	if resp.status != http.StatusCreated {
		t.Fatal(resp)
	}
	e.verifyArtifact(parseReceipt(t, resp.body), body)

	// Retired keys that are not public Ed25519 keys are refused.
	for name, bad := range map[string]jwk.Key{
		"no kid": func() jwk.Key { k, _ := jwk.FromRaw(old1.Public()); return k }(),
		"rsa": func() jwk.Key {
			rk, _ := rsa.GenerateKey(rand.Reader, 2048)
			k, _ := jwk.FromRaw(&rk.PublicKey)
			k.Set(jwk.KeyIDKey, "rsa")
			return k
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := publicJWKS(e.keys.Artifact, bad); err == nil {
				t.Error("publicJWKS accepted it")
			}
		})
	}
	if _, err := publicJWKS(e.keys.Artifact, retired[0], retired[0]); err == nil {
		t.Error("publicJWKS accepted a retired key twice")
	}
}

// FuzzBearerToken: the Authorization header parser never panics, accepts
// only b64tokens, and what it accepts round-trips.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer  x==", "Basic x", "Bearer", "Bearer a b", "Bearer \x00", "Bearer ~+/-._", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Authorization", header)
		tok, err := BearerToken(r)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v is not ErrUnauthenticated", err)
			}
			return
		}
		if !isB64Token(tok) || len(tok) > maxBearer {
			t.Fatalf("accepted %q", tok)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		if again, err := BearerToken(r); err != nil || again != tok {
			t.Fatalf("%q does not round-trip: %q %v", tok, again, err)
		}
	})
}

// FuzzAuthenticate feeds arbitrary tokens to both authenticators and to the
// server: garbage is always ErrUnauthenticated and 401 unauthenticated with
// a JSON body, never a panic; the only identity a JWT can get in as is the
// one the issuer signed.
func FuzzAuthenticate(f *testing.F) {
	is := newIssuer(f)
	now := time.Now()
	a := newJWT(f, JWTConfig{KeySet: is.set, Clock: func() time.Time { return now }})
	tokens, err := ParseTokens([]byte("ci " + TokenHash("static-token-1") + "\n"))
	if err != nil {
		f.Fatal(err)
	}
	e := newAuthEnv(f, func(c *Config) { c.Auth = a })
	valid := sign(f, jwa.EdDSA, is.ed, "ed", claims("ci", now), nil)
	f.Add(valid)
	f.Add(sign(f, jwa.ES256, is.ec, "ec", claims("ci", now), nil))
	f.Add(sign(f, jwa.HS256, []byte(is.ed.Public().(ed25519.PublicKey)), "ed", claims("admin", now), nil))
	f.Add(unsigned(`{"alg":"none","kid":"ed"}`, `{"sub":"admin"}`, nil))
	f.Add("static-token-1x")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		r := httptest.NewRequest(http.MethodPost, "/v1/decisions", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		if id, err := a.Authenticate(r); err == nil {
			if id.Name != "ci" {
				t.Fatalf("a JWT got in as %q", id.Name)
			}
		} else if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("JWT error %v is not ErrUnauthenticated", err)
		}
		if _, err := tokens.Authenticate(r); err == nil {
			if token != "static-token-1" {
				t.Fatalf("static token %q accepted", token)
			}
		} else if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("static token error %v is not ErrUnauthenticated", err)
		}
		if token == valid {
			return
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/decisions", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		if w.Code == http.StatusUnauthorized {
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != codeUnauthenticated || body.Error.Message == "" {
				t.Fatalf("401 body %q", w.Body.Bytes())
			}
			return
		}
		// Only the valid token's own re-encodings get past authentication,
		// to be refused for the empty decision.
		if w.Code != http.StatusBadRequest {
			t.Fatalf("status %d for token %q: %s", w.Code, token, w.Body.Bytes())
		}
	})
}

func TestNewAuthConfig(t *testing.T) {
	e := newAuthEnv(t, func(*Config) {})
	for name, cfg := range map[string]Config{
		"read without auth": {AuthRead: true},
		"negative rate":     {RateLimit: -1},
		"negative burst":    {RateLimit: 1, RateBurst: -1},
	} {
		cfg.Log, cfg.ArtifactKey, cfg.VerifierKey = e.srv.log, e.keys.Artifact, e.keys.VerifierKey
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
