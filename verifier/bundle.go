package verifier

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier/internal/strictjson"
)

// An evidence bundle (format govlog-evidence/v1, wire contract §4) is one
// JSON object: entries of a log, each with its inclusion proof against
// one checkpoint, the checkpoint with its cosignatures, and the log's
// artifact keys with their receipts. Its members come in this order, so
// that it can be checked as it is read, whatever its size:
//
//	{"format": "govlog-evidence/v1",
//	 "origin": "<the log's origin>",
//	 "verifier_key": "<the log's note verifier key>",
//	 "checkpoint": "<signed note, with cosignatures>",
//	 "query": {"<filter>": "<value>", …},
//	 "entries": [{"index": I, "entry": "<base64 leaf>", "inclusion_proof": ["<base64 hash>", …]}, …],
//	 "keys": [{"kid": "…", "jwk": {…}, "index": I, "receipt": {…JSON receipt…}}, …]}
//
// Entries are in increasing index order, each below the checkpoint's
// size. Base64 is standard and canonical. No other member is allowed.

// BundleFormat is the format member of an evidence bundle.
const BundleFormat = "govlog-evidence/v1"

// MaxBundleEntries is the most entries a bundle holds (the export limit).
const MaxBundleEntries = 100_000

// BundleEntry is one verified entry of a bundle.
type BundleEntry struct {
	Index    uint64
	LeafHash [32]byte
	Entry    *log.ParsedEntry
	Summary  log.Summary
}

// BundleKey is one verified artifact key of a bundle.
type BundleKey struct {
	KID   string
	Index uint64
}

// SubjectCounts is what a bundle shows of one subject: its decisions by
// outcome, and the executions and revocations of its decisions that are
// in the bundle.
type SubjectCounts struct {
	Allowed  int `json:"allowed"`
	Denied   int `json:"denied"`
	Executed int `json:"executed"`
	Violated int `json:"violated"`
	Revoked  int `json:"revoked"`
}

// BundleReport is the outcome of a bundle that verified.
type BundleReport struct {
	Origin     string
	Checkpoint log.Checkpoint
	Query      map[string]string
	Entries    int
	Keys       []BundleKey
	// Subjects counts per subject; executions and revocations of a
	// decision that is not in the bundle count under UnknownSubject.
	Subjects map[string]*SubjectCounts
	// Kinds counts the entries per kind.
	Kinds map[string]int
}

// UnknownSubject is the BundleReport.Subjects key of executions and
// revocations whose decision the bundle does not hold.
const UnknownSubject = ""

// SubjectNames returns the subjects of the report, sorted.
func (r *BundleReport) SubjectNames() []string {
	names := make([]string, 0, len(r.Subjects))
	for s := range r.Subjects {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// Bundle reads an evidence bundle from rd and verifies it with nothing but
// the log's key (and, when policy is not nil, the witness policy): the
// checkpoint's signature (and cosignatures), every entry's inclusion
// proof against it, that every entry is a valid govlog entry, and every
// key's receipt. It reads the bundle once, in order, keeping only
// per-subject counts; each, when not nil, is called with every verified
// entry. The first problem is the error (wrapping one of the verifier's
// Err values); a bundle is evidence only as a whole.
func Bundle(rd io.Reader, logKey note.Verifier, policy *Policy, each func(*BundleEntry) error) (*BundleReport, error) {
	b := &bundleReader{dec: json.NewDecoder(rd), key: logKey, policy: policy, each: each,
		report:    &BundleReport{Subjects: map[string]*SubjectCounts{}, Kinds: map[string]int{}},
		subjectOf: map[string]string{}}
	b.dec.UseNumber()
	if err := b.read(); err != nil {
		return nil, err
	}
	return b.report, nil
}

type bundleReader struct {
	dec       *json.Decoder
	key       note.Verifier
	policy    *Policy
	each      func(*BundleEntry) error
	report    *BundleReport
	cp        log.Checkpoint
	subjectOf map[string]string // decision id -> subject, for the decisions read
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: evidence bundle: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// delim reads the next token, which must be the delimiter d.
func (b *bundleReader) delim(d json.Delim) error {
	t, err := b.dec.Token()
	if err != nil {
		return malformed("%v", err)
	}
	if got, ok := t.(json.Delim); !ok || got != d {
		return malformed("want %q, got %v", d, t)
	}
	return nil
}

// member reads the next member name, which must be name.
func (b *bundleReader) member(name string) error {
	t, err := b.dec.Token()
	if err != nil {
		return malformed("%v", err)
	}
	if got, ok := t.(string); !ok || got != name {
		return malformed("want member %q next, got %v", name, t)
	}
	return nil
}

func (b *bundleReader) str(name string) (string, error) {
	if err := b.member(name); err != nil {
		return "", err
	}
	t, err := b.dec.Token()
	if err != nil {
		return "", malformed("%s: %v", name, err)
	}
	s, ok := t.(string)
	if !ok {
		return "", malformed("%s must be a string", name)
	}
	return s, nil
}

func (b *bundleReader) read() error {
	if err := b.delim('{'); err != nil {
		return err
	}
	format, err := b.str("format")
	if err != nil {
		return err
	}
	if format != BundleFormat {
		return malformed("format is %q, want %q", format, BundleFormat)
	}
	origin, err := b.str("origin")
	if err != nil {
		return err
	}
	if origin != b.key.Name() {
		return fmt.Errorf("%w: evidence bundle of the log %q, the key given is of %q", ErrMismatch, origin, b.key.Name())
	}
	b.report.Origin = origin
	vkey, err := b.str("verifier_key")
	if err != nil {
		return err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return malformed("verifier_key is not a note verifier key")
	}
	if v.Name() != b.key.Name() || v.KeyHash() != b.key.KeyHash() {
		return fmt.Errorf("%w: the bundle's verifier_key is not the key given", ErrMismatch)
	}
	text, err := b.str("checkpoint")
	if err != nil {
		return err
	}
	if b.cp, err = Checkpoint([]byte(text), b.key); err != nil {
		return err
	}
	if b.policy != nil {
		if err := b.policy.Check([]byte(text)); err != nil {
			return err
		}
	}
	b.report.Checkpoint = b.cp
	if err := b.member("query"); err != nil {
		return err
	}
	// Strictly, as every item: the query is not evidence, but it is read
	// alike by every parser (no duplicate names, valid UTF-8).
	var rawQuery json.RawMessage
	var q map[string]string
	if err := b.dec.Decode(&rawQuery); err != nil || strictjson.DecodeStrict(rawQuery, &q) != nil || q == nil {
		return malformed("query must be an object of strings")
	}
	b.report.Query = q
	if err := b.member("entries"); err != nil {
		return err
	}
	if err := b.entries(); err != nil {
		return err
	}
	if err := b.member("keys"); err != nil {
		return err
	}
	if err := b.keys(); err != nil {
		return err
	}
	if err := b.delim('}'); err != nil {
		return err
	}
	if _, err := b.dec.Token(); err != io.EOF {
		return malformed("data after the bundle")
	}
	return nil
}

// bundleEntryJSON is one item of entries.
type bundleEntryJSON struct {
	Index          json.RawMessage `json:"index"`
	Entry          string          `json:"entry"`
	InclusionProof []string        `json:"inclusion_proof"`
}

// maxProofHashes bounds an inclusion proof: a tree of 2^64 leaves.
const maxProofHashes = 64

func decodeStrict(raw json.RawMessage, v any, names ...string) error {
	// encoding/json matches member names without regard to case and keeps
	// the last of duplicate members: the names are checked exactly first,
	// and duplicates, invalid UTF-8 and nulls refused (strictjson).
	keys, err := strictjson.ObjectKeys(raw)
	if err != nil {
		return err
	}
	if len(keys) != len(names) {
		return errors.New("not the members of a bundle item")
	}
	for _, k := range keys {
		if !slices.Contains(names, k) {
			return fmt.Errorf("unknown member %q", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

// index reads a JSON number that must be a canonical decimal uint64.
func index(n json.Number) (uint64, error) {
	s := string(n)
	var v uint64
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a canonical index")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a canonical index")
		}
		d := uint64(s[i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, errors.New("index out of range")
		}
		v = v*10 + d
	}
	return v, nil
}

func (b *bundleReader) entries() error {
	if err := b.delim('['); err != nil {
		return err
	}
	var (
		n    int
		last uint64
	)
	for b.dec.More() {
		if n == MaxBundleEntries {
			return malformed("more than %d entries", MaxBundleEntries)
		}
		var raw json.RawMessage
		if err := b.dec.Decode(&raw); err != nil {
			return malformed("entry %d: %v", n, err)
		}
		var item bundleEntryJSON
		if err := decodeStrict(raw, &item, "index", "entry", "inclusion_proof"); err != nil || item.Entry == "" || item.InclusionProof == nil {
			return malformed("entry %d must be {index, entry, inclusion_proof}", n)
		}
		idx, err := index(json.Number(item.Index))
		if err != nil {
			return malformed("entry %d: index: %v", n, err)
		}
		if n > 0 && idx <= last {
			return malformed("entry %d: index %d does not follow %d", n, idx, last)
		}
		if idx >= b.cp.Size {
			return fmt.Errorf("%w: entry %d is not in the checkpoint of size %d", ErrBadProof, idx, b.cp.Size)
		}
		leaf, err := log.DecodeBase64(base64.StdEncoding, item.Entry)
		if err != nil {
			return malformed("entry %d: entry is not canonical base64", idx)
		}
		if len(item.InclusionProof) > maxProofHashes {
			return malformed("entry %d: the inclusion proof has %d hashes", idx, len(item.InclusionProof))
		}
		hashes := make([][32]byte, len(item.InclusionProof))
		for i, h := range item.InclusionProof {
			d, err := log.DecodeBase64(base64.StdEncoding, h)
			if err != nil || len(d) != 32 {
				return malformed("entry %d: proof hash %d is not the canonical base64 of 32 bytes", idx, i)
			}
			hashes[i] = [32]byte(d)
		}
		lh := log.LeafHash(leaf)
		if err := verifyInclusion(idx, lh, hashes, b.cp); err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
		parsed, err := log.ParseEntry(leaf)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrBadEntry, idx, err)
		}
		sum, err := log.Summarize(leaf)
		if err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrBadEntry, idx, err)
		}
		b.count(&sum)
		if b.each != nil {
			if err := b.each(&BundleEntry{Index: idx, LeafHash: lh, Entry: parsed, Summary: sum}); err != nil {
				return err
			}
		}
		last = idx
		n++
	}
	b.report.Entries = n
	return b.delim(']')
}

// count adds an entry to the per-subject counts.
func (b *bundleReader) count(s *log.Summary) {
	b.report.Kinds[s.Kind]++
	counts := func(subject string) *SubjectCounts {
		c := b.report.Subjects[subject]
		if c == nil {
			c = &SubjectCounts{}
			b.report.Subjects[subject] = c
		}
		return c
	}
	switch s.Kind {
	case log.SearchDecision:
		b.subjectOf[s.ID] = s.Subject
		if s.Outcome == log.OutcomeAllow {
			counts(s.Subject).Allowed++
		} else {
			counts(s.Subject).Denied++
		}
	case log.SearchExecution:
		c := counts(b.subjectOf[s.DecisionID])
		switch {
		case s.Violation != "":
			c.Violated++
		case s.Status == "succeeded":
			c.Executed++
		}
	case log.SearchRevocation:
		counts(b.subjectOf[s.DecisionID]).Revoked++
	}
}

// bundleKeyJSON is one item of keys.
type bundleKeyJSON struct {
	KID     string          `json:"kid"`
	JWK     json.RawMessage `json:"jwk"`
	Index   json.RawMessage `json:"index"`
	Receipt json.RawMessage `json:"receipt"`
}

func (b *bundleReader) keys() error {
	if err := b.delim('['); err != nil {
		return err
	}
	for n := 0; b.dec.More(); n++ {
		if n == 1000 {
			return malformed("more than 1000 keys")
		}
		var raw json.RawMessage
		if err := b.dec.Decode(&raw); err != nil {
			return malformed("key %d: %v", n, err)
		}
		var item bundleKeyJSON
		if err := decodeStrict(raw, &item, "kid", "jwk", "index", "receipt"); err != nil || item.KID == "" || item.JWK == nil || item.Receipt == nil {
			return malformed("key %d must be {kid, jwk, index, receipt}", n)
		}
		idx, err := index(json.Number(item.Index))
		if err != nil {
			return malformed("key %d: index: %v", n, err)
		}
		v, err := ReceiptJSON(item.Receipt, b.key)
		if err != nil {
			return fmt.Errorf("key %q: %w", item.KID, err)
		}
		if v.Index != idx {
			return fmt.Errorf("%w: key %q: its receipt is of entry %d, not %d", ErrMismatch, item.KID, v.Index, idx)
		}
		sum, err := log.Summarize(v.Leaf)
		if err != nil || sum.Kind != log.SearchKey || sum.ID != item.KID {
			return fmt.Errorf("%w: key %q: its receipt is not of the key entry %q", ErrMismatch, item.KID, item.KID)
		}
		if !jwkInEntry(v.Leaf, item.JWK) {
			return fmt.Errorf("%w: key %q: the jwk is not the logged one", ErrMismatch, item.KID)
		}
		b.report.Keys = append(b.report.Keys, BundleKey{KID: item.KID, Index: idx})
	}
	return b.delim(']')
}

// jwkInEntry reports whether the key entry leaf logs exactly this JWK.
func jwkInEntry(leaf []byte, jwk json.RawMessage) bool {
	var e struct {
		Key struct {
			JWK json.RawMessage `json:"jwk"`
		} `json:"key"`
	}
	if json.Unmarshal(leaf, &e) != nil {
		return false
	}
	var a, c bytes.Buffer
	if json.Compact(&a, e.Key.JWK) != nil || json.Compact(&c, jwk) != nil {
		return false
	}
	return bytes.Equal(a.Bytes(), c.Bytes())
}
