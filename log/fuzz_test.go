package log_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	reference "github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/gowebpki/jcs"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
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
	for _, body := range [][]byte{
		decisionWith("outcome", `"allow"`, "max_executions", "12", "executor", `"runner\u00e9"`),
		decisionWith("decided_at", `"2026-11-25T18:00:00+24:00"`, "subject", `"a\nb"`, "extra", "1"),
		decisionWith("context", `{"a":[[[{"b":[[1e20]]}]]]}`),
	} {
		f.Add(body)
	}
	now := vectors.NowTime()
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := log.ParseDecision(body, now)
		checkVerdict(t, body, err)
		if err != nil {
			checkParseError(t, err, log.ErrInvalidDecision)
			return
		}
		checkCanonical(t, d.Canonical)
		checkSameCanonical(t, body, d.Canonical, "")
		if l, err := log.ParseLoggedDecision(body, now); err != nil || !bytes.Equal(l.Canonical, d.Canonical) {
			t.Fatalf("ParseLoggedDecision refuses what ParseDecision accepts: %v", err)
		}
		d2, err := log.ParseDecision(d.Canonical, now)
		if err != nil {
			t.Fatalf("the canonical form %q of an accepted decision is refused: %v", d.Canonical, err)
		}
		if !bytes.Equal(d2.Canonical, d.Canonical) {
			t.Fatalf("canonical form is not a fixed point:\n%q\n%q", d.Canonical, d2.Canonical)
		}
		if d2.ID != d.ID || d2.Outcome != d.Outcome || !d2.DecidedAt.Equal(d.DecidedAt) || d2.Subject != d.Subject ||
			d2.Action != d.Action || d2.Resource != d.Resource || d2.PolicyID != d.PolicyID || d2.ParentID != d.ParentID ||
			d2.Sequence != d.Sequence || d2.InputDigest != d.InputDigest || d2.MaxExecutions != d.MaxExecutions || d2.Executor != d.Executor {
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
	f.Add(executionWith("status", `"succeeded"`, "claim_id", `"e-0"`, "artifact", `"`+testArtifact+`"`))
	f.Add(executionWith("artifact", `"a.b.c"`, "at", `"2026-11-25T18:00:01z"`))
	now := vectors.NowTime()
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := log.ParseExecution(body, now)
		checkVerdict(t, body, err)
		if err != nil {
			checkParseError(t, err, log.ErrInvalidExecution)
			return
		}
		checkCanonical(t, e.Canonical)
		checkSameCanonical(t, body, e.Canonical, e.Artifact)
		if e.Artifact != "" {
			sum := sha256.Sum256([]byte(e.Artifact))
			if e.ArtifactDigest != "sha256:"+hex.EncodeToString(sum[:]) {
				t.Fatalf("artifact digest %q", e.ArtifactDigest)
			}
		}
		e2, err := log.ParseExecution(e.Canonical, now)
		if err != nil {
			t.Fatalf("the canonical form %q of an accepted execution is refused: %v", e.Canonical, err)
		}
		if !bytes.Equal(e2.Canonical, e.Canonical) || e2.ID != e.ID || e2.DecisionID != e.DecisionID || e2.Status != e.Status || !e2.At.Equal(e.At) ||
			e2.ClaimID != e.ClaimID || e2.Artifact != "" {
			t.Fatalf("not a fixed point:\n%+v\n%+v", e, e2)
		}
		checkEntry(t, log.ExecutionSubmission(e, "runtime"), now)
	})
}

func FuzzParseRevocation(f *testing.F) {
	for _, b := range [][]byte{
		revocationWith(), revocationWith("reason", `"leaked \u00e9\n"`), revocationWith("revoked_at", `"2026-11-25T19:00:02.5+01:00"`),
		revocationWith("id", ""), revocationWith("extra", "[]"), []byte(`{"id":"r","id":"r"}`),
	} {
		f.Add(b)
	}
	now := vectors.NowTime()
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := log.ParseRevocation(body, now)
		checkVerdict(t, body, err)
		if err != nil {
			checkParseError(t, err, log.ErrInvalidRevocation)
			return
		}
		checkCanonical(t, r.Canonical)
		checkSameCanonical(t, body, r.Canonical, "")
		r2, err := log.ParseRevocation(r.Canonical, now)
		if err != nil || !bytes.Equal(r2.Canonical, r.Canonical) || r2.ID != r.ID || r2.DecisionID != r.DecisionID ||
			!r2.RevokedAt.Equal(r.RevokedAt) || r2.Reason != r.Reason {
			t.Fatalf("not a fixed point (%v):\n%+v\n%+v", err, r, r2)
		}
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
		checkSameEntry(t, leaf, p, err)
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

// checkSameEntry holds ParseEntry's verdict on leaf, and what it read, to
// the reference implementation's (gowebpki/jcs and encoding/json).
func checkSameEntry(t *testing.T, leaf []byte, p *log.ParsedEntry, err error) {
	t.Helper()
	want, wantErr := log.ReferenceParseEntry(leaf)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("verdicts differ on %q: %v; reference: %v", clipBytes(leaf), err, wantErr)
	}
	if err != nil {
		return
	}
	same := p.Kind == want.Kind && p.ID == want.ID && p.Submitter == want.Submitter &&
		bytes.Equal(p.Content, want.Content) && p.LoggedAt.Equal(want.LoggedAt) &&
		p.AuthorizedUntil.Equal(want.AuthorizedUntil) && p.ArtifactDigest == want.ArtifactDigest &&
		p.Violation == want.Violation && (p.Decision == nil) == (want.Decision == nil) &&
		(p.Execution == nil) == (want.Execution == nil) && (p.Revocation == nil) == (want.Revocation == nil) &&
		(p.Key == nil) == (want.Key == nil)
	if !same {
		t.Fatalf("ParseEntry and the reference read %q differently:\n%+v\n%+v", clipBytes(leaf), p, want)
	}
}

// checkParseError checks that a refusal is one of the documented errors:
// invalid JSON, too large, or FieldErrors of the schema, one a field.
func checkParseError(t *testing.T, err error, schema error) {
	t.Helper()
	var fes log.FieldErrors
	switch {
	case errors.Is(err, log.ErrInvalidJSON), errors.Is(err, log.ErrTooLarge):
	case errors.As(err, &fes):
		seen := map[string]bool{}
		for _, fe := range fes {
			if fe.Err != schema || seen[fe.Field] || fe.Reason == "" {
				t.Fatalf("FieldErrors %v: %q wraps %v, or is given twice", err, fe.Field, fe.Err)
			}
			seen[fe.Field] = true
		}
		if err.Error() != fes[0].Error() {
			t.Fatalf("message %q is not the first error's", err)
		}
	default:
		t.Fatalf("undocumented error: %v", err)
	}
	if len(err.Error()) > 1000 {
		t.Fatalf("error message of %d bytes", len(err.Error()))
	}
}

// checkVerdict checks a parser's verdict on strict JSON against
// gowebpki/jcs: a body is invalid JSON exactly when jcs refuses it or it is
// not an object (a body over the size limit is too large first).
func checkVerdict(t *testing.T, body []byte, err error) {
	t.Helper()
	if len(body) > log.MaxSubmissionBytes {
		if !errors.Is(err, log.ErrTooLarge) {
			t.Fatalf("a body of %d bytes: got %v, want too large", len(body), err)
		}
		return
	}
	c, jcsErr := jcs.Transform(body)
	wantInvalid := jcsErr != nil || len(c) == 0 || c[0] != '{'
	if wantInvalid != errors.Is(err, log.ErrInvalidJSON) {
		t.Fatalf("verdict %v; gowebpki/jcs: %v", err, jcsErr)
	}
}

// checkSameCanonical checks the canonical form a parser returned against
// two other RFC 8785 implementations; artifact is the execution report's
// token, which the canonical form leaves out.
func checkSameCanonical(t *testing.T, body, canonical []byte, artifact string) {
	t.Helper()
	want, err := jcs.Transform(body)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.Transform(body)
	if err != nil || !bytes.Equal(ref, want) {
		t.Fatalf("the two JCS implementations differ on %q: %q (%v), %q", body, ref, err, want)
	}
	if artifact != "" {
		// The smallest name of an execution report: its first member.
		member := `{"artifact":"` + artifact + `",`
		if !bytes.HasPrefix(want, []byte(member)) {
			t.Fatalf("canonical form %q does not start with the artifact", want)
		}
		want = append([]byte("{"), want[len(member):]...)
	}
	if !bytes.Equal(canonical, want) {
		t.Fatalf("canonical form\n%q\nwant (JCS)\n%q", canonical, want)
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
