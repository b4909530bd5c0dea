package loadgen

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// receipt holds the fields of a receipt that check reads: the tlog-proof
// carries the entry, the proof and the checkpoint. Artifact is read only
// by claim.
type receipt struct {
	ID        string   `json:"id"`
	Index     uint64   `json:"index"`
	LeafHash  []byte   `json:"leaf_hash"`
	TLogProof jsonText `json:"tlog_proof"`
	Artifact  string   `json:"artifact"`
}

// jsonText is a JSON string's value as bytes (not base64, as []byte is
// for encoding/json): what the verifier reads.
type jsonText []byte

func (t *jsonText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = []byte(s)
	return nil
}

// decodeReceipt decodes the JSON receipt of a single submission into rc,
// as json.Unmarshal does.
func decodeReceipt(body []byte, rc *receipt) error {
	if rest, ok := fastReceipt(body, rc); ok && len(bytes.TrimLeft(rest, " \t\r\n")) == 0 {
		return nil
	}
	*rc = receipt{}
	return json.Unmarshal(body, rc)
}

// batchResult is an item of a batch's answer: a receipt or an error.
type batchResult struct {
	receipt
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// decodeBatch decodes the answer of a batch, {"results":[…]}, as
// json.Unmarshal does.
func decodeBatch(body []byte) ([]batchResult, error) {
	if out, ok := fastBatch(body); ok {
		return out, nil
	}
	var out struct {
		Results []batchResult `json:"results"`
	}
	err := json.Unmarshal(body, &out)
	return out.Results, err
}

// The fast path reads a receipt in one pass when it is written exactly as
// the server writes one (log.Receipt.AppendJSON): its members in that
// order, no white space, strings of printable characters in valid UTF-8
// whose only escape is \n (the line ends of the notes). encoding/json
// scans a receipt twice (once to validate it, once to decode it, by
// reflection), which was a fifth of the load generator's CPU. Anything
// else is left to encoding/json, which decides and explains: an input the
// fast path accepts decodes to what json.Unmarshal makes of it (the tests
// and FuzzFastReceipt check it), so a malformed receipt still fails as it
// did.

// fastReceipt reads one receipt at the start of b into rc and returns
// what follows it.
func fastReceipt(b []byte, rc *receipt) (rest []byte, ok bool) {
	s := scan{b: b}
	*rc = receipt{}
	var id, lh, tp, art []byte
	ok = s.lit(`{"id":`) && s.str(&id) &&
		s.lit(`,"index":`) && s.index(&rc.Index) &&
		s.lit(`,"leaf_hash":`) && s.str(&lh) &&
		s.lit(`,"entry":`) && s.str(nil) &&
		s.lit(`,"checkpoint":`) && s.str(nil) &&
		s.lit(`,"inclusion_proof":`) && s.stringArray() &&
		s.lit(`,"tlog_proof":`) && s.str(&tp)
	if !ok {
		return nil, false
	}
	if !s.copied { // tp is a slice of b
		tp = bytes.Clone(tp)
	}
	if s.lit(`,"artifact":`) && !s.str(&art) || !s.lit(`}`) {
		return nil, false
	}
	// encoding/json decodes []byte with base64.StdEncoding (not strict).
	rc.LeafHash = make([]byte, base64.StdEncoding.DecodedLen(len(lh)))
	n, err := base64.StdEncoding.Decode(rc.LeafHash, lh)
	if err != nil {
		return nil, false
	}
	rc.LeafHash = rc.LeafHash[:n]
	rc.ID, rc.TLogProof, rc.Artifact = string(id), tp, string(art)
	return b[s.i:], true
}

// fastBatch reads a batch's answer made only of receipts.
func fastBatch(b []byte) ([]batchResult, bool) {
	s := scan{b: b}
	if !s.lit(`{"results":[`) {
		return nil, false
	}
	out := []batchResult{} // as encoding/json makes of []
	if !s.lit(`]`) {
		for {
			out = append(out, batchResult{})
			rest, ok := fastReceipt(b[s.i:], &out[len(out)-1].receipt)
			if !ok {
				return nil, false
			}
			s.i = len(b) - len(rest)
			if s.lit(`]`) {
				break
			}
			if !s.lit(`,`) {
				return nil, false
			}
		}
	}
	if !s.lit(`}`) || len(bytes.TrimLeft(b[s.i:], " \t\r\n")) != 0 {
		return nil, false
	}
	return out, true
}

// proofAnswer is what RunProofs reads of an inclusion proof's answer.
type proofAnswer struct {
	Hashes [][]byte `json:"hashes"`
}

// decodeProof decodes the answer of GET /v1/proofs/inclusion, as
// json.Unmarshal does: in one pass when it is written exactly as the
// server writes one ({"index":…,"tree_size":…,"hashes":[…]}), else by
// encoding/json.
func decodeProof(b []byte, p *proofAnswer) error {
	s := scan{b: b}
	*p = proofAnswer{}
	var index, size uint64
	if s.lit(`{"index":`) && s.index(&index) && s.lit(`,"tree_size":`) && s.index(&size) && s.lit(`,"hashes":[`) {
		hashes := make([][]byte, 0, 64)
		var h []byte
		ok := s.lit(`]`)
		for !ok && s.str(&h) {
			d := make([]byte, base64.StdEncoding.DecodedLen(len(h)))
			n, err := base64.StdEncoding.Decode(d, h)
			if err != nil {
				break
			}
			hashes = append(hashes, d[:n])
			ok = s.lit(`]`)
			if !ok && !s.lit(`,`) {
				break
			}
		}
		if ok && s.lit(`}`) && len(bytes.TrimLeft(b[s.i:], " \t\r\n")) == 0 {
			p.Hashes = hashes
			return nil
		}
	}
	*p = proofAnswer{}
	return json.Unmarshal(b, p)
}

// scan reads b from i on.
type scan struct {
	b []byte
	i int
	// copied is whether the last string str read was copied out of b.
	copied bool
}

// lit reads the text l.
func (s *scan) lit(l string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(l)) {
		return false
	}
	s.i += len(l)
	return true
}

// str reads a string of the fast path and, when v is not nil, sets *v to
// its value (a new slice when it had escapes, else a slice of s.b).
func (s *scan) str(v *[]byte) bool {
	if !s.lit(`"`) {
		return false
	}
	start, escapes, ascii := s.i, 0, true
	b := s.b
	i := s.i
	for {
		// Eight bytes at a time while they are plain printable ASCII.
		for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			return false
		}
		c := b[i]
		switch {
		case c == '"':
			raw := b[start:i]
			s.i = i + 1
			if !ascii && !utf8.Valid(raw) {
				return false
			}
			if v == nil {
				return true
			}
			s.copied = escapes > 0
			if escapes == 0 {
				*v = raw
				return true
			}
			out := make([]byte, 0, len(raw)-escapes)
			for {
				before, after, found := bytes.Cut(raw, []byte(`\n`))
				out = append(out, before...)
				if !found {
					break
				}
				out, raw = append(out, '\n'), after
			}
			*v = out
			return true
		case c == '\\':
			if i+1 >= len(b) || b[i+1] != 'n' {
				return false
			}
			escapes++
			i += 2
		case c < 0x20:
			return false
		default:
			if c >= 0x80 {
				ascii = false
			}
			i++
		}
	}
}

// stringArray reads null or an array of strings of the fast path.
func (s *scan) stringArray() bool {
	if s.lit(`null`) {
		return true
	}
	if !s.lit(`[`) {
		return false
	}
	if s.lit(`]`) {
		return true
	}
	for {
		if !s.str(nil) {
			return false
		}
		if s.lit(`]`) {
			return true
		}
		if !s.lit(`,`) {
			return false
		}
	}
}

// index reads a JSON number that is a whole number that fits in a uint64.
func (s *scan) index(v *uint64) bool {
	j := s.i
	for j < len(s.b) && '0' <= s.b[j] && s.b[j] <= '9' {
		j++
	}
	d := s.b[s.i:j]
	// No leading zero (not JSON), no fraction or exponent (not a
	// uint64 for encoding/json).
	if len(d) == 0 || (d[0] == '0' && len(d) > 1) || (j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E')) {
		return false
	}
	n, err := strconv.ParseUint(string(d), 10, 64)
	if err != nil {
		return false
	}
	*v, s.i = n, j
	return true
}

// plain8 reports whether the eight bytes of w are all in 0x20..0x7F and
// none is a quote or a backslash.
func plain8(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	below20 := (w - 0x20*ones) & ^w & highs // a byte < 0x20 (when none ≥ 0x80)
	bs := w ^ 0x5c*ones                     // a zero byte where w has '\\'
	backslash := (bs - ones) & ^bs & highs
	q := w ^ 0x22*ones // a zero byte where w has '"'
	quote := (q - ones) & ^q & highs
	return (w&highs)|below20|backslash|quote == 0
}
