package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/govlog/govlog/server"
)

func TestSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("ci "+server.TokenHash("t")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"jwks without issuer", []string{"--auth-jwks", "x.json", "--auth-audience", "a"}, "--auth-issuer"},
		{"issuer without jwks", []string{"--auth-issuer", "i", "--auth-audience", "a"}, "--auth-jwks"},
		{"jwt and tokens", []string{"--auth-tokens", tokens, "--auth-jwks", "x.json", "--auth-issuer", "i", "--auth-audience", "a"}, "cannot be combined"},
		{"permissions without jwks", []string{"--auth-tokens", tokens, "--auth-permissions", tokens}, "--auth-permissions"},
		{"read without auth", []string{"--auth-read"}, "--auth-read"},
		{"leeway too large", []string{"--auth-tokens", tokens, "--auth-leeway", "2m"}, "--auth-leeway"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, "go together"},
		{"key without cert", []string{"--tls-key", "k.pem"}, "go together"},
		{"negative rate", []string{"--rate-limit", "-1"}, "negative"},
		{"non-loopback without auth", []string{"--listen", "0.0.0.0:0"}, "--auth-tokens"},
		{"bad listen with auth", []string{"--listen", "nowhere", "--auth-tokens", tokens}, "invalid --listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stderr bytes.Buffer
			args := append([]string{"--listen", "127.0.0.1:0", "--data", data}, tc.args...)
			err := cli(context.Background(), args, io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
				t.Fatalf("cli(%q) = %v, output %q; want %q", tc.args, err, stderr.String(), tc.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data directory was created: %v", err)
			}
		})
	}
}

func TestValidateListenWithAuth(t *testing.T) {
	for _, tc := range []struct {
		listen string
		auth   bool
		ok     bool
	}{
		{"127.0.0.1:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"0.0.0.0:8080", true, true},
		{":8080", true, true},
		{"[::]:8080", true, true},
		{"192.0.2.1:8080", true, true},
	} {
		cfg := Config{Listen: tc.listen, DataDir: "d", Origin: "example.com/log"}
		if tc.auth {
			cfg.AuthTokensFile = "tokens"
		}
		if err := cfg.validate(); (err == nil) != tc.ok {
			t.Errorf("validate(listen %q, auth %v) = %v", tc.listen, tc.auth, err)
		}
	}
}

func TestBuildAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := jwk.FromRaw(priv.Public())
	pub.Set(jwk.KeyIDKey, "k1")
	set := jwk.NewSet()
	set.AddKey(pub)
	jwksJSON, _ := json.Marshal(set)
	jwks := write("jwks.json", string(jwksJSON), 0o644)

	for _, tc := range []struct {
		name string
		cfg  SecurityConfig
		want string
	}{
		{"tokens group-writable", SecurityConfig{AuthTokensFile: write("t1", "ci "+server.TokenHash("x")+"\n", 0o664)}, "0664"},
		{"tokens missing", SecurityConfig{AuthTokensFile: filepath.Join(dir, "none")}, "--auth-tokens"},
		{"tokens garbage", SecurityConfig{AuthTokensFile: write("t2", "ci XYZZY-secret\n", 0o600)}, "line 1"},
		{"jwks plain http", SecurityConfig{AuthJWKS: "http://idp.example.com/jwks", AuthIssuer: "i", AuthAudience: "a"}, "https"},
		{"permissions garbage", SecurityConfig{AuthJWKS: jwks, AuthIssuer: "i", AuthAudience: "a", AuthPermissionsFile: write("p1", "ci bogus\n", 0o644)}, "unknown permission"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, release, err := tc.cfg.buildAuth(context.Background(), nil)
			defer release()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("buildAuth = %v, %v; want %q", a, err, tc.want)
			}
			if strings.Contains(err.Error(), "XYZZY") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
	// A JWKS without a usable key starts refusing every token, saying why
	// in the log, and in /readyz without naming the file.
	for _, tc := range []struct {
		name string
		cfg  SecurityConfig
		want string
	}{
		{"jwks not a JWKS", SecurityConfig{AuthJWKS: write("j1", "XYZZY-secret", 0o644), AuthIssuer: "i", AuthAudience: "a"}, "not a JWKS"},
		{"jwks world-writable", SecurityConfig{AuthJWKS: write("j2", string(jwksJSON), 0o666), AuthIssuer: "i", AuthAudience: "a"}, "0666"},
		{"jwks missing", SecurityConfig{AuthJWKS: filepath.Join(dir, "none.json"), AuthIssuer: "i", AuthAudience: "a"}, "no such file"},
		{"jwks empty", SecurityConfig{AuthJWKS: write("j3", `{"keys":[]}`, 0o644), AuthIssuer: "i", AuthAudience: "a"}, "no usable key"},
		{"jwks unreachable", SecurityConfig{AuthJWKS: "http://127.0.0.1:1/jwks", AuthIssuer: "i", AuthAudience: "a"}, "did not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			a, release, err := tc.cfg.buildAuth(context.Background(), slog.New(slog.NewTextHandler(&out, nil)))
			defer release()
			if err != nil {
				t.Fatalf("buildAuth: %v", err)
			}
			ready := a.(server.Readier).Ready()
			if ready == nil || !strings.Contains(ready.Error(), "JWKS") || strings.Contains(ready.Error(), dir) {
				t.Errorf("Ready = %v", ready)
			}
			if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "XYZZY") {
				t.Errorf("the log does not say %q (or quotes the file):\n%s", tc.want, out.String())
			}
		})
	}
	for name, cfg := range map[string]SecurityConfig{
		"tokens": {AuthTokensFile: write("t3", "ci "+server.TokenHash("x")+" *\n", 0o644)},
		"jwt":    {AuthJWKS: jwks, AuthIssuer: "i", AuthAudience: "a", AuthPermissionsFile: write("p2", "ci read\n", 0o600)},
		"none":   {},
	} {
		t.Run(name, func(t *testing.T) {
			a, release, err := cfg.buildAuth(context.Background(), nil)
			defer release()
			if err != nil || (a == nil) != (name == "none") {
				t.Fatalf("buildAuth = %v, %v", a, err)
			}
		})
	}
}

func TestJWKSFileChanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	write := func(kids ...string) {
		set := jwk.NewSet()
		for _, kid := range kids {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			k, _ := jwk.FromRaw(priv.Public())
			k.Set(jwk.KeyIDKey, kid)
			set.AddKey(k)
		}
		b, _ := json.Marshal(set)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	f := &jwksFile{path: path}
	set, err := f.load()
	if err != nil || set.Len() != 1 {
		t.Fatalf("load: %v", err)
	}
	if f.changed() {
		t.Error("changed right after load")
	}
	write("a", "b")
	if !f.changed() {
		t.Fatal("a replaced file is not changed")
	}
	if set, err = f.load(); err != nil || set.Len() != 2 || f.changed() {
		t.Fatalf("reload: %v", err)
	}
	// A broken file is read once, then not again until it changes.
	if err := os.WriteFile(path, []byte("XYZZY"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !f.changed() {
		t.Fatal("a rewritten file is not changed")
	}
	if _, err := f.load(); err == nil || strings.Contains(err.Error(), "XYZZY") {
		t.Fatalf("load of a broken file: %v", err)
	}
	if f.changed() {
		t.Error("a broken file reads as changed after it was read")
	}
	// Its mode, and whether it exists, are changes too.
	write("a")
	if _, err := f.load(); err != nil || f.changed() {
		t.Fatalf("reload: %v", err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if !f.changed() {
		t.Fatal("a file made writable by others is not changed")
	}
	if _, err := f.load(); err == nil || !strings.Contains(err.Error(), "0666") || f.changed() {
		t.Fatalf("load of a file writable by others: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !f.changed() {
		t.Fatal("a removed file is not changed")
	}
	if _, err := f.load(); err == nil || f.changed() {
		t.Fatalf("load of a removed file: %v", err)
	}
	write("a")
	if !f.changed() {
		t.Fatal("a file written again is not changed")
	}
}

// TestJWKSFileRevocation runs govlogd with a JWKS file: emptying the file
// revokes every key at once (every token 401, /readyz 503 saying why) —
// the keys loaded before were kept — and a restart with the emptied file
// starts in the same state (it refused to start) until a key is back.
func TestJWKSFileRevocation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := jwk.FromRaw(priv.Public())
	pub.Set(jwk.KeyIDKey, "k1")
	good := jwk.NewSet()
	good.AddKey(pub)
	writeSet := func(set any) {
		b, _ := json.Marshal(set)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	writeSet(good)
	hdr := jws.NewHeaders()
	hdr.Set(jws.KeyIDKey, "k1")
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"iss": "https://idp.example", "aud": "govlog", "sub": "ci",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	tok, err := jws.Sign(claims, jws.WithKey(jwa.EdDSA, priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(dir, "data"))
	cfg.AuthJWKS, cfg.AuthIssuer, cfg.AuthAudience = path, "https://idp.example", "govlog"
	n := 0
	submit := func(t *testing.T, url string) int {
		n++
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/decisions", strings.NewReader(fmt.Sprintf(
			`{"id":"d-%d","outcome":"deny","decided_at":"%s","subject":"agent-7","action":"deploy","policy":{"id":"p"}}`,
			n, time.Now().UTC().Format(time.RFC3339))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+string(tok))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ready := func(t *testing.T, url string) (int, string) {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wantRevoked := func(t *testing.T, url string) {
		t.Helper()
		if status := submit(t, url); status != http.StatusUnauthorized {
			t.Errorf("a token of a revoked key: %d", status)
		}
		if status, body := ready(t, url); status != http.StatusServiceUnavailable || !strings.Contains(body, "JWKS") {
			t.Errorf("/readyz without a usable key: %d %s", status, body)
		}
	}

	s := start(t, cfg)
	if status := submit(t, s.url); status != http.StatusCreated {
		t.Fatalf("a token of the JWKS: %d", status)
	}
	for name, spoil := range map[string]func(){
		"empty set": func() { writeSet(map[string]any{"keys": []any{}}) },
		"garbage":   func() { os.WriteFile(path, []byte("XYZZY"), 0o644) },
		"mode 0666": func() { os.Chmod(path, 0o666) },
		"removed":   func() { os.Remove(path) },
	} {
		t.Run(name, func(t *testing.T) {
			writeSet(good)
			if status := submit(t, s.url); status != http.StatusCreated {
				t.Fatalf("a token of the JWKS: %d", status)
			}
			spoil()
			wantRevoked(t, s.url)
		})
	}
	writeSet(map[string]any{"keys": []any{}})
	wantRevoked(t, s.url)
	s.stop(t)

	s = start(t, cfg)
	wantRevoked(t, s.url)
	writeSet(good)
	if status := submit(t, s.url); status != http.StatusCreated {
		t.Fatalf("a token once the key is back: %d", status)
	}
	if status, body := ready(t, s.url); status != http.StatusOK {
		t.Fatalf("/readyz once the key is back: %d %s", status, body)
	}
}
