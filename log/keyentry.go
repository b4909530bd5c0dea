package log

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gowebpki/jcs"
)

// KeyEntry is a key entry read back from the log: an artifact signing key,
// logged before anything is signed with it (wire contract §2e, §3). Its
// leaf is the RFC 8785 canonical JSON of
//
//	{"key":{"jwk":<public JWK>,"kid":"<kid>"},"logged_at":"…","submitter":"…","v":1}
//
// for example
//
//	{"key":{"jwk":{"alg":"EdDSA","crv":"Ed25519","kid":"k-1","kty":"OKP","use":"sig","x":"1N0vUp6PbXgq9qj8LraznA4RhRfptSd_ipsPVOLi7NY"},"kid":"k-1"},"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"govlog","v":1}
type KeyEntry struct {
	// Kid is the key id artifacts signed with the key name in their header.
	Kid string
	// JWK is the public JWK, byte for byte as in the leaf.
	JWK []byte
	// PublicKey is the Ed25519 public key of JWK.
	PublicKey ed25519.PublicKey
	LoggedAt  time.Time
	Submitter string
}

// keyJWKMembers are the members a logged JWK may have: a public Ed25519
// key for EdDSA signatures, nothing else (never "d").
var keyJWKMembers = map[string]bool{"alg": true, "crv": true, "kid": true, "kty": true, "use": true, "x": true}

// ParseKeyEntry parses and fully validates the leaf of a key entry: RFC
// 8785 canonical JSON with exactly the members key, logged_at, submitter
// and v (1); key holds exactly kid (1–256 chars) and jwk, a public Ed25519
// JWK (kty OKP, crv Ed25519, x the canonical unpadded base64url of 32
// bytes; alg EdDSA and use sig when present; kid, when present, the key's
// kid; no other member).
func ParseKeyEntry(leaf []byte) (*KeyEntry, error) {
	if len(leaf) > MaxEntryBytes {
		return nil, fmt.Errorf("entry is %d bytes, the limit is %d", len(leaf), MaxEntryBytes)
	}
	canon, err := jcs.Transform(leaf)
	if err != nil {
		return nil, fmt.Errorf("entry is not valid JSON: %w", err)
	}
	if !bytes.Equal(canon, leaf) {
		return nil, fmt.Errorf("entry is not in RFC 8785 canonical form")
	}
	// Member names are checked exactly: encoding/json would match them
	// without regard to case.
	members, err := exactMembers(leaf, "key", "logged_at", "submitter", "v")
	if err != nil {
		return nil, fmt.Errorf("entry is not a key entry: %w", err)
	}
	var v int
	var loggedAt, submitter string
	if json.Unmarshal(members["v"], &v) != nil || v != EntryVersion || string(members["v"]) != "1" {
		return nil, fmt.Errorf("entry has v %s, want %d", clip(string(members["v"])), EntryVersion)
	}
	if json.Unmarshal(members["logged_at"], &loggedAt) != nil {
		return nil, fmt.Errorf("entry has a bad logged_at")
	}
	if json.Unmarshal(members["submitter"], &submitter) != nil || submitter == "" {
		return nil, fmt.Errorf("entry has no submitter")
	}
	e := &KeyEntry{Submitter: submitter}
	if e.LoggedAt, err = parseExact(LoggedAtLayout, loggedAt); err != nil {
		return nil, fmt.Errorf("entry has a bad logged_at %q", clip(loggedAt))
	}
	key, err := exactMembers(members["key"], "jwk", "kid")
	if err != nil {
		return nil, fmt.Errorf("entry's key: %w", err)
	}
	if json.Unmarshal(key["kid"], &e.Kid) != nil || e.Kid == "" || len([]rune(e.Kid)) > 256 {
		return nil, fmt.Errorf("entry's key has a bad kid")
	}
	e.JWK = key["jwk"]
	var jwk map[string]json.RawMessage
	if err := json.Unmarshal(e.JWK, &jwk); err != nil || jwk == nil {
		return nil, fmt.Errorf("entry's jwk is not a JSON object")
	}
	str := map[string]string{}
	for name, raw := range jwk {
		if !keyJWKMembers[name] {
			return nil, fmt.Errorf("entry's jwk has a member %q: a logged key is a public Ed25519 key", clip(name))
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, fmt.Errorf("entry's jwk member %q is not a string", name)
		}
		str[name] = s
	}
	switch {
	case str["kty"] != "OKP" || str["crv"] != "Ed25519":
		return nil, fmt.Errorf("entry's jwk is not an Ed25519 key (kty %q, crv %q)", clip(str["kty"]), clip(str["crv"]))
	case jwk["alg"] != nil && str["alg"] != "EdDSA":
		return nil, fmt.Errorf("entry's jwk is for alg %q, not EdDSA", clip(str["alg"]))
	case jwk["use"] != nil && str["use"] != "sig":
		return nil, fmt.Errorf("entry's jwk is for use %q, not sig", clip(str["use"]))
	case jwk["kid"] != nil && str["kid"] != e.Kid:
		return nil, fmt.Errorf("entry's jwk has kid %q, the entry %q", clip(str["kid"]), clip(e.Kid))
	}
	x, err := DecodeBase64(base64.RawURLEncoding, str["x"])
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("entry's jwk x is not the unpadded base64url of a 32-byte key")
	}
	e.PublicKey = x
	return e, nil
}

// exactMembers decodes a JSON object that must have exactly the members
// names, each once (duplicates were refused by the RFC 8785 check).
func exactMembers(obj []byte, names ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil || m == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	for name := range m {
		found := false
		for _, n := range names {
			found = found || n == name
		}
		if !found {
			return nil, fmt.Errorf("unknown member %q", clip(name))
		}
	}
	for _, n := range names {
		if m[n] == nil {
			return nil, fmt.Errorf("no member %q", n)
		}
	}
	return m, nil
}
