package vectors

import (
	"crypto/ed25519"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
)

// evidenceEntryCases are the entries of execution evidence (wire contract
// §2b–§2e, §3): allows with max_executions and executor, claims and
// terminal reports with the artifact_digest and violation the log sets,
// revocations and key entries, and the ways each can be wrong.
func evidenceEntryCases(add func(name, want, why string, leaf []byte) error) error {
	at := NowTime().Add(123456789 * time.Nanosecond)
	leafOf := func(s *log.Submission) (string, error) {
		e, err := log.NewEntry(s, at, 300*time.Second)
		if err != nil {
			return "", err
		}
		return string(e.Leaf), nil
	}
	decision := func(body string) (string, error) {
		d, err := log.ParseDecision([]byte(body), at)
		if err != nil {
			return "", err
		}
		return leafOf(log.DecisionSubmission(d, "control-plane"))
	}
	execution := func(body string) (string, error) {
		x, err := log.ParseExecution([]byte(body), at)
		if err != nil {
			return "", err
		}
		return leafOf(log.ExecutionSubmission(x, "runtime-1"))
	}
	revocation := func(body string) (string, error) {
		r, err := log.ParseRevocation([]byte(body), at)
		if err != nil {
			return "", err
		}
		return leafOf(log.RevocationSubmission(r, "control-plane"))
	}
	k, err := log.NewKeyContent("test-artifact-1", seedKey("artifact-1").Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	key, err := leafOf(log.KeySubmission(k, "example.com/govlog"))
	if err != nil {
		return err
	}
	const jws = `"eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJkLTEifQ.c2ln"`
	allow, err := decision(decisionWith("max_executions", "3", "executor", `"runtime-1"`))
	if err != nil {
		return err
	}
	claim, err := execution(executionWith("artifact", jws))
	if err != nil {
		return err
	}
	done, err := execution(executionWith("id", `"e-2"`, "status", `"succeeded"`, "claim_id", `"e-1"`, "at", `"2026-11-25T18:00:02Z"`))
	if err != nil {
		return err
	}
	rev, err := revocation(`{"decision_id":"d-1","id":"r-1","reason":"the change window closed","revoked_at":"2026-11-25T18:00:00Z"}`)
	if err != nil {
		return err
	}
	violated := string(log.WithViolation([]byte(claim), log.ViolationUsesExhausted))
	noDigest := strings.Replace(claim, `"artifact_digest":"sha256:`+claim[strings.Index(claim, `"artifact_digest":"sha256:`)+26:strings.Index(claim, `"artifact_digest":"sha256:`)+90]+`",`, "", 1)
	ok := func(name, why, leaf string) error { return add(name, "ok", why, []byte(leaf)) }
	bad := func(name, why, leaf string) error { return add(name, "fail", why, []byte(leaf)) }
	for _, c := range []struct {
		name, want, why, leaf string
	}{
		{"evidence: an allow with max_executions and executor", "ok", "", allow},
		{"evidence: a claim with its artifact_digest", "ok", "the log keeps the SHA-256 of the artifact, never the artifact", claim},
		{"evidence: a claim without artifact_digest", "ok", "a claim without artifact is recorded as artifact_missing, or an old entry", noDigest},
		{"evidence: a terminal report with claim_id", "ok", "", done},
		{"evidence: a claim with a violation", "ok", "the log records violations", violated},
		{"evidence: a revocation", "ok", "", rev},
		{"evidence: a key entry", "ok", "", key},

		{"evidence: max_executions 0", "fail", "", strings.Replace(allow, `"max_executions":3`, `"max_executions":0`, 1)},
		{"evidence: max_executions 1001", "fail", "", strings.Replace(allow, `"max_executions":3`, `"max_executions":1001`, 1)},
		{"evidence: max_executions 3.0", "fail", "an integer literal", strings.Replace(allow, `"max_executions":3`, `"max_executions":"3"`, 1)},
		{"evidence: executor empty", "fail", "", strings.Replace(allow, `"executor":"runtime-1"`, `"executor":""`, 1)},
		{"evidence: a deny with max_executions", "fail", "only an allow has max_executions", strings.Replace(strings.Replace(strings.Replace(allow, `"outcome":"allow"`, `"outcome":"deny"`, 1), `,"executor":"runtime-1"`, "", 1), `{"authorized_until":"2026-11-25T18:05:00Z",`, "{", 1)},
		{"evidence: a deny with executor", "fail", "", strings.Replace(strings.Replace(strings.Replace(allow, `"outcome":"allow"`, `"outcome":"deny"`, 1), `"max_executions":3,`, "", 1), `{"authorized_until":"2026-11-25T18:05:00Z",`, "{", 1)},
		{"evidence: an execution entry holding the artifact", "fail", "the artifact never enters the log", strings.Replace(claim, `"at":"2026-11-25T18:00:01Z",`, `"artifact":`+jws+`,"at":"2026-11-25T18:00:01Z",`, 1)},
		{"evidence: artifact_digest in upper case", "fail", "", strings.Replace(claim, claim[strings.Index(claim, `sha256:`):strings.Index(claim, `sha256:`)+20], strings.ToUpper(claim[strings.Index(claim, `sha256:`):strings.Index(claim, `sha256:`)+20]), 1)},
		{"evidence: artifact_digest null", "fail", "", strings.Replace(claim, claim[strings.Index(claim, `"sha256:`):strings.Index(claim, `"sha256:`)+72], `null`, 1)},
		{"evidence: an unknown violation", "fail", "", strings.Replace(violated, `"violation":"uses_exhausted"`, `"violation":"too_late"`, 1)},
		{"evidence: violation null", "fail", "", strings.Replace(violated, `"violation":"uses_exhausted"`, `"violation":null`, 1)},
		{"evidence: a decision with a violation", "fail", "only an execution entry has a violation", strings.Replace(allow, `"v":1`, `"v":1,"violation":"revoked"`, 1)},
		{"evidence: a revocation with artifact_digest", "fail", "", `{"artifact_digest":"sha256:` + strings.Repeat("0", 64) + `",` + rev[1:]},
		{"evidence: a revocation with authorized_until", "fail", "", `{"authorized_until":"2026-11-25T18:05:00Z",` + rev[1:]},
		{"evidence: claim_id on a started report", "fail", "a started report is a claim itself", strings.Replace(claim, `"at":"2026-11-25T18:00:01Z",`, `"at":"2026-11-25T18:00:01Z","claim_id":"e-0",`, 1)},
		{"evidence: claim_id not an id", "fail", "", strings.Replace(done, `"claim_id":"e-1"`, `"claim_id":"-e-1"`, 1)},
		{"evidence: a revocation without revoked_at", "fail", "", strings.Replace(rev, `,"revoked_at":"2026-11-25T18:00:00Z"`, "", 1)},
		{"evidence: a revocation with an empty reason", "fail", "", strings.Replace(rev, `"reason":"the change window closed"`, `"reason":""`, 1)},
		{"evidence: a revocation with an unknown member", "fail", "", strings.Replace(rev, `"id":"r-1"`, `"id":"r-1","outcome":"deny"`, 1)},
		{"evidence: a revocation dated 6 minutes after logged_at", "fail", "", strings.Replace(rev, `"revoked_at":"2026-11-25T18:00:00Z"`, `"revoked_at":"2026-11-25T18:06:01Z"`, 1)},
		{"evidence: a key entry and a revocation", "fail", "exactly one content", strings.Replace(key, `,"submitter"`, `,"revocation":{"decision_id":"d-1","id":"r-1","revoked_at":"2026-11-25T18:00:00Z"},"submitter"`, 1)},
		{"evidence: a key entry with a violation", "fail", "", strings.Replace(key, `"v":1`, `"v":1,"violation":"revoked"`, 1)},
		{"evidence: a key whose jwk has alg", "fail", "the jwk is exactly crv, kty and x", strings.Replace(key, `"jwk":{`, `"jwk":{"alg":"EdDSA",`, 1)},
		{"evidence: a key whose kid is not an id", "fail", "", strings.Replace(key, `"kid":"test-artifact-1"`, `"kid":"test artifact"`, 1)},
		{"evidence: a key whose kid starts with -", "ok", "an RFC 7638 thumbprint in base64url may start with - or _", strings.Replace(key, `"kid":"test-artifact-1"`, `"kid":"-VLLEmD8bfzhnQCBxy0b6CHLvw7UxEkAEnmYw4cIGEY"`, 1)},
		{"evidence: a key whose kid starts with _", "ok", "", strings.Replace(key, `"kid":"test-artifact-1"`, `"kid":"_VLLEmD8bfzhnQCBxy0b6CHLvw7UxEkAEnmYw4cIGEY"`, 1)},
		{"evidence: a key whose kid is 128 characters", "ok", "", strings.Replace(key, `"kid":"test-artifact-1"`, `"kid":"`+strings.Repeat("k", 128)+`"`, 1)},
		{"evidence: a key whose kid is 129 characters", "fail", "a kid is 1 to 128 characters", strings.Replace(key, `"kid":"test-artifact-1"`, `"kid":"`+strings.Repeat("k", 129)+`"`, 1)},
		{"evidence: a key whose kid is empty", "fail", "", strings.Replace(key, `"kid":"test-artifact-1"`, `"kid":""`, 1)},
	} {
		var err error
		if c.want == "ok" {
			err = ok(c.name, c.why, c.leaf)
		} else {
			err = bad(c.name, c.why, c.leaf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
