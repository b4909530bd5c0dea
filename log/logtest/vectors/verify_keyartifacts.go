package vectors

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
)

// keyLog is the small log of the key-artifacts vectors: two key entries
// (test-artifact-1 at 0, test-artifact-0 at 1, a rotation), the golden
// log's allow decision at 2 and its deny at 3.
type keyLog struct {
	leaves [][]byte
	k      *verifyKeys
}

const keyLoggedAt = "2026-11-25T17:00:00.000000000Z"

// keyEntry is the leaf of the key entry of kid, as govlogd logs it
// (log.NewKeyContent, log.KeySubmission with the origin as submitter).
func keyEntry(kid string, pub ed25519.PublicKey) []byte {
	k, err := log.NewKeyContent(kid, pub)
	if err != nil {
		panic(err)
	}
	at, err := time.Parse(log.LoggedAtLayout, keyLoggedAt)
	if err != nil {
		panic(err)
	}
	e, err := log.NewEntry(log.KeySubmission(k, "example.com/govlog"), at, 0)
	if err != nil {
		panic(err)
	}
	return e.Leaf
}

func newKeyLog(k *verifyKeys, g *goldenLog) *keyLog {
	kl := &keyLog{leaves: [][]byte{
		keyEntry(k.kid, k.artifact.Public().(ed25519.PublicKey)),
		keyEntry("test-artifact-0", seedKey("artifact-0").Public().(ed25519.PublicKey)),
		g.leaves["allow"],
		g.leaves["deny"],
	}, k: k}
	return kl
}

// receipt returns the tlog-proof of leaf i against the checkpoint signed by
// s, with the cosignature lines of cos appended.
func (kl *keyLog) receipt(i uint64, s *rawSigner, cos ...*rawSigner) string {
	p, err := tlogProof(kl.leaves, i, func(size uint64, root []byte) []byte {
		t := body(s.name, size, root)
		n := t + "\n" + s.sign(t)
		for _, w := range cos {
			n += w.cosign(t, cosignedAt)
		}
		return []byte(n)
	})
	if err != nil {
		panic(err)
	}
	return string(p.Marshal())
}

// json is the JSON receipt of leaf i with id.
func (kl *keyLog) json(i uint64, id string) string {
	k := kl.k
	p, err := tlogProof(kl.leaves, i, func(size uint64, root []byte) []byte {
		t := body(k.log.name, size, root)
		return []byte(t + "\n" + k.log.sign(t))
	})
	if err != nil {
		panic(err)
	}
	hashes := make([][]byte, len(p.Hashes))
	for j := range p.Hashes {
		hashes[j] = p.Hashes[j][:]
	}
	lh := log.LeafHash(kl.leaves[i])
	return compact(&log.Receipt{ID: id, Index: i, LeafHash: lh[:], Entry: kl.leaves[i], Checkpoint: string(p.Checkpoint),
		InclusionProof: hashes, TLogProof: string(p.Marshal())})
}

func keyArtifactCases(k *verifyKeys, g *goldenLog) ([]VerifyCase, error) {
	kl := newKeyLog(k, g)
	const header = `{"alg":"EdDSA","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`
	allow := *g.claims["allow"]
	withIndex := func(c log.ArtifactClaims, i uint64) *log.ArtifactClaims { c.Govlog.KeyIndex = u64(i); return &c }
	payload := func(c *log.ArtifactClaims) string {
		p, err := c.Payload()
		if err != nil {
			panic(err)
		}
		return string(p)
	}
	claims := withIndex(allow, 0)
	token := signJWS(header, payload(claims), k.artifact)
	good := kl.receipt(0, k.log)

	type opts struct {
		keyReceipt, audience, policy string
		now                          int64
		authorize                    *Authorize
	}
	base := opts{keyReceipt: good, audience: Audience, now: allow.IssuedAt + 10,
		authorize: &Authorize{Action: allow.Action, Resource: allow.Resource, Subject: allow.Subject}}
	with := func(change func(*opts)) opts {
		o := base
		change(&o)
		return o
	}
	var cases []VerifyCase
	add := func(name, want, why, token string, o opts) {
		c := VerifyCase{Name: name, Want: want, Why: why, LogKey: k.log.vkey, Audience: o.audience, Now: o.now,
			Token: token, KeyReceipt: str(o.keyReceipt), Authorize: o.authorize}
		if o.policy != "" {
			c.Policy = str(o.policy)
		}
		if want == "ok" {
			p, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
			if err != nil {
				panic(err)
			}
			c.Expect = &Expect{Claims: string(p)}
		}
		cases = append(cases, c)
	}

	add("good", "ok", "the key receipt of entry 0 (test-artifact-1), the artifact signed with it and naming key_index 0", token, base)
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01, 0x20}, Delete: true}
	add("good, key receipt mangled", "ok", "every byte of the key receipt matters", token, base)
	cases[len(cases)-1].Mangle = &Mangle{XOR: []int{0x01}, Delete: true, Field: "key_receipt"}
	add("a JSON key receipt", "ok", "as GET /v1/keys serves it", token, with(func(o *opts) { o.keyReceipt = kl.json(0, k.kid) }))
	add("a JSON key receipt with another id", "fail", "the id of a key receipt is its kid", token, with(func(o *opts) { o.keyReceipt = kl.json(0, "test-artifact-0") }))
	add("without an authorization to check", "ok", "", token, with(func(o *opts) { o.authorize = nil }))
	add("without a subject to check", "ok", "", token, with(func(o *opts) { o.authorize = &Authorize{Action: allow.Action} }))

	other := signJWS(`{"alg":"EdDSA","kid":"test-artifact-0","typ":"govlog-authz+jwt"}`, payload(withIndex(allow, 1)), seedKey("artifact-0"))
	add("the rotated key", "ok", "an artifact of test-artifact-0 with the key receipt of entry 1", other, with(func(o *opts) { o.keyReceipt = kl.receipt(1, k.log) }))
	add("the rotated key, with the key receipt of entry 0", "fail", "the kid is not the entry's", other, base)

	// The key index.
	add("wrong key index", "fail", "the artifact names entry 1, the key receipt is of entry 0", signJWS(header, payload(withIndex(allow, 1)), k.artifact), base)
	add("key index of the artifact's own entry", "fail", "", signJWS(header, payload(withIndex(allow, 2)), k.artifact), base)
	add("no key index", "fail", "an artifact without govlog.key_index names no logged key", signJWS(header, payload(&allow), k.artifact), base)
	add("key receipt of the rotated key", "fail", "entry 1 is test-artifact-0, the artifact is signed by test-artifact-1 and names entry 0", token, with(func(o *opts) { o.keyReceipt = kl.receipt(1, k.log) }))
	add("kid mismatch", "fail", "the header names test-artifact-0; entry 0 is test-artifact-1", signJWS(`{"alg":"EdDSA","kid":"test-artifact-0","typ":"govlog-authz+jwt"}`, payload(claims), k.artifact), base)
	add("signed by another key", "fail", "", signJWS(header, payload(claims), seedKey("artifact-0")), base)

	// The key receipt.
	add("key receipt for another log", "fail", "its checkpoint is signed by another key of the same name", token, with(func(o *opts) { o.keyReceipt = kl.receipt(0, k.other) }))
	otherOrigin := newRawSigner("example.com/other", 1, seedKey("other-origin"))
	add("key receipt of a log with another origin", "fail", "", token, with(func(o *opts) { o.keyReceipt = kl.receipt(0, otherOrigin) }))
	add("entry not a key", "fail", "the receipt of entry 2, an allow decision", signJWS(header, payload(withIndex(allow, 2)), k.artifact), with(func(o *opts) { o.keyReceipt = kl.receipt(2, k.log) }))
	add("entry a deny", "fail", "", signJWS(header, payload(withIndex(allow, 3)), k.artifact), with(func(o *opts) { o.keyReceipt = kl.receipt(3, k.log) }))
	add("the artifact's decision receipt as key receipt", "fail", "", token, with(func(o *opts) { o.keyReceipt = g.receipts["allow"].TLogProof }))
	add("no key receipt", "fail", "", token, with(func(o *opts) { o.keyReceipt = "" }))

	// Key entries that are not valid.
	bad := func(name, why, leaf string) {
		kl2 := *kl
		kl2.leaves = append([][]byte{[]byte(leaf)}, kl.leaves[1:]...)
		add("key entry: "+name, "fail", why, token, with(func(o *opts) { o.keyReceipt = kl2.receipt(0, k.log) }))
	}
	pub := k.artifact.Public().(ed25519.PublicKey)
	x := b64url(pub)
	entryWith := func(content string) string {
		return `{"key":` + content + `,"logged_at":"` + keyLoggedAt + `","submitter":"example.com/govlog","v":1}`
	}
	good0 := string(kl.leaves[0])
	bad("a private key", "a logged key is public: d is refused", entryWith(`{"jwk":{"crv":"Ed25519","d":"`+b64url(k.artifact.Seed())+`","kty":"OKP","x":"`+x+`"},"kid":"test-artifact-1"}`))
	bad("jwk with a kid", "the jwk is exactly crv, kty and x", entryWith(`{"jwk":{"crv":"Ed25519","kid":"test-artifact-1","kty":"OKP","x":"`+x+`"},"kid":"test-artifact-1"}`))
	bad("jwk with alg", "", entryWith(`{"jwk":{"alg":"EdDSA","crv":"Ed25519","kty":"OKP","x":"`+x+`"},"kid":"test-artifact-1"}`))
	bad("jwk with use", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","use":"sig","x":"`+x+`"},"kid":"test-artifact-1"}`))
	bad("an X25519 key", "", entryWith(`{"jwk":{"crv":"X25519","kty":"OKP","x":"`+x+`"},"kid":"test-artifact-1"}`))
	bad("an EC key", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"EC","x":"`+x+`"},"kid":"test-artifact-1"}`))
	bad("x of 31 bytes", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+b64url(pub[:31])+`"},"kid":"test-artifact-1"}`))
	bad("x padded", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+x+`="},"kid":"test-artifact-1"}`))
	bad("x in standard base64", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+b64(pub)+`"},"kid":"test-artifact-1"}`))
	bad("x not canonical", "the last character carries unused bits", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+x[:len(x)-1]+string(nonCanonicalURL(x[len(x)-1]))+`"},"kid":"test-artifact-1"}`))
	bad("kid empty", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+x+`"},"kid":""}`))
	bad("kid not an id", "a kid has the syntax of an id", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+x+`"},"kid":"-test-artifact-1"}`))
	bad("kid a number", "", entryWith(`{"jwk":{"crv":"Ed25519","kty":"OKP","x":"`+x+`"},"kid":1}`))
	bad("no jwk", "", entryWith(`{"kid":"test-artifact-1"}`))
	bad("not canonical", "", strings.Replace(good0, `,"kid"`, `, "kid"`, 1))
	bad("v 2", "", strings.Replace(good0, `"v":1`, `"v":2`, 1))
	bad("an unknown member", "", strings.Replace(good0, `{"key"`, `{"a":1,"key"`, 1))
	bad("an unknown member of key", "", strings.Replace(good0, `{"key":{`, `{"key":{"a":1,`, 1))
	bad("no submitter", "", strings.Replace(good0, `,"submitter":"example.com/govlog"`, ``, 1))
	bad("logged_at without nanoseconds", "", strings.Replace(good0, `.000000000Z`, `Z`, 1))
	bad("authorized_until", "only an allow has authorized_until", `{"authorized_until":"2026-11-25T17:05:00Z",`+good0[1:])
	bad("a key entry that is also a revocation", "", strings.Replace(good0, `,"submitter"`, `,"revocation":{},"submitter"`, 1))
	add("a key entry logged by another submitter", "ok", "the submitter of a key entry is not checked", token, with(func(o *opts) {
		kl2 := *kl
		kl2.leaves = append([][]byte{[]byte(strings.Replace(good0, `"submitter":"example.com/govlog"`, `"submitter":"govlog"`, 1))}, kl.leaves[1:]...)
		o.keyReceipt = kl2.receipt(0, k.log)
	}))

	// Time, audience, issuer.
	add("29 s after exp", "ok", "30 s of leeway", token, with(func(o *opts) { o.now = allow.Expiry + 29 }))
	add("expired", "fail", "30 s after exp, leeway included", token, with(func(o *opts) { o.now = allow.Expiry + 30 }))
	add("not yet valid", "fail", "31 s before nbf", token, with(func(o *opts) { o.now = allow.NotBefore - 31 }))
	add("another audience", "fail", "", token, with(func(o *opts) { o.audience = "runtime.other.example" }))
	add("no audience configured", "fail", "", token, with(func(o *opts) { o.audience = "" }))
	otherIss := *claims
	otherIss.Issuer = "example.com/other"
	add("another issuer", "fail", "iss is the origin of the log key", signJWS(header, payload(&otherIss), k.artifact), base)

	// What the artifact authorizes.
	add("another action expected", "fail", "", token, with(func(o *opts) { o.authorize = &Authorize{Action: "delete", Resource: allow.Resource} }))
	add("another resource expected", "fail", "", token, with(func(o *opts) { o.authorize = &Authorize{Action: allow.Action, Resource: "svc/payments"} }))
	add("another subject expected", "fail", "", token, with(func(o *opts) {
		o.authorize = &Authorize{Action: allow.Action, Resource: allow.Resource, Subject: "agent-8"}
	}))

	// A witness policy on the key receipt's checkpoint.
	w := k.witnesses
	policy := fmt.Sprintf("witness w1 %s https://w1.witness.example\nwitness w2 %s https://w2.witness.example\ngroup g 2 w1 w2\nquorum g\n", w[0].vkey, w[1].vkey)
	add("policy satisfied", "ok", "the key receipt's checkpoint is cosigned by both witnesses", token, with(func(o *opts) {
		o.policy, o.keyReceipt = policy, kl.receipt(0, k.log, w[0], w[1])
	}))
	add("policy not satisfied", "fail", "one cosignature of two", token, with(func(o *opts) { o.policy, o.keyReceipt = policy, kl.receipt(0, k.log, w[0]) }))
	add("policy, no cosignature", "fail", "", token, with(func(o *opts) { o.policy = policy }))

	// The token.
	parts := strings.Split(token, ".")
	add("alg none", "fail", "", b64url([]byte(`{"alg":"none","kid":"test-artifact-1","typ":"govlog-authz+jwt"}`))+"."+parts[1]+".", base)
	add("typ JWT", "fail", "", signJWS(`{"alg":"EdDSA","kid":"test-artifact-1","typ":"JWT"}`, payload(claims), k.artifact), base)
	add("two parts", "fail", "", parts[0]+"."+parts[1], base)
	return cases, nil
}
