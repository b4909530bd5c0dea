package log

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
)

// Search: the summary of an entry that the search index holds, the query
// of GET /v1/search, and the pure functions both backends index and
// filter with. A backend stores, for each entry, the posting list terms
// of its Summary (Summary.Terms) next to the entry, in the same
// transaction; a query is answered by intersecting the postings of its
// terms (Query.Terms) in index order, and every candidate is confirmed by
// Query.Match on the summary of its leaf. The terms are hashes, so the
// index holds no copy of the strings, and a hash collision costs a
// candidate that Match drops, never a wrong answer.

// Summary is what search knows of one entry, extracted from its leaf.
type Summary struct {
	// Kind is "decision", "execution", "revocation" or "key".
	Kind     string
	ID       string
	LoggedAt time.Time
	// Decisions only.
	Outcome, Subject, Action, Resource, PolicyID string
	// ParentID is the decision a decision names as its parent_id (its
	// lineage), "" when it names none.
	ParentID string
	// Executions and revocations: the decision they name.
	DecisionID string
	// Executions only.
	Status    string
	Violation string
}

// Search kinds, as the query and the results spell them.
const (
	SearchDecision   = "decision"
	SearchExecution  = "execution"
	SearchRevocation = "revocation"
	SearchKey        = "key"
)

// summaryJSON is the part of an entry a Summary needs. Members it does not
// name (context, reasons, jwk, ...) are skipped.
type summaryJSON struct {
	LoggedAt string `json:"logged_at"`
	Decision *struct {
		ID       string `json:"id"`
		Outcome  string `json:"outcome"`
		Subject  string `json:"subject"`
		Action   string `json:"action"`
		Resource string `json:"resource"`
		Policy   struct {
			ID string `json:"id"`
		} `json:"policy"`
		ParentID string `json:"parent_id"`
	} `json:"decision"`
	Execution *struct {
		ID         string `json:"id"`
		DecisionID string `json:"decision_id"`
		Status     string `json:"status"`
	} `json:"execution"`
	Revocation *struct {
		ID         string `json:"id"`
		DecisionID string `json:"decision_id"`
	} `json:"revocation"`
	Key *struct {
		KID string `json:"kid"`
	} `json:"key"`
	Violation string `json:"violation"`
}

// Summarize extracts the Summary of a leaf. It checks only what it reads
// (one kind, a logged_at): the leaf is one the log stored, validated when
// it was appended; ParseEntry is the full check.
func Summarize(leaf []byte) (Summary, error) {
	var j summaryJSON
	if err := json.Unmarshal(leaf, &j); err != nil {
		return Summary{}, fmt.Errorf("failed to summarize the entry: %w", err)
	}
	var s Summary
	t, err := time.Parse(time.RFC3339Nano, j.LoggedAt)
	if err != nil {
		return Summary{}, fmt.Errorf("failed to summarize the entry: bad logged_at %q", clip(j.LoggedAt))
	}
	s.LoggedAt = t.UTC()
	n := 0
	if d := j.Decision; d != nil {
		n++
		s.Kind, s.ID, s.Outcome, s.Subject, s.Action, s.Resource, s.PolicyID =
			SearchDecision, d.ID, d.Outcome, d.Subject, d.Action, d.Resource, d.Policy.ID
		s.ParentID = d.ParentID
	}
	if e := j.Execution; e != nil {
		n++
		s.Kind, s.ID, s.DecisionID, s.Status = SearchExecution, e.ID, e.DecisionID, e.Status
		s.Violation = j.Violation
	}
	if r := j.Revocation; r != nil {
		n++
		s.Kind, s.ID, s.DecisionID = SearchRevocation, r.ID, r.DecisionID
	}
	if k := j.Key; k != nil {
		n++
		s.Kind, s.ID = SearchKey, k.KID
	}
	if n != 1 || s.ID == "" {
		return Summary{}, fmt.Errorf("failed to summarize the entry: it must hold exactly one decision, execution, revocation or key with an id")
	}
	return s, nil
}

// Query is a search: every set field must match (an empty one matches
// anything), as GET /v1/search defines its parameters.
type Query struct {
	Kind, Subject, Action, Resource, Outcome, PolicyID, DecisionID string
	// ParentID matches the decisions that name it as their parent_id: the
	// children of a decision.
	ParentID string
	// Violation is "" (anything), "any" (an entry recorded with some
	// violation) or a violation code.
	Violation string
	// From (inclusive) and To (exclusive) bound logged_at; zero means no
	// bound.
	From, To time.Time
}

// ViolationAny is the Query.Violation that matches every recorded violation.
const ViolationAny = "any"

// Match reports whether the entry of s matches q.
func (q *Query) Match(s *Summary) bool {
	eq := func(want, got string) bool { return want == "" || want == got }
	if !eq(q.Kind, s.Kind) || !eq(q.Subject, s.Subject) || !eq(q.Action, s.Action) ||
		!eq(q.Resource, s.Resource) || !eq(q.Outcome, s.Outcome) || !eq(q.PolicyID, s.PolicyID) ||
		!eq(q.DecisionID, s.DecisionID) || !eq(q.ParentID, s.ParentID) {
		return false
	}
	switch q.Violation {
	case "":
	case ViolationAny:
		if s.Violation == "" {
			return false
		}
	default:
		if q.Violation != s.Violation {
			return false
		}
	}
	if !q.From.IsZero() && s.LoggedAt.Before(q.From) {
		return false
	}
	if !q.To.IsZero() && !s.LoggedAt.Before(q.To) {
		return false
	}
	return true
}

// Term is one posting list key of the search index: a 31-bit hash of a
// field and its value (non-negative, so SQLite stores it in 4 bytes and it
// fits any signed column). Two values may share a term: that costs a
// candidate that Match drops.
type Term int64

// Term fields, in the order a backend prefers to drive a query: the most
// selective first.
const (
	termDecisionID = "decision_id"
	termParentID   = "parent_id"
	termResource   = "resource"
	termSubject    = "subject"
	termViolation  = "violation"
	termPolicy     = "policy_id"
	termAction     = "action"
	termKind       = "kind"
	termOutcome    = "outcome"
	termHour       = "hour"
	termMinute     = "minute"
	termSecond     = "second"
)

// hourLayout, minuteLayout and secondLayout name the buckets of a
// logged_at, for time-only queries.
const (
	hourLayout   = "2006-01-02T15"
	minuteLayout = "2006-01-02T15:04"
	secondLayout = "2006-01-02T15:04:05"
)

// TermOf is the Term of a field and value: the first 31 bits of
// SHA-256("govlog-search" 0x00 field 0x00 value).
func TermOf(field, value string) Term {
	// One call on a buffer that stays on the stack for most values,
	// rather than a hash.Hash and a write per part: terms are computed
	// for every appended entry.
	const prefix = "govlog-search\x00"
	var buf [128]byte
	b := append(append(append(append(buf[:0], prefix...), field...), 0), value...)
	sum := sha256.Sum256(b)
	return Term(binary.BigEndian.Uint32(sum[:4]) >> 1)
}

// Terms lists the postings an entry is indexed under: FieldTerms and
// TimeTerms, distinct.
func (s *Summary) Terms() []Term {
	return distinct(append(s.FieldTerms(), s.TimeTerms()...))
}

// FieldTerms lists the postings of an entry's fields (kind, subject,
// action, resource, outcome, policy, decision, violation), distinct: the
// terms of Plan.All. Their values are spread over the whole log, so a
// backend keys them by a range of indexes first, to keep an append's
// postings together.
func (s *Summary) FieldTerms() []Term {
	out := make([]Term, 0, 8)
	add := func(field, value string) {
		if value != "" {
			out = append(out, TermOf(field, value))
		}
	}
	// Decisions are most of a log: their kind is no use to drive a
	// search (a kind=decision query scans entries), so it is not indexed.
	if s.Kind != SearchDecision {
		add(termKind, s.Kind)
	}
	add(termSubject, s.Subject)
	add(termAction, s.Action)
	add(termResource, s.Resource)
	add(termOutcome, s.Outcome)
	add(termPolicy, s.PolicyID)
	add(termDecisionID, s.DecisionID)
	add(termParentID, s.ParentID)
	if s.Violation != "" {
		add(termViolation, s.Violation)
		add(termViolation, ViolationAny)
	}
	return distinct(out)
}

// TimeTerms lists the postings of an entry's logged_at: its hour, minute
// and second buckets, distinct: the terms of Plan.Any. The entries
// appended together share them, so their postings are together already.
// The entries of one second get the same slice (the last second's terms
// are kept): the caller must not modify it.
func (s *Summary) TimeTerms() []Term {
	t := s.LoggedAt.UTC()
	sec := t.Unix()
	if c := lastTimeTerms.Load(); c != nil && c.sec == sec {
		return c.terms
	}
	terms := distinct([]Term{
		TermOf(termHour, t.Format(hourLayout)),
		TermOf(termMinute, t.Format(minuteLayout)),
		TermOf(termSecond, t.Format(secondLayout)),
	})
	lastTimeTerms.Store(&timeTerms{sec: sec, terms: terms})
	return terms
}

// timeTerms are the TimeTerms of the logged_at times of one second.
type timeTerms struct {
	sec   int64 // Unix time
	terms []Term
}

// lastTimeTerms holds the TimeTerms of the last second asked for: the
// entries appended together share it.
var lastTimeTerms atomic.Pointer[timeTerms]

// distinct removes the repeats of terms, in place (a collision of two
// would be one posting).
func distinct(out []Term) []Term {
	for i := 1; i < len(out); i++ {
		for j := range i {
			if out[j] == out[i] {
				out = append(out[:i], out[i+1:]...)
				i--
				break
			}
		}
	}
	return out
}

// MaxHourTerms is the longest range, in hours, a time-only query is driven
// by its hour, minute and second buckets; a wider range is answered by scanning
// entries in index order.
const MaxHourTerms = 168

// Plan is how a backend answers a query: the candidates are the entries
// indexed under every term of All (in index order), or, when All is
// empty, under any term of Any; with both empty, every entry. Each
// candidate must then pass Query.Match. All holds field terms only
// (Summary.FieldTerms), Any time terms only (Summary.TimeTerms).
type Plan struct {
	All []Term
	Any []Term
}

// Plan returns the index plan of q: its terms, the most selective first.
func (q *Query) Plan() Plan {
	var p Plan
	add := func(field, value string) {
		if value != "" {
			p.All = append(p.All, TermOf(field, value))
		}
	}
	add(termDecisionID, q.DecisionID)
	add(termParentID, q.ParentID)
	add(termResource, q.Resource)
	add(termSubject, q.Subject)
	if q.Violation != ViolationAny {
		add(termViolation, q.Violation)
	}
	add(termPolicy, q.PolicyID)
	add(termAction, q.Action)
	if q.Violation == ViolationAny {
		add(termViolation, ViolationAny)
	}
	add(termOutcome, q.Outcome)
	if q.Kind != SearchDecision {
		add(termKind, q.Kind)
	}
	if len(p.All) > 0 || q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return p
	}
	// Seconds up to the first full minute, minutes up to the first full
	// hour, full hours, then minutes and seconds: chronological order,
	// each instant of the range in one bucket, at most ~400 buckets.
	from, to := q.From.UTC().Truncate(time.Second), q.To.UTC()
	if to.Sub(from) > MaxHourTerms*time.Hour {
		return p
	}
	for t := from; t.Before(to); {
		switch {
		case t.Truncate(time.Hour).Equal(t) && !t.Add(time.Hour).After(to):
			p.Any = append(p.Any, TermOf(termHour, t.Format(hourLayout)))
			t = t.Add(time.Hour)
		case t.Truncate(time.Minute).Equal(t) && !t.Add(time.Minute).After(to):
			p.Any = append(p.Any, TermOf(termMinute, t.Format(minuteLayout)))
			t = t.Add(time.Minute)
		default:
			p.Any = append(p.Any, TermOf(termSecond, t.Format(secondLayout)))
			t = t.Add(time.Second)
		}
	}
	return p
}

// Found is one search result: an entry's index and leaf.
type Found struct {
	Index uint64
	Leaf  []byte
}

// Searcher is the search index of a Backend. Both backends of this module
// implement it.
type Searcher interface {
	// Search returns up to limit entries that match q, in increasing index
	// order, with start <= index < min(end, latest checkpoint's size):
	// never an entry that no stored checkpoint covers. end 0 means the
	// latest size. Every returned entry passes q.Match on Summarize of its
	// leaf.
	Search(ctx context.Context, q *Query, start, end uint64, limit int) ([]Found, error)
}

// MergeFound merges two lists of candidates in increasing index order
// into one, without repeats, keeping the first n.
func MergeFound(a, b []Found, n int) []Found {
	out := make([]Found, 0, min(len(a)+len(b), n))
	for len(out) < n && (len(a) > 0 || len(b) > 0) {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].Index < b[0].Index):
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0].Index < a[0].Index:
			out, b = append(out, b[0]), b[1:]
		default: // the same entry
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

// SearchIndex is how a backend's index answers one step of a search: up to
// n entries in [start, end), in index order, that the plan's postings name
// (candidates: their leaves are matched against the query by Collect).
type SearchIndex func(ctx context.Context, p Plan, start, end uint64, n int) ([]Found, error)

// Collect answers a search of [start, end) with at most limit entries
// matching q, in index order, from the candidates index names: it asks
// for candidates a page at a time (twice what is still missing, 64 to
// 1,000) and keeps those whose leaf matches, until the page is full or
// the range is read. Both backends search through it.
func Collect(ctx context.Context, q *Query, start, end uint64, limit int, index SearchIndex) ([]Found, error) {
	plan := q.Plan()
	var out []Found
	for cursor := start; len(out) < limit && cursor < end; {
		n := min(max(2*(limit-len(out)), 64), 1000)
		cands, err := index(ctx, plan, cursor, end, n)
		if err != nil {
			return nil, err
		}
		if len(cands) == 0 {
			break
		}
		found, _, err := FilterFound(q, cands, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("%w: failed to search: %w", ErrUnavailable, err)
		}
		out = append(out, found...)
		cursor = cands[len(cands)-1].Index + 1
	}
	return out, nil
}

// FilterFound keeps the candidates whose leaf matches q, up to limit; it
// also returns how many candidates it looked at (the rest were not).
// Backends use it on the rows their index returned.
func FilterFound(q *Query, cands []Found, limit int) (out []Found, seen int, err error) {
	for _, c := range cands {
		if len(out) == limit {
			break
		}
		seen++
		s, err := Summarize(c.Leaf)
		if err != nil {
			return nil, 0, fmt.Errorf("entry %d: %w", c.Index, err)
		}
		if q.Match(&s) {
			out = append(out, c)
		}
	}
	return out, seen, nil
}

// EntryTerms lists the search postings of an entry being appended with
// this leaf (the leaf is the verdict's: it holds what the rule book set,
// such as a violation): its field terms and its time terms. An entry
// appended with its own leaf (a rule book verdict that changes a report
// gives it another) is indexed from what was parsed when it was
// submitted (Entry.ownSummary); any other entry from its leaf.
func EntryTerms(e *Entry, leaf []byte) (fields, times []Term, err error) {
	s, ok := e.ownSummary(leaf)
	if !ok {
		if s, err = Summarize(leaf); err != nil {
			return nil, nil, err
		}
	}
	return s.FieldTerms(), s.TimeTerms(), nil
}

// ownSummary is the Summary of e from its submission, which is its leaf's
// when leaf is e's own: a decision whose submission carries its subject
// (DecisionSubmission), an execution report or a revocation that NewEntry
// stamped (its leaf carries no violation). ok is false for any other leaf
// or submission.
func (e *Entry) ownSummary(leaf []byte) (s Summary, ok bool) {
	if e.LoggedAt.IsZero() || len(leaf) == 0 || len(e.Leaf) != len(leaf) || &e.Leaf[0] != &leaf[0] || e.ID == "" {
		return Summary{}, false
	}
	s = Summary{ID: e.ID, LoggedAt: e.LoggedAt.UTC()}
	switch {
	case e.Kind == KindDecision && e.Subject != "":
		s.Kind, s.Outcome, s.Subject, s.Action, s.Resource, s.PolicyID, s.ParentID =
			SearchDecision, OutcomeDeny, e.Subject, e.Action, e.Resource, e.PolicyID, e.ParentID
		if e.Allow {
			s.Outcome = OutcomeAllow
		}
	case e.Kind == KindExecution && e.DecisionID != "" && e.Status != "" && e.LoggedViolation == "":
		s.Kind, s.DecisionID, s.Status = SearchExecution, e.DecisionID, e.Status
	case e.Kind == KindRevocation && e.DecisionID != "":
		s.Kind, s.DecisionID = SearchRevocation, e.DecisionID
	default:
		return Summary{}, false
	}
	return s, true
}
