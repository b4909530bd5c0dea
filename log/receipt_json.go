package log

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/govlog/govlog/internal/b64"
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
	entry := len(b)
	if r.entry64 != "" && len(r.Entry) == len(r.entryOf) && unsafe.SliceData(r.Entry) == unsafe.SliceData(r.entryOf) {
		// NewReceipt's base64 of this very Entry.
		b = append(append(append(b, '"'), r.entry64...), '"')
	} else {
		b = appendJSONBytes(b, r.Entry)
	}
	b = append(b, `,"checkpoint":`...)
	cp := len(b)
	b = appendJSONString(b, r.Checkpoint)
	b = append(b, `,"inclusion_proof":`...)
	proof := len(b)
	switch {
	case r.InclusionProof == nil:
		b = append(b, "null"...)
	case r.sameProof():
		// NewReceipt's base64 of these very hashes.
		b = append(b, '[')
		for i := range r.InclusionProof {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, '"'), r.proof64[i*(hashBase64+1):i*(hashBase64+1)+hashBase64]...), '"')
		}
		b = append(b, ']')
	default:
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
	b = r.appendTLogProof(b, entry, cp, proof)
	if r.Artifact != "" {
		b = append(b, `,"artifact":`...)
		b = appendJSONString(b, r.Artifact)
	}
	return append(b, '}')
}

// sameProof reports whether each hash of r.InclusionProof is still the
// one of r.proofOf that NewReceipt encoded into r.proof64.
func (r *Receipt) sameProof() bool {
	if len(r.InclusionProof) != len(r.proofOf) || len(r.proof64) != len(r.proofOf)*(hashBase64+1) {
		return false
	}
	for i, h := range r.InclusionProof {
		if len(h) != 32 || unsafe.SliceData(h) != &r.proofOf[i][0] {
			return false
		}
	}
	return true
}

// appendTLogProof appends r.TLogProof as a JSON string. b holds the rest
// of the receipt's JSON: its entry at b[entry:], its checkpoint at b[cp:]
// and its inclusion proof at b[proof:]. A tlog-proof is those three
// again, as NewReceipt writes it: the header, "extra " and the base64 of
// the entry, the index, the base64 of each proof hash, each on a line of
// its own, an empty line and the checkpoint. Each of those parts is
// checked against the one b holds, and copied from there rather than
// encoded and escaped a second time (the escaping of a string is the
// escaping of its parts when they are cut after an ASCII byte, here
// '\n'); anything else is escaped as any string.
func (r *Receipt) appendTLogProof(b []byte, entry, cp, proof int) []byte {
	s, start := r.TLogProof, len(b)
	// part and text consume want from s.
	part := func(want []byte) bool {
		if len(s) < len(want) || s[:len(want)] != string(want) {
			return false
		}
		s = s[len(want):]
		return true
	}
	text := func(want string) bool {
		if !strings.HasPrefix(s, want) {
			return false
		}
		s = s[len(want):]
		return true
	}
	b = append(b, '"')
	if !text(tlogProofHeader) {
		return appendJSONString(b[:start], r.TLogProof)
	}
	b = append(b, `c2sp.org/tlog-proof@v1\n`...)
	if r.Entry != nil {
		// b[entry:] is "BASE64",
		e := b[entry+1 : entry+1+base64.StdEncoding.EncodedLen(len(r.Entry))]
		if !text("extra ") || !part(e) || !text("\n") {
			return appendJSONString(b[:start], r.TLogProof)
		}
		b = append(b, "extra "...)
		b = append(b, b[entry+1:entry+1+len(e)]...)
		b = append(b, `\n`...)
	}
	var index [len("index \n") + 20]byte
	if !part(append(strconv.AppendUint(append(index[:0], "index "...), r.Index, 10), '\n')) {
		return appendJSONString(b[:start], r.TLogProof)
	}
	b = append(strconv.AppendUint(append(b, "index "...), r.Index, 10), `\n`...)
	// b[proof:] is ["BASE64","BASE64",…].
	p := proof + 2
	for _, h := range r.InclusionProof {
		n := base64.StdEncoding.EncodedLen(len(h))
		if h == nil || !part(b[p:p+n]) || !text("\n") {
			return appendJSONString(b[:start], r.TLogProof)
		}
		b = append(b, b[p:p+n]...)
		b = append(b, `\n`...)
		p += n + len(`","`)
	}
	// b[cp:] is "ESCAPED",
	if !text("\n") || s != r.Checkpoint {
		return appendJSONString(b[:start], r.TLogProof)
	}
	b = append(b, `\n`...)
	b = append(b, b[cp+1:proof-len(`","inclusion_proof":`)]...)
	return append(b, '"')
}

// appendJSONBytes appends b as encoding/json writes a []byte: standard
// base64 in a string, null for nil.
func appendJSONBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = b64.AppendStd(dst, b)
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
