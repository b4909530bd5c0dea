package verifier

import (
	"bytes"
	"encoding/base64"
	"strconv"

	"github.com/transparency-dev/formats/proof"
)

// fastTLogProof is the fast path of parseTLogProof: it accepts only a
// tlog-proof written exactly as proof.TLogProof.Marshal writes it (the
// canonical form parseTLogProof requires), reading it in one pass instead
// of parsing it with a line scanner and encoding it again. Anything else
// is left to the full parser, which decides and explains; the tests check
// that an input accepted here is accepted there with the same result.
func fastTLogProof(data []byte) (*proof.TLogProof, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(tlogProofHeader+"\n"))
	if !ok {
		return nil, false
	}
	line := func() ([]byte, bool) {
		l, after, ok := bytes.Cut(rest, []byte("\n"))
		rest = after
		return l, ok
	}
	p := &proof.TLogProof{}
	l, ok := line()
	if !ok {
		return nil, false
	}
	if b64, isExtra := bytes.CutPrefix(l, []byte("extra ")); isExtra {
		extra := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
		n, err := base64.StdEncoding.Strict().Decode(extra, b64)
		// Decode skips CR and LF: the length check refuses them.
		if err != nil || base64.StdEncoding.EncodedLen(n) != len(b64) {
			return nil, false
		}
		p.ExtraData = extra[:n]
		if l, ok = line(); !ok {
			return nil, false
		}
	}
	idx, isIndex := bytes.CutPrefix(l, []byte("index "))
	if !isIndex || len(idx) == 0 || len(idx) > 20 || (idx[0] == '0' && len(idx) > 1) {
		return nil, false
	}
	for _, c := range idx {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	var err error
	if p.Index, err = strconv.ParseUint(string(idx), 10, 64); err != nil {
		return nil, false
	}
	for {
		l, ok := line()
		if !ok {
			return nil, false
		}
		if len(l) == 0 {
			break
		}
		var h [33]byte // DecodedLen(44)
		if len(l) != 44 {
			return nil, false
		}
		if n, err := base64.StdEncoding.Strict().Decode(h[:], l); err != nil || n != 32 {
			return nil, false
		}
		p.Hashes = append(p.Hashes, [32]byte(h[:32]))
	}
	// The checkpoint: the rest, whole lines, no carriage returns (the line
	// scanner would drop one before a newline), none too long for it.
	if len(rest) == 0 || len(rest) > MaxCheckpointBytes || rest[len(rest)-1] != '\n' || bytes.IndexByte(rest, '\r') >= 0 {
		return nil, false
	}
	p.Checkpoint = rest
	return p, true
}
