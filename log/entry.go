package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Kind tells the kinds of entries apart: decisions, execution reports,
// revocations and artifact keys. Each kind's ids live in a namespace of
// their own (a key's id is its kid).
type Kind uint8

const (
	KindDecision   Kind = 1
	KindExecution  Kind = 2
	KindRevocation Kind = 3
	KindKey        Kind = 4
)

// Valid reports whether k is a kind of entry this package writes: a
// backend stores any valid kind the same way.
func (k Kind) Valid() bool { return k >= KindDecision && k <= KindKey }

func (k Kind) String() string {
	switch k {
	case KindDecision:
		return "decision"
	case KindExecution:
		return "execution"
	case KindRevocation:
		return "revocation"
	case KindKey:
		return "key"
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

// Submission is one validated decision, execution report, revocation or
// key with the identity that submitted it, waiting to be logged.
type Submission struct {
	Kind      Kind
	ID        string
	Submitter string
	// Content is the canonical decision, execution report (without its
	// artifact), revocation or key.
	Content []byte
	// Allow is true for an allow decision.
	Allow bool
	// ParentID is a decision's parent_id, "" when absent.
	ParentID string
	// DecisionID is the decision_id of an execution report or revocation.
	DecisionID string
	// Sequence is a decision's sequence number, 0 when absent.
	Sequence uint64

	// A decision's decided_at, max_executions (0 when absent: 1) and
	// executor ("" when absent).
	DecidedAt     time.Time
	MaxExecutions int
	Executor      string

	// An execution report's status, at, claim_id ("" when absent) and
	// artifact ("" when absent; never logged, only its digest).
	Status         string
	At             time.Time
	ClaimID        string
	Artifact       string
	ArtifactDigest string
	// LoggedViolation is, for a logged report replayed by an auditor, the
	// violation its entry records (its artifact is not logged); "" for a
	// submission.
	LoggedViolation string

	// A decision's subject, action, resource ("" when absent) and policy
	// id, which the search index keys it by (EntryTerms); Subject is ""
	// when they are not known, and EntryTerms reads them from the leaf.
	Subject, Action, Resource, PolicyID string

	// verified is Artifact decoded and its signature verified before the
	// sequencer (see Log.SubmitAll); nil when not done. Only this package
	// sets it: the rule book checks that the key it was verified with is
	// the logged one.
	verified *verifiedArtifact
}

// DecisionSubmission wraps a validated decision.
func DecisionSubmission(d *Decision, submitter string) *Submission {
	return &Submission{Kind: KindDecision, ID: d.ID, Submitter: submitter, Content: d.Canonical,
		Allow: d.Outcome == OutcomeAllow, ParentID: d.ParentID, Sequence: d.Sequence,
		DecidedAt: d.DecidedAt, MaxExecutions: d.MaxExecutions, Executor: d.Executor,
		Subject: d.Subject, Action: d.Action, Resource: d.Resource, PolicyID: d.PolicyID}
}

// ExecutionSubmission wraps a validated execution report.
func ExecutionSubmission(e *Execution, submitter string) *Submission {
	return &Submission{Kind: KindExecution, ID: e.ID, Submitter: submitter, Content: e.Canonical,
		DecisionID: e.DecisionID, Status: e.Status, At: e.At, ClaimID: e.ClaimID,
		Artifact: e.Artifact, ArtifactDigest: e.ArtifactDigest}
}

// RevocationSubmission wraps a validated revocation.
func RevocationSubmission(r *Revocation, submitter string) *Submission {
	return &Submission{Kind: KindRevocation, ID: r.ID, Submitter: submitter, Content: r.Canonical,
		DecisionID: r.DecisionID}
}

// Entry is a submission stamped by the sequencer: the leaf to append.
type Entry struct {
	*Submission
	// Origin is the log's origin, which an artifact's iss must be; ""
	// skips that check (the leaf hash and the logged key still bind it).
	Origin   string
	LoggedAt time.Time
	// AuthorizedUntil is set for allow decisions only.
	AuthorizedUntil time.Time
	// Leaf is the RFC 8785 canonical entry: the leaf bytes.
	Leaf []byte
}

// entryJSON is the entry's shape; jcs puts it in canonical form.
type entryJSON struct {
	ArtifactDigest *string `json:"artifact_digest,omitempty"`
	// AuthorizedUntil is a pointer so that a present but empty member is
	// told from an absent one.
	AuthorizedUntil *string         `json:"authorized_until,omitempty"`
	Decision        json.RawMessage `json:"decision,omitempty"`
	Execution       json.RawMessage `json:"execution,omitempty"`
	Key             json.RawMessage `json:"key,omitempty"`
	LoggedAt        string          `json:"logged_at"`
	Revocation      json.RawMessage `json:"revocation,omitempty"`
	Submitter       string          `json:"submitter"`
	V               int             `json:"v"`
	Violation       *string         `json:"violation,omitempty"`
}

// NewEntry stamps a submission with loggedAt and builds its leaf. ttl is the
// artifact lifetime, a whole number of seconds; it sets authorized_until of
// an allow decision. s.Content must be canonical, as ParseDecision and
// ParseExecution return it. The error wraps ErrTooLarge when the entry would
// exceed MaxEntryBytes. The leaf of an execution report carries no
// violation: the rule book adds it (WithViolation) when it judges one.
func NewEntry(s *Submission, loggedAt time.Time, ttl time.Duration) (*Entry, error) {
	e := &Entry{Submission: s, LoggedAt: loggedAt.UTC()}
	var until, key string
	after := false // the content member comes after logged_at
	switch s.Kind {
	case KindDecision:
		key = `"decision":`
		if s.Allow {
			e.AuthorizedUntil = e.LoggedAt.Truncate(time.Second).Add(ttl.Truncate(time.Second))
			until = e.AuthorizedUntil.Format(AuthorizedUntilLayout)
		}
	case KindExecution:
		key = `"execution":`
	case KindKey:
		key = `"key":`
	case KindRevocation:
		key, after = `"revocation":`, true
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
	// UTF-16 order): artifact_digest, authorized_until, decision | execution
	// | key, logged_at, revocation, submitter, v (and violation, added by
	// the rule book). Every value is canonical on its own, so the whole is;
	// the tests and the fuzzer check it against jcs.Transform.
	b := make([]byte, 0, len(s.Content)+len(sub)+200)
	b = append(b, '{')
	if s.Kind == KindExecution && s.ArtifactDigest != "" {
		b = append(b, `"artifact_digest":"`...)
		b = append(b, s.ArtifactDigest...)
		b = append(b, `",`...)
	}
	if until != "" {
		b = append(b, `"authorized_until":"`...)
		b = append(b, until...)
		b = append(b, `",`...)
	}
	if !after {
		b = append(b, key...)
		b = append(b, s.Content...)
		b = append(b, ',')
	}
	b = append(b, `"logged_at":"`...)
	b = e.LoggedAt.AppendFormat(b, LoggedAtLayout)
	b = append(b, `",`...)
	if after {
		b = append(b, key...)
		b = append(b, s.Content...)
		b = append(b, ',')
	}
	b = append(b, `"submitter":`...)
	b = append(b, sub...)
	b = append(b, `,"v":1}`...)
	if s.Kind == KindExecution {
		// Room for the longest violation the rule book may add.
		if n := len(b) + len(`,"violation":""`) + len(ViolationArtifactInvalid); n > MaxEntryBytes {
			return nil, fmt.Errorf("%w: the entry would be %d bytes, the limit is %d", ErrTooLarge, n, MaxEntryBytes)
		}
	}
	if len(b) > MaxEntryBytes {
		return nil, fmt.Errorf("%w: the entry would be %d bytes, the limit is %d", ErrTooLarge, len(b), MaxEntryBytes)
	}
	e.Leaf = b
	return e, nil
}

// WithViolation returns the leaf of an execution report entry with the
// violation the log records: the member "violation" comes last in RFC 8785
// order.
func WithViolation(leaf []byte, violation string) []byte {
	b := make([]byte, 0, len(leaf)+len(violation)+16)
	b = append(b, leaf[:len(leaf)-1]...)
	b = append(b, `,"violation":"`...)
	b = append(b, violation...)
	b = append(b, `"}`...)
	return b
}

// LeafViolation returns the violation recorded in an execution report's
// leaf, "" when none. The leaf must be one the log wrote (canonical).
func LeafViolation(leaf []byte) string {
	const marker = `,"v":1,"violation":"`
	// Every leaf without a violation ends with "v":1}: the suffix first,
	// before a search of the whole leaf.
	if !bytes.HasSuffix(leaf, []byte(`"}`)) {
		return ""
	}
	i := bytes.LastIndex(leaf, []byte(marker))
	if i < 0 {
		return ""
	}
	v := string(leaf[i+len(marker) : len(leaf)-2])
	for _, c := range v {
		if (c < 'a' || c > 'z') && c != '_' {
			return ""
		}
	}
	return v
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
	// Content is the canonical decision, execution report, revocation or
	// key, byte for byte as it appears in the leaf.
	Content         []byte
	LoggedAt        time.Time
	AuthorizedUntil time.Time // zero unless an allow decision
	Decision        *Decision // KindDecision
	Execution       *Execution
	Revocation      *Revocation
	Key             *KeyContent
	// ArtifactDigest and Violation of an execution report, "" when absent.
	ArtifactDigest string
	Violation      string
}

// ParseEntry parses and fully validates a leaf: it must be canonical JSON
// of the entry shape, v 1, with a decision, execution report, revocation
// or key that obeys the schema (its timestamps may be at most
// MaxFutureSkew after logged_at), authorized_until present exactly for
// allow decisions, artifact_digest and violation only on execution
// reports.
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
	contents := 0
	for name := range members {
		switch name {
		case "decision", "execution", "revocation", "key":
			contents++
		case "authorized_until", "artifact_digest", "logged_at", "submitter", "v", "violation":
		default:
			return nil, fmt.Errorf("entry has an unknown member %q", clip(name))
		}
	}
	if contents != 1 {
		return nil, fmt.Errorf("entry must hold exactly one of decision, execution, revocation and key")
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
	if j.Execution == nil && (members["artifact_digest"] != nil || members["violation"] != nil) {
		return nil, fmt.Errorf("only an execution entry has artifact_digest or violation")
	}
	if j.Decision == nil && members["authorized_until"] != nil {
		return nil, fmt.Errorf("only an allow decision has authorized_until")
	}
	switch {
	case j.Decision != nil:
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
	case j.Execution != nil:
		p.Kind, p.Content = KindExecution, j.Execution
		if p.Execution, err = ParseLoggedExecution(j.Execution, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid execution report: %w", err)
		}
		p.ID = p.Execution.ID
		// The artifact is a bearer credential: the log keeps only its
		// digest, never the token.
		if p.Execution.Artifact != "" {
			return nil, fmt.Errorf("an execution entry holds no artifact")
		}
		if members["artifact_digest"] != nil {
			if j.ArtifactDigest == nil || !validDigest(*j.ArtifactDigest) {
				return nil, fmt.Errorf("entry has a bad artifact_digest %s", clip(string(members["artifact_digest"])))
			}
			p.ArtifactDigest = *j.ArtifactDigest
			p.Execution.ArtifactDigest = p.ArtifactDigest
		}
		if members["violation"] != nil {
			if j.Violation == nil || !slices.Contains(Violations, *j.Violation) {
				return nil, fmt.Errorf("entry has an unknown violation %s", clip(string(members["violation"])))
			}
			p.Violation = *j.Violation
		}
	case j.Revocation != nil:
		p.Kind, p.Content = KindRevocation, j.Revocation
		if p.Revocation, err = ParseLoggedRevocation(j.Revocation, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid revocation: %w", err)
		}
		p.ID = p.Revocation.ID
	default:
		p.Kind, p.Content = KindKey, j.Key
		if p.Key, err = ParseKeyContent(j.Key); err != nil {
			return nil, fmt.Errorf("entry holds an invalid key: %w", err)
		}
		p.ID = p.Key.KID
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
// (An execution report's artifact is not compared: the leaf holds only its
// digest, and a report is its content.)
func SameSubmission(leaf []byte, s *Submission) bool {
	var j entryJSON
	if err := json.Unmarshal(leaf, &j); err != nil {
		return false
	}
	var content json.RawMessage
	switch s.Kind {
	case KindDecision:
		content = j.Decision
	case KindExecution:
		content = j.Execution
	case KindRevocation:
		content = j.Revocation
	case KindKey:
		content = j.Key
	}
	return j.Submitter == s.Submitter && bytes.Equal(content, s.Content)
}
