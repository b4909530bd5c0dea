package audit

import (
	"fmt"
	"slices"
	"time"

	"github.com/govlog/govlog/log"
)

// report checks an execution report the rule book appends (v) against
// what the log recorded in its entry: the violation must be the one the
// rule book finds. A recorded violation is a finding (the evidence the log
// exists to keep); a different one, or none where the rule book finds one,
// is a failure of the log.
//
// An incremental audit judges as a replay of the whole log does: the
// state of the earlier audit keeps what the rule book needs of the
// entries it replayed (see State).
func (a *Audit) report(e *log.Entry, idx uint64, v log.Verdict, record func(log.EntryID) (idRecord, bool)) {
	logged, judged := e.LoggedViolation, v.Violation
	d, _ := record(log.EntryID{Kind: log.KindDecision, ID: e.DecisionID})
	switch {
	case judged != "" && logged == judged:
		a.audited.Violations++
		a.rep.Violations[judged]++
		a.violationsOf[e.DecisionID]++
		if a.auths[e.DecisionID] != nil {
			a.touched[e.DecisionID] = true
		}
		p := Problem{Code: FindingViolation, Violation: judged, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("execution %q (%s) on decision %q, recorded by the log: %s", e.ID, e.Status, e.DecisionID, v.Reason)}
		if judged != log.ViolationUnknownDecision {
			p.Evidence = map[string]string{"decision_index": fmt.Sprint(d.index)}
		}
		a.find(p)
	case logged == "" && judged == log.ViolationUnknownDecision:
		a.fail(Problem{Code: ProblemUnauthorized, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("execution %q (entry %d) names decision %q, which is not an earlier decision: executed without an authorization, and the log recorded no violation", e.ID, idx, e.DecisionID)})
	case logged == "" && judged == log.ViolationNotAuthorized:
		a.fail(Problem{Code: ProblemUnauthorized, Index: at(idx), ID: e.ID,
			Message:  fmt.Sprintf("execution %q (entry %d) names decision %q (entry %d), a deny: executed without an authorization, and the log recorded no violation", e.ID, idx, e.DecisionID, d.index),
			Evidence: map[string]string{"decision_index": fmt.Sprint(d.index)}})
	case logged == "" && judged == log.ViolationArtifactMissing:
		a.find(Problem{Code: FindingClaimWithoutArtifact, Index: at(idx), ID: e.ID,
			Message:  fmt.Sprintf("claim %q (entry %d, %s) on decision %q carries no artifact binding (no artifact_digest), and the log recorded no violation", e.ID, idx, e.Status, e.DecisionID),
			Evidence: map[string]string{"decision_index": fmt.Sprint(d.index)}})
		judged = "" // checked below as the log took it: a claim
	case logged != judged:
		want := "none"
		if judged != "" {
			want = fmt.Sprintf("%s (%s)", judged, v.Reason)
		}
		got := logged
		if got == "" {
			got = "none"
		}
		a.fail(Problem{Code: ProblemViolationMismatch, Violation: logged, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("execution %q (entry %d) on decision %q: the log recorded violation %s, the rule book finds %s", e.ID, idx, e.DecisionID, got, want)})
	}
	if judged != "" {
		return
	}
	if au := a.auths[e.DecisionID]; au != nil && au.Revoked && !e.IsClaim() {
		a.find(Problem{Code: FindingAfterRevocation, Index: at(idx), ID: e.ID,
			Message:  fmt.Sprintf("execution %q (entry %d, %s) on decision %q was reported after the authorization was revoked", e.ID, idx, e.Status, e.DecisionID),
			Evidence: map[string]string{"decision_index": fmt.Sprint(d.index)}})
	}
	if until := time.Unix(d.until, 0).UTC(); d.until != 0 && !e.LoggedAt.Before(until) {
		a.find(Problem{Code: FindingLateExecution, Index: at(idx), ID: e.ID,
			Message: fmt.Sprintf("execution %q (entry %d) was logged at %s, after decision %q (entry %d) expired at %s",
				e.ID, idx, e.LoggedAt.Format(log.LoggedAtLayout), e.DecisionID, d.index, until.Format(log.AuthorizedUntilLayout)),
			Evidence: map[string]string{"decision_index": fmt.Sprint(d.index), "authorized_until": until.Format(log.AuthorizedUntilLayout),
				"logged_at": e.LoggedAt.Format(log.LoggedAtLayout)}})
	}
}

// authorizationUses lists, in the report, the authorizations that the
// entries of this run used, revoked or reported on with a violation, with
// their counts since the first entry (earlier audits included).
func (a *Audit) authorizationUses() {
	var uses []AuthorizationUse
	for id := range a.touched {
		au, n := a.auths[id], a.violationsOf[id]
		if au.Uses == 0 && !au.Revoked && n == 0 {
			continue
		}
		r, _ := a.lookup(keyOf(log.KindDecision, id))
		uses = append(uses, AuthorizationUse{DecisionID: id, Index: r.index, MaxExecutions: au.MaxExecutions, Uses: au.Uses, Violations: n, Revoked: au.Revoked})
	}
	slices.SortFunc(uses, func(x, y AuthorizationUse) int {
		switch {
		case x.Index < y.Index:
			return -1
		case x.Index > y.Index:
			return 1
		}
		return 0
	})
	a.rep.AuthorizationCount = uint64(len(uses))
	if len(uses) > maxProblems {
		uses = uses[:maxProblems]
	}
	a.rep.Authorizations = uses
}
