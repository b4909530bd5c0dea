package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// These tests run the real govlogd with authentication, TLS and limits, and
// check what a network client sees.

const authOrigin = "e2e.govlog.test/log"

// startServing starts govlogd with args, which listens on a port the
// kernel chooses (its --listen has port 0), reads the address from its
// serving line and waits until its /readyz answers 200 through client, at
// scheme://127.0.0.1:PORT for a wildcard address. d.url is that base URL.
// (A port found free and given up before govlogd takes it could be taken
// by another process in between.)
func startServing(t *testing.T, data string, client *http.Client, scheme string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, data: data, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	args = append([]string{"--data", data, "--origin", authOrigin}, args...)
	d.cmd = exec.Command(filepath.Join(binDir, "govlogd"), args...)
	d.cmd.Stdout, d.cmd.Stderr = d.stderr, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("govlogd output:\n%s", d.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-d.exited:
			t.Fatalf("govlogd exited before it was ready:\n%s", d.stderr.String())
		default:
		}
		if d.addr == "" {
			if m := servingAddr.FindStringSubmatch(d.stderr.String()); m != nil {
				host, port, err := net.SplitHostPort(m[1])
				if err != nil {
					t.Fatalf("govlogd serves on %q: %v", m[1], err)
				}
				if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
					host = "127.0.0.1"
				}
				d.addr = net.JoinHostPort(host, port)
				d.url = scheme + "://" + d.addr
			}
		}
		if d.addr != "" {
			if resp, err := client.Get(d.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("govlogd not ready after 60s:\n%s", d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refuses runs govlogd with args and checks that it exits non-zero, with
// want in its output, without ever serving.
func refuses(t *testing.T, want string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "govlogd"), args...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("govlogd %q: %v, want a non-zero exit\n%s", args, err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("govlogd %q output does not say %q:\n%s", args, want, out)
	}
	if strings.Contains(string(out), "govlogd serving") {
		t.Errorf("govlogd served before refusing:\n%s", out)
	}
	return string(out)
}

// request sends method url with an optional bearer token and JSON body.
func request(t *testing.T, client *http.Client, method, url, token string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// wantStatus checks an answer's status and, for an error, its JSON code.
func wantStatus(t *testing.T, status int, body []byte, hdr http.Header, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d: %s", status, wantStatus, body)
	}
	if wantCode != "" {
		if code := errorCode(t, body); code != wantCode {
			t.Fatalf("error code %q, want %q: %s", code, wantCode, body)
		}
	}
	if (status == 401) != strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") && status != 403 {
		t.Errorf("status %d with WWW-Authenticate %q", status, hdr.Get("WWW-Authenticate"))
	}
}

// treeSize reads the size of the latest checkpoint.
func treeSize(t *testing.T, client *http.Client, base, token string) string {
	t.Helper()
	status, body, _ := request(t, client, http.MethodGet, base+"/v1/checkpoint", token, nil)
	if status != 200 {
		t.Fatalf("GET /v1/checkpoint: %d %s", status, body)
	}
	return strings.Split(string(body), "\n")[1]
}

func submitterOfReceipt(t *testing.T, body []byte) string {
	t.Helper()
	var r receipt
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	var e entry
	if err := json.Unmarshal(r.Entry, &e); err != nil {
		t.Fatal(err)
	}
	return e.Submitter
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// writeFile writes a file with mode.
func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNonLoopbackNeedsAuth: without authentication govlogd refuses every
// address that is not loopback, before creating or listening on anything;
// with it, 0.0.0.0 is served and writers must authenticate.
func TestNonLoopbackNeedsAuth(t *testing.T) {
	// Port 0: refuses checks that govlogd exits without a serving line.
	// (A port found free and given up, then checked for a listener after
	// the refusal, could be taken by another process in between.)
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		t.Run(listen, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			refuses(t, "loopback", "--listen", listen, "--data", data)
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created: %v", err)
			}
		})
	}

	dir := t.TempDir()
	tokens := writeFile(t, filepath.Join(dir, "tokens"), []byte(
		"# e2e tokens\nci "+tokenHash("ci-secret-token")+"\nauditor "+tokenHash("auditor-secret-token")+" read\n"), 0o644)
	d := startServing(t, filepath.Join(dir, "data"), httpClient, "http", "--listen", "0.0.0.0:0", "--auth-tokens", tokens)
	base := d.url
	if !strings.Contains(d.stderr.String(), "static bearer tokens") {
		t.Errorf("govlogd does not say how it authenticates:\n%s", d.stderr.String())
	}
	if strings.Contains(d.stderr.String(), "ci-secret-token") || strings.Contains(d.stderr.String(), tokenHash("ci-secret-token")) {
		t.Errorf("govlogd logged a token or its hash")
	}
	for _, tc := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", 401, "unauthenticated"},
		{"wrong token", "not-the-token", 401, "unauthenticated"},
		{"hash as token", tokenHash("ci-secret-token"), 401, "unauthenticated"},
		{"read-only token", "auditor-secret-token", 403, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := request(t, httpClient, http.MethodPost, base+"/v1/decisions", tc.token, decision("refused-1", "allow", "", 0))
			wantStatus(t, status, body, hdr, tc.status, tc.code)
		})
	}
	if n := treeSize(t, httpClient, base, ""); n != "1" { // the artifact key's entry
		t.Fatalf("refused requests were logged: tree size %s", n)
	}
	status, body, _ := request(t, httpClient, http.MethodPost, base+"/v1/decisions", "ci-secret-token", decision("ok-1", "allow", "", 0))
	if status != http.StatusCreated {
		t.Fatalf("POST with the ci token: %d %s", status, body)
	}
	if s := submitterOfReceipt(t, body); s != "ci" {
		t.Errorf("submitter %q, want ci", s)
	}
	if n := treeSize(t, httpClient, base, ""); n != "2" {
		t.Errorf("tree size %s, want 2 (the key and ok-1)", n)
	}
	// The loopback refusal of --pprof stays, even with authentication.
	refuses(t, "loopback", "--listen", "0.0.0.0:0", "--data", filepath.Join(dir, "data2"), "--auth-tokens", tokens, "--pprof", "0.0.0.0:0")
}

// TestKeyFileModes: govlogd refuses private key files that the group or
// others can read, and a token file that they can write.
func TestKeyFileModes(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if code, out := govlog(t, dir, nil, "keygen", "--name", authOrigin, "--out", data); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	for _, name := range []string{"artifact.jwk", "log.key"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(data, name)
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
			out := refuses(t, path, "--listen", "127.0.0.1:0", "--data", data)
			if !strings.Contains(out, "0644") {
				t.Errorf("the refusal does not give the mode:\n%s", out)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		})
	}
	tokens := writeFile(t, filepath.Join(dir, "tokens"), []byte("ci "+tokenHash("x")+"\n"), 0o666)
	refuses(t, "0666", "--listen", "127.0.0.1:0", "--data", data, "--auth-tokens", tokens)
	refuses(t, "--tls-key", "--listen", "127.0.0.1:0", "--data", data, "--tls-cert", tokens)
}

// selfSignedCert writes a certificate for 127.0.0.1 and localhost and its
// key (mode keyMode) and returns their files and a pool trusting it.
func selfSignedCert(t *testing.T, dir string, keyMode os.FileMode) (string, string, *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "govlog e2e"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writeFile(t, filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	keyFile := writeFile(t, filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), keyMode)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS serves HTTPS with a certificate made here.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir, 0o644)
	refuses(t, keyFile, "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "refused"), "--tls-cert", certFile, "--tls-key", keyFile)
	if _, err := os.Stat(filepath.Join(dir, "refused")); !os.IsNotExist(err) {
		t.Errorf("the data directory was created before the TLS key was refused: %v", err)
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := writeFile(t, filepath.Join(dir, "tokens"), []byte("ci "+tokenHash("tls-token")+"\n"), 0o600)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	d := startServing(t, filepath.Join(dir, "data"), client, "https",
		"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--auth-tokens", tokens)
	addr, base := d.addr, d.url
	body := decision("tls-1", "allow", "", 0)
	status, resp, _ := request(t, client, http.MethodPost, base+"/v1/decisions", "tls-token", body)
	if status != http.StatusCreated {
		t.Fatalf("POST over TLS: %d %s", status, resp)
	}
	r, cp, e := checkReceipt(t, resp, d.logKey(t), body)
	if e.Submitter != "ci" {
		t.Errorf("submitter %q", e.Submitter)
	}
	status, jwksBody, _ := request(t, client, http.MethodGet, base+"/.well-known/jwks.json", "", nil)
	if status != 200 {
		t.Fatalf("GET JWKS over TLS: %d", status)
	}
	set, err := jwk.Parse(jwksBody)
	if err != nil {
		t.Fatal(err)
	}
	checkArtifact(t, set, authOrigin, r, cp, e)
	// Plain HTTP on the TLS port is not served.
	if status, _, _, err := call(context.Background(), http.MethodGet, "http://"+addr+"/readyz", "", nil); err == nil && status == 200 {
		t.Error("plain HTTP answered 200 on the TLS port")
	}
	// A client that does not trust the certificate does not connect.
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/readyz"); err == nil {
		t.Error("an untrusting client connected")
	}
}

// jwtIssuer signs bearer JWTs with an Ed25519 key published in a JWKS file.
type jwtIssuer struct {
	key  ed25519.PrivateKey
	kid  string
	file string
}

func (is *jwtIssuer) sign(t *testing.T, alg jwa.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, is.kid)
	hdr.Set(jws.TypeKey, "JWT")
	tok, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func writeJWKS(t *testing.T, path string, keys map[string]ed25519.PrivateKey) {
	t.Helper()
	set := jwk.NewSet()
	for kid, priv := range keys {
		k, err := jwk.FromRaw(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		k.Set(jwk.KeyIDKey, kid)
		set.AddKey(k)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	// Replace atomically: the server may be reading it.
	tmp := path + ".tmp"
	writeFile(t, tmp, b, 0o644)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestJWTAuth runs JWT authentication against a JWKS file on the real
// binary: every bad token is a JSON 401 (or 403) and logs nothing; a key
// added to the file is picked up for its kid without a restart.
func TestJWTAuth(t *testing.T) {
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, removed, _ := ed25519.GenerateKey(rand.Reader)
	is := &jwtIssuer{key: key, kid: "k1", file: filepath.Join(dir, "jwks.json")}
	writeJWKS(t, is.file, map[string]ed25519.PrivateKey{"k1": key})
	perms := writeFile(t, filepath.Join(dir, "perms"), []byte("reader read\n"), 0o644)
	const iss, aud = "https://idp.e2e.test", "govlog-e2e"
	base := startServing(t, filepath.Join(dir, "data"), httpClient, "http", "--listen", "127.0.0.1:0",
		"--auth-jwks", is.file, "--auth-issuer", iss, "--auth-audience", aud, "--auth-permissions", perms).url

	now := time.Now()
	claims := func(edit map[string]any) map[string]any {
		c := map[string]any{"iss": iss, "aud": aud, "sub": "deployer", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		for k, v := range edit {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	good := is.sign(t, jwa.EdDSA, key, claims(nil))
	parts := strings.Split(good, ".")
	evil, _ := json.Marshal(claims(map[string]any{"sub": "admin"}))
	enc := base64.RawURLEncoding
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"alg none", enc.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + ".", 401},
		{"HS256 with the public key", is.sign(t, jwa.HS256, []byte(key.Public().(ed25519.PublicKey)), claims(nil)), 401},
		{"expired", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"exp": now.Add(-10 * time.Minute).Unix()})), 401},
		{"not yet valid", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()})), 401},
		{"wrong aud", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"aud": "someone-else"})), 401},
		{"wrong iss", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"iss": "https://evil.test"})), 401},
		{"no exp", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"exp": nil})), 401},
		{"no sub", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"sub": nil})), 401},
		{"unknown kid", (&jwtIssuer{kid: "k9"}).sign(t, jwa.EdDSA, key, claims(nil)), 401},
		{"removed key", is.sign(t, jwa.EdDSA, removed, claims(nil)), 401},
		{"tampered payload", parts[0] + "." + enc.EncodeToString(evil) + "." + parts[2], 401},
		{"no permission", is.sign(t, jwa.EdDSA, key, claims(map[string]any{"sub": "reader"})), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body, hdr := request(t, httpClient, http.MethodPost, base+"/v1/decisions", tc.token, decision("jwt-refused", "allow", "", 0))
			code := "unauthenticated"
			if tc.status == 403 {
				code = "forbidden"
			}
			wantStatus(t, status, body, hdr, tc.status, code)
		})
	}
	if n := treeSize(t, httpClient, base, ""); n != "1" { // the artifact key's entry
		t.Fatalf("refused requests were logged: tree size %s", n)
	}
	status, body, _ := request(t, httpClient, http.MethodPost, base+"/v1/decisions", good, decision("jwt-ok", "allow", "", 0))
	if status != http.StatusCreated || submitterOfReceipt(t, body) != "deployer" {
		t.Fatalf("valid token: %d %s", status, body)
	}

	// The issuer rotates: k2 is added to the file; its first token makes
	// govlogd reload the file.
	_, key2, _ := ed25519.GenerateKey(rand.Reader)
	writeJWKS(t, is.file, map[string]ed25519.PrivateKey{"k1": key, "k2": key2})
	tok2 := (&jwtIssuer{kid: "k2"}).sign(t, jwa.EdDSA, key2, claims(map[string]any{"sub": "deployer-2"}))
	status, body, _ = request(t, httpClient, http.MethodPost, base+"/v1/decisions", tok2, decision("jwt-k2", "deny", "", 0))
	if status != http.StatusCreated || submitterOfReceipt(t, body) != "deployer-2" {
		t.Fatalf("token of the rotated-in key: %d %s", status, body)
	}
	// The issuer drops k1 from the file: its tokens are refused at once.
	writeJWKS(t, is.file, map[string]ed25519.PrivateKey{"k2": key2})
	status, body, hdr := request(t, httpClient, http.MethodPost, base+"/v1/decisions", good, decision("jwt-k1-gone", "allow", "", 0))
	wantStatus(t, status, body, hdr, 401, "unauthenticated")
	if status, body, _ := request(t, httpClient, http.MethodPost, base+"/v1/decisions", tok2, decision("jwt-k2-again", "deny", "", 0)); status != http.StatusCreated {
		t.Fatalf("token of k2 after k1 was dropped: %d %s", status, body)
	}
	if n := treeSize(t, httpClient, base, ""); n != "4" {
		t.Errorf("tree size %s, want 4 (with the key's entry)", n)
	}
}

// TestRateLimitBinary: a submitter over its rate gets 429 with Retry-After.
func TestRateLimitBinary(t *testing.T) {
	base := startServing(t, filepath.Join(t.TempDir(), "data"), httpClient, "http",
		"--listen", "127.0.0.1:0", "--rate-limit", "0.2", "--rate-burst", "2").url
	for i, id := range []string{"rl-1", "rl-2"} {
		if status, body, _ := request(t, httpClient, http.MethodPost, base+"/v1/decisions", "", decision(id, "deny", "", 0)); status != 201 {
			t.Fatalf("submission %d: %d %s", i, status, body)
		}
	}
	status, body, hdr := request(t, httpClient, http.MethodPost, base+"/v1/decisions", "", decision("rl-3", "deny", "", 0))
	wantStatus(t, status, body, hdr, 429, "overloaded")
	if ra := hdr.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	if n := treeSize(t, httpClient, base, ""); n != "3" {
		t.Errorf("tree size %s, want 3 (with the key's entry)", n)
	}
}

// TestArtifactKeyRotation rotates the artifact key with govlog keygen
// between two runs: the JWKS then publishes both keys, so an artifact of
// the old key still verifies while new ones are signed with the new key.
func TestArtifactKeyRotation(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data, "")
	body := decision("rot-1", "allow", "", 0)
	status, resp, err := postJSON(context.Background(), d.url+"/v1/decisions", body)
	if err != nil || status != 201 {
		t.Fatalf("POST: %d %s %v", status, resp, err)
	}
	oldRec, oldCP, oldEntry := checkReceipt(t, resp, d.logKey(t), body)
	d.term(t, 20*time.Second)

	code, out := govlog(t, dir, nil, "keygen", "--rotate-artifact", "--out", data)
	if code != 0 || !strings.Contains(out, "retired artifact key") {
		t.Fatalf("keygen --rotate-artifact: %d %s", code, out)
	}
	d2 := startDaemon(t, data, "")
	set := fetchJWKS(t, d2.url)
	if set.Len() != 2 {
		t.Fatalf("JWKS has %d keys after a rotation, want 2", set.Len())
	}
	checkArtifact(t, set, authOrigin, oldRec, oldCP, oldEntry)
	body2 := decision("rot-2", "allow", "", 0)
	status, resp, err = postJSON(context.Background(), d2.url+"/v1/decisions", body2)
	if err != nil || status != 201 {
		t.Fatalf("POST after rotation: %d %s %v", status, resp, err)
	}
	newRec, newCP, newEntry := checkReceipt(t, resp, d2.logKey(t), body2)
	checkArtifact(t, set, authOrigin, newRec, newCP, newEntry)
	kid := func(tok string) string {
		msg, err := jws.Parse([]byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		return msg.Signatures()[0].ProtectedHeaders().KeyID()
	}
	if kid(oldRec.Artifact) == kid(newRec.Artifact) {
		t.Error("the artifact key did not change")
	}
	// A resubmission of the old decision gets the same claims (it cannot
	// extend the authorization), now signed by the new key: the retired
	// private key is gone. Only govlog.key_index differs: it names the new
	// key's entry, logged when govlogd started with it.
	status, resp, _ = postJSON(context.Background(), d2.url+"/v1/decisions", body)
	if status != 200 {
		t.Fatalf("resubmission after rotation: %d %s", status, resp)
	}
	againRec, againCP, againEntry := checkReceipt(t, resp, d2.logKey(t), body)
	checkArtifact(t, set, authOrigin, againRec, againCP, againEntry)
	claimsOf := func(tok string) (map[string]any, float64) {
		p, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		var c map[string]any
		json.Unmarshal(p, &c)
		g, _ := c["govlog"].(map[string]any)
		ki, _ := g["key_index"].(float64)
		delete(g, "key_index")
		return c, ki
	}
	oldClaims, oldKey := claimsOf(oldRec.Artifact)
	againClaims, againKey := claimsOf(againRec.Artifact)
	_, newKey := claimsOf(newRec.Artifact)
	if !reflect.DeepEqual(oldClaims, againClaims) || kid(againRec.Artifact) != kid(newRec.Artifact) || againKey != newKey || againKey == oldKey {
		t.Errorf("resubmission after rotation: claims changed or not signed by the new key: key_index %v, %v, %v", oldKey, againKey, newKey)
	}
	d2.term(t, 20*time.Second)

	// Pruning with an age not yet reached keeps the key.
	code, out = govlog(t, dir, nil, "keygen", "--prune-retired", "1h", "--out", data)
	if code != 0 || !strings.Contains(out, "no artifact key") {
		t.Fatalf("keygen --prune-retired: %d %s", code, out)
	}
}
