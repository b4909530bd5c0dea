package verifier_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
	"github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// wrapsOneSentinel reports whether err wraps exactly one of the
// verifier's errors.
func wrapsOneSentinel(err error) bool { return testlog.WrapsOne(err, testlog.Sentinels...) }

func TestReceiptTreeSizes(t *testing.T) {
	l := testlog.New(t)
	l.Grow(70)
	sizes := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			for index := range size {
				r := l.Receipt(index, size)
				v, err := verifier.Receipt([]byte(r.TLogProof), l.Verifier)
				if err != nil {
					t.Fatalf("index %d: %v", index, err)
				}
				e := l.Entries[index]
				if v.Index != index || v.Checkpoint.Size != size || v.Checkpoint.Origin != testlog.Origin ||
					v.LeafHash != log.LeafHash(e.Leaf) || !bytes.Equal(v.Leaf, e.Leaf) || v.Entry.ID != e.ID ||
					v.Entry.Kind != e.Kind || !v.Entry.LoggedAt.Equal(e.LoggedAt) || len(v.InclusionProof) != len(r.InclusionProof) {
					t.Fatalf("index %d: verified %+v does not describe entry %q", index, v, e.ID)
				}
				if v.Checkpoint.Hash != [32]byte(l.Tree.HashAt(size)) {
					t.Fatalf("index %d: root %x, want %x", index, v.Checkpoint.Hash, l.Tree.HashAt(size))
				}
				vj, err := verifier.ReceiptJSON(testlog.ReceiptJSON(t, r), l.Verifier)
				if err != nil {
					t.Fatalf("index %d: JSON receipt: %v", index, err)
				}
				if vj.Index != v.Index || vj.LeafHash != v.LeafHash || vj.Entry.ID != v.Entry.ID {
					t.Fatalf("index %d: JSON receipt verified as %+v, tlog-proof as %+v", index, vj, v)
				}
			}
		})
	}
}

func TestReceiptEntryKinds(t *testing.T) {
	l := testlog.New(t)
	l.Grow(5)
	for i, want := range []struct {
		kind    log.Kind
		outcome string
	}{{log.KindDecision, "allow"}, {log.KindDecision, "deny"}, {log.KindDecision, "allow"}, {log.KindDecision, "deny"}, {log.KindExecution, ""}} {
		v, err := verifier.Receipt([]byte(l.Receipt(uint64(i), 5).TLogProof), l.Verifier)
		if err != nil {
			t.Fatal(err)
		}
		if v.Entry.Kind != want.kind {
			t.Errorf("entry %d: kind %v, want %v", i, v.Entry.Kind, want.kind)
		}
		if want.kind == log.KindDecision && v.Entry.Decision.Outcome != want.outcome {
			t.Errorf("entry %d: outcome %q, want %q", i, v.Entry.Decision.Outcome, want.outcome)
		}
		if want.kind == log.KindExecution && v.Entry.Execution.DecisionID != "d-2" {
			t.Errorf("entry %d: decision_id %q, want d-2", i, v.Entry.Execution.DecisionID)
		}
	}
}

// TestReceiptLargeEntry checks an entry whose extra line is longer than the
// 64 KiB line limit of formats' tlog-proof parser.
func TestReceiptLargeEntry(t *testing.T) {
	reasons := make([]string, 16)
	for i := range reasons {
		reasons[i] = fmt.Sprintf("%q", strings.Repeat("€", 1024))
	}
	body := fmt.Appendf(nil, `{"id":"big","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"a","action":"b",`+
		`"policy":{"id":"p"},"reasons":[%s]}`, strings.Join(reasons, ","))
	l := testlog.New(t)
	l.Grow(2)
	e := l.AddDecision(body)
	l.Grow(5)
	r := l.Receipt(2, 5)
	if n := len(base64.StdEncoding.EncodeToString(e.Leaf)); n <= 64<<10 {
		t.Fatalf("the extra line is only %d bytes", n)
	}
	var p proof.TLogProof
	if err := p.Unmarshal([]byte(r.TLogProof)); err == nil {
		t.Log("formats now parses long extra lines; the workaround in parseTLogProof can go")
	}
	v, err := verifier.Receipt([]byte(r.TLogProof), l.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if v.Entry.ID != "big" || !bytes.Equal(v.Leaf, e.Leaf) {
		t.Fatalf("verified entry %q, want big", v.Entry.ID)
	}
}

func TestReceiptErrors(t *testing.T) {
	l := testlog.New(t)
	l.Grow(8)
	r := l.Receipt(5, 7)
	good := r.TLogProof
	cp := l.Checkpoint(7)
	hashes := l.Inclusion(5, 7)
	leaf := l.Entries[5].Leaf
	tp := func(index uint64, hashes [][32]byte, cp []byte, extra []byte) string {
		return string(proof.TLogProof{Index: index, Hashes: hashes, Checkpoint: cp, ExtraData: extra}.Marshal())
	}

	// A log that signs a leaf that is not a govlog entry.
	junk := testonly.New(rfc6962.DefaultHasher)
	junk.AppendData([]byte(`{"hello":"world"}`), leaf)
	junkCP, err := log.SignCheckpoint(l.Signer, 2, [32]byte(junk.Hash()))
	if err != nil {
		t.Fatal(err)
	}
	junkProof, _ := junk.InclusionProof(0, 2)

	// A checkpoint whose body names another origin, signed by the log key.
	otherOrigin, err := note.Sign(&note.Note{Text: "other.example/log\n7\n" + base64.StdEncoding.EncodeToString(cp.Hash[:]) + "\n"}, l.Signer)
	if err != nil {
		t.Fatal(err)
	}
	// A checkpoint with an extension line.
	extension, err := note.Sign(&note.Note{Text: string(cp.Body()) + "extension\n"}, l.Signer)
	if err != nil {
		t.Fatal(err)
	}
	// A size-0 checkpoint.
	empty := l.Checkpoint(0)
	// The log signature with the unused low bits of its last base64 digit set.
	sigLine := good[strings.LastIndex(good, " ")+1 : len(good)-1]
	last := strings.Index(base64Alphabet, sigLine[len(sigLine)-2:len(sigLine)-1])
	nonCanonicalSig := strings.Replace(good, sigLine, sigLine[:len(sigLine)-2]+string(base64Alphabet[last|1])+"=", 1)

	// A receipt whose extra line has base64 padding.
	var padded string
	for i := range uint64(7) {
		if len(l.Entries[i].Leaf)%3 != 0 {
			padded = l.Receipt(i, 7).TLogProof
			break
		}
	}
	if !strings.Contains(padded, "=\nindex") {
		t.Fatal("no test entry has padded base64")
	}

	_, wrongKey, _ := testlog.NoteKey(t, testlog.Origin, 2)
	_, wrongOrigin, _ := testlog.NoteKey(t, "other.example/log", 1)

	for _, tc := range []struct {
		name     string
		tlog     string
		key      note.Verifier
		want     error
		contains string
	}{
		{"another key of the same name: the key differs", good, wrongKey, verifier.ErrBadSignature, "checkpoint is not signed by example.com/govlog: it is signed by a key of that name with key ID"},
		{"key of another origin", good, wrongOrigin, verifier.ErrBadSignature, "checkpoint is not signed by other.example/log"},
		{"checkpoint body names another origin", tp(5, hashes, otherOrigin, leaf), l.Verifier, verifier.ErrBadCheckpoint, `"other.example/log"`},
		{"checkpoint with extension line", tp(5, hashes, extension, leaf), l.Verifier, verifier.ErrBadCheckpoint, "extension"},
		{"no extra line", tp(5, hashes, cp.Note, nil), l.Verifier, verifier.ErrMalformed, "no extra line"},
		{"empty", "", l.Verifier, verifier.ErrMalformed, "does not start with"},
		{"other header", strings.Replace(good, "@v1", "@v2", 1), l.Verifier, verifier.ErrMalformed, "does not start with"},
		{"index of another entry", tp(4, hashes, cp.Note, leaf), l.Verifier, verifier.ErrBadProof, "inclusion proof does not lead to the checkpoint root"},
		{"index = size", tp(7, hashes, cp.Note, leaf), l.Verifier, verifier.ErrBadProof, "index 7 is not below the checkpoint size 7"},
		{"index in empty tree", tp(0, nil, empty.Note, leaf), l.Verifier, verifier.ErrBadProof, "not below the checkpoint size 0"},
		{"proof one hash short", tp(5, hashes[:len(hashes)-1], cp.Note, leaf), l.Verifier, verifier.ErrBadProof, "malformed"},
		{"proof one hash long", tp(5, append(hashes, hashes[0]), cp.Note, leaf), l.Verifier, verifier.ErrBadProof, "malformed"},
		{"hashes swapped", tp(5, [][32]byte{hashes[1], hashes[0], hashes[2]}, cp.Note, leaf), l.Verifier, verifier.ErrBadProof, "does not lead"},
		{"entry of another leaf", tp(5, hashes, cp.Note, l.Entries[4].Leaf), l.Verifier, verifier.ErrBadProof, "does not lead"},
		{"checkpoint of another size", tp(5, hashes, l.Checkpoint(8).Note, leaf), l.Verifier, verifier.ErrBadProof, "does not lead"},
		{"leaf is not an entry", tp(0, [][32]byte{[32]byte(junkProof[0])}, junkCP.Note, []byte(`{"hello":"world"}`)), l.Verifier, verifier.ErrBadEntry, "entry 0"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), l.Verifier, verifier.ErrMalformed, ""},
		{"no final newline", strings.TrimSuffix(good, "\n"), l.Verifier, verifier.ErrMalformed, "canonical"},
		{"trailing newline", good + "\n", l.Verifier, verifier.ErrMalformed, ""},
		{"leading zero index", strings.Replace(good, "\nindex 5\n", "\nindex 05\n", 1), l.Verifier, verifier.ErrMalformed, "canonical"},
		{"unpadded extra", strings.Replace(padded, "=\nindex", "\nindex", 1), l.Verifier, verifier.ErrMalformed, ""},
		{"non-canonical signature base64", nonCanonicalSig, l.Verifier, verifier.ErrMalformed, "not canonical base64"},
		{"too large", good + strings.Repeat("x", verifier.MaxTLogProofBytes), l.Verifier, verifier.ErrMalformed, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verifier.Receipt([]byte(tc.tlog), tc.key)
			if err == nil {
				t.Fatalf("verified %+v", v)
			}
			if !errors.Is(err, tc.want) || !wrapsOneSentinel(err) {
				t.Errorf("error %q does not wrap exactly %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
		})
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// TestReceiptTruncated checks every proper prefix of a tlog-proof.
func TestReceiptTruncated(t *testing.T) {
	l := testlog.New(t)
	l.Grow(11)
	good := l.Receipt(9, 11).TLogProof
	for n := range len(good) {
		if v, err := verifier.Receipt([]byte(good[:n]), l.Verifier); err == nil {
			t.Fatalf("the first %d of %d bytes verified as %+v", n, len(good), v)
		}
	}
}

// TestReceiptMangled flips every bit of every byte of tlog-proofs, replaces
// every byte with a newline and deletes every byte: all must fail. The only
// bytes of a tlog-proof that Receipt does not check are the signatures of
// keys other than the log's (witness cosignatures), which Receipt leaves to
// a witness policy; there, a change must either fail or verify the very
// same entry in the very same tree.
func TestReceiptMangled(t *testing.T) {
	l := testlog.New(t)
	l.Grow(7)
	// A second signature by another key: to Receipt, it is the same as a
	// witness cosignature.
	cosigner, _, _ := testlog.NoteKey(t, "witness.example/w1", 9)
	cp := l.Checkpoint(7)
	cosigned, err := note.Sign(&note.Note{Text: string(cp.Body())}, l.Signer, cosigner)
	if err != nil {
		t.Fatal(err)
	}
	cosignedProof := proof.TLogProof{Index: 6, Hashes: l.Inclusion(6, 7), Checkpoint: cosigned, ExtraData: l.Entries[6].Leaf}.Marshal()
	for _, tc := range []struct {
		name string
		tlog []byte
	}{
		{"size 1", []byte(l.Receipt(0, 1).TLogProof)},
		{"index 5 of 7", []byte(l.Receipt(5, 7).TLogProof)},
		{"cosigned", cosignedProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := verifier.Receipt(tc.tlog, l.Verifier)
			if err != nil {
				t.Fatal(err)
			}
			// Bytes [lo, hi) are the cosignature line, if any.
			lo, hi := len(tc.tlog), len(tc.tlog)
			if i := bytes.Index(tc.tlog, []byte("— witness.example/w1 ")); i >= 0 {
				lo, hi = i, i+bytes.IndexByte(tc.tlog[i:], '\n')
			}
			check := func(what string, i int, mangled []byte) {
				v, err := verifier.Receipt(mangled, l.Verifier)
				if err != nil {
					if !wrapsOneSentinel(err) {
						t.Fatalf("%s byte %d: error %q wraps no sentinel", what, i, err)
					}
					return
				}
				if i < lo || i >= hi {
					t.Fatalf("%s byte %d (%q) of %d: still verifies", what, i, tc.tlog[i], len(tc.tlog))
				}
				if v.Index != want.Index || v.LeafHash != want.LeafHash || v.Checkpoint.Hash != want.Checkpoint.Hash ||
					v.Checkpoint.Size != want.Checkpoint.Size || v.Entry.ID != want.Entry.ID {
					t.Fatalf("%s byte %d of the cosignature: verifies another entry", what, i)
				}
			}
			buf := make([]byte, len(tc.tlog))
			for i := range tc.tlog {
				for bit := range 8 {
					copy(buf, tc.tlog)
					buf[i] ^= 1 << bit
					check(fmt.Sprintf("bit %d of", bit), i, buf)
				}
				if tc.tlog[i] != '\n' {
					copy(buf, tc.tlog)
					buf[i] = '\n'
					check("newline at", i, buf)
				}
				check("deleting", i, append(append([]byte{}, tc.tlog[:i]...), tc.tlog[i+1:]...))
			}
		})
	}
}

// TestReceiptJSONMangled flips every bit of the value of each field of a
// JSON receipt but tlog_proof (which TestReceiptMangled covers): all must
// fail.
func TestReceiptJSONMangled(t *testing.T) {
	l := testlog.New(t)
	l.Grow(6)
	body := testlog.ReceiptJSON(t, l.Receipt(2, 6))
	if _, err := verifier.ReceiptJSON(body, l.Verifier); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"id", "index", "leaf_hash", "entry", "checkpoint", "inclusion_proof"} {
		t.Run(field, func(t *testing.T) {
			lo, hi := valueSpan(t, body, field)
			buf := make([]byte, len(body))
			for i := lo; i < hi; i++ {
				for bit := range 8 {
					copy(buf, body)
					buf[i] ^= 1 << bit
					if v, err := verifier.ReceiptJSON(buf, l.Verifier); err == nil {
						t.Fatalf("bit %d of byte %d (%q) flipped: verified %+v", bit, i, body[i], v)
					} else if !wrapsOneSentinel(err) {
						t.Fatalf("error %q wraps no sentinel", err)
					}
				}
			}
		})
	}
}

// valueSpan returns where the value of a top-level member is in a JSON
// object written by encoding/json.
func valueSpan(t *testing.T, body []byte, field string) (int, int) {
	t.Helper()
	key := []byte(fmt.Sprintf("%q:", field))
	i := bytes.Index(body, key)
	if i < 0 {
		t.Fatalf("no %s in %s", field, body)
	}
	lo := i + len(key)
	hi := lo
	depth, inString := 0, false
	for ; hi < len(body); hi++ {
		c := body[hi]
		switch {
		case inString && c == '\\':
			hi++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
		if depth < 0 || (depth == 0 && !inString && c == ',') {
			break
		}
	}
	return lo, hi
}

func TestReceiptJSONErrors(t *testing.T) {
	l := testlog.New(t)
	l.Grow(6)
	r := l.Receipt(2, 6)
	other := l.Receipt(3, 6)
	later := l.Receipt(2, 5) // the same entry against another checkpoint
	good := testlog.ReceiptJSON(t, r)
	with := func(f func(r *log.Receipt)) []byte {
		c := *r
		f(&c)
		return testlog.ReceiptJSON(t, &c)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("no %s in the receipt", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	b64 := base64.StdEncoding.EncodeToString
	// leaf_hash with the unused low bits of its last base64 digit set.
	lh := b64(r.LeafHash)
	nonCanonicalLeafHash := lh[:42] + string(base64Alphabet[strings.IndexByte(base64Alphabet, lh[42])|1]) + "="

	for _, tc := range []struct {
		name     string
		body     []byte
		want     error
		contains string
	}{
		{"id of another entry", with(func(r *log.Receipt) { r.ID = other.ID }), verifier.ErrMismatch, `receipt id "d-3" is not the id of its entry, "d-2"`},
		{"index", with(func(r *log.Receipt) { r.Index = 3 }), verifier.ErrMismatch, "index 3"},
		{"entry", with(func(r *log.Receipt) { r.Entry = other.Entry }), verifier.ErrMismatch, "entry is not the tlog_proof entry"},
		{"leaf_hash", with(func(r *log.Receipt) { r.LeafHash = other.LeafHash }), verifier.ErrMismatch, "entry does not hash to leaf_hash"},
		{"non-canonical leaf_hash", replace(lh, nonCanonicalLeafHash), verifier.ErrMalformed, "leaf_hash is not base64"},
		{"checkpoint", with(func(r *log.Receipt) { r.Checkpoint = later.Checkpoint }), verifier.ErrMismatch, "checkpoint"},
		{"inclusion_proof of another checkpoint", with(func(r *log.Receipt) { r.InclusionProof = later.InclusionProof }), verifier.ErrMismatch, "inclusion_proof"},
		{"inclusion_proof short", with(func(r *log.Receipt) { r.InclusionProof = r.InclusionProof[1:] }), verifier.ErrMismatch, "hashes"},
		{"tlog_proof of another entry", with(func(r *log.Receipt) { r.TLogProof = other.TLogProof }), verifier.ErrMismatch, ""},
		{"tlog_proof broken", with(func(r *log.Receipt) { r.TLogProof = r.TLogProof[1:] }), verifier.ErrMalformed, "tlog_proof"},
		{"missing id", replace(`"id":"d-2",`, ``), verifier.ErrMalformed, "receipt has no id"},
		{"null inclusion_proof", with(func(r *log.Receipt) { r.InclusionProof = nil }), verifier.ErrMalformed, "null"},
		{"duplicate id", replace(`"id":"d-2",`, `"id":"d-2","id":"d-3",`), verifier.ErrMalformed, `duplicate member "id"`},
		{"unknown field", replace(`"id":"d-2",`, `"id":"d-2","note":1,`), verifier.ErrMalformed, "unknown member"},
		{"trailing data", append(append([]byte{}, good...), "{}"...), verifier.ErrMalformed, "after"},
		{"not an object", []byte(`[]`), verifier.ErrMalformed, "not a JSON object"},
		{"fractional index", replace(`"index":2,`, `"index":2.0,`), verifier.ErrMalformed, ""},
		{"line break in base64", replace(`"leaf_hash":"`, `"leaf_hash":"\n`), verifier.ErrMalformed, "leaf_hash is not base64"},
		{"lone surrogate", replace(`"id":"d-2",`, `"id":"d-2","artifact":"\ud800",`), verifier.ErrMalformed, "surrogate"},
		{"null artifact", replace(`"id":"d-2",`, `"id":"d-2","artifact":null,`), verifier.ErrMalformed, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verifier.ReceiptJSON(tc.body, l.Verifier)
			if err == nil {
				t.Fatalf("verified %+v", v)
			}
			if !errors.Is(err, tc.want) || !wrapsOneSentinel(err) {
				t.Errorf("error %q does not wrap exactly %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
		})
	}

	t.Run("with artifact", func(t *testing.T) {
		if _, err := verifier.ReceiptJSON(with(func(r *log.Receipt) { r.Artifact = "a.b.c" }), l.Verifier); err != nil {
			t.Fatal(err)
		}
	})
}
