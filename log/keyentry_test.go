package log

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

const testKeyEntry = `{"key":{"jwk":{"alg":"EdDSA","crv":"Ed25519","kid":"k-1","kty":"OKP","use":"sig","x":"1N0vUp6PbXgq9qj8LraznA4RhRfptSd_ipsPVOLi7NY"},"kid":"k-1"},"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"govlog","v":1}`

func TestParseKeyEntry(t *testing.T) {
	e, err := ParseKeyEntry([]byte(testKeyEntry))
	if err != nil {
		t.Fatal(err)
	}
	if e.Kid != "k-1" || e.Submitter != "govlog" || len(e.PublicKey) != 32 || !strings.HasPrefix(string(e.JWK), `{"alg":"EdDSA"`) {
		t.Fatalf("parsed %+v", e)
	}
	for _, c := range []struct{ name, from, to string }{
		{"private key", `"crv"`, `"crv":"Ed25519","d":"AAAA","x"`},
		{"jwk kid differs", `"kid":"k-1","kty"`, `"kid":"k-2","kty"`},
		{"X25519", `"crv":"Ed25519"`, `"crv":"X25519"`},
		{"RSA", `"kty":"OKP"`, `"kty":"RSA"`},
		{"alg ES256", `"alg":"EdDSA"`, `"alg":"ES256"`},
		{"use enc", `"use":"sig"`, `"use":"enc"`},
		{"x short", `NY"`, `"`},
		{"x padded", `NY"`, `NY="`},
		{"kid empty", `},"kid":"k-1"}`, `},"kid":""}`},
		{"kid a number", `},"kid":"k-1"}`, `},"kid":1}`},
		{"v 2", `"v":1`, `"v":2`},
		{"v 1.0", `"v":1`, `"v":1.0`},
		{"no submitter", `,"submitter":"govlog"`, ``},
		{"empty submitter", `"submitter":"govlog"`, `"submitter":""`},
		{"logged_at in seconds", `.000000000Z`, `Z`},
		{"unknown member", `{"key"`, `{"a":1,"key"`},
		{"unknown key member", `{"key":{`, `{"key":{"a":1,`},
		{"not canonical", `,"logged_at"`, `, "logged_at"`},
		{"jwk null", `"jwk":{"alg":"EdDSA","crv":"Ed25519","kid":"k-1","kty":"OKP","use":"sig","x":"1N0vUp6PbXgq9qj8LraznA4RhRfptSd_ipsPVOLi7NY"}`, `"jwk":null`},
		{"a decision too", `,"logged_at"`, `,"logged_at_":1,"logged_at"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			leaf := strings.Replace(testKeyEntry, c.from, c.to, 1)
			if leaf == testKeyEntry {
				t.Fatal("the change changes nothing")
			}
			if _, err := ParseKeyEntry([]byte(leaf)); err == nil {
				t.Fatalf("accepted %s", leaf)
			}
		})
	}
}

// FuzzParseKeyEntry checks that an accepted key entry is canonical and
// that its parts re-encode to the same leaf.
func FuzzParseKeyEntry(f *testing.F) {
	f.Add([]byte(testKeyEntry))
	f.Add([]byte(`{"key":{"jwk":{"crv":"Ed25519","kty":"OKP","x":"1N0vUp6PbXgq9qj8LraznA4RhRfptSd_ipsPVOLi7NY"},"kid":"a"},"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"s","v":1}`))
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := ParseKeyEntry(leaf)
		if err != nil {
			return
		}
		canon, err := jcs.Transform(leaf)
		if err != nil || !bytes.Equal(canon, leaf) {
			t.Fatalf("accepted a leaf that is not canonical: %q", leaf)
		}
		kid, _ := canonicalString(e.Kid)
		sub, _ := canonicalString(e.Submitter)
		again := `{"key":{"jwk":` + string(e.JWK) + `,"kid":` + string(kid) + `},"logged_at":"` + e.LoggedAt.Format(LoggedAtLayout) + `","submitter":` + string(sub) + `,"v":1}`
		if again != string(leaf) {
			t.Fatalf("re-encoded %s, parsed %s", again, leaf)
		}
		if len(e.PublicKey) != 32 {
			t.Fatalf("key of %d bytes", len(e.PublicKey))
		}
	})
}
