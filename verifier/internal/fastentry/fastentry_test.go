package fastentry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/govlog/govlog/log"
)

// sameParse checks the promise of fastEntry: when it accepts a leaf,
// log.ParseEntry accepts it too, with the same result.
func sameParse(t testing.TB, leaf []byte) (fast bool) {
	t.Helper()
	got, ok := fastEntry(leaf)
	want, err := log.ParseEntry(leaf)
	if !ok {
		// Parse then defers to log.ParseEntry: nothing to compare.
		return false
	}
	if err != nil {
		t.Fatalf("fastEntry accepts a leaf log.ParseEntry refuses (%v):\n%s", err, leaf)
	}
	if diff := parsedDiff(got, want); diff != "" {
		t.Fatalf("fastEntry and log.ParseEntry disagree on %s:\n%s", diff, leaf)
	}
	return true
}

// parsedDiff names the first field where two parsed entries differ.
func parsedDiff(a, b *log.ParsedEntry) string {
	sameTime := func(x, y time.Time) bool {
		_, xo := x.Zone()
		_, yo := y.Zone()
		return x.Equal(y) && xo == yo && x.Location().String() == y.Location().String()
	}
	switch {
	case a.Kind != b.Kind:
		return "Kind"
	case a.ID != b.ID:
		return "ID"
	case a.Submitter != b.Submitter:
		return "Submitter"
	case !bytes.Equal(a.Content, b.Content):
		return "Content"
	case !sameTime(a.LoggedAt, b.LoggedAt):
		return "LoggedAt"
	case !sameTime(a.AuthorizedUntil, b.AuthorizedUntil):
		return "AuthorizedUntil"
	case (a.Decision == nil) != (b.Decision == nil), (a.Execution == nil) != (b.Execution == nil):
		return "kind of content"
	}
	if d, e := a.Decision, b.Decision; d != nil {
		switch {
		case d.ID != e.ID, d.Outcome != e.Outcome, d.Subject != e.Subject, d.Action != e.Action,
			d.Resource != e.Resource, d.PolicyID != e.PolicyID, d.ParentID != e.ParentID,
			d.Sequence != e.Sequence, d.InputDigest != e.InputDigest:
			return fmt.Sprintf("decision fields: %+v vs %+v", d, e)
		case !sameTime(d.DecidedAt, e.DecidedAt):
			return "decided_at"
		case !bytes.Equal(d.Canonical, e.Canonical):
			return "decision canonical form"
		}
	}
	if x, y := a.Execution, b.Execution; x != nil {
		switch {
		case x.ID != y.ID, x.DecisionID != y.DecisionID, x.Status != y.Status:
			return fmt.Sprintf("execution fields: %+v vs %+v", x, y)
		case !sameTime(x.At, y.At):
			return "at"
		case !bytes.Equal(x.Canonical, y.Canonical):
			return "execution canonical form"
		}
	}
	return ""
}

// seedLeaves returns leaves of every shape the repository's vectors hold:
// the valid and invalid entries, and entries wrapping every valid and
// invalid decision and execution report body (canonicalized when it is
// JSON at all).
func seedLeaves(t testing.TB) [][]byte {
	t.Helper()
	root := filepath.Join("..", "..", "..", "testdata")
	var leaves [][]byte
	for _, name := range []string{"valid.json", "invalid.json"} {
		var vecs []struct {
			Leaf string `json:"leaf"`
		}
		readJSON(t, filepath.Join(root, "entries", name), &vecs)
		for _, v := range vecs {
			leaves = append(leaves, []byte(v.Leaf))
		}
	}
	loggedAt := time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)
	wrap := func(kind log.Kind, body []byte, allow bool) {
		canon, err := jcs.Transform(body)
		if err != nil || len(canon) == 0 || canon[0] != '{' {
			return
		}
		e, err := log.NewEntry(&log.Submission{Kind: kind, Submitter: "control-plane-1", Content: canon, Allow: allow}, loggedAt, 300*time.Second)
		if err != nil {
			return
		}
		leaves = append(leaves, e.Leaf)
		// And its twin with the other authorized_until presence.
		e2, err := log.NewEntry(&log.Submission{Kind: kind, Submitter: "anonymous", Content: canon, Allow: !allow}, loggedAt, 300*time.Second)
		if err == nil {
			leaves = append(leaves, e2.Leaf)
		}
	}
	for _, kind := range []log.Kind{log.KindDecision, log.KindExecution} {
		dir := filepath.Join(root, kind.String()+"s")
		files, err := filepath.Glob(filepath.Join(dir, "valid", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wrap(kind, body, bytes.Contains(body, []byte(`"allow"`)))
		}
		var invalid []struct {
			Body string `json:"body"`
		}
		readJSON(t, filepath.Join(dir, "invalid.json"), &invalid)
		for _, v := range invalid {
			wrap(kind, []byte(v.Body), bytes.Contains([]byte(v.Body), []byte(`"allow"`)))
		}
	}
	return leaves
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestFastEntryAgrees runs both parsers on every seed and on random
// mutations of each: the fast path must never accept what log.ParseEntry
// refuses, nor read anything differently.
func TestFastEntryAgrees(t *testing.T) {
	seeds := seedLeaves(t)
	if len(seeds) < 100 {
		t.Fatalf("only %d seeds", len(seeds))
	}
	// FuzzFastEntry goes much further.
	mutations := 30
	if testing.Short() {
		mutations = 5
	}
	replacements := []byte{'"', '\\', ',', ':', '{', '}', '[', ']', '0', '1', '9', '-', '.', 'e', 'a', 'Z', ' ', 0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xff}
	rnd := rand.New(rand.NewPCG(1, 2))
	fast, valid := 0, 0
	for _, leaf := range seeds {
		if sameParse(t, leaf) {
			fast++
		}
		if _, err := log.ParseEntry(leaf); err == nil {
			valid++
		}
		for range mutations {
			if len(leaf) == 0 {
				break
			}
			m := bytes.Clone(leaf)
			switch i := rnd.IntN(len(m)); rnd.IntN(4) {
			case 0:
				m[i] = replacements[rnd.IntN(len(replacements))]
			case 1:
				m[i]++
			case 2:
				m = append(m[:i:i], m[i+1:]...)
			default:
				m = append(m[:i:i], append([]byte{replacements[rnd.IntN(len(replacements))]}, m[i:]...)...)
			}
			sameParse(t, m)
		}
	}
	t.Logf("%d seeds, %d valid, %d taken by the fast path", len(seeds), valid, fast)
	if fast < valid/2 {
		t.Errorf("the fast path takes only %d of %d valid seeds", fast, valid)
	}
}

// TestFastEntryTakesOrdinaryEntries checks that ordinary entries, the
// kind that fill a log, take the fast path.
func TestFastEntryTakesOrdinaryEntries(t *testing.T) {
	loggedAt := time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)
	for _, body := range []string{
		`{"id":"d-1","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"spiffe://prod/agent-7","action":"deploy","resource":"svc/api","policy":{"id":"p","version":"7","digest":"sha256:` + strings.Repeat("ab", 32) + `"},"input_digest":"sha256:` + strings.Repeat("0f", 32) + `","reasons":["ok","within window ☀"],"parent_id":"d-0","sequence":42,"context":{"risk":0.6046602879796196,"n":12,"nested":{"a":[1,-2.5,true,false,null,"x"]},"uni":"é"}}`,
		`{"id":"d-2","outcome":"deny","decided_at":"2026-11-25T19:00:00+01:00","subject":"a","action":"b","policy":{"id":"p"},"reasons":[]}`,
		`{"id":"x-1","decision_id":"d-1","status":"succeeded","at":"2026-11-25T18:00:01.5Z","runtime":"rt","result_digest":"sha256:` + strings.Repeat("01", 32) + `","context":{}}`,
	} {
		kind, allow := log.KindDecision, strings.Contains(body, `"allow"`)
		if strings.Contains(body, "decision_id") {
			kind = log.KindExecution
		}
		canon, err := jcs.Transform([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(&log.Submission{Kind: kind, Submitter: "cp", Content: canon, Allow: allow}, loggedAt, 300*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := log.ParseEntry(e.Leaf); err != nil {
			t.Fatalf("log.ParseEntry: %v", err)
		}
		if !sameParse(t, e.Leaf) {
			t.Errorf("the fast path does not take\n%s", e.Leaf)
		}
	}
}

// FuzzFastEntry checks the promise of fastEntry on any input.
func FuzzFastEntry(f *testing.F) {
	for _, leaf := range seedLeaves(f) {
		f.Add(leaf)
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		sameParse(t, leaf)
	})
}

func BenchmarkParseEntry(b *testing.B) {
	loggedAt := time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC)
	body := `{"action":"deploy","context":{"args":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","risk":0.6046602879796196,"session":"s-12345","tool":"kubectl"},"decided_at":"2026-11-25T18:00:00Z","id":"bench-001-0000001","input_digest":"sha256:` + strings.Repeat("0f", 32) + `","outcome":"allow","policy":{"digest":"sha256:` + strings.Repeat("ab", 32) + `","id":"agent-guardrails","version":"2026.11.3"},"resource":"arn:example:service/xxxxxxxx/item-1234","subject":"spiffe://prod.example/ns/agents/sa/agent-7"}`
	e, err := log.NewEntry(&log.Submission{Kind: log.KindDecision, Submitter: "anonymous", Content: []byte(body), Allow: true}, loggedAt, 300*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := fastEntry(e.Leaf); !ok {
				b.Fatal("not fast")
			}
		}
	})
	b.Run("log.ParseEntry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := log.ParseEntry(e.Leaf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPlainASCII checks the word-at-a-time test against the byte test on
// every byte value in every position.
func TestPlainASCII(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			var b [8]byte
			for i := range b {
				b[i] = 'a'
			}
			b[pos] = byte(c)
			want := c >= 0x20 && c < 0x80 && c != '\\'
			w := uint64(0)
			for i := 7; i >= 0; i-- {
				w = w<<8 | uint64(b[i])
			}
			if got := plainASCII(w); got != want {
				t.Fatalf("byte %#x at %d: plainASCII %v, want %v", c, pos, got, want)
			}
		}
	}
}
