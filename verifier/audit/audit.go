// Package audit replays a govlog log, or the part of it that is new since
// an earlier audit, from the resources of the C2SP tlog-tiles API that the
// caller fetches: it rehashes every entry and tile up to a verified
// checkpoint, checks consistency with the previous state, validates every
// entry, and judges each one with the log's own rule book (log.Judge):
// ids unique per kind, parents and authorizing allows earlier in the log,
// sequence numbers unique per submitter. It reports failures with their
// evidence (Audit, Report) and remembers what the next audit needs
// (State).
//
// A replay proves that a log is internally consistent, not that it is the
// log seen before: a log rebuilt from scratch with the same key, an
// entry left out, replays as cleanly. An audit is anchored (Report.Anchored)
// when something outside the log vouches for it: the State of an earlier
// audit, a witness policy whose cosignatures the checkpoint carries
// (Audit.CheckWitnesses, which also reports the cosignatures' times), or
// a checkpoint held from elsewhere (Audit.CheckTrusted).
package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"github.com/govlog/govlog/verifier/internal/fastentry"
)

// An Audit replays a log, or the part of it that is new since an earlier
// audit, from the resources of the C2SP tlog-tiles API, and checks
// everything a log promises:
//
//   - the checkpoint is signed by the log key, and is consistent with the
//     one audited before (same size: same root; larger: the consistency
//     proof the log serves verifies, and replaying the new entries onto
//     the saved compact range yields the new root; smaller: a rollback);
//   - every entry hashes to its leaf hash in the level-0 hash tile, every
//     higher hash tile holds the hashes of the subtrees below it, and the
//     entries hash to the checkpoint's root;
//   - every entry is valid (log.ParseEntry's rules);
//   - every entry is one the log's rule book (log.Judge) appends, judged
//     against the entries before it: no decision id and no execution id
//     repeats, every parent_id names an earlier decision, every
//     execution report names an earlier allow, and no submitter repeats
//     a sequence number. An entry that breaks several rules is reported
//     for the first, as the log would have refused it.
//
// It also reports findings that are not failures of the log: execution
// reports logged at or after their authorization's authorized_until, and
// the gaps in each submitter's sequence numbers.
//
// The Audit does no I/O: the caller fetches. Its methods are called in
// this order: Begin with the latest checkpoint; Scan for each entry bundle
// from Next() on (concurrently if it likes), Apply for each scanned bundle
// in index order; CheckTile for each of PendingTiles; Finish. A failure
// that makes the rest meaningless (a bad checkpoint, a fork, a bundle that
// cannot be read) is returned as an error by Begin or Apply, or reported
// by the caller with Fail; Finish then reports it.
type Audit struct {
	logKey  note.Verifier
	prev    *State
	factory *compact.RangeFactory

	cp    log.Checkpoint
	begun bool
	fatal bool
	next  uint64
	// rng is the compact range of the entries replayed so far; alt, once
	// an entry does not match its tile hash, the range of the tile hashes
	// (to tell tampered entries from tampered tiles).
	rng, alt *compact.Range
	ids      map[idKey]idRecord
	seqs     map[string]*seqSet
	// auths are the authorizations of the allows that the entries of this
	// run named or appended (read from the state when an earlier audit
	// replayed the allow), by decision id; touched marks those whose
	// uses, revocation or violations changed in this run. started maps
	// each started report replayed in this run to the key of its
	// decision.
	auths   map[string]*log.Authorization
	touched map[string]bool
	started map[idKey]idKey
	// violationsOf counts the recorded violations of each decision, for
	// an allow audited before including those of earlier audits.
	violationsOf map[string]uint64
	// facts is the rule book's view of the names of the entry being
	// judged, and judged that entry: both reused from entry to entry.
	facts  log.Facts
	judged [1]log.Entry
	// nodes are the hashes of the subtrees completed in this run whose
	// hash tiles (level 1 and up) have not been checked yet.
	nodes map[compact.NodeID][32]byte
	// mismatched lists, in order, the entries that do not hash to their
	// level-0 tile hash: the subtrees over them are expected to differ.
	mismatched []uint64
	audited    Totals
	rep        Report
}

// Totals counts entries.
type Totals struct {
	Entries    uint64 `json:"entries"`
	Decisions  uint64 `json:"decisions"`
	Allows     uint64 `json:"allows"`
	Denies     uint64 `json:"denies"`
	Executions uint64 `json:"executions"`
	// Revocations and Keys count revocation and key entries; Violations
	// the execution reports the log recorded with a violation.
	Revocations uint64 `json:"revocations"`
	Keys        uint64 `json:"keys"`
	Violations  uint64 `json:"violations"`
}

func (t *Totals) add(o Totals) {
	t.Entries += o.Entries
	t.Decisions += o.Decisions
	t.Allows += o.Allows
	t.Denies += o.Denies
	t.Executions += o.Executions
	t.Revocations += o.Revocations
	t.Keys += o.Keys
	t.Violations += o.Violations
}

// Problem is one failure or finding of an audit, with its evidence.
type Problem struct {
	// Code names the check (see the package documentation of the audit).
	Code string `json:"code"`
	// Index is the entry concerned, when one is.
	Index *uint64 `json:"index,omitempty"`
	// ID is the decision or execution id concerned, when one is.
	ID string `json:"id,omitempty"`
	// Message says what is wrong, in words.
	Message string `json:"message"`
	// Evidence holds the hashes, tiles and checkpoints involved.
	Evidence map[string]string `json:"evidence,omitempty"`
	// Earlier is true for a failure found by an earlier audit.
	Earlier bool `json:"earlier,omitempty"`
	// Violation is, for a FindingViolation or ProblemViolationMismatch,
	// the violation code the log recorded in the entry.
	Violation string `json:"violation,omitempty"`
}

// Codes of audit failures.
const (
	ProblemBadCheckpoint     = "bad_checkpoint"     // the checkpoint does not verify
	ProblemRollback          = "rollback"           // the checkpoint is smaller than the audited one
	ProblemInconsistent      = "inconsistent"       // the checkpoint is not consistent with the audited one
	ProblemFetch             = "fetch_failed"       // a resource could not be fetched
	ProblemMalformedBundle   = "malformed_bundle"   // an entry bundle cannot be read
	ProblemMalformedTile     = "malformed_tile"     // a hash tile has the wrong size
	ProblemLeafHashMismatch  = "leaf_hash_mismatch" // an entry does not hash to its tile hash
	ProblemTileMismatch      = "tile_mismatch"      // a hash tile does not hold the subtree hashes
	ProblemRootMismatch      = "root_mismatch"      // the entries do not hash to the checkpoint's root
	ProblemInvalidEntry      = "invalid_entry"      // an entry breaks the schema
	ProblemDuplicateID       = "duplicate_id"       // an id is logged twice (per kind)
	ProblemUnknownParent     = "unknown_parent"     // parent_id names no earlier decision
	ProblemUnauthorized      = "unauthorized_execution"
	ProblemDuplicateSequence = "duplicate_sequence" // a submitter used a sequence number twice
	// ProblemViolationMismatch: the violation the log recorded in an
	// execution report's entry is not the one the rule book finds (none
	// where it finds one, or another).
	ProblemViolationMismatch = "violation_mismatch"
	ProblemParentDenied      = "parent_denied"  // a decision whose parent is a deny
	ProblemParentRevoked     = "parent_revoked" // a decision whose parent is an allow revoked before it
	ProblemBadRevocation     = "bad_revocation" // a revocation of an unknown decision or of a deny
)

// Codes of audit findings.
const (
	// FindingLateExecution: an execution report logged at or after its
	// decision's authorized_until.
	FindingLateExecution = "execution_after_authorization"
	// FindingViolation: an execution report the log recorded with a
	// violation (Problem.Violation says which): a runtime acted, or tried
	// to, outside its authorization, and the log kept the evidence.
	FindingViolation = "violation"
	// FindingClaimWithoutArtifact: a claim that carries no artifact
	// binding (no artifact_digest) and no violation, as logs accepted
	// before claims had to carry the artifact.
	FindingClaimWithoutArtifact = "claim_without_artifact"
	// FindingAfterRevocation: an execution report (ending a claim made
	// before) logged after its authorization was revoked.
	FindingAfterRevocation = "report_after_revocation"
)

// maxProblems bounds the failures and the findings a report lists (all
// are counted).
const maxProblems = 1000

// maxGapRanges bounds the missing ranges listed per submitter.
const maxGapRanges = 100

// CheckpointSummary identifies a checkpoint in a report.
type CheckpointSummary struct {
	Size     uint64 `json:"size"`
	RootHash string `json:"root_hash"`
	Note     string `json:"note"`
}

func summary(cp log.Checkpoint) *CheckpointSummary {
	return &CheckpointSummary{Size: cp.Size, RootHash: b64(cp.Hash[:]), Note: string(cp.Note)}
}

// SequenceGap lists the sequence numbers a submitter skipped: missing
// ranges between 1 and its highest number.
type SequenceGap struct {
	Submitter string      `json:"submitter"`
	Highest   uint64      `json:"highest"`
	Missing   [][2]uint64 `json:"missing"`
	Count     uint64      `json:"missing_count"`
}

// InconsistencyEvidence is portable evidence that the log is inconsistent:
// two checkpoints signed by the log key, and the consistency proof between
// them that does not verify (when the log served one).
type InconsistencyEvidence struct {
	Reason        string   `json:"reason"`
	OldCheckpoint string   `json:"old_checkpoint"`
	NewCheckpoint string   `json:"new_checkpoint"`
	Proof         []string `json:"proof,omitempty"`
}

// Report is the outcome of an audit.
type Report struct {
	// OK is true when no failure was found, now or by an earlier audit.
	OK     bool   `json:"ok"`
	Origin string `json:"origin"`
	// Checkpoint is the audited checkpoint; Previous the one the state
	// held.
	Checkpoint *CheckpointSummary `json:"checkpoint,omitempty"`
	Previous   *CheckpointSummary `json:"previous,omitempty"`
	// Start is the first entry replayed by this audit; Audited counts the
	// entries it replayed, Totals every entry audited so far.
	Start   uint64 `json:"start"`
	Audited Totals `json:"audited"`
	Totals  Totals `json:"totals"`
	// Failures lists failures (at most 1000; FailureCount counts all of
	// them, with those of earlier audits).
	Failures     []Problem `json:"failures"`
	FailureCount uint64    `json:"failure_count"`
	// Findings lists findings (at most 1000; FindingCount counts them).
	Findings     []Problem `json:"findings"`
	FindingCount uint64    `json:"finding_count"`
	// SequenceGaps lists, per submitter, the sequence numbers missing.
	SequenceGaps []SequenceGap `json:"sequence_gaps"`
	// Inconsistency is set when the log is proven inconsistent.
	Inconsistency *InconsistencyEvidence `json:"inconsistency,omitempty"`
	// Violations counts, by code, the violations recorded in the entries
	// this audit replayed.
	Violations map[string]uint64 `json:"violations"`
	// Authorizations lists the allows that the entries this audit
	// replayed used, revoked or reported on with a violation, with their
	// counts since the first entry, earlier audits included (at most
	// 1000, in log order; AuthorizationCount counts them).
	Authorizations     []AuthorizationUse `json:"authorizations"`
	AuthorizationCount uint64             `json:"authorization_count"`
	// Anchored is true when the audit found no failure and is anchored
	// (Anchors lists by what: AnchorState, AnchorWitnesses,
	// AnchorTrusted). An audit that is OK but not anchored proves only
	// that the log is internally consistent: a log rebuilt from scratch
	// with the same key would pass too.
	Anchored bool     `json:"anchored"`
	Anchors  []string `json:"anchors"`
	// Cosignatures are the valid cosignatures of the witness policy's
	// witnesses on the audited checkpoint (CheckWitnesses), earliest
	// first: every entry audited was in the log by each one's time.
	Cosignatures []verifier.Cosignature `json:"cosignatures,omitempty"`
}

// AuthorizationUse is what the log's entries say of one authorization:
// its claims (accepted ones use it, up to MaxExecutions), its violations
// and its revocation.
type AuthorizationUse struct {
	DecisionID    string `json:"decision_id"`
	Index         uint64 `json:"index"`
	MaxExecutions int    `json:"max_executions"`
	Uses          int    `json:"uses"`
	Violations    uint64 `json:"violations"`
	Revoked       bool   `json:"revoked"`
}

// errAuditStopped is returned by Apply once the audit cannot go on.
var errAuditStopped = errors.New("the audit has stopped after a failure")

// New returns an audit of the log whose note verifier key is logKey,
// continuing from prev (nil for a first audit). prev must have been
// produced for the same log.
func New(logKey note.Verifier, prev *State) (*Audit, error) {
	if logKey == nil {
		return nil, errors.New("failed to start the audit: no log key")
	}
	if prev != nil && prev.cp.Origin != logKey.Name() {
		return nil, fmt.Errorf("failed to start the audit: %w (origin %q, not %q)", errStateKey, prev.cp.Origin, logKey.Name())
	}
	a := &Audit{
		logKey:  logKey,
		prev:    prev,
		factory: &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren},
		ids:     make(map[idKey]idRecord),
		seqs:    make(map[string]*seqSet),
		facts: log.Facts{IDs: make(map[log.EntryID]log.Stored), Sequences: make(map[log.SequenceKey]bool),
			Authorizations: make(map[string]*log.Authorization)},
		auths:   make(map[string]*log.Authorization),
		touched: make(map[string]bool),
		started: make(map[idKey]idKey),
		nodes:   make(map[compact.NodeID][32]byte),
		rep: Report{Origin: logKey.Name(), Failures: []Problem{}, Findings: []Problem{}, SequenceGaps: []SequenceGap{}, Anchors: []string{},
			Violations: map[string]uint64{}, Authorizations: []AuthorizationUse{}},
		violationsOf: make(map[string]uint64),
	}
	if prev != nil {
		for sub, s := range prev.seqs {
			a.seqs[sub] = s.clone()
		}
		a.rep.Previous = summary(prev.cp)
	}
	return a, nil
}

// Begin verifies the checkpoint to audit against the log key and the
// previous state. proof is the consistency proof from the previous
// state's size to the checkpoint's, as the log serves it (GET
// /v1/proofs/consistency), or nil when there is no previous state or the
// log serves none (the replay still proves consistency, without portable
// evidence of a fork). An error means the audit cannot go on; Finish
// reports why.
func (a *Audit) Begin(checkpoint []byte, proof [][]byte) error {
	if a.begun {
		return errors.New("failed to begin the audit: it has begun already")
	}
	a.begun = true
	cp, err := verifier.Checkpoint(checkpoint, a.logKey)
	if err != nil {
		return a.stop(Problem{Code: ProblemBadCheckpoint, Message: fmt.Sprintf("the log's checkpoint does not verify: %v", err),
			Evidence: map[string]string{"checkpoint": string(checkpoint)}})
	}
	a.cp = cp
	a.rep.Checkpoint = summary(cp)
	if a.prev == nil || a.prev.cp.Size < cp.Size {
		// Room for every new id at once, rather than growing the map.
		start := uint64(0)
		if a.prev != nil {
			start = a.prev.cp.Size
		}
		a.ids = make(map[idKey]idRecord, min(cp.Size-start, 1<<24))
	}
	if a.prev == nil {
		a.rng = a.factory.NewEmptyRange(0)
		return nil
	}
	old := a.prev.cp
	inconsistent := func(reason string, proof [][]byte) error {
		ev := &InconsistencyEvidence{Reason: reason, OldCheckpoint: string(old.Note), NewCheckpoint: string(cp.Note)}
		for _, h := range proof {
			ev.Proof = append(ev.Proof, b64(h))
		}
		a.rep.Inconsistency = ev
		code := ProblemInconsistent
		if cp.Size < old.Size {
			code = ProblemRollback
		}
		return a.stop(Problem{Code: code, Message: reason, Evidence: map[string]string{
			"old_checkpoint": string(old.Note), "new_checkpoint": string(cp.Note)}})
	}
	switch {
	case cp.Size < old.Size:
		return inconsistent(fmt.Sprintf("the log's checkpoint has size %d, smaller than the size %d audited before: the log rolled back or forked", cp.Size, old.Size), nil)
	case cp.Size == old.Size && cp.Hash != old.Hash:
		return inconsistent(fmt.Sprintf("the log signed two checkpoints of size %d with different root hashes", cp.Size), nil)
	case cp.Size > old.Size && old.Size > 0 && proof != nil:
		if _, _, err := verifier.Consistency(old.Note, cp.Note, proof, a.logKey); err != nil {
			var ie *verifier.InconsistencyError
			if errors.As(err, &ie) {
				return inconsistent(fmt.Sprintf("the log's consistency proof from size %d to %d does not verify: %s", old.Size, cp.Size, ie.Reason), proof)
			}
			return inconsistent(fmt.Sprintf("the log's consistency proof from size %d to %d is not valid: %v", old.Size, cp.Size, err), proof)
		}
	}
	a.rng, err = a.factory.NewRange(0, old.Size, slices.Clone(a.prev.hashes))
	if err != nil { // unreachable: UnmarshalState checked it
		return a.stop(Problem{Code: ProblemRootMismatch, Message: fmt.Sprintf("the saved compact range is corrupt: %v", err)})
	}
	a.next = old.Size
	a.prev.table()
	a.prev.authTable()
	a.prev.claimTable()
	return nil
}

// Checkpoint returns the checkpoint being audited (after Begin).
func (a *Audit) Checkpoint() log.Checkpoint { return a.cp }

// Next returns the index of the next entry to replay: Apply wants the
// bundle that holds it, bundle Next()/256.
func (a *Audit) Next() uint64 { return a.next }

// Fail records a failure that stops the audit, such as a resource the
// caller could not fetch.
func (a *Audit) Fail(code, message string) {
	_ = a.stop(Problem{Code: code, Message: message})
}

func (a *Audit) stop(p Problem) error {
	a.fatal = true
	a.fail(p)
	return fmt.Errorf("audit failed: %s", p.Message)
}

func (a *Audit) fail(p Problem) {
	a.rep.FailureCount++
	if len(a.rep.Failures) < maxProblems {
		a.rep.Failures = append(a.rep.Failures, p)
	}
}

func (a *Audit) find(p Problem) {
	a.rep.FindingCount++
	if len(a.rep.Findings) < maxProblems {
		a.rep.Findings = append(a.rep.Findings, p)
	}
}

// Bundle is an entry bundle checked on its own by Scan: entries split,
// hashed, compared with their level-0 tile, and parsed. Apply then checks
// it against the rest of the log.
type Bundle struct {
	index   uint64
	width   int
	err     error
	tileErr error
	entries []ScannedEntry
	hashes  [][32]byte
	tile    []byte
	keys    []idKey
	// mismatch lists the positions whose entry does not hash to the tile.
	mismatch []int
	// rng is the compact range of the bundle's entries.
	rng *compact.Range
	// root is the bundle's subtree hash when it is full.
	root []byte
	// skip is the number of leading entries Apply did not replay (they
	// were audited before).
	skip int
}

// ScannedEntry is one entry of a Bundle.
type ScannedEntry struct {
	Index uint64
	// Leaf is the entry bytes.
	Leaf []byte
	// Entry is Leaf parsed, or nil when Err says why it is invalid.
	Entry *log.ParsedEntry
	Err   error
}

// Index returns the bundle's index.
func (b *Bundle) Index() uint64 { return b.index }

// Entries returns the entries of the bundle that Apply replayed (not
// those audited before). They are what the log served: only a finished
// audit whose tree verified proves them.
func (b *Bundle) Entries() []ScannedEntry { return b.entries[b.skip:] }

// Scan reads entry bundle index of width entries, and its level-0 hash
// tile of the same width (tile may be nil when it was not fetched). It is
// safe to call concurrently with other Scan calls and with Apply.
func (a *Audit) Scan(index uint64, width int, bundle, tile []byte) *Bundle {
	b := &Bundle{index: index, width: width}
	leaves, err := log.ParseEntryBundle(bundle, width)
	if err != nil {
		b.err = err
		return b
	}
	start := index * log.TileWidth
	b.entries = make([]ScannedEntry, width)
	b.hashes = make([][32]byte, width)
	b.keys = make([]idKey, width)
	b.rng = a.factory.NewEmptyRange(start)
	for i, leaf := range leaves {
		h := log.LeafHash(leaf)
		b.hashes[i] = h
		_ = b.rng.Append(h[:], func(id compact.NodeID, hash []byte) {
			if id.Level == log.TileHeight {
				b.root = hash
			}
		})
		e := ScannedEntry{Index: start + uint64(i), Leaf: leaf}
		e.Entry, e.Err = fastentry.Parse(leaf)
		if e.Err == nil {
			b.keys[i] = keyOf(e.Entry.Kind, e.Entry.ID)
		}
		b.entries[i] = e
	}
	if tile != nil {
		if len(tile) != width*32 {
			b.tileErr = fmt.Errorf("tile %s holds %d bytes, want %d", log.TileID{Index: index, Width: width}.Path(), len(tile), width*32)
		} else {
			b.tile = tile
			for i := range b.hashes {
				if !bytes.Equal(b.hashes[i][:], tile[i*32:(i+1)*32]) {
					b.mismatch = append(b.mismatch, i)
				}
			}
		}
	}
	return b
}

// Apply checks a scanned bundle against the log replayed so far: it must
// hold entry Next(). Failures of its entries are recorded; an error means
// the audit cannot go on.
func (a *Audit) Apply(b *Bundle) error {
	if a.fatal {
		return errAuditStopped
	}
	if !a.begun || a.rng == nil {
		return errors.New("failed to apply a bundle: the audit has not begun")
	}
	start := b.index * log.TileWidth
	end := start + uint64(b.width)
	if a.next < start || a.next >= end || end > a.cp.Size {
		return fmt.Errorf("failed to apply bundle %d of width %d: the next entry is %d of %d", b.index, b.width, a.next, a.cp.Size)
	}
	path := log.TileID{Entries: true, Index: b.index, Width: b.width}.Path()
	if b.err != nil {
		return a.stop(Problem{Code: ProblemMalformedBundle, Index: at(a.next),
			Message: fmt.Sprintf("entry bundle %s cannot be read: %v", path, b.err)})
	}
	if b.tileErr != nil {
		a.fail(Problem{Code: ProblemMalformedTile, Message: b.tileErr.Error()})
	}
	skip := int(a.next - start)
	b.skip = skip

	// The tree. alt follows the tile hashes once they differ.
	mismatch := b.mismatch[sort.SearchInts(b.mismatch, skip):]
	if len(mismatch) > 0 && a.alt == nil {
		a.alt, _ = a.factory.NewRange(0, a.rng.End(), slices.Clone(a.rng.Hashes()))
	}
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level%log.TileHeight == 0 && id.Level > 0 {
			a.nodes[id] = [32]byte(hash)
		}
	}
	if skip == 0 {
		if err := a.rng.AppendRange(b.rng, visit); err != nil {
			return a.stop(Problem{Code: ProblemRootMismatch, Message: fmt.Sprintf("failed to extend the tree with bundle %s: %v", path, err)})
		}
		if b.root != nil {
			visit(compact.NewNodeID(log.TileHeight, b.index), b.root)
		}
	} else {
		for i := skip; i < b.width; i++ {
			_ = a.rng.Append(b.hashes[i][:], visit)
		}
	}
	if a.alt != nil {
		if len(mismatch) == 0 && skip == 0 {
			_ = a.alt.AppendRange(b.rng, nil)
		} else {
			for i := skip; i < b.width; i++ {
				h := b.hashes[i][:]
				if b.tile != nil {
					h = b.tile[i*32 : (i+1)*32]
				}
				_ = a.alt.Append(h, nil)
			}
		}
	}
	for _, i := range mismatch {
		idx := start + uint64(i)
		a.mismatched = append(a.mismatched, idx)
		a.fail(Problem{Code: ProblemLeafHashMismatch, Index: at(idx),
			Message: fmt.Sprintf("entry %d does not hash to its leaf hash in tile %s: the entry served is not the one in the log's tree", idx,
				log.TileID{Index: b.index, Width: b.width}.Path()),
			Evidence: map[string]string{
				"entry_leaf_hash": b64(b.hashes[i][:]),
				"tile_leaf_hash":  b64(b.tile[i*32 : (i+1)*32]),
				"entry":           b64(b.entries[i].Leaf),
			}})
	}

	// The entries.
	for i := skip; i < b.width; i++ {
		a.entry(&b.entries[i], b.keys[i])
	}
	a.next = end
	return nil
}

// lookup finds an id logged earlier, in this run or before.
func (a *Audit) lookup(k idKey) (idRecord, bool) {
	if r, ok := a.ids[k]; ok {
		return r, true
	}
	if a.prev != nil {
		return lookupTable(a.prev.table(), k)
	}
	return idRecord{}, false
}

// entry checks one entry against the log before it: the rule book
// (log.Judge) judges it as the log would have judged it, with what the
// audit knows of the log so far as the facts; anything but an append is
// a failure of the log.
func (a *Audit) entry(s *ScannedEntry, key idKey) {
	idx := s.Index
	a.audited.Entries++
	if s.Err != nil {
		a.fail(Problem{Code: ProblemInvalidEntry, Index: at(idx), Message: fmt.Sprintf("entry %d is invalid: %v", idx, s.Err),
			Evidence: map[string]string{"entry": b64(s.Leaf)}})
		return
	}
	p := s.Entry
	e := &a.judged[0]
	*e = log.Entry{Submission: p.Submission(), LoggedAt: p.LoggedAt, AuthorizedUntil: p.AuthorizedUntil, Leaf: s.Leaf}
	batch := []*log.Entry{e}
	switch e.Kind {
	case log.KindDecision:
		a.audited.Decisions++
		if e.Allow {
			a.audited.Allows++
		} else {
			a.audited.Denies++
		}
	case log.KindExecution:
		a.audited.Executions++
	case log.KindRevocation:
		a.audited.Revocations++
	case log.KindKey:
		a.audited.Keys++
	}

	// The facts: what the audit knows of the entry's names. The audit
	// keeps no leaves, so a repeated id is a repeat, never a
	// resubmission.
	names := log.NamesOf(batch)
	clear(a.facts.IDs)
	clear(a.facts.Sequences)
	// record finds what the audit knows of one of the names.
	var known [4]struct {
		id log.EntryID
		r  idRecord
	}
	records := known[:0]
	record := func(id log.EntryID) (idRecord, bool) {
		for _, k := range records {
			if k.id == id {
				return k.r, true
			}
		}
		return idRecord{}, false
	}
	for _, k := range names.IDs {
		hk := key
		if k != e.EntryID() {
			hk = keyOf(k.Kind, k.ID)
		}
		if r, ok := a.lookup(hk); ok {
			records = append(records, struct {
				id log.EntryID
				r  idRecord
			}{k, r})
			st := log.Stored{Allow: k.Kind == log.KindDecision && r.until != 0}
			if k.Kind == log.KindExecution {
				// A started report: the decision it claims is the one
				// the report judged names, or another (then no
				// decision id matches "").
				d, ok := a.started[hk]
				if !ok && a.prev != nil {
					d, ok = a.prev.claimed(hk)
				}
				if st.Started = ok; ok && e.Kind == log.KindExecution && d == keyOf(log.KindDecision, e.DecisionID) {
					st.DecisionID = e.DecisionID
				}
			}
			a.facts.IDs[k] = st
		}
	}
	clear(a.facts.Authorizations)
	for _, id := range names.Authorizations {
		if au := a.auths[id]; au != nil {
			a.facts.Authorizations[id] = au
		} else if r, ok := record(log.EntryID{Kind: log.KindDecision, ID: id}); ok && r.until != 0 && a.prev != nil {
			// An allow replayed by an earlier audit: the state holds its
			// authorization, unless the log refused it (then, as in a
			// replay of the whole log, there is none).
			if au, n, ok := a.prev.authorization(keyOf(log.KindDecision, id), r.until); ok {
				a.auths[id] = au
				a.violationsOf[id] = n
				a.facts.Authorizations[id] = au
			}
		}
	}
	for _, k := range names.Sequences {
		if set := a.seqs[k.Submitter]; set != nil && set.has(k.Sequence) {
			a.facts.Sequences[k] = true
		}
	}
	v := log.Judge(batch, &a.facts)[0]
	for id, au := range a.facts.Authorizations {
		if au.Dirty {
			au.Dirty = false
			a.auths[id] = au
			a.touched[id] = true
		}
	}
	if v.Fate == log.FateAppend && e.Kind == log.KindExecution && e.Status == log.StatusStarted {
		a.started[key] = keyOf(log.KindDecision, e.DecisionID)
	}
	switch {
	case v.Fate == log.FateExisting || errors.Is(v.Err, log.ErrIDConflict):
		r, _ := record(e.EntryID())
		a.fail(Problem{Code: ProblemDuplicateID, Index: at(idx), ID: e.ID,
			Message:  fmt.Sprintf("%v id %q of entry %d was already logged at entry %d", e.Kind, e.ID, idx, r.index),
			Evidence: map[string]string{"earlier_index": fmt.Sprint(r.index)}})
	case errors.Is(v.Err, log.ErrSequenceConflict):
		a.fail(Problem{Code: ProblemDuplicateSequence, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("submitter %q used sequence number %d again (entry %d)", e.Submitter, e.Sequence, idx)})
	case errors.Is(v.Err, log.ErrUnknownParent):
		a.fail(Problem{Code: ProblemUnknownParent, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("decision %q (entry %d) names parent %q, which is not an earlier decision", e.ID, idx, e.ParentID)})
	case errors.Is(v.Err, log.ErrParentDenied), errors.Is(v.Err, log.ErrParentRevoked):
		code, what := ProblemParentDenied, "a deny"
		if errors.Is(v.Err, log.ErrParentRevoked) {
			code, what = ProblemParentRevoked, "an allow revoked before it"
		}
		r, _ := record(log.EntryID{Kind: log.KindDecision, ID: e.ParentID})
		a.fail(Problem{Code: code, Index: at(idx), ID: e.ID,
			Message:  fmt.Sprintf("decision %q (entry %d) names parent %q (entry %d), %s: lineage must stop there", e.ID, idx, e.ParentID, r.index, what),
			Evidence: map[string]string{"parent_index": fmt.Sprint(r.index)}})
	case e.Kind == log.KindRevocation && v.Err != nil:
		a.fail(Problem{Code: ProblemBadRevocation, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("revocation %q (entry %d) of decision %q: %v", e.ID, idx, e.DecisionID, v.Err)})
	case v.Err != nil:
		a.fail(Problem{Code: ProblemInvalidEntry, Index: at(idx), ID: e.ID, Message: fmt.Sprintf("entry %d breaks a rule of the log: %v", idx, v.Err)})
	case e.Kind == log.KindExecution:
		a.report(e, idx, v, record)
	}

	// Whatever the verdict, the entry is in the log: later entries are
	// judged with it (its id, unless it repeats one, and its sequence).
	if _, ok := record(e.EntryID()); !ok {
		var until int64
		if !e.AuthorizedUntil.IsZero() {
			until = e.AuthorizedUntil.Unix()
		}
		a.ids[key] = idRecord{index: idx, until: until}
	}
	if k, ok := e.SequenceKey(); ok {
		set := a.seqs[k.Submitter]
		if set == nil {
			set = &seqSet{}
			a.seqs[k.Submitter] = set
		}
		set.add(k.Sequence)
	}
}

// PendingTiles returns the hash tiles of level 1 and up that hold
// subtrees completed by this audit: fetch each (at the width the audited
// checkpoint's tree has) and pass it to CheckTile.
func (a *Audit) PendingTiles() []log.TileID {
	seen := map[log.TileID]bool{}
	var out []log.TileID
	for id := range a.nodes {
		level := uint64(id.Level / log.TileHeight)
		index := id.Index / log.TileWidth
		t := log.TileID{Level: level, Index: index, Width: log.TileHashes(a.cp.Size, level, index)}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(x, y log.TileID) int {
		if x.Level != y.Level {
			return int(x.Level) - int(y.Level)
		}
		return int(x.Index) - int(y.Index)
	})
	return out
}

// CheckTile checks a hash tile of level 1 or up against the subtree
// hashes the audit computed.
func (a *Audit) CheckTile(t log.TileID, data []byte) {
	if len(data) != t.Width*32 {
		a.fail(Problem{Code: ProblemMalformedTile, Message: fmt.Sprintf("tile %s holds %d bytes, want %d", t.Path(), len(data), t.Width*32)})
		return
	}
	level := uint(t.Level * log.TileHeight)
	for i := range t.Width {
		id := compact.NewNodeID(level, t.Index*log.TileWidth+uint64(i))
		want, ok := a.nodes[id]
		if !ok {
			continue
		}
		delete(a.nodes, id)
		if got := data[i*32 : (i+1)*32]; !bytes.Equal(got, want[:]) {
			first, last := id.Coverage()
			if j := sort.Search(len(a.mismatched), func(j int) bool { return a.mismatched[j] >= first }); j < len(a.mismatched) && a.mismatched[j] < last {
				// An entry under it does not match its leaf hash: that
				// failure explains this one.
				continue
			}
			a.fail(Problem{Code: ProblemTileMismatch,
				Message:  fmt.Sprintf("hash %d of tile %s is not the hash of entries %d to %d", i, t.Path(), first, last-1),
				Evidence: map[string]string{"tile_hash": b64(got), "computed_hash": b64(want[:])}})
		}
	}
}

// Finish checks the root, and returns the report and, when the log's tree
// verified, the state to continue from next time (nil otherwise).
func (a *Audit) Finish() (*Report, *State) {
	rep := &a.rep
	rep.Start = a.startIndex()
	rep.Audited = a.audited
	treeOK := false
	switch {
	case a.fatal:
	case !a.begun:
		_ = a.stop(Problem{Code: ProblemFetch, Message: "the audit never began"})
	case a.next != a.cp.Size:
		_ = a.stop(Problem{Code: ProblemFetch, Message: fmt.Sprintf("only entries up to %d of %d were replayed", a.next, a.cp.Size)})
	default:
		root := rangeRoot(a.rng)
		if root == a.cp.Hash {
			treeOK = true
			break
		}
		p := Problem{Code: ProblemRootMismatch,
			Message: fmt.Sprintf("the entries served do not hash to the root of the checkpoint of size %d", a.cp.Size),
			Evidence: map[string]string{"computed_root": b64(root[:]), "checkpoint_root": b64(a.cp.Hash[:]),
				"checkpoint": string(a.cp.Note)}}
		if a.alt != nil && rangeRoot(a.alt) == a.cp.Hash {
			p.Message += "; the hash tiles do: the entries listed as leaf_hash_mismatch are not the entries the log committed to (modified after they were logged)"
		}
		_ = a.stop(p)
	}

	totals := a.audited
	var earlier []Problem
	var earlierCount uint64
	if a.prev != nil {
		totals.add(a.prev.totals)
		earlier, earlierCount = a.prev.failures, a.prev.failureCount
	}
	rep.Totals = totals
	thisRun, thisRunCount := slices.Clone(rep.Failures), rep.FailureCount
	for _, p := range earlier {
		p.Earlier = true
		if len(rep.Failures) < maxProblems {
			rep.Failures = append(rep.Failures, p)
		}
	}
	rep.FailureCount += earlierCount

	// Sequence gaps, over everything audited.
	for _, sub := range slices.Sorted(maps.Keys(a.seqs)) {
		set := a.seqs[sub]
		missing, count := set.gaps()
		if count == 0 {
			continue
		}
		if len(missing) > maxGapRanges {
			missing = missing[:maxGapRanges]
		}
		rep.SequenceGaps = append(rep.SequenceGaps, SequenceGap{Submitter: sub, Highest: set.iv[len(set.iv)-1][1], Missing: missing, Count: count})
	}
	a.authorizationUses()
	rep.OK = rep.FailureCount == 0
	if a.prev != nil && a.prev.cp.Size > 0 {
		rep.Anchors = append([]string{AnchorState}, rep.Anchors...)
	}
	rep.Anchored = rep.OK && len(rep.Anchors) > 0
	if !treeOK {
		return rep, nil
	}
	st := &State{
		cp:           a.cp,
		hashes:       slices.Clone(a.rng.Hashes()),
		seqs:         a.seqs,
		totals:       totals,
		failureCount: earlierCount + thisRunCount,
	}
	st.failures = append(slices.Clone(earlier), thisRun...)
	if len(st.failures) > maxProblems {
		st.failures = st.failures[:maxProblems]
	}
	st.added = a.ids
	if a.prev != nil {
		st.ids = a.prev.table()
		st.auths, st.claims = a.prev.authTable(), a.prev.claimTable()
		st.executors = a.prev.executors
	}
	st.addedClaims = make(map[idKey][]byte, len(a.started))
	for k, d := range a.started {
		st.addedClaims[k] = append(k[:len(k):len(k)], d[:]...)
	}
	// The executors keep their numbers: new ones are added at the end.
	number := make(map[string]uint32, len(st.executors))
	for i, x := range st.executors {
		number[x] = uint32(i + 1)
	}
	var added []string
	for id := range a.touched {
		if x := a.auths[id].Executor; x != "" && number[x] == 0 {
			number[x] = 1
			added = append(added, x)
		}
	}
	slices.Sort(added)
	st.executors = append(slices.Clip(st.executors), added...)
	for i, x := range st.executors {
		number[x] = uint32(i + 1)
	}
	st.addedAuths = make(map[idKey][]byte, len(a.touched))
	for id := range a.touched {
		au := a.auths[id]
		k := keyOf(log.KindDecision, id)
		st.addedAuths[k] = authRecord(k, au, number[au.Executor], a.violationsOf[id])
	}
	return rep, st
}

func (a *Audit) startIndex() uint64 {
	if a.prev != nil {
		return a.prev.cp.Size
	}
	return 0
}

func at(i uint64) *uint64 { return &i }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
