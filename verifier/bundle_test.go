package verifier_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/testlog"
)

// testBundle writes the evidence bundle of entries idx of l against the
// checkpoint of size, as GET /v1/export writes it.
func testBundle(l *testlog.Log, size uint64, vkey string, idx ...uint64) []byte {
	cp := l.Checkpoint(size)
	head, _ := json.Marshal(map[string]any{"checkpoint": string(cp.Note)})
	var b strings.Builder
	fmt.Fprintf(&b, `{"format":"govlog-evidence/v1","origin":%q,"verifier_key":%q,%s,"query":{"subject":"agent-7"},"entries":[`,
		testlog.Origin, vkey, string(head[1:len(head)-1]))
	for n, i := range idx {
		if n > 0 {
			b.WriteString(",")
		}
		var proof []string
		for _, h := range l.Inclusion(i, size) {
			proof = append(proof, base64.StdEncoding.EncodeToString(h[:]))
		}
		p, _ := json.Marshal(proof)
		if proof == nil {
			p = []byte("[]")
		}
		fmt.Fprintf(&b, `{"index":%d,"entry":%q,"inclusion_proof":%s}`, i, base64.StdEncoding.EncodeToString(l.Entries[i].Leaf), p)
	}
	b.WriteString(`],"keys":[]}`)
	return []byte(b.String())
}

func newBundleLog(t testing.TB) (*testlog.Log, string) {
	l := testlog.New(t)
	l.GrowClean(20)
	_, _, vkey := testlog.NoteKey(t, testlog.Origin, 1)
	return l, vkey
}

func TestBundle(t *testing.T) {
	l, vkey := newBundleLog(t)
	good := testBundle(l, 20, vkey, 0, 1, 3, 4, 9, 19)
	rep, err := verifier.Bundle(bytes.NewReader(good), l.Verifier, nil, nil)
	if err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	if rep.Entries != 6 || rep.Checkpoint.Size != 20 || rep.Query["subject"] != "agent-7" || rep.Kinds["decision"]+rep.Kinds["execution"] != 6 {
		t.Fatalf("report %+v", rep)
	}
	total := 0
	for _, c := range rep.Subjects {
		total += c.Allowed + c.Denied + c.Executed + c.Violated
	}
	if total == 0 {
		t.Fatalf("no counts: %+v", rep.Subjects)
	}

	_, otherKey, otherVkey := testlog.NoteKey(t, testlog.Origin, 2)
	tests := []struct {
		name   string
		bundle []byte
		want   error
	}{
		{"empty", []byte(""), verifier.ErrMalformed},
		{"not an object", []byte("[]"), verifier.ErrMalformed},
		{"truncated", good[:len(good)-10], verifier.ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), "{}"...), verifier.ErrMalformed},
		{"other format", bytes.Replace(good, []byte("govlog-evidence/v1"), []byte("govlog-evidence/v2"), 1), verifier.ErrMalformed},
		{"members out of order", bytes.Replace(good, []byte(`{"format":"govlog-evidence/v1","origin":`), []byte(`{"origin":`), 1), verifier.ErrMalformed},
		{"other verifier key", testBundleKey(good, vkey, otherVkey), verifier.ErrMismatch},
		{"entries out of order", testBundle(l, 20, vkey, 3, 1), verifier.ErrMalformed},
		{"repeated entry", testBundle(l, 20, vkey, 3, 3), verifier.ErrMalformed},
		{"entry beyond the checkpoint", bytes.Replace(testBundle(l, 20, vkey, 19), []byte(`"index":19`), []byte(`"index":20`), 1), verifier.ErrBadProof},
		{"wrong index", bytes.Replace(testBundle(l, 20, vkey, 19), []byte(`"index":19`), []byte(`"index":18`), 1), verifier.ErrBadProof},
		{"index not canonical", bytes.Replace(testBundle(l, 20, vkey, 19), []byte(`"index":19`), []byte(`"index":19.0`), 1), verifier.ErrMalformed},
		{"unknown member", bytes.Replace(good, []byte(`"inclusion_proof"`), []byte(`"x":1,"inclusion_proof"`), 1), verifier.ErrMalformed},
		{"extra top-level member", bytes.Replace(good, []byte(`"keys":[]}`), []byte(`"keys":[],"more":1}`), 1), verifier.ErrMalformed},
		{"missing keys", bytes.Replace(good, []byte(`,"keys":[]}`), []byte(`}`), 1), verifier.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verifier.Bundle(bytes.NewReader(tt.bundle), l.Verifier, nil, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Bundle = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("other log key", func(t *testing.T) {
		if _, err := verifier.Bundle(bytes.NewReader(good), otherKey, nil, nil); err == nil {
			t.Fatal("a bundle verified with another key")
		}
	})
	t.Run("every byte of an entry", func(t *testing.T) {
		one := testBundle(l, 20, vkey, 4)
		start := bytes.Index(one, []byte(`"entry":"`)) + len(`"entry":"`)
		leaf := base64.StdEncoding.EncodeToString(l.Entries[4].Leaf)
		for i := range l.Entries[4].Leaf {
			changed := bytes.Clone(l.Entries[4].Leaf)
			changed[i] ^= 1
			b := bytes.Clone(one)
			copy(b[start:start+len(leaf)], base64.StdEncoding.EncodeToString(changed))
			if _, err := verifier.Bundle(bytes.NewReader(b), l.Verifier, nil, nil); err == nil {
				t.Fatalf("byte %d of the entry flipped: the bundle still verifies", i)
			}
		}
	})
}

func testBundleKey(b []byte, from, to string) []byte {
	return bytes.Replace(b, []byte(from), []byte(to), 1)
}

// FuzzBundle: whatever the input, Bundle does not panic; what it accepts
// is a bundle whose every entry verifies, and re-encoding its entries in
// bundle order gives a bundle that verifies with the same report.
func FuzzBundle(f *testing.F) {
	l, vkey := newBundleLog(f)
	f.Add(testBundle(l, 20, vkey, 0, 1, 3, 4, 9, 19))
	f.Add(testBundle(l, 20, vkey))
	f.Add(testBundle(l, 1, vkey, 0))
	f.Add([]byte(`{"format":"govlog-evidence/v1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l.T = t
		var seen []*verifier.BundleEntry
		rep, err := verifier.Bundle(bytes.NewReader(data), l.Verifier, nil, func(e *verifier.BundleEntry) error {
			seen = append(seen, e)
			return nil
		})
		if err != nil {
			return
		}
		if rep.Entries != len(seen) {
			t.Fatalf("report of %d entries, %d seen", rep.Entries, len(seen))
		}
		var idx []uint64
		for _, e := range seen {
			idx = append(idx, e.Index)
			if !bytes.Equal(e.Entry.Content, l.Entries[e.Index].Content) {
				t.Fatalf("entry %d is not the logged one", e.Index)
			}
		}
		again, err := verifier.Bundle(bytes.NewReader(testBundle(l, rep.Checkpoint.Size, vkey, idx...)), l.Verifier, nil, nil)
		if err != nil || again.Entries != rep.Entries {
			t.Fatalf("the canonical re-encoding does not verify: %v", err)
		}
	})
}
