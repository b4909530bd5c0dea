package log

import (
	"fmt"
	"slices"
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
}

// Stored is what storage holds of one logged entry.
type Stored struct {
	// Leaf is the stored leaf. It may be nil for a holder that keeps no
	// leaves (an auditor's state): an entry with the same id is then a
	// repeat, never an identical resubmission.
	Leaf []byte
	// Allow is true for an allow decision.
	Allow bool
}

// Facts is what storage holds of the Names of a batch. An id missing
// from IDs, or a sequence missing from Sequences, is not in the log.
// Judge adds every entry it accepts, so that later entries of the batch
// see it.
type Facts struct {
	IDs       map[EntryID]Stored
	Sequences map[SequenceKey]bool
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
	// Leaf is the leaf to append (FateAppend).
	Leaf []byte
	// Of is, for FateExisting, the position in the batch of the entry this
	// one repeats, or -1 when that entry was stored before the batch
	// (Facts.IDs holds it under the entry's own id).
	Of int
	// Err is why the entry is refused (FateRefused): it wraps
	// ErrIDConflict, ErrSequenceConflict, ErrUnknownParent,
	// ErrUnknownDecision or ErrNotAuthorized. Its message says what
	// conflicts, never where the other entry is (its index is not the
	// submitter's to learn).
	Err error
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
// before it: a decision's parent, an execution report's decision.
func (s *Submission) Refs() []EntryID { return refs(s.Kind, s.ParentID, s.DecisionID) }

func refs(kind Kind, parentID, decisionID string) []EntryID {
	switch {
	case kind == KindDecision && parentID != "":
		return []EntryID{{KindDecision, parentID}}
	case kind == KindExecution:
		return []EntryID{{KindDecision, decisionID}}
	}
	return nil
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

// Submission returns the submission a parsed entry was logged for.
func (p *ParsedEntry) Submission() *Submission {
	s := &Submission{Kind: p.Kind, ID: p.ID, Submitter: p.Submitter, Content: p.Content}
	switch {
	case p.Decision != nil:
		s.Allow = p.Decision.Outcome == OutcomeAllow
		s.ParentID, s.Sequence = p.Decision.ParentID, p.Decision.Sequence
	case p.Execution != nil:
		s.DecisionID = p.Execution.DecisionID
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
	for _, e := range batch {
		addID(e.EntryID())
		for _, r := range e.Refs() {
			addID(r)
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
//     ErrUnknownParent;
//   - an execution report whose decision_id names no decision is refused
//     with ErrUnknownDecision, and one whose decision is a deny with
//     ErrNotAuthorized;
//   - anything else is appended.
func Judge(batch []*Entry, facts *Facts) []Verdict {
	if facts.IDs == nil {
		facts.IDs = make(map[EntryID]Stored)
	}
	if facts.Sequences == nil {
		facts.Sequences = make(map[SequenceKey]bool)
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
			id := e.EntryID()
			facts.IDs[id] = Stored{Leaf: v.Leaf, Allow: e.Kind == KindDecision && e.Allow}
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
			if _, ok := facts.IDs[EntryID{KindDecision, e.ParentID}]; !ok {
				return refused(ErrUnknownParent, "%q", e.ParentID)
			}
		}
	case KindExecution:
		d, ok := facts.IDs[EntryID{KindDecision, e.DecisionID}]
		if !ok {
			return refused(ErrUnknownDecision, "%q", e.DecisionID)
		}
		if !d.Allow {
			return refused(ErrNotAuthorized, "%q", e.DecisionID)
		}
	}
	return Verdict{Fate: FateAppend, Leaf: e.Leaf, Of: -1}
}
