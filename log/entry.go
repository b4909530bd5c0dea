package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
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
	m, err := readEntry(leaf)
	if err != nil {
		return nil, err
	}
	// Member names are compared exactly: "Decision" or "ſubmitter" are not
	// members of an entry.
	if m.hasUnknown {
		return nil, fmt.Errorf("entry has an unknown member %q", clip(m.unknown))
	}
	contents := 0
	for _, c := range []*entryMember{&m.decision, &m.execution, &m.revocation, &m.key} {
		if c.present {
			contents++
		}
	}
	if contents != 1 {
		return nil, fmt.Errorf("entry must hold exactly one of decision, execution, revocation and key")
	}
	// The shape: v a number, the other members strings (or null, which
	// counts as present and is refused below).
	for _, s := range []struct {
		name string
		m    *entryMember
	}{{"artifact_digest", &m.artifactDigest}, {"authorized_until", &m.authorizedUntil}, {"logged_at", &m.loggedAt},
		{"submitter", &m.submitter}, {"violation", &m.violation}} {
		if s.m.present && s.m.value.kind != '"' && s.m.value.kind != 'n' {
			return nil, fmt.Errorf("entry does not have the entry shape: %s is not a string", s.name)
		}
	}
	if !m.v.present || !m.v.value.isNumber() || string(m.v.value.num) != "1" {
		return nil, fmt.Errorf("entry has a v other than %d", EntryVersion)
	}
	loggedAt, _ := m.loggedAt.str()
	p := &ParsedEntry{}
	p.Submitter, _ = m.submitter.str()
	if p.LoggedAt, err = parseExact(LoggedAtLayout, loggedAt); err != nil {
		return nil, fmt.Errorf("entry has a bad logged_at %q", loggedAt)
	}
	if p.Submitter == "" {
		return nil, fmt.Errorf("entry has no submitter")
	}
	if !m.execution.present && (m.artifactDigest.present || m.violation.present) {
		return nil, fmt.Errorf("only an execution entry has artifact_digest or violation")
	}
	if !m.decision.present && m.authorizedUntil.present {
		return nil, fmt.Errorf("only an allow decision has authorized_until")
	}
	// The content is canonical (the leaf is): its parse's canonical form
	// is the same bytes, so p.Content is that, not a copy of the leaf.
	switch {
	case m.decision.present:
		p.Kind = KindDecision
		if p.Decision, err = ParseLoggedDecision(m.decision.raw, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid decision: %w", err)
		}
		p.ID, p.Content = p.Decision.ID, p.Decision.Canonical
		allow := p.Decision.Outcome == OutcomeAllow
		if allow != m.authorizedUntil.present {
			return nil, fmt.Errorf("entry must have authorized_until exactly when the outcome is allow")
		}
		if allow {
			// A JSON null is not a timestamp.
			until, ok := m.authorizedUntil.str()
			if !ok {
				return nil, fmt.Errorf("entry has a bad authorized_until null")
			}
			if p.AuthorizedUntil, err = parseExact(AuthorizedUntilLayout, until); err != nil {
				return nil, fmt.Errorf("entry has a bad authorized_until %q", until)
			}
		}
	case m.execution.present:
		p.Kind = KindExecution
		if p.Execution, err = ParseLoggedExecution(m.execution.raw, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid execution report: %w", err)
		}
		p.ID, p.Content = p.Execution.ID, p.Execution.Canonical
		// The artifact is a bearer credential: the log keeps only its
		// digest, never the token.
		if p.Execution.Artifact != "" {
			return nil, fmt.Errorf("an execution entry holds no artifact")
		}
		if m.artifactDigest.present {
			digest, ok := m.artifactDigest.str()
			if !ok || !validDigest(digest) {
				return nil, fmt.Errorf("entry has a bad artifact_digest %q", clip(digest))
			}
			p.ArtifactDigest = digest
			p.Execution.ArtifactDigest = p.ArtifactDigest
		}
		if m.violation.present {
			violation, ok := m.violation.str()
			if !ok || !slices.Contains(Violations, violation) {
				return nil, fmt.Errorf("entry has an unknown violation %q", clip(violation))
			}
			p.Violation = violation
		}
	case m.revocation.present:
		p.Kind = KindRevocation
		if p.Revocation, err = ParseLoggedRevocation(m.revocation.raw, p.LoggedAt); err != nil {
			return nil, fmt.Errorf("entry holds an invalid revocation: %w", err)
		}
		p.ID, p.Content = p.Revocation.ID, p.Revocation.Canonical
	default:
		p.Kind, p.Content = KindKey, bytes.Clone(m.key.raw)
		if p.Key, err = ParseKeyContent(p.Content); err != nil {
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

// entryMember is a member of a leaf as ParseEntry reads it: present (a
// JSON null too), its value's kind and string, and, for the content
// members, its text in the leaf.
type entryMember struct {
	present bool
	value   jsonValue
	raw     []byte
}

// entryMembers are the members of a leaf, read in one pass.
type entryMembers struct {
	artifactDigest, authorizedUntil, loggedAt, submitter, v, violation entryMember
	decision, execution, revocation, key                               entryMember
	unknown                                                            string // the first unknown member's name, "" if none
	hasUnknown                                                         bool
}

// readEntry reads leaf in one pass (the canonicalizer of the Parse
// functions): it captures the members of an entry and checks that the
// leaf is strict JSON in RFC 8785 canonical form.
func readEntry(leaf []byte) (*entryMembers, error) {
	m := new(entryMembers)
	c := newCanonicalizer(leaf, nil)
	c.out = c.spare[:0]
	defer func() {
		c.spare = c.out[:0]
		c.release()
	}()
	ok := c.document(func(name []byte) bool {
		var em *entryMember
		switch string(name) {
		case "artifact_digest":
			em = &m.artifactDigest
		case "authorized_until":
			em = &m.authorizedUntil
		case "logged_at":
			em = &m.loggedAt
		case "submitter":
			em = &m.submitter
		case "v":
			em = &m.v
		case "violation":
			em = &m.violation
		case "decision":
			em = &m.decision
		case "execution":
			em = &m.execution
		case "revocation":
			em = &m.revocation
		case "key":
			em = &m.key
		default:
			if !m.hasUnknown {
				m.unknown, m.hasUnknown = string(name), true
			}
			return c.value()
		}
		em.present = true
		if em == &m.decision || em == &m.execution || em == &m.revocation || em == &m.key {
			c.ws()
			start := c.i
			if !c.value() {
				return false
			}
			em.raw = leaf[start:c.i]
			em.value.kind = leaf[start]
			return true
		}
		return c.scalar(&em.value)
	})
	if !ok {
		return nil, fmt.Errorf("entry is not valid JSON: %w", c.err)
	}
	if !bytes.Equal(c.out, leaf) {
		return nil, fmt.Errorf("entry is not in RFC 8785 canonical form")
	}
	return m, nil
}

// str returns a member's string value; ok is false when it is absent or
// not a string (a JSON null included).
func (em *entryMember) str() (string, bool) {
	if !em.present || em.value.kind != '"' {
		return "", false
	}
	return em.value.str, true
}
