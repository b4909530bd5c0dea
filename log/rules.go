package log

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// The rule book: what each entry of a batch becomes.
//
// Every rule about what may enter the log is here, once, as a pure
// function of the batch and of what storage already holds of the names the
// batch uses. A Backend appends a batch in three steps, inside its own
// transaction:
//
//  1. NamesOf(batch) lists the entry ids and sequence numbers the batch
//     names (its own ids, the parents and decisions it names, its
//     submitters' sequence numbers);
//  2. the backend reads what it holds of exactly those into Facts;
//  3. Judge(batch, facts) returns one Verdict per entry (append this leaf,
//     an identical entry exists, or refused with an error), and the
//     backend writes what the verdicts say: each appended entry with its
//     id row (Entry.ID) and its sequence row (Entry.SequenceKey).
//
// A backend never chooses between refusals itself. The auditor replays a
// log through the same Judge, entry by entry, so that the log and its
// audit cannot disagree about the rules. (The pattern is the one of
// transparency-dev/witness, whose store hands Update's check what it holds
// and writes what the check returns.)

// EntryID names an entry: ids are unique per kind.
type EntryID struct {
	Kind Kind
	ID   string
}

func (k EntryID) String() string { return fmt.Sprintf("%v %q", k.Kind, k.ID) }

// SequenceKey is one submitter's sequence number.
type SequenceKey struct {
	Submitter string
	Sequence  uint64
}

// Names are what a batch asks storage about: every entry id it names
// and every sequence number it uses, each once, in the order of first
// mention.
type Names struct {
	IDs       []EntryID
	Sequences []SequenceKey
	// Authorizations are the decision ids whose authorization the batch
	// uses: the decision of each execution report and revocation, the
	// parent of each decision.
	Authorizations []string
}

// Stored is what storage holds of one logged entry.
type Stored struct {
	// Leaf is the stored leaf. It may be nil for a holder that keeps no
	// leaves (an auditor's state): an entry with the same id is then a
	// repeat, never an identical resubmission, and the fields below must
	// be set by the holder.
	Leaf []byte
	// Allow is true for an allow decision.
	Allow bool
	// DecisionID is, for a started execution report, the decision it
	// claims ("" for any other entry); Judge reads it from Leaf when the
	// holder leaves it empty.
	DecisionID string
	// Started is true for a started execution report.
	Started bool
	// Key is, for a key entry, the Ed25519 public key (read from Leaf
	// when nil).
	Key ed25519.PublicKey
}

// Facts is what storage holds of the Names of a batch. An id missing
// from IDs, a sequence missing from Sequences, or an allow missing from
// Authorizations is not in the log. Judge adds every entry it accepts, so
// that later entries of the batch see it, and updates Authorizations
// (marking what it changed Dirty, for the backend to write).
type Facts struct {
	IDs       map[EntryID]Stored
	Sequences map[SequenceKey]bool
	// Authorizations holds the authorization of every allow named in
	// Names.Authorizations, by decision id. A holder that keeps no leaves
	// MUST supply it; others MAY leave an allow out, whose authorization
	// Judge then reads from its stored leaf (with no uses and not
	// revoked: a log written before authorizations were kept).
	Authorizations map[string]*Authorization
}

// Fate is what becomes of one entry of a batch.
type Fate uint8

const (
	// FateAppend: the entry is appended, its leaf being Verdict.Leaf.
	FateAppend Fate = iota
	// FateExisting: an identical submission is logged already, or
	// earlier in the batch (Verdict.Of); nothing is appended.
	FateExisting
	// FateRefused: nothing is appended; Verdict.Err says why.
	FateRefused
)

func (f Fate) String() string {
	switch f {
	case FateAppend:
		return "append"
	case FateExisting:
		return "existing"
	case FateRefused:
		return "refused"
	}
	return fmt.Sprintf("Fate(%d)", uint8(f))
}

// Verdict is the rule book's judgment of one entry.
type Verdict struct {
	Fate Fate
	// Leaf is the leaf to append (FateAppend), LeafHash its RFC 6962 leaf
	// hash.
	Leaf     []byte
	LeafHash [32]byte
	// Of is, for FateExisting, the position in the batch of the entry this
	// one repeats, or -1 when that entry was stored before the batch
	// (Facts.IDs holds it under the entry's own id).
	Of int
	// Err is why the entry is refused (FateRefused): it wraps
	// ErrIDConflict, ErrSequenceConflict, ErrUnknownParent,
	// ErrParentDenied, ErrParentRevoked, ErrUnknownDecision or
	// ErrNotRevocable. Its message says what conflicts, never where the
	// other entry is (its index is not the submitter's to learn).
	Err error
	// Violation is the violation recorded in an appended execution
	// report's leaf, "" when none; Reason says why, for people (it is not
	// logged).
	Violation, Reason string
	// Claim is true when the appended entry is an accepted claim: it used
	// one execution of its decision's authorization.
	Claim bool
}

// EntryID returns the submission's id in its kind's namespace.
func (s *Submission) EntryID() EntryID { return EntryID{s.Kind, s.ID} }

// SequenceKey returns the submission's sequence number; ok is false when
// it has none.
func (s *Submission) SequenceKey() (k SequenceKey, ok bool) {
	if s.Kind != KindDecision || s.Sequence == 0 {
		return SequenceKey{}, false
	}
	return SequenceKey{s.Submitter, s.Sequence}, true
}

// Refs returns the entries the submission names, which must be logged
// before it: a decision's parent, an execution report's decision and the
// started report it ends (claim_id), a revocation's decision.
func (s *Submission) Refs() []EntryID {
	switch {
	case s.Kind == KindDecision && s.ParentID != "":
		return []EntryID{{KindDecision, s.ParentID}}
	case s.Kind == KindExecution && s.ClaimID != "":
		return []EntryID{{KindDecision, s.DecisionID}, {KindExecution, s.ClaimID}}
	case s.Kind == KindExecution || s.Kind == KindRevocation:
		return []EntryID{{KindDecision, s.DecisionID}}
	}
	return nil
}

// authorizationRef is the decision whose authorization the submission
// uses, "" for none.
func (s *Submission) authorizationRef() string {
	switch s.Kind {
	case KindDecision:
		return s.ParentID
	case KindExecution, KindRevocation:
		return s.DecisionID
	}
	return ""
}

// LeafRefs parses a stored leaf and returns the entries it names (see
// Submission.Refs).
func LeafRefs(leaf []byte) ([]EntryID, error) {
	p, err := ParseEntry(leaf)
	if err != nil {
		return nil, err
	}
	return p.Submission().Refs(), nil
}

// Submission returns the submission a parsed entry was logged for. An
// execution report's artifact is not logged: its ArtifactDigest is, and
// LoggedViolation says what the log found.
func (p *ParsedEntry) Submission() *Submission {
	s := &Submission{Kind: p.Kind, ID: p.ID, Submitter: p.Submitter, Content: p.Content}
	switch {
	case p.Decision != nil:
		d := p.Decision
		s.Allow = d.Outcome == OutcomeAllow
		s.ParentID, s.Sequence = d.ParentID, d.Sequence
		s.DecidedAt, s.MaxExecutions, s.Executor = d.DecidedAt, d.MaxExecutions, d.Executor
		s.Subject, s.Action, s.Resource, s.PolicyID = d.Subject, d.Action, d.Resource, d.PolicyID
	case p.Execution != nil:
		x := p.Execution
		s.DecisionID, s.Status, s.At, s.ClaimID = x.DecisionID, x.Status, x.At, x.ClaimID
		s.ArtifactDigest, s.LoggedViolation = p.ArtifactDigest, p.Violation
	case p.Revocation != nil:
		s.DecisionID = p.Revocation.DecisionID
	}
	return s
}

// NamesOf returns the names a batch uses: for each entry its own id, the
// ids it names (Refs) and its sequence number.
func NamesOf(batch []*Entry) Names {
	var n Names
	if len(batch) > 0 {
		n.IDs = make([]EntryID, 0, 2*len(batch))
	}
	// Small batches (single submissions, an auditor's entry) look for
	// repeats in the slices; large ones in sets.
	var ids map[EntryID]bool
	var seqs map[SequenceKey]bool
	if len(batch) > 8 {
		ids = make(map[EntryID]bool, 2*len(batch))
		seqs = make(map[SequenceKey]bool)
	}
	addID := func(k EntryID) {
		if ids != nil {
			if ids[k] {
				return
			}
			ids[k] = true
		} else if slices.Contains(n.IDs, k) {
			return
		}
		n.IDs = append(n.IDs, k)
	}
	var auths map[string]bool
	for _, e := range batch {
		addID(e.EntryID())
		for _, r := range e.Refs() {
			addID(r)
		}
		if e.verified != nil && e.verified.token == e.Artifact {
			if e.verified.kid != "" {
				addID(EntryID{KindKey, e.verified.kid})
			}
		} else if e.Artifact != "" {
			if kid := artifactKID(e.Artifact); kid != "" {
				addID(EntryID{KindKey, kid})
			}
		}
		if d := e.authorizationRef(); d != "" {
			if auths == nil {
				auths = make(map[string]bool)
			}
			if !auths[d] {
				auths[d] = true
				n.Authorizations = append(n.Authorizations, d)
			}
		}
		k, ok := e.SequenceKey()
		switch {
		case !ok:
		case seqs != nil:
			if !seqs[k] {
				seqs[k] = true
				n.Sequences = append(n.Sequences, k)
			}
		case !slices.Contains(n.Sequences, k):
			n.Sequences = append(n.Sequences, k)
		}
	}
	return n
}

// Judge decides the fate of every entry of a batch, in order, as if the
// entries came one by one: each is judged against facts, which hold what
// storage held of the batch's names (see NamesOf) and, as Judge goes,
// every entry it accepted. It returns one verdict per entry. The rules,
// first match wins:
//
//   - an id already logged for the entry's kind, or accepted earlier in
//     the batch, makes the entry Existing when the stored leaf holds the
//     same submission (kind, canonical content, submitter; see
//     SameSubmission), and refuses it with ErrIDConflict otherwise;
//   - a decision whose sequence number its submitter already used is
//     refused with ErrSequenceConflict;
//   - a decision whose parent_id names no decision is refused with
//     ErrUnknownParent, one whose parent is a deny with ErrParentDenied,
//     one whose parent is a revoked allow with ErrParentRevoked (lineage
//     stops there);
//   - a revocation whose decision_id names no decision is refused with
//     ErrUnknownDecision, one that names a deny with ErrNotRevocable;
//   - an execution report is always appended (violations are recorded,
//     never refused), with the first violation of the wire contract's
//     order that it breaks (see Violations): its decision is unknown
//     (unknown_decision) or a deny (not_authorized); a claim (IsClaim)
//     without artifact (artifact_missing); an artifact that does not
//     verify with a logged key or is not the decision's
//     (artifact_invalid); at before the decision's decided_at
//     (before_decision); a claim after a revocation (revoked), or whose
//     at or logged_at is at or after authorized_until (expired); an
//     authenticated submitter other than the decision's executor
//     (wrong_executor); a claim beyond max_executions (uses_exhausted);
//     a claim_id that names no started report of the same decision
//     (unknown_claim). An accepted claim uses one execution;
//   - anything else is appended.
func Judge(batch []*Entry, facts *Facts) []Verdict {
	if facts.IDs == nil {
		facts.IDs = make(map[EntryID]Stored)
	}
	if facts.Sequences == nil {
		facts.Sequences = make(map[SequenceKey]bool)
	}
	if facts.Authorizations == nil {
		facts.Authorizations = make(map[string]*Authorization)
	}
	out := make([]Verdict, len(batch))
	// pos is the batch position of each entry appended so far (none
	// needed for a batch of one).
	var pos map[EntryID]int
	if len(batch) > 1 {
		pos = make(map[EntryID]int, len(batch))
	}
	for i, e := range batch {
		v := judge(e, facts)
		switch v.Fate {
		case FateAppend:
			v.LeafHash = LeafHash(v.Leaf)
			id := e.EntryID()
			st := Stored{Leaf: v.Leaf, Allow: e.Kind == KindDecision && e.Allow}
			switch e.Kind {
			case KindDecision:
				if e.Allow {
					a := NewAuthorization(e, v.LeafHash)
					a.Dirty = true
					facts.Authorizations[e.ID] = a
				}
			case KindExecution:
				if e.Status == StatusStarted {
					st.DecisionID, st.Started = e.DecisionID, true
				}
				if v.Claim {
					a := facts.Authorizations[e.DecisionID]
					a.Uses++
					a.Entries = append(slices.Clip(a.Entries), id)
					a.Dirty = true
				}
			case KindRevocation:
				a := facts.Authorizations[e.DecisionID]
				a.Revoked = true
				a.Entries = append(slices.Clip(a.Entries), id)
				a.Dirty = true
			case KindKey:
				if k, err := ParseKeyContent(e.Content); err == nil {
					st.Key = k.Public
				}
			}
			facts.IDs[id] = st
			if pos != nil {
				pos[id] = i
			}
			if k, ok := e.SequenceKey(); ok {
				facts.Sequences[k] = true
			}
		case FateExisting:
			if j, ok := pos[e.EntryID()]; ok {
				v.Of = j
			}
		}
		out[i] = v
	}
	return out
}

// authorization returns the authorization of decision id, which facts
// hold as an allow, reading it from the stored leaf when the holder did
// not supply it; nil when there is none to read.
func (f *Facts) authorization(id string, d Stored) *Authorization {
	if a := f.Authorizations[id]; a != nil {
		return a
	}
	if d.Leaf == nil {
		return nil
	}
	p, err := ParseEntry(d.Leaf)
	if err != nil || p.Decision == nil {
		return nil
	}
	a := &Authorization{DecidedAt: p.Decision.DecidedAt, AuthorizedUntil: p.AuthorizedUntil,
		MaxExecutions: max(p.Decision.MaxExecutions, 1), Executor: p.Decision.Executor, LeafHash: LeafHash(d.Leaf)}
	f.Authorizations[id] = a
	return a
}

// started returns the decision a stored execution report started, "" when
// it is not a started report.
func (s Stored) started() string {
	if s.Started || s.Leaf == nil {
		if s.Started {
			return s.DecisionID
		}
		return ""
	}
	p, err := ParseEntry(s.Leaf)
	if err != nil || p.Execution == nil || p.Execution.Status != StatusStarted {
		return ""
	}
	return p.Execution.DecisionID
}

// key returns the public key of a stored key entry, nil when it is not one.
// The leaf was validated when it was logged: only its key member is read
// (ParseKeyContent checks it is exactly a key's canonical content).
func (s Stored) key() ed25519.PublicKey {
	if s.Key != nil || s.Leaf == nil {
		return s.Key
	}
	var j struct {
		Key json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal(s.Leaf, &j); err != nil || j.Key == nil {
		return nil
	}
	k, err := ParseKeyContent(j.Key)
	if err != nil {
		return nil
	}
	return k.Public
}

// judge applies the rules to one entry.
func judge(e *Entry, facts *Facts) Verdict {
	refused := func(err error, format string, args ...any) Verdict {
		return Verdict{Fate: FateRefused, Of: -1, Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)}
	}
	id := e.EntryID()
	if prev, ok := facts.IDs[id]; ok {
		if prev.Leaf != nil && SameSubmission(prev.Leaf, e.Submission) {
			return Verdict{Fate: FateExisting, Of: -1}
		}
		return refused(ErrIDConflict, "%v is logged with other content or by another submitter", id)
	}
	switch e.Kind {
	case KindDecision:
		if k, ok := e.SequenceKey(); ok && facts.Sequences[k] {
			return refused(ErrSequenceConflict, "submitter %q has logged sequence %d already", k.Submitter, k.Sequence)
		}
		if e.ParentID != "" {
			p, ok := facts.IDs[EntryID{KindDecision, e.ParentID}]
			switch {
			case !ok:
				return refused(ErrUnknownParent, "%q", e.ParentID)
			case !p.Allow:
				return refused(ErrParentDenied, "%q is a deny", e.ParentID)
			}
			if a := facts.authorization(e.ParentID, p); a != nil && a.Revoked {
				return refused(ErrParentRevoked, "%q is revoked", e.ParentID)
			}
		}
	case KindRevocation:
		d, ok := facts.IDs[EntryID{KindDecision, e.DecisionID}]
		if !ok {
			return refused(ErrUnknownDecision, "%q", e.DecisionID)
		}
		if !d.Allow || facts.authorization(e.DecisionID, d) == nil {
			return refused(ErrNotRevocable, "%q is a deny", e.DecisionID)
		}
	case KindExecution:
		violation, reason, claim := judgeReport(e, facts)
		v := Verdict{Fate: FateAppend, Leaf: e.Leaf, Of: -1, Violation: violation, Reason: reason, Claim: claim}
		if violation != "" {
			v.Leaf = WithViolation(e.Leaf, violation)
		}
		return v
	}
	return Verdict{Fate: FateAppend, Leaf: e.Leaf, Of: -1}
}

// judgeReport returns the violation an execution report breaks ("" for
// none) with the reason, and whether it is an accepted claim.
func judgeReport(e *Entry, facts *Facts) (violation, reason string, claim bool) {
	d, ok := facts.IDs[EntryID{KindDecision, e.DecisionID}]
	if !ok {
		return ViolationUnknownDecision, fmt.Sprintf("decision %q is not in the log", e.DecisionID), false
	}
	var a *Authorization
	if d.Allow {
		a = facts.authorization(e.DecisionID, d)
	}
	if a == nil {
		return ViolationNotAuthorized, fmt.Sprintf("decision %q is a deny", e.DecisionID), false
	}
	isClaim := e.IsClaim()
	switch {
	case isClaim && e.Artifact == "" && e.ArtifactDigest == "":
		return ViolationArtifactMissing, "a claim must carry the decision's artifact", false
	case e.Artifact != "":
		// The signature was verified before the sequencer when the key
		// the facts hold for its kid is the one it was verified with;
		// otherwise it is verified here.
		v := e.verified
		if v == nil || v.token != e.Artifact || !v.verifiedWith(facts.IDs[EntryID{KindKey, v.kid}]) {
			v = verifyArtifact(e.Artifact, func(kid string) (ed25519.PublicKey, []byte) {
				return facts.IDs[EntryID{KindKey, kid}].key(), nil
			}, nil)
		}
		if why := v.check(e.DecisionID, e.Origin, a); why != "" {
			return ViolationArtifactInvalid, "the artifact is invalid: " + why, false
		}
	case e.ArtifactDigest != "" && e.LoggedViolation == ViolationArtifactInvalid:
		// A logged report replayed: its artifact is not logged, so the
		// log's word on it stands.
		return ViolationArtifactInvalid, "the log found the artifact invalid", false
	}
	if e.At.Before(a.DecidedAt) {
		return ViolationBeforeDecision, fmt.Sprintf("at %s is before the decision's decided_at", e.At.Format(time.RFC3339Nano)), false
	}
	if isClaim && a.Revoked {
		return ViolationRevoked, fmt.Sprintf("decision %q is revoked", e.DecisionID), false
	}
	if isClaim && (!e.At.Before(a.AuthorizedUntil) || !e.LoggedAt.Before(a.AuthorizedUntil)) {
		return ViolationExpired, fmt.Sprintf("the authorization expired at %s", a.AuthorizedUntil.Format(AuthorizedUntilLayout)), false
	}
	if a.Executor != "" && e.Submitter != Anonymous && e.Submitter != a.Executor {
		return ViolationWrongExecutor, fmt.Sprintf("only %q may execute decision %q", a.Executor, e.DecisionID), false
	}
	if isClaim && a.Uses >= a.MaxExecutions {
		return ViolationUsesExhausted, fmt.Sprintf("decision %q allows %d executions, all used", e.DecisionID, a.MaxExecutions), false
	}
	if !isClaim && facts.IDs[EntryID{KindExecution, e.ClaimID}].started() != e.DecisionID {
		return ViolationUnknownClaim, fmt.Sprintf("claim %q is no started report of decision %q", e.ClaimID, e.DecisionID), false
	}
	return "", "", isClaim
}
