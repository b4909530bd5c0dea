package log

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gowebpki/jcs"
)

// ReferenceParseEntry is ParseEntry as it was before it read leaves in one
// pass: gowebpki/jcs for the canonical form, encoding/json for the shape.
// The tests and the fuzzer hold ParseEntry to its verdicts and results.
var ReferenceParseEntry = referenceParseEntry

func referenceParseEntry(leaf []byte) (*ParsedEntry, error) {
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
