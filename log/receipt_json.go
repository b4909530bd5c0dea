package log

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the JSON of r to b: byte for byte what encoding/json
// writes for it with HTML escaping off (json.Encoder.SetEscapeHTML(false)),
// as the server answers, without the reflection. A server writes thousands
// of receipts a second; the tests and a fuzz target hold this to
// encoding/json.
func (r *Receipt) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, r.Index, 10)
	b = append(b, `,"leaf_hash":`...)
	b = appendJSONBytes(b, r.LeafHash)
	b = append(b, `,"entry":`...)
	b = appendJSONBytes(b, r.Entry)
	b = append(b, `,"checkpoint":`...)
	b = appendJSONString(b, r.Checkpoint)
	b = append(b, `,"inclusion_proof":`...)
	if r.InclusionProof == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, h := range r.InclusionProof {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONBytes(b, h)
		}
		b = append(b, ']')
	}
	b = append(b, `,"tlog_proof":`...)
	b = appendJSONString(b, r.TLogProof)
	if r.Artifact != "" {
		b = append(b, `,"artifact":`...)
		b = appendJSONString(b, r.Artifact)
	}
	return append(b, '}')
}

// appendJSONBytes appends b as encoding/json writes a []byte: standard
// base64 in a string, null for nil.
func appendJSONBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendJSONString appends s as encoding/json writes a string with HTML
// escaping off: '"', '\\' and control characters escaped (\b \f \n \r \t,
// else \u00xx), invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and
// \u2029.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && !special8(load64(s, i), true) {
			i += 8
			continue
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = appendEscaped(append(dst, s[start:i]...), b)
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
