package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/client"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
)

// goldenArtifacts are the allow entries of the golden log, whose artifact
// claims and receipts are in testdata.
var goldenArtifacts = []string{"allow", "allow-escapes", "allow-full", "allow-limits"}

// fuzzAudience is the audience of the golden artifacts.
const fuzzAudience = "runtime.example.com"

// artifactSigner is an Ed25519 artifact key with its kid.
type artifactSigner struct {
	kid  string
	priv ed25519.PrivateKey
}

func newArtifactSigner(kid string, seed byte) artifactSigner {
	return artifactSigner{kid, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))}
}

// sign signs a payload the way govlogd does (jws.Sign with typ and kid).
func (s artifactSigner) sign(t testing.TB, payload []byte) string {
	t.Helper()
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, log.ArtifactType); err != nil {
		t.Fatal(err)
	}
	if err := hdr.Set(jws.KeyIDKey, s.kid); err != nil {
		t.Fatal(err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA, s.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// signRaw signs a compact JWS of any protected header.
func (s artifactSigner) signRaw(header string, payload []byte) string {
	input := b64url([]byte(header)) + "." + b64url(payload)
	return input + "." + b64url(ed25519.Sign(s.priv, []byte(input)))
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// FuzzVerifyArtifact feeds arbitrary tokens to Client.VerifyArtifact, as a
// runtime calls it: pinned artifact keys (two Ed25519 keys), the golden
// log's key and audience, and what the runtime is about to do taken from
// one golden artifact (which, modulo 4), with or without its subject
// (which&4) and its receipt (which&8), at a time it is valid. It never
// panics, and:
//
//   - a token that verifies is one of the tokens signed here by a key of
//     the set (artifacts of the golden claims, and variants of their claims
//     and headers), and the claims returned are exactly its payload's: no
//     forged, re-encoded or spliced token is accepted;
//   - a golden artifact verifies for what it authorizes;
//   - a refusal wraps ErrBadArtifact, ErrBadSignature, ErrBinding or
//     ErrNotAuthorized.
//
// The seeds are the golden artifacts, signed by both keys of the set and by
// a key of the same kid that is not in it, variants of their headers and
// claims (added here), and mangled tokens
// (testdata/fuzz/FuzzVerifyArtifact).
func FuzzVerifyArtifact(f *testing.F) {
	testdata := filepath.Join("..", "testdata")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	logKey, err := note.NewVerifier(strings.TrimSpace(string(read("keys/log.vkey"))))
	if err != nil {
		f.Fatal(err)
	}
	a, b := newArtifactSigner("artifact-1", 0xa1), newArtifactSigner("artifact-2", 0xb2)
	impostor := newArtifactSigner("artifact-1", 0xc3) // a's kid, not in the set
	set := jwk.NewSet()
	for _, s := range []artifactSigner{a, b} {
		k, err := jwk.FromRaw(s.priv.Public())
		if err != nil {
			f.Fatal(err)
		}
		for key, v := range map[string]any{jwk.KeyIDKey: s.kid, jwk.AlgorithmKey: jwa.EdDSA, jwk.KeyUsageKey: "sig"} {
			if err := k.Set(key, v); err != nil {
				f.Fatal(err)
			}
		}
		if err := set.AddKey(k); err != nil {
			f.Fatal(err)
		}
	}
	c, err := client.New("http://127.0.0.1:1", client.WithLogKey(logKey), client.WithJWKS(set), client.WithAudience(fuzzAudience))
	if err != nil {
		f.Fatal(err)
	}

	type golden struct {
		claims  log.ArtifactClaims
		receipt []byte
	}
	var goldens []golden
	// signed maps every token signed here by a key of the set to its
	// claims (nil when its payload is not a claims object).
	signed := map[string]*log.ArtifactClaims{}
	// real maps the golden artifacts to their index in goldens.
	real := map[string]int{}
	add := func(tok string) {
		f.Add(tok, uint8(0))
		f.Add(tok, uint8(12))
	}
	for i, name := range goldenArtifacts {
		payload := read("artifacts/" + name + ".claims.json")
		var g golden
		if err := json.Unmarshal(payload, &g.claims); err != nil {
			f.Fatal(err)
		}
		g.receipt = read("receipts/" + name + ".tlog-proof")
		goldens = append(goldens, g)
		for _, s := range []artifactSigner{a, b} {
			tok := s.sign(f, payload)
			signed[tok], real[tok] = &goldens[i].claims, i
			f.Add(tok, uint8(i))
			f.Add(tok, uint8(i|4|8))
		}
		add(impostor.sign(f, payload))
		tok := a.sign(f, payload)
		add(tok + "A")
		add(strings.Replace(tok, ".", "..", 1))
		add(base64.StdEncoding.EncodeToString([]byte(`{"alg":"none","kid":"artifact-1","typ":"govlog-authz+jwt"}`)) + "." + b64url(payload) + ".")
		// HMAC with the public key as the secret (algorithm confusion).
		input := b64url([]byte(`{"alg":"HS256","kid":"artifact-1","typ":"govlog-authz+jwt"}`)) + "." + b64url(payload)
		mac := hmac.New(sha256.New, a.priv.Public().(ed25519.PublicKey))
		mac.Write([]byte(input))
		add(input + "." + b64url(mac.Sum(nil)))
		// Signed by a key of the set, but not valid artifacts.
		variants := []string{
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"JWT"}`, payload),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-2","typ":"govlog-authz+jwt"}`, payload),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt","alg":"EdDSA"}`, payload),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt","b64":false,"crit":["b64"]}`, payload),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt"}`, bytes.Replace(payload, []byte(`"aud":"runtime.example.com",`), nil, 1)),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt"}`, bytes.Replace(payload, []byte(`"iss":"example.com/govlog"`), []byte(`"iss":"example.com/other"`), 1)),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt"}`, bytes.Replace(payload, []byte(`{`), []byte(`{"aud":"x",`), 1)),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt"}`, bytes.Replace(payload, []byte(`{`), []byte(`{"admin":true,`), 1)),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt"}`, append(bytes.Clone(payload), ' ')),
			a.signRaw(`{"alg":"EdDSA","kid":"artifact-1","typ":"govlog-authz+jwt"}`, []byte(`[]`)),
		}
		for _, tok := range variants {
			var claims *log.ArtifactClaims
			parts := strings.Split(tok, ".")
			p, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if json.Unmarshal(p, &claims) != nil {
				claims = nil
			}
			signed[tok] = claims
			add(tok)
		}
	}
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, token string, which uint8) {
		i := int(which % uint8(len(goldens)))
		g := goldens[i]
		want := client.Authorization{Action: g.claims.Action, Resource: g.claims.Resource,
			Now: time.Unix(g.claims.IssuedAt, 0)}
		if which&4 != 0 {
			want.Subject = g.claims.Subject
		}
		if which&8 != 0 {
			want.Receipt = g.receipt
		}
		claims, err := c.VerifyArtifact(ctx, token, want)
		if k, ok := real[token]; ok && k == i && err != nil {
			t.Fatalf("golden artifact %s is refused for what it authorizes: %v", goldenArtifacts[k], err)
		}
		if err != nil {
			if !errors.Is(err, artifact.ErrInvalid) && !errors.Is(err, verifier.ErrBadSignature) &&
				!errors.Is(err, artifact.ErrBinding) && !errors.Is(err, client.ErrNotAuthorized) {
				t.Fatalf("error %q wraps no sentinel", err)
			}
			return
		}
		orig, ok := signed[token]
		if !ok {
			t.Fatalf("a token not signed by a key of the set verifies: %q", token)
		}
		if orig == nil || !reflect.DeepEqual(*claims, *orig) {
			t.Fatalf("token %q verifies with claims %+v, its payload says %+v", token, claims, orig)
		}
		if claims.Action != want.Action || claims.Resource != want.Resource || claims.Audience != fuzzAudience ||
			claims.Issuer != logKey.Name() || (want.Subject != "" && claims.Subject != want.Subject) {
			t.Fatalf("a token verifies for what it does not authorize: %+v, want %+v", claims, want)
		}
	})
}
