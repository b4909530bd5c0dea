package vectors

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/govlog/govlog/log"
)

func artifactCases(k *verifyKeys, g *goldenLog) ([]VerifyCase, error) {
	const header = `{"alg":"EdDSA","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`
	sign := func(hdr, payload string) string { return signJWS(hdr, payload, k.artifact) }
	payload := func(c *log.ArtifactClaims) string {
		p, err := c.Payload()
		if err != nil {
			panic(err)
		}
		return string(p)
	}
	var cases []VerifyCase
	type opts struct {
		jwks, audience, receipt string
		now                     int64
		authorize               *Authorize
	}
	allow := g.claims["allow"]
	base := opts{jwks: k.jwks, audience: Audience, receipt: g.receipts["allow"].TLogProof, now: allow.IssuedAt + 10,
		authorize: &Authorize{Action: allow.Action, Resource: allow.Resource, Subject: allow.Subject}}
	add := func(name, want, why, token string, o opts) {
		c := VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, JWKS: o.jwks, Audience: o.audience,
			Now: o.now, Token: token, Authorize: o.authorize}
		if o.receipt != "" {
			c.Receipt = str(o.receipt)
		}
		if want == "ok" {
			parts := strings.Split(token, ".")
			p, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				panic(err)
			}
			c.Expect = &Expect{Claims: string(p)}
		}
		cases = append(cases, c)
	}
	with := func(change func(*opts)) opts {
		o := base
		change(&o)
		return o
	}
	token := sign(header, payload(allow))

	for _, name := range g.names {
		c, ok := g.claims[name]
		if !ok {
			continue
		}
		add(name, "ok", "the artifact of testdata/receipts/"+name+".tlog-proof, bound to it", sign(header, payload(c)), opts{
			jwks: k.jwks, audience: Audience, receipt: g.receipts[name].TLogProof, now: c.IssuedAt,
			authorize: &Authorize{Action: c.Action, Resource: c.Resource, Subject: c.Subject}})
	}
	add("allow, mangled", "ok", "", token, base)
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01, 0x20}, Delete: true}
	add("without a receipt", "ok", "the binding is checked only against a receipt", token, with(func(o *opts) { o.receipt = "" }))
	add("without a subject to check", "ok", "", token, with(func(o *opts) { o.authorize = &Authorize{Action: allow.Action} }))
	add("without an authorization to check", "ok", "", token, with(func(o *opts) { o.authorize = nil }))

	// Time, with the default leeway of 30 seconds.
	add("29 s after exp", "ok", "30 s of leeway", token, with(func(o *opts) { o.now = allow.Expiry + 29 }))
	add("30 s after exp", "fail", "expired, leeway included", token, with(func(o *opts) { o.now = allow.Expiry + 30 }))
	add("at nbf - 30 s", "ok", "30 s of leeway", token, with(func(o *opts) { o.now = allow.NotBefore - 30 }))
	add("at nbf - 31 s", "fail", "not yet valid", token, with(func(o *opts) { o.now = allow.NotBefore - 31 }))
	add("a day later", "fail", "expired", token, with(func(o *opts) { o.now = allow.Expiry + 86400 }))

	// Audience and issuer.
	add("no audience configured", "fail", "an artifact naming an audience is refused by a reader that has none", token, with(func(o *opts) { o.audience = "" }))
	add("another audience", "fail", "", token, with(func(o *opts) { o.audience = "runtime.other.example" }))
	noAud := *allow
	noAud.Audience = ""
	add("no aud, none configured", "ok", "", sign(header, payload(&noAud)), with(func(o *opts) { o.audience = "" }))
	add("no aud, one configured", "fail", "", sign(header, payload(&noAud)), base)
	otherIss := *allow
	otherIss.Issuer = "example.com/other"
	add("another issuer", "fail", "iss is the log's origin", sign(header, payload(&otherIss)), with(func(o *opts) { o.receipt = "" }))

	// The protected header.
	hdrCase := func(name, why, hdr string) { add(name, "fail", why, sign(hdr, payload(allow)), base) }
	add("alg none", "fail", "only EdDSA", b64url([]byte(`{"alg":"none","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`))+"."+b64url([]byte(payload(allow)))+".", base)
	add("HS256 with the public key as the secret", "fail", "only EdDSA", hmacJWS(`{"alg":"HS256","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`, payload(allow), k.artifact.Public().(ed25519.PublicKey)), base)
	hdrCase("alg Ed25519", "only EdDSA", `{"alg":"Ed25519","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`)
	hdrCase("typ JWT", "typ is govlog-authz+jwt", `{"alg":"EdDSA","kid":"test-artifact-1","typ":"JWT"}`)
	hdrCase("no typ", "", `{"alg":"EdDSA","kid":"test-artifact-1"}`)
	hdrCase("no kid", "", `{"alg":"EdDSA","typ":"govlog-authz+jwt"}`)
	hdrCase("empty kid", "", `{"alg":"EdDSA","kid":"","typ":"govlog-authz+jwt"}`)
	hdrCase("unknown kid", "", `{"alg":"EdDSA","kid":"test-artifact-2","typ":"govlog-authz+jwt"}`)
	hdrCase("a jku member", "the header has alg, kid and typ only", `{"alg":"EdDSA","jku":"https://evil.example/jwks","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`)
	hdrCase("a crit member", "", `{"alg":"EdDSA","crit":["exp"],"kid":"test-artifact-1","typ":"govlog-authz+jwt"}`)
	hdrCase("alg twice", "", `{"alg":"none","alg":"EdDSA","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`)
	hdrCase("alg and ALG", "member names are exact", `{"alg":"none","kid":"test-artifact-1","typ":"govlog-authz+jwt","ALG":"EdDSA"}`)
	hdrCase("kid null", "", `{"alg":"EdDSA","kid":null,"typ":"govlog-authz+jwt"}`)
	hdrCase("header an array", "", `[{"alg":"EdDSA","kid":"test-artifact-1","typ":"govlog-authz+jwt"}]`)
	add("header with white space and another order", "ok", "the header is any JSON object with exactly these members", sign(`{ "typ": "govlog-authz+jwt", "kid": "test-artifact-1", "alg": "EdDSA" }`, payload(allow)), base)

	// The claims.
	claimCase := func(name, why, p string) { add(name, "fail", why, sign(header, p), base) }
	p := payload(allow)
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p), &m); err != nil {
		return nil, err
	}
	for _, name := range []string{"iss", "sub", "jti", "iat", "nbf", "exp", "action", "govlog"} {
		claimCase("no "+name, "every claim is required", strings.Replace(strings.Replace(p, fmt.Sprintf(`"%s":%s,`, name, m[name]), "", 1), fmt.Sprintf(`,"%s":%s`, name, m[name]), "", 1))
	}
	claimCase("an unknown claim", "the claims are exactly those of a govlog artifact", strings.Replace(p, `{`, `{"a":1,`, 1))
	claimCase("a claim twice", "", strings.Replace(p, `{`, `{"action":"delete",`, 1))
	claimCase("a claim in another case", "member names are exact", strings.Replace(p, `"iss":"example.com/govlog"`, `"iss":"example.com/govlog","ISS":"example.com/other"`, 1))
	claimCase("claims with white space", "the claims are in RFC 8785 canonical form", strings.ReplaceAll(p, `,"`, `, "`))
	claimCase("claims in another order", "the claims are in RFC 8785 canonical form", `{"sub":`+string(m["sub"])+`,`+strings.Replace(p[1:], `,"sub":`+string(m["sub"]), "", 1))
	claimCase("exp a string", "", strings.Replace(p, `"exp":`+string(m["exp"]), `"exp":"`+string(m["exp"])+`"`, 1))
	claimCase("exp with a fraction", "", strings.Replace(p, `"exp":`+string(m["exp"]), `"exp":`+string(m["exp"])+`.0`, 1))
	claimCase("exp in exponent form", "", strings.Replace(p, `"exp":`+string(m["exp"]), `"exp":1.7956299e9`, 1))
	claimCase("aud null", "", strings.Replace(p, `"aud":"runtime.example.com"`, `"aud":null`, 1))
	claimCase("aud an array", "aud is one string", strings.Replace(p, `"aud":"runtime.example.com"`, `"aud":["runtime.example.com"]`, 1))
	sub := strings.Index(p, `,"sub"`)
	claimCase("resource empty", "an absent resource is left out", p[:sub]+`,"resource":""`+p[sub:])
	claimCase("govlog with an unknown member", "", strings.Replace(p, `"govlog":{`, `"govlog":{"a":1,`, 1))
	claimCase("govlog without tree_size", "", strings.Replace(p, `,"tree_size":8`, ``, 1))
	claimCase("govlog null", "", strings.Replace(p, string(m["govlog"]), `null`, 1))
	claimCase("claims an array", "", `[`+p+`]`)
	claimCase("claims not JSON", "", `{`)

	// Binding to the receipt.
	add("bound to another receipt", "fail", "", token, with(func(o *opts) { o.receipt = g.receipts["allow-full"].TLogProof }))
	add("with the receipt of a deny", "fail", "", token, with(func(o *opts) { o.receipt = g.receipts["deny"].TLogProof }))
	bigger, err := tlogProof(append(func() [][]byte {
		var ls [][]byte
		for _, n := range g.names {
			ls = append(ls, g.leaves[n])
		}
		return ls
	}(), []byte("leaf 8")), 0, func(size uint64, root []byte) []byte {
		t := body(k.log.name, size, root)
		return []byte(t + "\n" + k.log.sign(t))
	})
	if err != nil {
		return nil, err
	}
	add("the same entry in a larger tree", "fail", "the artifact names the tree size and root of its receipt", token, with(func(o *opts) { o.receipt = string(bigger.Marshal()) }))
	for _, c := range []struct {
		name   string
		change func(*log.ArtifactClaims)
	}{
		{"another jti", func(c *log.ArtifactClaims) { c.ID = "d-9" }},
		{"another sub", func(c *log.ArtifactClaims) { c.Subject = "agent-8" }},
		{"another action", func(c *log.ArtifactClaims) { c.Action = "delete" }},
		{"a resource", func(c *log.ArtifactClaims) { c.Resource = "db/prod" }},
		{"a later exp", func(c *log.ArtifactClaims) { c.Expiry += 60 }},
		{"another iat", func(c *log.ArtifactClaims) { c.IssuedAt -= 1 }},
		{"another nbf", func(c *log.ArtifactClaims) { c.NotBefore -= 1 }},
		{"another index", func(c *log.ArtifactClaims) { c.Govlog.Index = 1 }},
		{"another leaf_hash", func(c *log.ArtifactClaims) { c.Govlog.LeafHash = b64(g.receipts["deny"].LeafHash) }},
		{"another tree_size", func(c *log.ArtifactClaims) { c.Govlog.TreeSize = 9 }},
		{"another root_hash", func(c *log.ArtifactClaims) { c.Govlog.RootHash = b64(g.receipts["deny"].LeafHash) }},
	} {
		changed := *allow
		c.change(&changed)
		tok := sign(header, payload(&changed))
		add("bound: "+c.name, "fail", "the claims are those of the receipt's entry and checkpoint", tok, base)
		if c.name != "another action" && c.name != "a resource" && c.name != "another sub" {
			add("unbound: "+c.name, "ok", "without a receipt, the binding is not checked", tok, with(func(o *opts) { o.receipt = "" }))
		}
	}

	// The authorization.
	add("another action expected", "fail", "", token, with(func(o *opts) { o.authorize = &Authorize{Action: "delete"} }))
	add("a resource expected", "fail", "the resource must be exactly the expected one, none included", token, with(func(o *opts) { o.authorize = &Authorize{Action: allow.Action, Resource: "svc/payments"} }))
	add("another subject expected", "fail", "", token, with(func(o *opts) { o.authorize = &Authorize{Action: allow.Action, Subject: "agent-8"} }))
	full := g.claims["allow-full"]
	fullOpts := opts{jwks: k.jwks, audience: Audience, receipt: g.receipts["allow-full"].TLogProof, now: full.IssuedAt}
	fullTok := sign(header, payload(full))
	add("no resource expected", "fail", "the artifact authorizes a resource", fullTok, func() opts {
		o := fullOpts
		o.authorize = &Authorize{Action: full.Action}
		return o
	}())
	add("a resource prefix expected", "fail", "", fullTok, func() opts {
		o := fullOpts
		o.authorize = &Authorize{Action: full.Action, Resource: full.Resource[:len(full.Resource)-1]}
		return o
	}())

	// Keys.
	pub := k.artifact.Public().(ed25519.PublicKey)
	keyCase := func(name, want, why, set string) { add(name, want, why, token, with(func(o *opts) { o.jwks = set })) }
	keyCase("the key without alg and use", "ok", "", jwks(jwk(k.kid, pub)))
	keyCase("two keys", "ok", "the key of the kid", jwks(jwk("test-artifact-0", seedKey("artifact-0").Public().(ed25519.PublicKey), `"alg":"EdDSA",`), jwk(k.kid, pub, `"alg":"EdDSA",`, `"use":"sig",`)))
	keyCase("the key for ES256", "fail", "", jwks(jwk(k.kid, pub, `"alg":"ES256",`)))
	keyCase("the key for encryption", "fail", "", jwks(jwk(k.kid, pub, `"use":"enc",`)))
	keyCase("another key under the kid", "fail", "", jwks(jwk(k.kid, seedKey("artifact-0").Public().(ed25519.PublicKey))))
	keyCase("no key of the kid", "fail", "", jwks(jwk("test-artifact-0", pub)))
	keyCase("an empty set", "fail", "", jwks())
	keyCase("a key of 31 bytes", "fail", "", jwks(`{"crv":"Ed25519","kid":"test-artifact-1","kty":"OKP","x":"`+b64url(pub[:31])+`"}`))
	keyCase("an X25519 key", "fail", "", jwks(`{"crv":"X25519","kid":"test-artifact-1","kty":"OKP","x":"`+b64url(pub)+`"}`))
	keyCase("an EC key", "fail", "", jwks(`{"crv":"P-256","kid":"test-artifact-1","kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}`))
	add("signed by another key", "fail", "", signJWS(header, payload(allow), seedKey("artifact-0")), base)

	// The token.
	parts := strings.Split(token, ".")
	tokCase := func(name, why, tok string) { add(name, "fail", why, tok, base) }
	tokCase("four parts", "", token+".")
	tokCase("two parts", "", parts[0]+"."+parts[1])
	tokCase("padding", "base64url without padding", parts[0]+"."+parts[1]+"."+parts[2]+"==")
	tokCase("a line break in the signature", "", parts[0]+"."+parts[1]+"."+parts[2][:20]+"\n"+parts[2][20:])
	tokCase("standard base64", "", strings.NewReplacer("-", "+", "_", "/").Replace(token))
	tokCase("a space before", "", " "+token)
	tokCase("Bearer", "", "Bearer "+token)
	tokCase("empty", "", "")
	sig := parts[2]
	tokCase("signature in non-canonical base64url", "", parts[0]+"."+parts[1]+"."+sig[:len(sig)-1]+string(nonCanonicalURL(sig[len(sig)-1])))
	big := *allow
	big.Audience = ""
	big.Action = strings.Repeat("a", 6000)
	add("a token over 8 KiB", "fail", "an artifact is at most 8 KiB", sign(header, payload(&big)), opts{jwks: k.jwks, now: base.now})
	return cases, nil
}

// nonCanonicalURL is the base64url character that decodes to the same
// bits as c with the lowest unused bit set (c ends a 64-byte signature,
// whose last character carries 4 bits).
func nonCanonicalURL(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)|1]
}
