package log_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
)

// TestEntryDocExample checks the entry of the package documentation,
// written out by hand.
func TestEntryDocExample(t *testing.T) {
	d, err := log.ParseDecision([]byte(`{"id":"d-1","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"agent-7","action":"deploy","policy":{"id":"prod-deploy"}}`), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.UTC), 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"authorized_until":"2026-11-25T18:05:00Z",` +
		`"decision":{"action":"deploy","decided_at":"2026-11-25T18:00:00Z","id":"d-1",` +
		`"outcome":"allow","policy":{"id":"prod-deploy"},"subject":"agent-7"},` +
		`"logged_at":"2026-11-25T18:00:00.123456789Z",` +
		`"submitter":"anonymous",` +
		`"v":1}`
	if string(e.Leaf) != want {
		t.Fatalf("leaf\n%s\nwant\n%s", e.Leaf, want)
	}
	h := sha256.Sum256(append([]byte{0}, want...))
	if log.LeafHash(e.Leaf) != h {
		t.Fatal("LeafHash is not SHA-256(0x00 ‖ leaf)")
	}
}

func TestLeafHash(t *testing.T) {
	// RFC 6962 test vector: the hash of the empty leaf.
	want, _ := hex.DecodeString("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
	if got := log.LeafHash(nil); !bytes.Equal(got[:], want) {
		t.Fatalf("LeafHash(empty) = %x, want %x", got, want)
	}
	if got := log.LeafHash([]byte{}); !bytes.Equal(got[:], want) {
		t.Fatalf("LeafHash([]byte{}) = %x", got)
	}
	if log.EmptyRoot != sha256.Sum256(nil) {
		t.Fatal("EmptyRoot is not SHA-256 of the empty string")
	}
}

func entryVectors(t *testing.T) []vectors.Entry {
	t.Helper()
	var vs []vectors.Entry
	readJSON(t, "entries/valid.json", &vs)
	if len(vs) == 0 {
		t.Fatal("no entry vectors")
	}
	return vs
}

// submissionOf rebuilds a vector's submission from its content.
func submissionOf(t *testing.T, v vectors.Entry) (*log.Submission, time.Time) {
	t.Helper()
	loggedAt, err := time.Parse(time.RFC3339Nano, v.LoggedAt)
	if err != nil {
		t.Fatal(err)
	}
	sub, kind, err := vectors.Submission([]byte(v.Content), v.Kind == "execution", v.Submitter, loggedAt)
	if err != nil || kind != v.Kind {
		t.Fatalf("content of %q: %v (kind %q)", v.Name, err, kind)
	}
	if !bytes.Equal(sub.Content, []byte(v.Content)) {
		t.Fatalf("content of %q is not canonical", v.Name)
	}
	return sub, loggedAt
}

func TestNewEntryVectors(t *testing.T) {
	for _, v := range entryVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			sub, loggedAt := submissionOf(t, v)
			e, err := log.NewEntry(sub, loggedAt, time.Duration(v.TTLSeconds)*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Leaf) != v.Leaf {
				t.Fatalf("leaf\n%s\nwant\n%s", e.Leaf, v.Leaf)
			}
			lh := log.LeafHash(e.Leaf)
			if hex.EncodeToString(lh[:]) != v.LeafHash {
				t.Fatalf("leaf hash %x, want %s", lh, v.LeafHash)
			}
			// The entry's times.
			if !e.LoggedAt.Equal(loggedAt) || e.LoggedAt.Location() != time.UTC {
				t.Fatalf("LoggedAt %v, want %v in UTC", e.LoggedAt, loggedAt)
			}
			if !bytes.Contains(e.Leaf, []byte(`"logged_at":"`+loggedAt.UTC().Format(log.LoggedAtLayout)+`"`)) {
				t.Fatalf("leaf does not carry logged_at with 9 digits in UTC")
			}
			if sub.Allow {
				want := loggedAt.UTC().Truncate(time.Second).Add(time.Duration(v.TTLSeconds) * time.Second)
				if !e.AuthorizedUntil.Equal(want) {
					t.Fatalf("AuthorizedUntil %v, want %v", e.AuthorizedUntil, want)
				}
				if !strings.HasPrefix(v.Leaf, `{"authorized_until":"`+want.Format(log.AuthorizedUntilLayout)+`",`) {
					t.Fatalf("leaf does not start with authorized_until %v", want)
				}
			} else if !e.AuthorizedUntil.IsZero() || strings.Contains(v.Leaf, `"authorized_until"`) {
				t.Fatalf("authorized_until on a deny or an execution")
			}
			if e.Submission != sub {
				t.Fatal("Entry does not carry its submission")
			}
		})
	}
}

func TestParseEntryVectors(t *testing.T) {
	for _, v := range entryVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			sub, loggedAt := submissionOf(t, v)
			p, err := log.ParseEntry([]byte(v.Leaf))
			if err != nil {
				t.Fatalf("ParseEntry: %v", err)
			}
			checkSameEntry(t, []byte(v.Leaf), p, err)
			if p.Kind != sub.Kind || p.ID != sub.ID || p.Submitter != sub.Submitter || !bytes.Equal(p.Content, sub.Content) {
				t.Fatalf("parsed %+v, want the vector's submission", p)
			}
			if !p.LoggedAt.Equal(loggedAt) {
				t.Fatalf("LoggedAt %v, want %v", p.LoggedAt, loggedAt)
			}
			switch p.Kind {
			case log.KindDecision:
				if p.Decision == nil || p.Execution != nil || !bytes.Equal(p.Decision.Canonical, p.Content) {
					t.Fatalf("decision entry: Decision %v, Execution %v", p.Decision, p.Execution)
				}
				if sub.Allow != !p.AuthorizedUntil.IsZero() {
					t.Fatalf("AuthorizedUntil %v for Allow=%v", p.AuthorizedUntil, sub.Allow)
				}
			case log.KindExecution:
				if p.Execution == nil || p.Decision != nil || !p.AuthorizedUntil.IsZero() {
					t.Fatalf("execution entry: Decision %v, Execution %v", p.Decision, p.Execution)
				}
			}
			if !log.SameSubmission([]byte(v.Leaf), sub) {
				t.Fatal("SameSubmission(leaf, its own submission) is false")
			}
		})
	}
}

func TestParseEntryInvalid(t *testing.T) {
	var vs []vectors.BadEntry
	readJSON(t, "entries/invalid.json", &vs)
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			p, err := log.ParseEntry([]byte(v.Leaf))
			if err == nil {
				t.Fatalf("accepted (%s): %+v", v.Why, p)
			}
			checkSameEntry(t, []byte(v.Leaf), p, err)
		})
	}
	// authorized_until null: encoding/json reads it as absent.
	const deny = `{"decision":{"action":"a","decided_at":"2026-11-25T18:00:00Z","id":"d-1","outcome":"deny","policy":{"id":"p"},"subject":"s"},"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"anonymous","v":1}`
	if _, err := log.ParseEntry([]byte(deny)); err != nil {
		t.Fatalf("test bug: %v", err)
	}
	if p, err := log.ParseEntry([]byte(`{"authorized_until":null,` + deny[1:])); err == nil {
		t.Fatalf("accepted a deny with authorized_until null: %+v", p)
	}
	// An entry larger than the tlog-tiles limit cannot be in a log.
	big := bigDecisionBody(t, 65500)
	d, err := log.ParseDecision(big, vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	leaf := `{"decision":` + string(d.Canonical) + `,"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"anonymous","v":1}`
	if len(leaf) <= log.MaxEntryBytes {
		t.Fatalf("test bug: leaf of %d bytes", len(leaf))
	}
	if _, err := log.ParseEntry([]byte(leaf)); err == nil {
		t.Fatalf("accepted an entry of %d bytes", len(leaf))
	}
}

// bigDecisionBody is a deny decision of exactly n canonical bytes, padded
// with reasons of three-byte characters.
func bigDecisionBody(t *testing.T, n int) []byte {
	t.Helper()
	const head = `{"action":"a","decided_at":"2026-11-25T18:00:00Z","id":"d","outcome":"deny","policy":{"id":"p"},"reasons":[`
	const tail = `],"subject":"s"}`
	var reasons []string
	size := len(head) + len(tail) - 1 // the first reason has no comma
	full := `"` + strings.Repeat("€", 1024) + `"`
	for n-size-3 > 3070 && len(reasons) < log.MaxReasons-1 {
		reasons = append(reasons, full)
		size += len(full) + 1
	}
	last := n - size - 3
	if last < 1 || last > 3070 {
		t.Fatalf("cannot pad to %d bytes", n)
	}
	reasons = append(reasons, `"`+strings.Repeat("€", last/3)+strings.Repeat("x", last%3)+`"`)
	body := head + strings.Join(reasons, ",") + tail
	if len(body) != n {
		t.Fatalf("body is %d bytes, want %d", len(body), n)
	}
	return []byte(body)
}

// TestEntryRoundTrip checks that ParseEntry gives back exactly what
// NewEntry was given, and NewEntry rebuilds the same leaf from it.
func TestEntryRoundTrip(t *testing.T) {
	for _, v := range entryVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			p, err := log.ParseEntry([]byte(v.Leaf))
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := rebuild(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(leaf) != v.Leaf {
				t.Fatalf("rebuilt leaf\n%s\nwant\n%s", leaf, v.Leaf)
			}
		})
	}
}

// rebuild makes the leaf of a parsed entry again with NewEntry.
func rebuild(p *log.ParsedEntry) ([]byte, error) {
	s := &log.Submission{Kind: p.Kind, ID: p.ID, Submitter: p.Submitter, Content: p.Content}
	ttl := 300 * time.Second
	switch p.Kind {
	case log.KindDecision:
		s.Allow = p.Decision.Outcome == log.OutcomeAllow
		s.ParentID, s.Sequence = p.Decision.ParentID, p.Decision.Sequence
		if s.Allow {
			ttl = p.AuthorizedUntil.Sub(p.LoggedAt.Truncate(time.Second))
		}
	case log.KindExecution:
		s.DecisionID = p.Execution.DecisionID
	}
	e, err := log.NewEntry(s, p.LoggedAt, ttl)
	if err != nil {
		return nil, err
	}
	return e.Leaf, nil
}

func TestAuthorizedUntil(t *testing.T) {
	d, err := log.ParseDecision([]byte(`{"id":"d","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	sub := log.DecisionSubmission(d, "anonymous")
	tests := []struct {
		loggedAt time.Time
		ttl      time.Duration
		want     string
	}{
		{time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC), 300 * time.Second, "2026-11-25T18:05:00Z"},
		{time.Date(2026, 11, 25, 18, 0, 0, 999999999, time.UTC), 300 * time.Second, "2026-11-25T18:05:00Z"},
		{time.Date(2026, 11, 25, 18, 0, 1, 0, time.UTC), time.Second, "2026-11-25T18:00:02Z"},
		// The TTL is rounded down to whole seconds.
		{time.Date(2026, 11, 25, 18, 0, 0, 500000000, time.UTC), 1500 * time.Millisecond, "2026-11-25T18:00:01Z"},
		// Across midnight and in another zone.
		{time.Date(2026, 11, 26, 0, 59, 59, 1, time.FixedZone("", 3600)), 2 * time.Second, "2026-11-26T00:00:01Z"},
		{time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC), 24 * time.Hour, "2027-01-01T23:59:59Z"},
	}
	for _, tt := range tests {
		t.Run(tt.loggedAt.String()+"+"+tt.ttl.String(), func(t *testing.T) {
			e, err := log.NewEntry(sub, tt.loggedAt, tt.ttl)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.AuthorizedUntil.Format(log.AuthorizedUntilLayout); got != tt.want {
				t.Fatalf("authorized_until %s, want %s", got, tt.want)
			}
			if !bytes.HasPrefix(e.Leaf, []byte(`{"authorized_until":"`+tt.want+`"`)) {
				t.Fatalf("leaf %s", e.Leaf)
			}
		})
	}
	// Never for a deny or an execution.
	dd, err := log.ParseDecision([]byte(`{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	ee, err := log.ParseExecution([]byte(`{"id":"e","decision_id":"d","status":"started","at":"2026-11-25T18:00:00Z"}`), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*log.Submission{log.DecisionSubmission(dd, "x"), log.ExecutionSubmission(ee, "x")} {
		e, err := log.NewEntry(s, vectors.NowTime(), 300*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !e.AuthorizedUntil.IsZero() || bytes.Contains(e.Leaf, []byte("authorized_until")) {
			t.Fatalf("%s entry with authorized_until: %s", s.Kind, e.Leaf)
		}
	}
}

func TestNewEntryErrors(t *testing.T) {
	now := vectors.NowTime()
	if _, err := log.NewEntry(&log.Submission{Kind: log.Kind(7), ID: "x", Submitter: "s", Content: []byte(`{}`)}, now, time.Second); err == nil {
		t.Fatal("NewEntry accepted an unknown kind")
	}
	// The largest decision body makes an entry over the limit.
	d, err := log.ParseDecision(bigDecisionBody(t, 65500), now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = log.NewEntry(log.DecisionSubmission(d, "anonymous"), now, time.Second)
	if !errors.Is(err, log.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	// Exactly the limit, then one byte more.
	overhead := len(`{"decision":,"logged_at":"2026-11-25T18:00:00.000000000Z","submitter":"anonymous","v":1}`)
	for _, n := range []int{log.MaxEntryBytes - overhead, log.MaxEntryBytes - overhead + 1} {
		d, err := log.ParseDecision(bigDecisionBody(t, n), now)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(log.DecisionSubmission(d, "anonymous"), now, time.Second)
		if n+overhead <= log.MaxEntryBytes {
			if err != nil || len(e.Leaf) != log.MaxEntryBytes {
				t.Fatalf("an entry of exactly %d bytes: %v", log.MaxEntryBytes, err)
			}
			if _, err := log.ParseEntry(e.Leaf); err != nil {
				t.Fatalf("ParseEntry of an entry of exactly %d bytes: %v", log.MaxEntryBytes, err)
			}
		} else if !errors.Is(err, log.ErrTooLarge) {
			t.Fatalf("an entry of %d bytes: got %v, want ErrTooLarge", n+overhead, err)
		}
	}
}

func TestSameSubmission(t *testing.T) {
	now := vectors.NowTime()
	parse := func(body, submitter string) *log.Submission {
		d, err := log.ParseDecision([]byte(body), now)
		if err != nil {
			t.Fatal(err)
		}
		return log.DecisionSubmission(d, submitter)
	}
	const body = `{"id":"d","outcome":"allow","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`
	orig := parse(body, "alice")
	e, err := log.NewEntry(orig, now, 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := log.ParseExecution([]byte(`{"id":"d","decision_id":"d","status":"started","at":"2026-11-25T18:00:00Z"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	exec := log.ExecutionSubmission(ex, "alice")
	ee, err := log.NewEntry(exec, now, 300*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		leaf []byte
		sub  *log.Submission
		want bool
	}{
		{"identical", e.Leaf, orig, true},
		{"same decision written otherwise", e.Leaf, parse("{\n \"policy\":{\"id\":\"p\"},\"action\":\"a\",\"subject\":\"s\",\"decided_at\":\"2026-11-25T18:00:00Z\",\"outcome\":\"allow\",\"id\":\"d\"}", "alice"), true},
		{"other submitter", e.Leaf, parse(body, "bob"), false},
		{"other content", e.Leaf, parse(`{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`, "alice"), false},
		{"other decided_at", e.Leaf, parse(`{"id":"d","outcome":"allow","decided_at":"2026-11-25T18:00:00.0Z","subject":"s","action":"a","policy":{"id":"p"}}`, "alice"), false},
		{"an execution against a decision entry", e.Leaf, exec, false},
		{"a decision against an execution entry", ee.Leaf, orig, false},
		{"execution, identical", ee.Leaf, exec, true},
		{"not JSON", []byte("{"), orig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := log.SameSubmission(tt.leaf, tt.sub); got != tt.want {
				t.Fatalf("SameSubmission = %v, want %v", got, tt.want)
			}
		})
	}
	// Stamped at another time, the same submission is still the same.
	later, err := log.NewEntry(orig, now.Add(time.Hour), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !log.SameSubmission(later.Leaf, orig) || bytes.Equal(later.Leaf, e.Leaf) {
		t.Fatal("SameSubmission depends on logged_at")
	}
}

func TestSubmissions(t *testing.T) {
	now := vectors.NowTime()
	d, err := log.ParseDecision(readFile(t, "decisions/valid/full.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	s := log.DecisionSubmission(d, "alice")
	if s.Kind != log.KindDecision || s.ID != "d-3" || s.Submitter != "alice" || !s.Allow || s.ParentID != "d-1" || s.Sequence != 42 || !bytes.Equal(s.Content, d.Canonical) || s.DecisionID != "" {
		t.Fatalf("DecisionSubmission: %+v", s)
	}
	e, err := log.ParseExecution(readFile(t, "executions/valid/full.json"), now)
	if err != nil {
		t.Fatal(err)
	}
	x := log.ExecutionSubmission(e, "rt")
	if x.Kind != log.KindExecution || x.ID != "e-2" || x.DecisionID != "d-3" || x.Allow || x.ParentID != "" || x.Sequence != 0 || !bytes.Equal(x.Content, e.Canonical) {
		t.Fatalf("ExecutionSubmission: %+v", x)
	}
	for k, want := range map[log.Kind]string{log.KindDecision: "decision", log.KindExecution: "execution", log.Kind(0): "Kind(0)", log.Kind(9): "Kind(9)"} {
		if k.String() != want {
			t.Fatalf("Kind(%d).String() = %q, want %q", uint8(k), k.String(), want)
		}
	}
}
