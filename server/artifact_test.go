package server

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"github.com/govlog/govlog/internal/cputime"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
)

// TestArtifactSignerMatchesJWX signs the same claims with the artifact
// signer and with jwx's jws.Sign, for several keys and claim sets: the
// tokens must be identical, byte for byte, and verify with jwx.
func TestArtifactSignerMatchesJWX(t *testing.T) {
	kids := []string{"k1", "artifact-2026-11-25", strings.Repeat("k", 300), `a"b\c`, "<&> é\u2028", "\x01\x7f"}
	var payloads [][]byte
	for i, v := range vectors.ValidDecisions() {
		d, err := log.ParseLoggedDecision([]byte(v.Body), vectors.NowTime())
		if err != nil {
			t.Fatal(err)
		}
		if d.Outcome != log.OutcomeAllow {
			continue
		}
		leaf := sha256.Sum256([]byte(v.Body))
		res := &log.Result{
			Receipt:         &log.Receipt{Index: uint64(i) * 1000003, LeafHash: leaf[:]},
			Checkpoint:      log.Checkpoint{Size: uint64(i)*1000003 + 1, Hash: sha256.Sum256(leaf[:])},
			LoggedAt:        time.Date(2026, 11, 25, 18, 0, i, 123, time.UTC),
			AuthorizedUntil: time.Date(2026, 11, 25, 18, 5, i, 0, time.UTC),
		}
		for _, aud := range []string{"", "runtime.example.com"} {
			c, err := log.NewArtifactClaims("example.com/govlog", aud, d, res)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Payload()
			if err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, p)
		}
	}
	payloads = append(payloads, []byte(`{}`), []byte(`{"a":"`+strings.Repeat("é", 3000)+`"}`))
	if len(payloads) < 8 {
		t.Fatalf("only %d claim sets", len(payloads))
	}
	for _, kid := range kids {
		t.Run(fmt.Sprintf("%.20q", kid), func(t *testing.T) {
			_, raw, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			key, err := jwk.FromRaw(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := key.Set(jwk.KeyIDKey, kid); err != nil {
				t.Fatal(err)
			}
			signer, err := newArtifactSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := key.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range payloads {
				hdr := jws.NewHeaders()
				hdr.Set(jws.TypeKey, log.ArtifactType)
				hdr.Set(jws.KeyIDKey, kid)
				want, err := jws.Sign(p, jws.WithKey(jwa.EdDSA, raw, jws.WithProtectedHeaders(hdr)))
				if err != nil {
					t.Fatal(err)
				}
				got := signer.sign(p)
				if got != string(want) {
					t.Fatalf("token\n%s\njwx\n%s", got, want)
				}
				verified, err := jws.Verify([]byte(got), jws.WithKey(jwa.EdDSA, pub))
				if err != nil || string(verified) != string(p) {
					t.Fatalf("jwx does not verify the token: %v", err)
				}
			}
			// The header, as the wire contract writes it.
			h, err := base64.RawURLEncoding.DecodeString(signer.header)
			if err != nil || !strings.HasPrefix(string(h), `{"alg":"EdDSA","kid":`) || !strings.HasSuffix(string(h), `,"typ":"govlog-authz+jwt"}`) {
				t.Fatalf("header %s (%v)", h, err)
			}
		})
	}
}

func TestArtifactSignerRefusesKeys(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	public, err := jwk.FromRaw(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newArtifactSigner(public); err == nil {
		t.Fatal("a public key makes a signer")
	}
}

// BenchmarkArtifact signs an artifact's claims: directly, and with
// jws.Sign as before.
func BenchmarkArtifact(b *testing.B) {
	_, raw, _ := ed25519.GenerateKey(nil)
	key, _ := jwk.FromRaw(raw)
	key.Set(jwk.KeyIDKey, "k1")
	signer, err := newArtifactSigner(key)
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"action":"deploy","exp":1764093900,"govlog":{"index":123456,"leaf_hash":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","root_hash":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","tree_size":123457},"iat":1764093600,"iss":"example.com/govlog","jti":"bench-0000001","nbf":1764093600,"resource":"arn:example:service/deploy/item-1","sub":"spiffe://prod.example/ns/agents/sa/agent-7"}`)
	b.Run("direct", func(b *testing.B) {
		start := cputime.Process()
		for b.Loop() {
			signer.sign(payload)
		}
		cputime.Report(b, start)
	})
	b.Run("jws.Sign", func(b *testing.B) {
		for b.Loop() {
			hdr := jws.NewHeaders()
			hdr.Set(jws.TypeKey, log.ArtifactType)
			hdr.Set(jws.KeyIDKey, "k1")
			if _, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA, raw, jws.WithProtectedHeaders(hdr))); err != nil {
				b.Fatal(err)
			}
		}
	})
}
