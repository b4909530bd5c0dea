package artifact_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/artifact"
	"github.com/govlog/govlog/verifier/internal/testlog"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

type artifactFixture struct {
	l       *testlog.Log
	key     jwk.Key
	jwks    jwk.Set
	claims  *log.ArtifactClaims
	token   string
	receipt *verifier.Verified
	now     time.Time
}

// newArtifactFixture logs 7 entries and issues the artifact of entry 2, an
// allow, against the checkpoint of size 6, as the server would.
func newArtifactFixture(t *testing.T, audience string) *artifactFixture {
	t.Helper()
	f := &artifactFixture{l: testlog.New(t)}
	f.l.Grow(7)
	res := f.l.Result(2, 6)
	var err error
	if f.claims, err = log.NewArtifactClaims(testlog.Origin, audience, f.l.Decisions[2], res); err != nil {
		t.Fatal(err)
	}
	f.key, f.jwks = testlog.ArtifactKey(t, "k1", 3)
	f.token = testlog.SignArtifact(t, f.key, f.claims)
	if f.receipt, err = verifier.Receipt([]byte(res.Receipt.TLogProof), f.l.Verifier); err != nil {
		t.Fatal(err)
	}
	f.now = res.LoggedAt.Add(10 * time.Second)
	return f
}

func (f *artifactFixture) verify(token string, opts artifact.Options) (*log.ArtifactClaims, error) {
	if opts.Now.IsZero() {
		opts.Now = f.now
	}
	return artifact.Verify(token, f.jwks, opts)
}

func TestArtifact(t *testing.T) {
	f := newArtifactFixture(t, "")
	withAud := newArtifactFixture(t, "runtime.example")
	exp, nbf := time.Unix(f.claims.Expiry, 0), time.Unix(f.claims.NotBefore, 0)
	privateSet := jwk.NewSet()
	if err := privateSet.AddKey(f.key); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		f     *artifactFixture
		token string
		jwks  jwk.Set
		opts  artifact.Options
	}{
		{name: "bound to its receipt", opts: artifact.Options{Receipt: f.receipt}},
		{name: "origin and receipt", opts: artifact.Options{Origin: testlog.Origin, Receipt: f.receipt}},
		{name: "without receipt", opts: artifact.Options{Origin: testlog.Origin}},
		{name: "audience", f: withAud, opts: artifact.Options{Audience: "runtime.example", Receipt: withAud.receipt}},
		{name: "just before exp plus leeway", opts: artifact.Options{Origin: testlog.Origin, Now: exp.Add(artifact.DefaultLeeway - time.Second)}},
		{name: "at nbf minus leeway", opts: artifact.Options{Origin: testlog.Origin, Now: nbf.Add(-artifact.DefaultLeeway)}},
		{name: "just before exp without leeway", opts: artifact.Options{Origin: testlog.Origin, Now: exp.Add(-time.Second), Leeway: -1}},
		{name: "JWKS of the private key", jwks: privateSet, opts: artifact.Options{Receipt: f.receipt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := f
			if tc.f != nil {
				fx = tc.f
			}
			if tc.jwks != nil {
				fx = &artifactFixture{jwks: tc.jwks, claims: fx.claims, token: fx.token, now: fx.now}
			}
			c, err := fx.verify(fx.token, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, fx.claims) {
				t.Fatalf("claims %+v, want %+v", c, fx.claims)
			}
		})
	}
}

func TestArtifactErrors(t *testing.T) {
	f := newArtifactFixture(t, "")
	withAud := newArtifactFixture(t, "runtime.example")
	exp, nbf := time.Unix(f.claims.Expiry, 0), time.Unix(f.claims.NotBefore, 0)
	var pubRaw ed25519.PublicKey
	{
		pk, _ := f.key.PublicKey()
		var raw any
		if err := pk.Raw(&raw); err != nil {
			t.Fatal(err)
		}
		pubRaw = raw.(ed25519.PublicKey)
	}
	var rawPriv any
	if err := f.key.Raw(&rawPriv); err != nil {
		t.Fatal(err)
	}
	payload, err := f.claims.Payload()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	hdr := func(h string) string { return b64([]byte(h)) }
	parts := strings.Split(f.token, ".")
	goodHeaders := map[string]any{"typ": log.ArtifactType, "kid": "k1"}

	// Claims as a map, to sign what the server never would.
	claimsMap := func(edit func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signClaims := func(edit func(c *log.ArtifactClaims)) string {
		c := *f.claims
		edit(&c)
		return testlog.SignArtifact(t, f.key, &c)
	}

	// JWKS with another key under kid k1, and with unsuitable keys.
	_, otherSet := testlog.ArtifactKey(t, "k1", 4)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecJWK, err := jwk.FromRaw(ecKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = ecJWK.Set(jwk.KeyIDKey, "k1")
	ecSet := jwk.NewSet()
	_ = ecSet.AddKey(ecJWK)
	mislabeled, _ := jwk.FromRaw(pubRaw)
	_ = mislabeled.Set(jwk.KeyIDKey, "k1")
	_ = mislabeled.Set(jwk.AlgorithmKey, jwa.ES256)
	mislabeledSet := jwk.NewSet()
	_ = mislabeledSet.AddKey(mislabeled)
	encKey, _ := jwk.FromRaw(pubRaw)
	_ = encKey.Set(jwk.KeyIDKey, "k1")
	_ = encKey.Set(jwk.KeyUsageKey, jwk.ForEncryption)
	encSet := jwk.NewSet()
	_ = encSet.AddKey(encKey)
	// jwk.Parse takes an "x" of any length; ed25519.Verify panics on one
	// that is not 32 bytes.
	shortSet, err := jwk.Parse([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"` +
		base64.RawURLEncoding.EncodeToString(pubRaw[:31]) + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}

	l := f.l
	otherAllow, err := verifier.Receipt([]byte(l.Receipt(0, 6).TLogProof), l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	deny, err := verifier.Receipt([]byte(l.Receipt(3, 6).TLogProof), l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	later, err := verifier.Receipt([]byte(l.Receipt(2, 7).TLogProof), l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	bound := artifact.Options{Receipt: f.receipt}
	byOrigin := artifact.Options{Origin: testlog.Origin}

	for _, tc := range []struct {
		name     string
		token    string
		jwks     jwk.Set
		opts     artifact.Options
		want     error
		contains string
	}{
		{name: "another key under the kid", token: f.token, jwks: otherSet, opts: bound, want: verifier.ErrBadSignature,
			contains: `artifact signature does not verify with key "k1"`},
		{name: "unknown kid", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, payload, map[string]any{"typ": log.ArtifactType, "kid": "k2"}),
			opts: bound, want: verifier.ErrBadSignature, contains: `no key "k2"`},
		{name: "EC key under the kid", token: f.token, jwks: ecSet, opts: bound, want: verifier.ErrBadSignature, contains: "not an Ed25519 key"},
		{name: "key labelled ES256", token: f.token, jwks: mislabeledSet, opts: bound, want: verifier.ErrBadSignature, contains: "is for ES256"},
		{name: "key for encryption", token: f.token, jwks: encSet, opts: bound, want: verifier.ErrBadSignature, contains: "not signatures"},
		{name: "key of 31 bytes", token: f.token, jwks: shortSet, opts: bound, want: verifier.ErrBadSignature, contains: "31 bytes"},
		{name: "header member in another case", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, payload, map[string]any{"typ": log.ArtifactType, "kid": "k1", "ALG": "EdDSA"}),
			opts: bound, want: artifact.ErrInvalid, contains: "other than alg, kid and typ"},
		{name: "claims not canonical", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, []byte(strings.Replace(string(payload), `,"`, `, "`, 1)), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: "canonical"},
		{name: "expired", token: f.token, opts: artifact.Options{Receipt: f.receipt, Now: exp.Add(artifact.DefaultLeeway)},
			want: artifact.ErrInvalid, contains: "artifact expired at"},
		{name: "expired without leeway", token: f.token, opts: artifact.Options{Receipt: f.receipt, Now: exp, Leeway: -1},
			want: artifact.ErrInvalid, contains: "expired"},
		{name: "not yet valid", token: f.token, opts: artifact.Options{Receipt: f.receipt, Now: nbf.Add(-artifact.DefaultLeeway - time.Second)},
			want: artifact.ErrInvalid, contains: "not valid before"},
		{name: "wrong audience", token: withAud.token, jwks: withAud.jwks, opts: artifact.Options{Origin: testlog.Origin, Audience: "other.example"},
			want: artifact.ErrInvalid, contains: `audience is "runtime.example", want "other.example"`},
		{name: "audience not configured", token: withAud.token, jwks: withAud.jwks, opts: byOrigin,
			want: artifact.ErrInvalid, contains: "no audience is configured"},
		{name: "no audience in the artifact", token: f.token, opts: artifact.Options{Origin: testlog.Origin, Audience: "runtime.example"},
			want: artifact.ErrInvalid, contains: `audience is "", want "runtime.example"`},
		{name: "wrong issuer", token: f.token, opts: artifact.Options{Origin: "other.example/log"},
			want: artifact.ErrInvalid, contains: "issuer"},
		{name: "alg none", token: hdr(`{"alg":"none","kid":"k1","typ":"govlog-authz+jwt"}`) + "." + parts[1] + ".",
			opts: bound, want: artifact.ErrInvalid, contains: `algorithm is "none"`},
		{name: "alg none with the EdDSA signature", token: hdr(`{"alg":"none","kid":"k1","typ":"govlog-authz+jwt"}`) + "." + parts[1] + "." + parts[2],
			opts: bound, want: artifact.ErrInvalid, contains: `algorithm is "none"`},
		{name: "HS256 keyed with the public key", token: testlog.SignPayload(t, jwa.HS256, []byte(pubRaw), payload, goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: `algorithm is "HS256"`},
		{name: "typ missing", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, payload, map[string]any{"kid": "k1"}),
			opts: bound, want: artifact.ErrInvalid, contains: `typ is ""`},
		{name: "typ JWT", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, payload, map[string]any{"kid": "k1", "typ": "JWT"}),
			opts: bound, want: artifact.ErrInvalid, contains: `typ is "JWT"`},
		{name: "kid missing", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, payload, map[string]any{"typ": log.ArtifactType}),
			opts: bound, want: artifact.ErrInvalid, contains: "no kid"},
		{name: "extra header", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, payload, map[string]any{"typ": log.ArtifactType, "kid": "k1", "jku": "https://attacker.example/jwks"}),
			opts: bound, want: artifact.ErrInvalid, contains: "unknown field"},
		{name: "padded base64url", token: parts[0] + "=." + parts[1] + "." + parts[2], opts: bound, want: artifact.ErrInvalid, contains: "unpadded base64url"},
		{name: "four parts", token: f.token + ".x", opts: bound, want: artifact.ErrInvalid, contains: "three parts"},
		{name: "JSON serialization", token: `{"payload":"` + parts[1] + `","signatures":[]}`, opts: bound, want: artifact.ErrInvalid, contains: "three parts"},
		{name: "unknown claim", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["admin"] = true }), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: "unknown field"},
		{name: "claim missing", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { delete(m, "nbf") }), goodHeaders),
			opts: byOrigin, want: artifact.ErrInvalid, contains: "no nbf claim"},
		{name: "duplicate claim", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, []byte(strings.Replace(string(payload), `"sub":`, `"sub":"root","sub":`, 1)), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: `duplicate member "sub"`},
		{name: "exp a numeric string", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["exp"] = fmt.Sprint(f.claims.Expiry) }), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: "exp"},
		{name: "nbf a numeric string", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["nbf"] = fmt.Sprint(f.claims.NotBefore) }), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: "nbf"},
		{name: "iat a numeric string", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["iat"] = fmt.Sprint(f.claims.IssuedAt) }), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: "iat"},
		{name: "exp null", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["exp"] = nil }), goodHeaders),
			opts: byOrigin, want: artifact.ErrInvalid, contains: "exp"},
		{name: "nbf null", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["nbf"] = nil }), goodHeaders),
			opts: byOrigin, want: artifact.ErrInvalid, contains: "nbf"},
		{name: "iat null", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["iat"] = nil }), goodHeaders),
			opts: byOrigin, want: artifact.ErrInvalid, contains: "iat"},
		{name: "sub null", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["sub"] = nil }), goodHeaders),
			opts: byOrigin, want: artifact.ErrInvalid, contains: "sub"},
		{name: "empty crit header", token: signRawHeader(rawPriv, `{"alg":"EdDSA","crit":[],"kid":"k1","typ":"govlog-authz+jwt"}`, payload),
			opts: bound, want: artifact.ErrInvalid, contains: "unknown field"},
		{name: "crit header", token: signRawHeader(rawPriv, `{"alg":"EdDSA","crit":["exp"],"kid":"k1","typ":"govlog-authz+jwt"}`, payload),
			opts: bound, want: artifact.ErrInvalid, contains: "unknown field"},
		{name: "audience as a list", token: testlog.SignPayload(t, jwa.EdDSA, rawPriv, claimsMap(func(m map[string]any) { m["aud"] = []string{"a"} }), goodHeaders),
			opts: bound, want: artifact.ErrInvalid, contains: "aud"},
		{name: "receipt of another decision", token: f.token, opts: artifact.Options{Receipt: otherAllow},
			want: artifact.ErrBinding, contains: `artifact jti is d-2, the receipt says d-0`},
		{name: "receipt of a deny", token: f.token, opts: artifact.Options{Receipt: deny},
			want: artifact.ErrBinding, contains: "not an allow decision"},
		{name: "receipt against another checkpoint", token: f.token, opts: artifact.Options{Receipt: later},
			want: artifact.ErrBinding, contains: "govlog.tree_size is 6, the receipt says 7"},
		{name: "receipt of another log", token: f.token, opts: artifact.Options{Origin: "other.example/log", Receipt: f.receipt},
			want: artifact.ErrBinding, contains: `the receipt is from log "example.com/govlog", not "other.example/log"`},
		{name: "exp extended", token: signClaims(func(c *log.ArtifactClaims) { c.Expiry += 3600 }), opts: bound,
			want: artifact.ErrBinding, contains: "artifact exp"},
		{name: "other subject", token: signClaims(func(c *log.ArtifactClaims) { c.Subject = "agent-0" }), opts: bound,
			want: artifact.ErrBinding, contains: "artifact sub"},
		{name: "other action", token: signClaims(func(c *log.ArtifactClaims) { c.Action = "delete" }), opts: bound,
			want: artifact.ErrBinding, contains: "artifact action"},
		{name: "other resource", token: signClaims(func(c *log.ArtifactClaims) { c.Resource = "svc/*" }), opts: bound,
			want: artifact.ErrBinding, contains: "artifact resource"},
		{name: "other iat", token: signClaims(func(c *log.ArtifactClaims) { c.IssuedAt-- }), opts: bound,
			want: artifact.ErrBinding, contains: "artifact iat"},
		{name: "other nbf", token: signClaims(func(c *log.ArtifactClaims) { c.NotBefore-- }), opts: bound,
			want: artifact.ErrBinding, contains: "artifact nbf"},
		{name: "other index", token: signClaims(func(c *log.ArtifactClaims) { c.Govlog.Index = 0 }), opts: bound,
			want: artifact.ErrBinding, contains: "govlog.index"},
		{name: "other leaf hash", token: signClaims(func(c *log.ArtifactClaims) { c.Govlog.LeafHash = otherAllowLeafHash(otherAllow) }), opts: bound,
			want: artifact.ErrBinding, contains: "govlog.leaf_hash"},
		{name: "other root hash", token: signClaims(func(c *log.ArtifactClaims) {
			c.Govlog.RootHash = base64.StdEncoding.EncodeToString(later.Checkpoint.Hash[:])
		}), opts: bound,
			want: artifact.ErrBinding, contains: "govlog.root_hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwks := tc.jwks
			if jwks == nil {
				jwks = f.jwks
			}
			opts := tc.opts
			if opts.Now.IsZero() {
				opts.Now = f.now
			}
			c, err := artifact.Verify(tc.token, jwks, opts)
			if err == nil {
				t.Fatalf("verified %+v", c)
			}
			if !errors.Is(err, tc.want) || !testlog.WrapsOne(err, append(testlog.Sentinels, artifact.ErrInvalid, artifact.ErrBinding)...) {
				t.Errorf("error %q does not wrap exactly %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
		})
	}

	t.Run("no origin", func(t *testing.T) {
		if _, err := artifact.Verify(f.token, f.jwks, artifact.Options{}); err == nil || !strings.Contains(err.Error(), "Origin") {
			t.Fatalf("error %v", err)
		}
	})
}

// signRawHeader signs payload under a header given as JSON text, which
// jws.Sign would normalize.
func signRawHeader(priv any, header string, payload []byte) string {
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(header)) + "." + b64(payload)
	return input + "." + b64(ed25519.Sign(priv.(ed25519.PrivateKey), []byte(input)))
}

func otherAllowLeafHash(v *verifier.Verified) string {
	return base64.StdEncoding.EncodeToString(v.LeafHash[:])
}

// TestArtifactMangled flips a bit of every byte of an artifact and deletes
// every byte: all must fail.
func TestArtifactMangled(t *testing.T) {
	f := newArtifactFixture(t, "runtime.example")
	opts := artifact.Options{Receipt: f.receipt, Audience: "runtime.example"}
	if _, err := f.verify(f.token, opts); err != nil {
		t.Fatal(err)
	}
	for i := range f.token {
		for _, mangled := range []string{
			f.token[:i] + string(f.token[i]^1) + f.token[i+1:],
			f.token[:i] + string(f.token[i]^32) + f.token[i+1:],
			f.token[:i] + f.token[i+1:],
		} {
			if c, err := f.verify(mangled, opts); err == nil {
				t.Fatalf("byte %d of %q mangled: verified %+v", i, f.token, c)
			}
		}
	}
}
