package log_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// TestEntryTerms: a decision appended with its own leaf is indexed from its
// submission, without parsing the leaf; its postings are exactly those of
// its leaf's summary, as reindex and fsck compute them. Any other leaf is
// read.
func TestEntryTerms(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 59, 59, 999_999_999, time.UTC)
	for _, body := range [][]byte{
		decisionWith(),
		decisionWith("outcome", `"allow"`, "resource", `"svc/db-1"`),
		decisionWith("subject", `"agent-\u00e9\"7"`, "policy", `{"id":"p","version":"2"}`),
		decisionWith("outcome", `"allow"`, "parent_id", `"d-0"`),
	} {
		d, err := log.ParseDecision(body, now)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(log.DecisionSubmission(d, "alice"), now.Add(1234*time.Microsecond), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		s, err := log.Summarize(e.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(s.FieldTerms(), s.TimeTerms())
		fields, times, err := log.EntryTerms(e, e.Leaf)
		if err != nil || fmt.Sprint(fields, times) != want {
			t.Errorf("EntryTerms of %s = %v %v, %v; want %s", body, fields, times, err, want)
		}
		// Another leaf (a verdict's) is read, not assumed.
		other := decisionWith("subject", `"someone-else"`)
		d2, _ := log.ParseDecision(other, now)
		e2, _ := log.NewEntry(log.DecisionSubmission(d2, "alice"), now, time.Minute)
		s2, _ := log.Summarize(e2.Leaf)
		fields, times, err = log.EntryTerms(e, e2.Leaf)
		if err != nil || fmt.Sprint(fields, times) != fmt.Sprint(s2.FieldTerms(), s2.TimeTerms()) {
			t.Errorf("EntryTerms with another leaf = %v %v, %v; want the other leaf's", fields, times, err)
		}
		// A submission that does not carry the decision's fields: the leaf.
		bare := *e.Submission
		bare.Subject, bare.Action, bare.Resource, bare.PolicyID = "", "", "", ""
		fields, times, err = log.EntryTerms(&log.Entry{Submission: &bare, LoggedAt: e.LoggedAt, Leaf: e.Leaf}, e.Leaf)
		if err != nil || fmt.Sprint(fields, times) != want {
			t.Errorf("EntryTerms of a bare submission = %v %v, %v; want %s", fields, times, err, want)
		}
	}
}

// TestEntryTermsReports: an execution report or a revocation appended
// with its own leaf is indexed from its submission too, with exactly the
// postings of its leaf's summary; a leaf the rule book gave a violation,
// or a submission without its decision_id, is read.
func TestEntryTermsReports(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 59, 59, 999_999_999, time.UTC)
	var subs []*log.Submission
	for _, body := range [][]byte{executionWith(), executionWith("status", `"succeeded"`, "claim_id", `"c-1"`)} {
		x, err := log.ParseExecution(body, now)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, log.ExecutionSubmission(x, "alice"))
	}
	r, err := log.ParseRevocation(revocationWith(), now)
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, log.RevocationSubmission(r, "alice"))
	terms := func(leaf []byte) string {
		s, err := log.Summarize(leaf)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(s.FieldTerms(), s.TimeTerms())
	}
	for _, sub := range subs {
		e, err := log.NewEntry(sub, now.Add(1234*time.Microsecond), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			e    *log.Entry
			leaf []byte
			own  bool // the summary comes from the submission
		}{
			{"its own leaf", e, e.Leaf, true},
			{"a leaf with a violation", e, log.WithViolation(e.Leaf, log.ViolationNotAuthorized), false},
			{"a submission without its decision_id", &log.Entry{Submission: &log.Submission{Kind: sub.Kind, ID: sub.ID, Status: sub.Status}, LoggedAt: e.LoggedAt, Leaf: e.Leaf}, e.Leaf, false},
		} {
			fields, times, err := log.EntryTerms(c.e, c.leaf)
			if want := terms(c.leaf); err != nil || fmt.Sprint(fields, times) != want {
				t.Errorf("%v %s, %s: EntryTerms = %v %v, %v; want %s", sub.Kind, sub.ID, c.name, fields, times, err, want)
			}
			s, own := c.e.OwnSummary(c.leaf)
			if want, _ := log.Summarize(c.leaf); own != c.own || own && s != want {
				t.Errorf("%v %s, %s: the submission's summary %+v (%v), want the leaf's %+v (%v)", sub.Kind, sub.ID, c.name, s, own, want, c.own)
			}
		}
	}
}

// TestTermOfStable: terms are stored (the embedded backend's search_terms,
// the Trillian backend's govlog_search), so TermOf of a field and value
// must never change: the first 31 bits of SHA-256("govlog-search" 0x00
// field 0x00 value), here for a short value, a time bucket and a value
// longer than TermOf's stack buffer.
func TestTermOfStable(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		want         log.Term
	}{
		{"subject", "agent-7", 2052312168},
		{"second", "2026-01-02T03:04:05", 1414471983},
		{"resource", strings.Repeat("r", 200), 1913379937},
	} {
		if got := log.TermOf(tc.field, tc.value); got != tc.want {
			t.Errorf("TermOf(%q, %.20q) = %d, want %d", tc.field, tc.value, got, tc.want)
		}
	}
	// A second's time terms are computed once and reused; another
	// second's are its own.
	a := log.Summary{LoggedAt: time.Date(2026, 1, 2, 3, 4, 5, 100, time.UTC)}
	b := log.Summary{LoggedAt: time.Date(2026, 1, 2, 3, 4, 5, 900_000_000, time.UTC)}
	c := log.Summary{LoggedAt: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)}
	if fmt.Sprint(a.TimeTerms()) != fmt.Sprint(b.TimeTerms()) || a.TimeTerms()[2] != 1414471983 || c.TimeTerms()[2] == 1414471983 || a.TimeTerms()[2] != 1414471983 {
		t.Errorf("time terms: %v %v %v", a.TimeTerms(), b.TimeTerms(), c.TimeTerms())
	}
}
