package log_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
	"github.com/gowebpki/jcs"
)

// The fuzz targets assert more than "no panic": whatever a parser accepts,
// its canonical form is a fixed point (accepted again, unchanged), and an
// entry made of it parses back to the same thing. Seeds are the vectors.

func FuzzParseDecision(f *testing.F) {
	for _, v := range vectors.ValidDecisions() {
		f.Add([]byte(v.Body))
	}
	for _, v := range vectors.InvalidDecisions() {
		f.Add(v.Bytes())
	}
	now := vectors.NowTime()
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := log.ParseDecision(body, now)
		if err != nil {
			checkParseError(t, err, log.ErrInvalidDecision)
			return
		}
		checkCanonical(t, d.Canonical)
		d2, err := log.ParseDecision(d.Canonical, now)
		if err != nil {
			t.Fatalf("the canonical form %q of an accepted decision is refused: %v", d.Canonical, err)
		}
		if !bytes.Equal(d2.Canonical, d.Canonical) {
			t.Fatalf("canonical form is not a fixed point:\n%q\n%q", d.Canonical, d2.Canonical)
		}
		if d2.ID != d.ID || d2.Outcome != d.Outcome || !d2.DecidedAt.Equal(d.DecidedAt) || d2.Subject != d.Subject ||
			d2.Action != d.Action || d2.Resource != d.Resource || d2.PolicyID != d.PolicyID || d2.ParentID != d.ParentID ||
			d2.Sequence != d.Sequence || d2.InputDigest != d.InputDigest {
			t.Fatalf("fields differ after re-parsing:\n%+v\n%+v", d, d2)
		}
		checkEntry(t, log.DecisionSubmission(d, "anonymous"), now)
	})
}

func FuzzParseExecution(f *testing.F) {
	for _, v := range vectors.ValidExecutions() {
		f.Add([]byte(v.Body))
	}
	for _, v := range vectors.InvalidExecutions() {
		f.Add(v.Bytes())
	}
	now := vectors.NowTime()
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := log.ParseExecution(body, now)
		if err != nil {
			checkParseError(t, err, log.ErrInvalidExecution)
			return
		}
		checkCanonical(t, e.Canonical)
		e2, err := log.ParseExecution(e.Canonical, now)
		if err != nil {
			t.Fatalf("the canonical form %q of an accepted execution is refused: %v", e.Canonical, err)
		}
		if !bytes.Equal(e2.Canonical, e.Canonical) || e2.ID != e.ID || e2.DecisionID != e.DecisionID || e2.Status != e.Status || !e2.At.Equal(e.At) {
			t.Fatalf("not a fixed point:\n%+v\n%+v", e, e2)
		}
		checkEntry(t, log.ExecutionSubmission(e, "runtime"), now)
	})
}

func FuzzParseEntry(f *testing.F) {
	for _, v := range vectors.BadEntries() {
		f.Add([]byte(v.Leaf))
	}
	files, err := vectors.Files()
	if err != nil {
		f.Fatal(err)
	}
	var entries []vectors.Entry
	if err := jsonUnmarshal(files["entries/valid.json"], &entries); err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add([]byte(e.Leaf))
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		p, err := log.ParseEntry(leaf)
		if err != nil {
			return
		}
		checkCanonical(t, leaf)
		// NewEntry makes exactly this leaf of what ParseEntry returned.
		again, err := rebuild(p)
		if err != nil {
			t.Fatalf("NewEntry refuses an entry ParseEntry accepted (%q): %v", leaf, err)
		}
		if !bytes.Equal(again, leaf) {
			t.Fatalf("round trip:\n%q\n%q", leaf, again)
		}
		p2, err := log.ParseEntry(again)
		if err != nil || p2.ID != p.ID || p2.Kind != p.Kind || !p2.LoggedAt.Equal(p.LoggedAt) || !p2.AuthorizedUntil.Equal(p.AuthorizedUntil) {
			t.Fatalf("re-parsing: %v", err)
		}
		s := &log.Submission{Kind: p.Kind, ID: p.ID, Submitter: p.Submitter, Content: p.Content}
		if !log.SameSubmission(leaf, s) {
			t.Fatal("SameSubmission(leaf, its own submission) is false")
		}
	})
}

// checkParseError checks that a refusal is one of the documented errors.
func checkParseError(t *testing.T, err error, schema error) {
	t.Helper()
	var fe *log.FieldError
	switch {
	case errors.Is(err, log.ErrInvalidJSON), errors.Is(err, log.ErrTooLarge):
	case errors.As(err, &fe):
		if !errors.Is(err, schema) {
			t.Fatalf("FieldError wraps %v, want %v", fe.Err, schema)
		}
	default:
		t.Fatalf("undocumented error: %v", err)
	}
	if len(err.Error()) > 1000 {
		t.Fatalf("error message of %d bytes", len(err.Error()))
	}
}

func checkCanonical(t *testing.T, b []byte) {
	t.Helper()
	c, err := jcs.Transform(b)
	if err != nil || !bytes.Equal(c, b) {
		t.Fatalf("not RFC 8785 canonical: %q (%v)", b, err)
	}
}

// checkEntry logs a submission at now: the entry is refused only for its
// size, and parses back to the same submission.
func checkEntry(t *testing.T, s *log.Submission, now time.Time) {
	t.Helper()
	e, err := log.NewEntry(s, now, 300*time.Second)
	if err != nil {
		if !errors.Is(err, log.ErrTooLarge) {
			t.Fatalf("NewEntry: %v", err)
		}
		return
	}
	p, err := log.ParseEntry(e.Leaf)
	if err != nil {
		t.Fatalf("ParseEntry refuses an entry NewEntry made of an accepted submission: %v\n%q", err, e.Leaf)
	}
	if p.Kind != s.Kind || p.ID != s.ID || p.Submitter != s.Submitter || !bytes.Equal(p.Content, s.Content) || !log.SameSubmission(e.Leaf, s) {
		t.Fatalf("entry parses to another submission")
	}
}
