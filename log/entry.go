package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Kind tells a decision entry from an execution report entry. Decision and
// execution ids live in separate namespaces.
type Kind uint8

const (
	KindDecision  Kind = 1
	KindExecution Kind = 2
)

// Valid reports whether k is a kind of entry this package writes: a
// backend stores any valid kind the same way.
func (k Kind) Valid() bool { return k == KindDecision || k == KindExecution }

func (k Kind) String() string {
	switch k {
	case KindDecision:
		return "decision"
	case KindExecution:
		return "execution"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// EntryVersion is the "v" of every entry this package writes.
const EntryVersion = 1

// Timestamp layouts of the entry.
const (
	LoggedAtLayout        = "2006-01-02T15:04:05.000000000Z"
	AuthorizedUntilLayout = "2006-01-02T15:04:05Z"
)

// Submission is one validated decision or execution report with the identity
// that submitted it, waiting to be logged.
type Submission struct {
	Kind      Kind
	ID        string
	Submitter string
	// Content is the canonical decision or execution report.
	Content []byte
	// Allow is true for an allow decision.
	Allow bool
	// ParentID is a decision's parent_id, "" when absent.
	ParentID string
	// DecisionID is an execution report's decision_id.
	DecisionID string
	// Sequence is a decision's sequence number, 0 when absent.
	Sequence uint64
}

// DecisionSubmission wraps a validated decision.
func DecisionSubmission(d *Decision, submitter string) *Submission {
	return &Submission{Kind: KindDecision, ID: d.ID, Submitter: submitter, Content: d.Canonical,
		Allow: d.Outcome == OutcomeAllow, ParentID: d.ParentID, Sequence: d.Sequence}
}

// ExecutionSubmission wraps a validated execution report.
func ExecutionSubmission(e *Execution, submitter string) *Submission {
	return &Submission{Kind: KindExecution, ID: e.ID, Submitter: submitter, Content: e.Canonical,
		DecisionID: e.DecisionID}
}

// Entry is a submission stamped by the sequencer: the leaf to append.
type Entry struct {
	*Submission
	LoggedAt time.Time
	// AuthorizedUntil is set for allow decisions only.
	AuthorizedUntil time.Time
	// Leaf is the RFC 8785 canonical entry: the leaf bytes.
	Leaf []byte
}

// entryJSON is the entry's shape; jcs puts it in canonical form.
type entryJSON struct {
	// AuthorizedUntil is a pointer so that a present but empty member is
	// told from an absent one.
	AuthorizedUntil *string         `json:"authorized_until,omitempty"`
	Decision        json.RawMessage `json:"decision,omitempty"`
	Execution       json.RawMessage `json:"execution,omitempty"`
	LoggedAt        string          `json:"logged_at"`
	Submitter       string          `json:"submitter"`
	V               int             `json:"v"`
}

// NewEntry stamps a submission with loggedAt and builds its leaf. ttl is the
// artifact lifetime, a whole number of seconds; it sets authorized_until of
// an allow decision. s.Content must be canonical, as ParseDecision and
// ParseExecution return it. The error wraps ErrTooLarge when the entry would
// exceed MaxEntryBytes.
func NewEntry(s *Submission, loggedAt time.Time, ttl time.Duration) (*Entry, error) {
	e := &Entry{Submission: s, LoggedAt: loggedAt.UTC()}
	var until, key string
	switch s.Kind {
	case KindDecision:
		key = `"decision":`
		if s.Allow {
			e.AuthorizedUntil = e.LoggedAt.Truncate(time.Second).Add(ttl.Truncate(time.Second))
			until = e.AuthorizedUntil.Format(AuthorizedUntilLayout)
		}
	case KindExecution:
		key = `"execution":`
	default:
		return nil, fmt.Errorf("failed to build entry: unknown kind %v", s.Kind)
	}
	if len(s.Content) == 0 || s.Content[0] != '{' {
		return nil, fmt.Errorf("failed to build entry: the content is not a canonical JSON object")
	}
	sub, err := canonicalString(s.Submitter)
	if err != nil {
		return nil, fmt.Errorf("failed to build entry: submitter: %w", err)
	}
	// The members in RFC 8785 order (their names are ASCII, so byte order is
	// UTF-16 order): authorized_until, decision|execution, logged_at,
	// submitter, v. Every value is canonical on its own, so the whole is;
	// the tests and the fuzzer check it against jcs.Transform.
	b := make([]byte, 0, len(s.Content)+len(sub)+128)
	b = append(b, '{')
	if until != "" {
		b = append(b, `"authorized_until":"`...)
		b = append(b, until...)
		b = append(b, `",`...)
	}
	b = append(b, key...)
	b = append(b, s.Content...)
	b = append(b, `,"logged_at":"`...)
	b = e.LoggedAt.AppendFormat(b, LoggedAtLayout)
	b = append(b, `","submitter":`...)
	b = append(b, sub...)
	b = append(b, `,"v":1}`...)
	if len(b) > MaxEntryBytes {
		return nil, fmt.Errorf("%w: the entry would be %d bytes, the limit is %d", ErrTooLarge, len(b), MaxEntryBytes)
	}
	e.Leaf = b
	return e, nil
}

// canonicalString returns the RFC 8785 serialization of a string.
func canonicalString(s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("not valid UTF-8")
	}
	return appendJCSString(nil, s), nil
}

// LeafHash is the RFC 6962 leaf hash SHA-256(0x00 ‖ leaf).
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ParsedEntry is a leaf read back from the log.
type ParsedEntry struct {
	Kind      Kind
	ID        string
	Submitter string
	// Content is the canonical decision or execution report, byte for byte
	// as it appears in the leaf.
	Content         []byte
	LoggedAt        time.Time
	AuthorizedUntil time.Time // zero unless an allow decision
	Decision        *Decision // KindDecision
	Execution       *Execution
}

// ParseEntry parses and fully validates a leaf: it must be canonical JSON
// of the entry shape, v 1, with a decision or execution report that obeys
// the schema (its timestamps may be at most MaxFutureSkew after logged_at),
// and authorized_until present exactly for allow decisions.
func ParseEntry(leaf []byte) (*ParsedEntry, error) {
	if len(leaf) > MaxEntryBytes {
		return nil, fmt.Errorf("entry is %d bytes, the limit is %d", len(leaf), MaxEntryBytes)
	}
	canon, err := jcs.Transform(leaf)
	if err != nil {
		return nil, fmt.Errorf("entry is not valid JSON: %w", err)
	}
	if !bytes.Equal(canon, leaf) {
		return nil, fmt.Errorf("entry is not in RFC 8785 canonical form")
	}
	// encoding/json matches member names without regard to case (and
	// folds Unicode), so check the names exactly first: "Decision" or
	// "ſubmitter" are not members of an entry.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(leaf, &members); err != nil {
		return nil, fmt.Errorf("entry does not have the entry shape: %w", err)
	}
	for name := range members {
		switch name {
		case "authorized_until", "decision", "execution", "logged_at", "submitter", "v":
		default:
			return nil, fmt.Errorf("entry has an unknown member %q", clip(name))
		}
	}
	var j entryJSON
	dec := json.NewDecoder(bytes.NewReader(leaf))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("entry does not have the entry shape: %w", err)
	}
	if j.V != EntryVersion {
		return nil, fmt.Errorf("entry has v %d, want %d", j.V, EntryVersion)
	}
	p := &ParsedEntry{Submitter: j.Submitter}
	if p.LoggedAt, err = parseExact(LoggedAtLayout, j.LoggedAt); err != nil {
		return nil, fmt.Errorf("entry has a bad logged_at %q", j.LoggedAt)
	}
	if j.Submitter == "" {
		return nil, fmt.Errorf("entry has no submitter")
	}
	switch {
	case j.Decision != nil && j.Execution == nil:
		p.Kind, p.Content = KindDecision, j.Decision
		if p.Decision, err = ParseLoggedDecision(j.Decision, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid decision: %w", err)
		}
		p.ID = p.Decision.ID
		allow := p.Decision.Outcome == OutcomeAllow
		if allow != (members["authorized_until"] != nil) {
			return nil, fmt.Errorf("entry must have authorized_until exactly when the outcome is allow")
		}
		if allow {
			// A JSON null decodes to a nil pointer: it is not a timestamp.
			if j.AuthorizedUntil == nil {
				return nil, fmt.Errorf("entry has a bad authorized_until %s", members["authorized_until"])
			}
			if p.AuthorizedUntil, err = parseExact(AuthorizedUntilLayout, *j.AuthorizedUntil); err != nil {
				return nil, fmt.Errorf("entry has a bad authorized_until %q", *j.AuthorizedUntil)
			}
		}
	case j.Execution != nil && j.Decision == nil:
		p.Kind, p.Content = KindExecution, j.Execution
		if members["authorized_until"] != nil {
			return nil, fmt.Errorf("an execution entry has no authorized_until")
		}
		if p.Execution, err = ParseLoggedExecution(j.Execution, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid execution report: %w", err)
		}
		p.ID = p.Execution.ID
	default:
		return nil, fmt.Errorf("entry must hold exactly one of decision and execution")
	}
	return p, nil
}

// parseExact parses a timestamp that must be written exactly in layout:
// time.Parse alone also accepts fractional seconds the layout lacks.
func parseExact(layout, s string) (time.Time, error) {
	t, err := time.Parse(layout, s)
	if err != nil {
		return time.Time{}, err
	}
	if t.Format(layout) != s {
		return time.Time{}, fmt.Errorf("timestamp %q is not in the form %s", s, layout)
	}
	return t, nil
}

// SameSubmission reports whether a stored leaf holds exactly this submission:
// the same kind, canonical content and submitter. An identical resubmission
// gets the original receipt; anything else with the same id is a conflict.
func SameSubmission(leaf []byte, s *Submission) bool {
	var j entryJSON
	if err := json.Unmarshal(leaf, &j); err != nil {
		return false
	}
	content := j.Decision
	if s.Kind == KindExecution {
		content = j.Execution
	}
	return j.Submitter == s.Submitter && bytes.Equal(content, s.Content)
}
