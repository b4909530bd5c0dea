package server

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/govlog/govlog/log"
)

// query holds a request's query parameters, each given at most once.
type query map[string]string

// maxDecimalDigits is the most digits of a uint64.
const maxDecimalDigits = 20

// parseQuery parses a raw query string strictly: every parameter must be
// one of allowed and appear once; an empty parameter ("a=1&&b=2") or one
// that does not percent-decode is refused.
func parseQuery(raw string, allowed ...string) (query, error) {
	q := query{}
	if raw == "" {
		return q, nil
	}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			return nil, invalidRequest("empty query parameter")
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, invalidRequest("malformed query parameter name")
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, invalidRequest("malformed value of query parameter %q", clip(key))
		}
		if !slices.Contains(allowed, key) {
			if len(allowed) == 0 {
				return nil, invalidRequest("unknown query parameter %q: this resource takes none", clip(key))
			}
			return nil, invalidRequest("unknown query parameter %q (allowed: %s)", clip(key), strings.Join(allowed, ", "))
		}
		if _, dup := q[key]; dup {
			return nil, invalidRequest("query parameter %q given more than once", key)
		}
		q[key] = value
	}
	return q, nil
}

// uint returns the parameter name as a canonical decimal: digits only, no
// sign, no leading zero (except "0" itself), no fraction, no white space,
// at most 2^64-1. ok is false when the parameter is absent.
func (q query) uint(name string) (n uint64, ok bool, err error) {
	s, ok := q[name]
	if !ok {
		return 0, false, nil
	}
	// The error is built only when needed: this runs on every proof
	// request.
	bad := func() error {
		return invalidRequest("%s: must be a decimal integer without sign or leading zeros, got %q", name, clip(s))
	}
	if s == "" || len(s) > maxDecimalDigits || (len(s) > 1 && s[0] == '0') {
		return 0, true, bad()
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, true, bad()
		}
	}
	n, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, true, invalidRequest("%s: %s is out of range", name, s)
	}
	return n, true, nil
}

// leafHash returns the parameter name as a 32-byte hash in base64, with or
// without padding: in the standard alphabet, as receipts carry it (RFC
// 4648 §4; a '+' sent unescaped arrives as a space, read back as '+'), or
// in the URL alphabet (§5). The value must be the hash's exact encoding.
func (q query) leafHash(name string) (h [32]byte, ok bool, err error) {
	s, ok := q[name]
	if !ok {
		return h, false, nil
	}
	v := strings.ReplaceAll(s, " ", "+")
	var enc *base64.Encoding
	switch padded := strings.HasSuffix(v, "="); {
	case strings.ContainsAny(v, "+/") && padded:
		enc = base64.StdEncoding
	case strings.ContainsAny(v, "+/"):
		enc = base64.RawStdEncoding
	case padded:
		enc = base64.URLEncoding
	default:
		enc = base64.RawURLEncoding
	}
	// The value must be the hash's one encoding.
	b, err := log.DecodeBase64(enc, v)
	if err != nil || len(b) != len(h) {
		return h, true, invalidRequest("%s: must be a SHA-256 hash (32 bytes) in base64 or base64url", name)
	}
	copy(h[:], b)
	return h, true, nil
}
