package audit

import (
	"errors"
	"fmt"

	"github.com/govlog/govlog/verifier"
)

// An audit is anchored when something outside the log vouches that the
// log audited is the log seen before: without an anchor, a log rebuilt
// from scratch with the same key (say, with a deny left out) replays just
// as cleanly as the real one. The anchors:
const (
	// AnchorState: the saved state of an earlier audit, whose checkpoint
	// the audited one must be consistent with.
	AnchorState = "state"
	// AnchorWitnesses: the audited checkpoint carries the cosignatures a
	// witness policy requires; a witness cosigns only checkpoints
	// consistent with those it cosigned before.
	AnchorWitnesses = "witness_policy"
	// AnchorTrusted: a checkpoint the auditor holds from elsewhere (an old
	// receipt, another auditor, a witness), which the audited one must be
	// consistent with.
	AnchorTrusted = "trusted_checkpoint"
)

// Codes of anchoring failures.
const (
	// ProblemWitnessPolicy: the audited checkpoint does not carry the
	// cosignatures the witness policy requires.
	ProblemWitnessPolicy = "witness_policy"
)

// CheckWitnesses checks, after Begin, that the audited checkpoint
// satisfies the witness policy p: if it does, the audit is anchored by
// the witnesses and the report lists their cosignatures (the time bounds
// they give: the log's tree of that size existed when each witness
// cosigned it); if not, that is a failure.
func (a *Audit) CheckWitnesses(p *verifier.Policy) {
	if !a.begun || a.fatal || p == nil {
		return
	}
	a.rep.Cosignatures = p.Cosignatures(a.cp.Note)
	if err := p.Check(a.cp.Note); err != nil {
		a.fail(Problem{Code: ProblemWitnessPolicy, Message: fmt.Sprintf("the log's checkpoint of size %d does not satisfy the witness policy: %v", a.cp.Size, err),
			Evidence: map[string]string{"checkpoint": string(a.cp.Note)}})
		return
	}
	a.anchor(AnchorWitnesses)
}

// CheckTrusted checks, after Begin, that the audited checkpoint is
// consistent with trusted, a checkpoint note signed by the log key that
// the auditor holds from elsewhere; proof is the log's consistency proof
// from trusted's size to the audited checkpoint's (nil when the sizes are
// equal). Consistent: the audit is anchored by it. Not consistent: the
// log forked or rolled back, a failure that stops the audit, with both
// checkpoints as evidence.
func (a *Audit) CheckTrusted(trusted []byte, proof [][]byte) error {
	if !a.begun || a.fatal {
		return errAuditStopped
	}
	old, err := verifier.Checkpoint(trusted, a.logKey)
	if err != nil {
		return a.stop(Problem{Code: ProblemBadCheckpoint, Message: fmt.Sprintf("the trusted checkpoint does not verify: %v", err),
			Evidence: map[string]string{"checkpoint": string(trusted)}})
	}
	inconsistent := func(code, reason string, proof [][]byte) error {
		ev := &InconsistencyEvidence{Reason: reason, OldCheckpoint: string(old.Note), NewCheckpoint: string(a.cp.Note)}
		for _, h := range proof {
			ev.Proof = append(ev.Proof, b64(h))
		}
		a.rep.Inconsistency = ev
		return a.stop(Problem{Code: code, Message: reason, Evidence: map[string]string{
			"trusted_checkpoint": string(old.Note), "new_checkpoint": string(a.cp.Note)}})
	}
	if old.Size == 0 {
		return nil // every tree extends the empty one: it anchors nothing
	}
	if old.Size > a.cp.Size {
		return inconsistent(ProblemRollback, fmt.Sprintf("the log's checkpoint has size %d, smaller than the trusted checkpoint's %d: the log rolled back or forked", a.cp.Size, old.Size), nil)
	}
	if _, _, err := verifier.Consistency(old.Note, a.cp.Note, proof, a.logKey); err != nil {
		var ie *verifier.InconsistencyError
		if errors.As(err, &ie) {
			return inconsistent(ProblemInconsistent, fmt.Sprintf("the log's checkpoint of size %d is not consistent with the trusted checkpoint of size %d: %s", a.cp.Size, old.Size, ie.Reason), proof)
		}
		return inconsistent(ProblemInconsistent, fmt.Sprintf("the log's consistency proof from the trusted checkpoint (size %d) to size %d is not valid: %v", old.Size, a.cp.Size, err), proof)
	}
	a.anchor(AnchorTrusted)
	return nil
}

func (a *Audit) anchor(name string) {
	for _, n := range a.rep.Anchors {
		if n == name {
			return
		}
	}
	a.rep.Anchors = append(a.rep.Anchors, name)
}
