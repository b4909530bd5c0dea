package vectors

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/govlog/govlog/log"
)

// entryFields are the facts a verifier reports of an entry (Expect.Fields).
func entryFields(leaf []byte) (map[string]string, error) {
	pe, err := log.ParseEntry(leaf)
	if err != nil {
		return nil, err
	}
	var content map[string]json.RawMessage
	if err := json.Unmarshal(pe.Content, &content); err != nil {
		return nil, err
	}
	f := map[string]string{"kind": pe.Kind.String(), "id": pe.ID, "submitter": pe.Submitter,
		"logged_at": pe.LoggedAt.Format(log.LoggedAtLayout)}
	raw := func(name string) {
		if v, ok := content[name]; ok {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				panic(err)
			}
			f[name] = s
		}
	}
	if d := pe.Decision; d != nil {
		f["outcome"], f["subject"], f["action"], f["policy_id"] = d.Outcome, d.Subject, d.Action, d.PolicyID
		raw("resource")
		raw("parent_id")
		raw("decided_at")
		raw("executor")
		if d.Outcome == log.OutcomeAllow {
			f["authorized_until"] = pe.AuthorizedUntil.Format(log.AuthorizedUntilLayout)
		}
	}
	if x := pe.Execution; x != nil {
		f["decision_id"], f["status"] = x.DecisionID, x.Status
		raw("at")
		raw("claim_id")
		if pe.ArtifactDigest != "" {
			f["artifact_digest"] = pe.ArtifactDigest
		}
		if pe.Violation != "" {
			f["violation"] = pe.Violation
		}
	}
	if r := pe.Revocation; r != nil {
		f["decision_id"] = r.DecisionID
		raw("revoked_at")
	}
	return f, nil
}

func entryCases() ([]VerifyCase, error) {
	var cases []VerifyCase
	add := func(name, want, why string, leaf []byte) error {
		c := VerifyCase{Name: name, Want: want, Why: why}
		setBytes(&c.Leaf, &c.LeafBase64, leaf)
		if want == "ok" {
			f, err := entryFields(leaf)
			if err != nil {
				return fmt.Errorf("entry %q: %w", name, err)
			}
			c.Expect = &Expect{Kind: f["kind"], ID: f["id"], Fields: f}
		}
		cases = append(cases, c)
		return nil
	}
	loggedAt := NowTime().Add(123456789 * time.Nanosecond)
	entry := func(body string, execution bool, at time.Time) ([]byte, error) {
		sub, _, err := Submission([]byte(body), execution, "anonymous", at)
		if err != nil {
			return nil, err
		}
		e, err := log.NewEntry(sub, at, 300*time.Second)
		if err != nil {
			return nil, err
		}
		return e.Leaf, nil
	}
	dec := func(changes ...string) string { return decisionWith(changes...) }
	denyWith := func(changes ...string) string {
		return decisionWith(append([]string{"outcome", `"deny"`}, changes...)...)
	}
	ok := func(name, why, body string, execution bool) error {
		leaf, err := entry(body, execution, loggedAt)
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		return add(name, "ok", why, leaf)
	}
	for _, v := range ValidDecisions() {
		if err := ok("decision "+v.Name, "decisions/valid/"+v.Name+".json", v.Body, false); err != nil {
			return nil, err
		}
	}
	for _, v := range ValidExecutions() {
		if err := ok("execution "+v.Name, "executions/valid/"+v.Name+".json", v.Body, true); err != nil {
			return nil, err
		}
	}
	// Timestamps as Go's time.Parse(time.RFC3339Nano) reads them: also a
	// one-digit hour, a comma before the fraction and offsets up to
	// ±24:60. The decision as accepted keeps the text.
	for _, c := range [][2]string{
		{"one-digit hour", "2026-11-25T8:00:00Z"},
		{"comma before the fraction", "2026-11-25T18:00:00,5Z"},
		{"offset +24:00", "2026-11-25T18:00:00+24:00"},
		{"offset -23:60", "2026-11-24T17:00:00-23:60"},
		{"offset -00:00", "2026-11-25T18:00:00-00:00"},
		{"12 fractional digits", "2026-11-25T18:00:00.123456789123Z"},
		{"year 0000", "0000-01-01T00:00:00Z"},
		{"29 February of a leap year", "2024-02-29T00:00:00Z"},
		{"29 February 2000", "2000-02-29T00:00:00Z"},
		{"5 minutes after logged_at", "2026-11-25T18:05:00.123456789Z"},
		{"5 minutes after logged_at, to the nanosecond, with a 10th digit", "2026-11-25T18:05:00.1234567899Z"},
		{"5 minutes after logged_at, in another zone", "2026-11-25T19:05:00.123456789+01:00"},
	} {
		if err := ok("decided_at: "+c[0], "as Go's time.Parse reads RFC 3339", denyWith("decided_at", q(c[1])), false); err != nil {
			return nil, err
		}
	}
	okDeny, err := entry(denyWith(), false, loggedAt)
	if err != nil {
		return nil, err
	}
	const deniedAt = `"decided_at":"2026-11-25T18:00:00Z"`
	bad := func(name, why string, leaf string) error { return add(name, "fail", why, []byte(leaf)) }
	for _, c := range [][3]string{
		{"5 minutes and 1 ns after logged_at", "2026-11-25T18:05:00.12345679Z", "at most 5 minutes after logged_at"},
		{"5 minutes and 1 ns after logged_at, in another zone", "2026-11-25T19:05:00.12345679+01:00", ""},
		{"leap second", "2016-12-31T23:59:60Z", "seconds are 0 to 59"},
		{"29 February of another year", "2027-02-29T00:00:00Z", ""},
		{"29 February 2100", "2100-02-29T00:00:00Z", ""},
		{"hour 24", "2026-11-25T24:00:00Z", ""},
		{"three-digit hour", "2026-11-25T018:00:00Z", ""},
		{"one-digit minute", "2026-11-25T18:0:00Z", ""},
		{"offset +24:61", "2026-11-25T18:00:00+24:61", ""},
		{"offset +25:00", "2026-11-25T18:00:00+25:00", ""},
		{"offset without colon", "2026-11-25T18:00:00+0100", ""},
		{"lower-case t", "2026-11-25t18:00:00Z", ""},
		{"lower-case z", "2026-11-25T18:00:00z", ""},
		{"a space for T", "2026-11-25 18:00:00Z", ""},
		{"fraction without digits", "2026-11-25T18:00:00.Z", ""},
		{"five-digit year", "12026-11-25T18:00:00Z", ""},
		{"no zone", "2026-11-25T18:00:00", ""},
	} {
		if err := bad("decided_at: "+c[0], c[2], strings.Replace(string(okDeny), deniedAt, `"decided_at":`+q(c[1]), 1)); err != nil {
			return nil, err
		}
	}
	okAllow, err := entry(dec(), false, loggedAt)
	if err != nil {
		return nil, err
	}
	okExec, err := entry(executionWith(), true, loggedAt)
	if err != nil {
		return nil, err
	}
	const until = `"authorized_until":"2026-11-25T18:05:00Z"`
	if !strings.Contains(string(okAllow), until) {
		return nil, fmt.Errorf("the allow entry has no %s: %s", until, okAllow)
	}
	for _, c := range [][3]string{
		{"deny with authorized_until null", `{"authorized_until":null,` + string(okDeny[1:]), "authorized_until is a timestamp, present exactly for an allow"},
		{"execution with authorized_until null", `{"authorized_until":null,` + string(okExec[1:]), ""},
		{"allow with authorized_until null", strings.Replace(string(okAllow), until, `"authorized_until":null`, 1), ""},
		{"authorized_until with a lower-case z", strings.Replace(string(okAllow), until, strings.Replace(until, "Z", "z", 1), 1), ""},
		{"authorized_until at second 60", strings.Replace(string(okAllow), until, `"authorized_until":"2026-11-25T18:05:60Z"`, 1), ""},
		{"authorized_until with an offset", strings.Replace(string(okAllow), until, `"authorized_until":"2026-11-25T18:05:00+00:00"`, 1), ""},
		{"logged_at at second 60", strings.Replace(string(okDeny), "18:00:00.123456789Z", "18:00:60.123456789Z", 1), ""},
		{"logged_at with a comma", strings.Replace(string(okDeny), "18:00:00.123456789Z", "18:00:00,123456789Z", 1), ""},
		{"logged_at with a one-digit hour", strings.Replace(string(okDeny), "T18:00:00.123456789Z", "T8:00:00.123456789Z", 1), ""},
		{"decision null, with an execution", `{"decision":null,` + string(okExec[1:]), "exactly one of decision and execution"},
		{"execution null, with a decision", strings.Replace(string(okDeny), `,"logged_at"`, `,"execution":null,"logged_at"`, 1), ""},
		{"submitter null", strings.Replace(string(okDeny), `"submitter":"anonymous"`, `"submitter":null`, 1), ""},
		{"v null", strings.Replace(string(okDeny), `"v":1`, `"v":null`, 1), ""},
		{"v 1.5", strings.Replace(string(okDeny), `"v":1`, `"v":1.5`, 1), ""},
		{"v true", strings.Replace(string(okDeny), `"v":1`, `"v":true`, 1), ""},
	} {
		if err := bad(c[0], c[2], c[1]); err != nil {
			return nil, err
		}
	}

	// Numbers in the context: as written in the (canonical) entry.
	for _, c := range [][3]string{
		{"2^53", "9007199254740992", "ok"},
		{"-2^53", "-9007199254740992", "ok"},
		{"2^53+2", "9007199254740994", "fail"},
		{"1e+21", "1e+21", "fail"},
		{"-1e+21", "-1e+21", "fail"},
		{"1e+300", "1e+300", "fail"},
		{"4503599627370497.5 as logged", "4503599627370497", "ok"},
		{"1e-7", "1e-7", "ok"},
		{"5e-324", "5e-324", "ok"},
		{"0.1", "0.1", "ok"},
		{"-0.5", "-0.5", "ok"},
	} {
		leaf := strings.Replace(string(okDeny), `,"decided_at"`, `,"context":{"n":`+c[1]+`},"decided_at"`, 1)
		if c[2] == "ok" {
			if _, err := log.ParseEntry([]byte(leaf)); err != nil {
				return nil, fmt.Errorf("context number %s: %w", c[0], err)
			}
			if err := add("context number "+c[0], "ok", "", []byte(leaf)); err != nil {
				return nil, err
			}
			continue
		}
		if err := bad("context number "+c[0], "an integer beyond ±2^53 cannot be kept exactly", leaf); err != nil {
			return nil, err
		}
	}
	for _, c := range [][3]string{
		{"sequence 2^53-1", "9007199254740991", "ok"},
		{"sequence 2^53", "9007199254740992", "fail"},
		{"sequence 1e+21", "1e+21", "fail"},
		{"sequence 0", "0", "fail"},
	} {
		leaf := strings.Replace(string(okDeny), `,"subject"`, `,"sequence":`+c[1]+`,"subject"`, 1)
		if c[2] == "ok" {
			if err := add(c[0], "ok", "", []byte(leaf)); err != nil {
				return nil, err
			}
			continue
		}
		if err := bad(c[0], "", leaf); err != nil {
			return nil, err
		}
	}

	// Depth: RFC 8785 parsers here nest at most 10,000 arrays and objects.
	deep := func(n int) string {
		return strings.Replace(string(okDeny), `,"decided_at"`, `,"context":{"a":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`},"decided_at"`, 1)
	}
	if err := add("context nested 8,000 deep", "ok", "deep, within the context's 16 KiB", []byte(deep(8000))); err != nil {
		return nil, err
	}
	if err := bad("context of 8,200 nested arrays", "the context is at most 16 KiB once canonical", deep(8200)); err != nil {
		return nil, err
	}

	// Sizes.
	for _, n := range []int{65535, 65536} {
		leaf, err := entryOfSize(n)
		if err != nil {
			return nil, err
		}
		want, why := "ok", "an entry is at most 65,535 bytes"
		if n > log.MaxEntryBytes {
			want = "fail"
		}
		if err := add(fmt.Sprintf("%d bytes", n), want, why, leaf); err != nil {
			return nil, err
		}
	}
	if err := evidenceEntryCases(add); err != nil {
		return nil, err
	}
	return cases, nil
}

// entryOfSize is a deny entry of exactly n bytes (a valid one when n is at
// most log.MaxEntryBytes): reasons fill it.
func entryOfSize(n int) ([]byte, error) {
	make1 := func(reasons []string) (string, error) {
		body := decisionWith("outcome", `"deny"`, "reasons", "["+strings.Join(reasons, ",")+"]")
		d, err := log.ParseDecision([]byte(body), NowTime())
		if err != nil {
			return "", err
		}
		return `{"decision":` + string(d.Canonical) + `,"logged_at":"2026-11-25T18:00:00.123456789Z","submitter":"anonymous","v":1}`, nil
	}
	var reasons []string
	for i := 0; i < 31; i++ {
		reasons = append(reasons, q(strings.Repeat("é", 1024)))
	}
	reasons = append(reasons, q("r"))
	leaf, err := make1(reasons)
	if err != nil {
		return nil, err
	}
	missing := n - len(leaf)
	if missing < 0 || missing > 2*1023 {
		return nil, fmt.Errorf("cannot make an entry of %d bytes from one of %d", n, len(leaf))
	}
	// The last reason: 1 + missing bytes, in at most 1024 characters.
	two := missing / 2
	if 1+missing-2*two+two > 1024 {
		return nil, fmt.Errorf("cannot make an entry of %d bytes", n)
	}
	reasons[31] = q(strings.Repeat("é", two) + strings.Repeat("r", 1+missing-2*two))
	leaf, err = make1(reasons)
	if err != nil {
		return nil, err
	}
	if len(leaf) != n {
		return nil, fmt.Errorf("made an entry of %d bytes, not %d", len(leaf), n)
	}
	return []byte(leaf), nil
}
