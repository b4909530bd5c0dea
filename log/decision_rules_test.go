package log_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
)

// The rules of wire contract v1.1 for submissions: timestamps by the RFC
// 3339 grammar, no control characters in short fields, context nested at
// most 64 deep, every broken field reported, max_executions and executor,
// an execution report's artifact and claim_id, revocations. Entries logged
// under the earlier rules still parse (ParseLoggedDecision).

// decisionWith is a valid deny decision with members replaced (raw JSON;
// "" deletes) or added, in order.
func decisionWith(changes ...string) []byte {
	return withMembers([]string{
		"id", `"d-1"`, "outcome", `"deny"`, "decided_at", `"2026-11-25T18:00:00Z"`,
		"subject", `"agent-7"`, "action", `"deploy"`, "policy", `{"id":"prod-deploy"}`,
	}, changes)
}

func executionWith(changes ...string) []byte {
	return withMembers([]string{
		"id", `"e-1"`, "decision_id", `"d-1"`, "status", `"started"`, "at", `"2026-11-25T18:00:01Z"`,
	}, changes)
}

func revocationWith(changes ...string) []byte {
	return withMembers([]string{
		"id", `"r-1"`, "decision_id", `"d-1"`, "revoked_at", `"2026-11-25T18:00:02Z"`,
	}, changes)
}

func withMembers(fields, changes []string) []byte {
	return []byte(vectors.With(fields, changes...))
}

// wantFieldError checks that err reports field (first when first is set)
// and wraps kind.
func wantFieldError(t *testing.T, err error, kind error, field string) {
	t.Helper()
	var fes log.FieldErrors
	if !errors.As(err, &fes) || !errors.Is(err, kind) {
		t.Fatalf("got %v, want FieldErrors of %v naming %q", err, kind, field)
	}
	for _, fe := range fes {
		if fe.Field == field {
			return
		}
	}
	t.Fatalf("got %v, want an error of field %q", err, field)
}

// timestamps are RFC 3339 timestamps and how submissions treat them.
// Accepted ones must read the same in Python (datetime.fromisoformat) and
// JavaScript (Date); see TestTimestampsElsewhere.
var timestamps = []struct {
	s  string
	ok bool
}{
	{"2026-11-25T18:00:00Z", true},
	{"2026-11-25T18:00:00.5Z", true},
	{"2026-11-25T18:00:00.123456789Z", true},
	{"2026-11-25T19:00:00+01:00", true},
	{"2026-11-25T13:00:00-05:00", true},
	{"2026-11-25T18:00:00+00:00", true},
	{"2026-11-25T18:00:00-00:00", true},
	{"2026-11-26T17:59:00+23:59", true},
	{"2026-11-24T18:01:00-23:59", true},
	{"2024-02-29T00:00:00Z", true},
	{"2000-02-29T00:00:00Z", true},
	{"0001-01-01T00:00:00Z", true},
	{"1970-01-01T00:00:00Z", true},
	{"2026-11-25T23:59:59.999999999Z", false}, // more than 5 minutes ahead of now
	// The examples of the hardening issue: Go's time.Parse accepts them.
	{"2026-11-25T18:00:00+24:00", false},
	{"2026-11-25T18:00:00+23:60", false},
	{"2026-11-25T18:00:00,5Z", false},
	{"2026-11-25T1:00:00Z", false},
	// Lower case t and z: RFC 3339 allows them, Python refuses "z".
	{"2026-11-25t18:00:00Z", false},
	{"2026-11-25T18:00:00z", false},
	// Leap seconds: Python, JavaScript and Go refuse second 60.
	{"2026-12-31T23:59:60Z", false},
	{"0000-01-01T00:00:00Z", false}, // Python has no year 0
	{"2026-11-25T18:00:00.1234567891Z", false},
	{"2026-11-25T18:00:00.Z", false},
	{"2026-11-25T18:00:00", false},
	{"2026-11-25 18:00:00Z", false},
	{"2026-11-25T18:00Z", false},
	{"2026-11-25T18:00:00+0100", false},
	{"2026-11-25T18:00:00+01", false},
	{"2026-11-25T18:00:00+01:00:00", false},
	{"2026-11-25T18:00:00ZZ", false},
	{"2026-11-25T18:00:00 Z", false},
	{"2026-11-25T18:00:00UTC", false},
	{"2026-02-29T00:00:00Z", false},
	{"1900-02-29T00:00:00Z", false},
	{"2026-04-31T00:00:00Z", false},
	{"2026-00-10T00:00:00Z", false},
	{"2026-11-00T00:00:00Z", false},
	{"2026-11-25T24:00:00Z", false},
	{"2026-11-25T18:60:00Z", false},
	{"+2026-11-25T18:00:00Z", false},
	{"20261-11-25T18:00:00Z", false},
	{"2026-1-25T18:00:00Z", false},
	{"2026-11-25T18:00:00.-1Z", false},
	{"２026-11-25T18:00:00Z", false},
}

func TestTimestampGrammar(t *testing.T) {
	now := vectors.NowTime()
	for _, tt := range timestamps {
		t.Run(tt.s, func(t *testing.T) {
			q := `"` + tt.s + `"`
			for _, c := range []struct {
				field, kind string
				parse       func() error
			}{
				{"decided_at", "decision", func() error { _, err := log.ParseDecision(decisionWith("decided_at", q), now); return err }},
				{"at", "execution", func() error { _, err := log.ParseExecution(executionWith("at", q), now); return err }},
				{"revoked_at", "revocation", func() error { _, err := log.ParseRevocation(revocationWith("revoked_at", q), now); return err }},
			} {
				err := c.parse()
				if tt.ok != (err == nil) {
					t.Fatalf("%s: got %v, want ok=%v", c.kind, err, tt.ok)
				}
				if err != nil {
					var fe *log.FieldError
					if !errors.As(err, &fe) || fe.Field != c.field {
						t.Fatalf("%s: got %v, want an error of %s", c.kind, err, c.field)
					}
				}
			}
			// What Go's parser took before v1.1 stays valid in entries.
			if ts, err := time.Parse(time.RFC3339Nano, tt.s); err == nil && !ts.After(now.Add(log.MaxFutureSkew)) {
				if _, err := log.ParseLoggedDecision(decisionWith("decided_at", q), now); err != nil {
					t.Fatalf("ParseLoggedDecision refuses what was accepted before: %v", err)
				}
			}
		})
	}
	// The instant and the offset as written.
	d, err := log.ParseDecision(decisionWith("decided_at", `"2026-11-25T12:59:59.000000007-05:00"`), now)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 25, 17, 59, 59, 7, time.UTC); !d.DecidedAt.Equal(want) {
		t.Fatalf("DecidedAt %v, want %v", d.DecidedAt, want)
	}
	if _, off := d.DecidedAt.Zone(); off != -5*3600 {
		t.Fatalf("offset %d, want -5h", off)
	}
}

// TestTimestampsElsewhere checks that every timestamp a submission may carry
// reads the same in Python and JavaScript, and that the malformed ones of
// the hardening issue are refused there too. It needs python3 and node.
func TestTimestampsElsewhere(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node")
	}
	var accepted []string
	for _, tt := range timestamps {
		if tt.ok {
			accepted = append(accepted, tt.s)
		}
	}
	refusedElsewhere := []string{"2026-11-25T18:00:00+24:00", "2026-11-25T18:00:00+23:60", "2026-11-25T1:00:00Z", "2026-12-31T23:59:60Z"}
	// Each prints one line a timestamp: the instant in Unix milliseconds,
	// or "refused".
	py := `import sys, datetime
for s in sys.argv[1:]:
    try: print(int(datetime.datetime.fromisoformat(s).timestamp() * 1000) if s[0] != '0' else 'year1')
    except ValueError: print('refused')`
	js := `for (const s of process.argv.slice(1)) { const t = new Date(s).getTime(); console.log(isNaN(t) ? 'refused' : (s[0] == '0' ? 'year1' : String(t))); }`
	run := func(name string, args ...string) []string {
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return strings.Fields(string(out))
	}
	all := append(append([]string(nil), accepted...), refusedElsewhere...)
	pyOut := run(python, append([]string{"-c", py}, all...)...)
	jsOut := run(node, append([]string{"-e", js}, all...)...)
	if len(pyOut) != len(all) || len(jsOut) != len(all) {
		t.Fatalf("python printed %d lines, node %d, want %d", len(pyOut), len(jsOut), len(all))
	}
	for i, s := range all {
		want := "refused"
		if i < len(accepted) {
			d, err := log.ParseDecision(decisionWith("decided_at", `"`+s+`"`), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			// Python and JavaScript keep milliseconds at most.
			want = fmt.Sprint(d.DecidedAt.UnixMilli())
			if s[0] == '0' {
				want = "year1" // before 1970: float rounding differs, accepted is enough
			}
		}
		if pyOut[i] != want || jsOut[i] != want {
			t.Errorf("%s: python %s, node %s, want %s", s, pyOut[i], jsOut[i], want)
		}
	}
}

func TestControlCharacters(t *testing.T) {
	now := vectors.NowTime()
	controls := []string{`\u0000`, `\n`, `\t`, `\u001b[31m`, `\u001f`, `\u007f`, `\u0080`, `\u009f`, "\u0085"}
	fine := []string{`\u00a0`, `\u2028`, `\ufeff`, `é`, `\"`, `\\`}
	for _, c := range []struct {
		field string
		body  func(s string) []byte
		parse func([]byte) error
		kind  error
	}{
		{"subject", func(s string) []byte { return decisionWith("subject", `"a`+s+`b"`) }, decision, log.ErrInvalidDecision},
		{"action", func(s string) []byte { return decisionWith("action", `"a`+s+`b"`) }, decision, log.ErrInvalidDecision},
		{"resource", func(s string) []byte { return decisionWith("resource", `"a`+s+`b"`) }, decision, log.ErrInvalidDecision},
		{"executor", func(s string) []byte {
			return decisionWith("outcome", `"allow"`, "executor", `"a`+s+`b"`)
		}, decision, log.ErrInvalidDecision},
		{"policy.id", func(s string) []byte { return decisionWith("policy", `{"id":"a`+s+`b"}`) }, decision, log.ErrInvalidDecision},
		{"policy.version", func(s string) []byte { return decisionWith("policy", `{"id":"p","version":"a`+s+`b"}`) }, decision, log.ErrInvalidDecision},
		{"runtime", func(s string) []byte { return executionWith("runtime", `"a`+s+`b"`) }, execution, log.ErrInvalidExecution},
	} {
		t.Run(c.field, func(t *testing.T) {
			for _, s := range controls {
				err := c.parse(c.body(s))
				wantFieldError(t, err, c.kind, c.field)
				if !strings.Contains(err.Error(), "control characters") {
					t.Fatalf("%q: message %q", s, err)
				}
			}
			for _, s := range fine {
				if err := c.parse(c.body(s)); err != nil {
					t.Fatalf("%q refused: %v", s, err)
				}
			}
		})
	}
	// Free text keeps them.
	for _, body := range [][]byte{
		decisionWith("reasons", `["line 1\nline 2\t\u0000"]`),
		decisionWith("context", `{"k\n":"\u0000\u001b"}`),
	} {
		if _, err := log.ParseDecision(body, now); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	if _, err := log.ParseRevocation(revocationWith("reason", `"a\nb"`), now); err != nil {
		t.Fatal(err)
	}
	// Entries logged before the rule still parse.
	if _, err := log.ParseLoggedDecision(decisionWith("subject", `"a\nb"`, "policy", `{"id":"\u0000"}`), now); err != nil {
		t.Fatal(err)
	}
}

func decision(b []byte) error {
	_, err := log.ParseDecision(b, vectors.NowTime())
	return err
}

func execution(b []byte) error {
	_, err := log.ParseExecution(b, vectors.NowTime())
	return err
}

func TestContextDepth(t *testing.T) {
	now := vectors.NowTime()
	// nested is a context of depth n: objects and arrays alternating.
	nested := func(n int) string {
		var open, close strings.Builder
		for i := 1; i < n; i++ {
			if i%2 == 1 {
				open.WriteString(`{"a":`)
				close.WriteString(`}`)
			} else {
				open.WriteString(`[`)
				close.WriteString(`]`)
			}
		}
		return `{"x":` + open.String() + "1" + reverse(close.String()) + `}`
	}
	for _, c := range []struct {
		context string
		ok      bool
	}{
		{`{}`, true},
		{nested(2), true},
		{nested(log.MaxContextDepth), true},
		{nested(log.MaxContextDepth + 1), false},
		{nested(1000), false},
	} {
		_, err := log.ParseDecision(decisionWith("context", c.context), now)
		if c.ok {
			if err != nil {
				t.Fatalf("%.40s…: %v", c.context, err)
			}
			continue
		}
		wantFieldError(t, err, log.ErrInvalidDecision, "context")
		if !strings.Contains(err.Error(), fmt.Sprintf("the limit is %d", log.MaxContextDepth)) {
			t.Fatalf("message %q", err)
		}
		_, err = log.ParseExecution(executionWith("context", c.context), now)
		wantFieldError(t, err, log.ErrInvalidExecution, "context")
		// Entries logged before the limit still parse.
		if _, err := log.ParseLoggedDecision(decisionWith("context", c.context), now); err != nil {
			t.Fatalf("ParseLoggedDecision: %v", err)
		}
	}
	// Beyond what strict JSON allows at all.
	_, err := log.ParseDecision(decisionWith("context", `{"a":`+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}`), now)
	if !errors.Is(err, log.ErrInvalidJSON) {
		t.Fatalf("10,001 deep: got %v, want invalid JSON", err)
	}
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// TestFieldErrors checks that a decision with several broken fields reports
// all of them, one error a field, in the order of the schema, the first
// being the message.
func TestFieldErrors(t *testing.T) {
	body := `{"zeta":1,"outcome":"maybe","policy":{"version":"","owner":1},"subject":"","alpha":2,"sequence":0,"context":[],"id":"a b"}`
	_, err := log.ParseDecision([]byte(body), vectors.NowTime())
	var fes log.FieldErrors
	if !errors.As(err, &fes) {
		t.Fatalf("got %v, want FieldErrors", err)
	}
	want := []string{"zeta", "alpha", "id", "outcome", "decided_at", "subject", "action", "policy.owner", "policy.id", "policy.version", "context", "sequence"}
	var got []string
	for _, fe := range fes {
		got = append(got, fe.Field)
		if fe.Err != log.ErrInvalidDecision || fe.Reason == "" {
			t.Fatalf("%+v", fe)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("fields\n%q\nwant\n%q", got, want)
	}
	if err.Error() != fes[0].Error() || err.Error() != "invalid decision: zeta: unknown field" {
		t.Fatalf("message %q", err)
	}
	var fe *log.FieldError
	if !errors.As(err, &fe) || fe != fes[0] || !errors.Is(err, log.ErrInvalidDecision) || errors.Is(err, log.ErrInvalidExecution) {
		t.Fatal("errors.As/Is do not see the first error")
	}
	// One error a field, the first found.
	_, err = log.ParseDecision(decisionWith("id", `"`+strings.Repeat("-", 200)+`"`), vectors.NowTime())
	if !errors.As(err, &fes) || len(fes) != 1 || !strings.Contains(fes[0].Reason, "1 to 128") {
		t.Fatalf("got %v, want one error of id, its length", err)
	}
}

func TestMaxExecutionsAndExecutor(t *testing.T) {
	now := vectors.NowTime()
	allow := func(changes ...string) []byte {
		return decisionWith(append([]string{"outcome", `"allow"`}, changes...)...)
	}
	for _, c := range []struct {
		name     string
		body     []byte
		max      int
		executor string
		field    string // "" for accepted
	}{
		{"absent", allow(), 0, "", ""},
		{"1", allow("max_executions", "1"), 1, "", ""},
		{"1000", allow("max_executions", "1000"), 1000, "", ""},
		{"executor", allow("executor", `"spiffe://example.org/runner"`), 0, "spiffe://example.org/runner", ""},
		{"both", allow("max_executions", "7", "executor", `"é"`), 7, "é", ""},
		{"0", allow("max_executions", "0"), 0, "", "max_executions"},
		{"1001", allow("max_executions", "1001"), 0, "", "max_executions"},
		{"-1", allow("max_executions", "-1"), 0, "", "max_executions"},
		{"1.0", allow("max_executions", "1.0"), 0, "", "max_executions"},
		{"1e2", allow("max_executions", "1e2"), 0, "", "max_executions"},
		{"string", allow("max_executions", `"5"`), 0, "", "max_executions"},
		{"null", allow("max_executions", "null"), 0, "", "max_executions"},
		{"huge", allow("max_executions", "18446744073709551617"), 0, "", "max_executions"},
		{"executor empty", allow("executor", `""`), 0, "", "executor"},
		{"executor 257 chars", allow("executor", `"`+strings.Repeat("x", 257)+`"`), 0, "", "executor"},
		{"executor a number", allow("executor", `1`), 0, "", "executor"},
		{"deny with max_executions", decisionWith("max_executions", "1"), 0, "", "max_executions"},
		{"deny with executor", decisionWith("executor", `"x"`), 0, "", "executor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := log.ParseDecision(c.body, now)
			if c.field != "" {
				wantFieldError(t, err, log.ErrInvalidDecision, c.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.MaxExecutions != c.max || d.Executor != c.executor {
				t.Fatalf("MaxExecutions %d, Executor %q", d.MaxExecutions, d.Executor)
			}
			// Nothing is added: the canonical form holds exactly what was
			// written.
			if want, _ := log.CanonicalJSON(c.body); string(d.Canonical) != string(want) || (c.max == 0) == strings.Contains(string(d.Canonical), "max_executions") {
				t.Fatalf("canonical form %s", d.Canonical)
			}
		})
	}
	// Both, and their messages.
	_, err := log.ParseDecision(decisionWith("max_executions", "3", "executor", `"x"`), now)
	var fes log.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 2 || fes[0].Reason != "is only for allow decisions" {
		t.Fatalf("got %v", err)
	}
	_, err = log.ParseDecision(decisionWith("outcome", `"allow"`, "max_executions", "0"), now)
	if err == nil || err.Error() != "invalid decision: max_executions: must be an integer from 1 to 1000" {
		t.Fatalf("message %v", err)
	}
}

const testArtifact = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsiLCJ0eXAiOiJnb3Zsb2ctYXV0aHorand0In0.eyJqdGkiOiJkLTEifQ.c2lnbmF0dXJl"

func TestExecutionArtifactAndClaim(t *testing.T) {
	now := vectors.NowTime()
	e, err := log.ParseExecution(executionWith("artifact", `"`+testArtifact+`"`, "context", `{"b":1,"a":2}`), now)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(testArtifact))
	if e.Artifact != testArtifact || e.ArtifactDigest != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("artifact %q, digest %q", e.Artifact, e.ArtifactDigest)
	}
	// The report as accepted does not hold the token.
	const want = `{"at":"2026-11-25T18:00:01Z","context":{"a":2,"b":1},"decision_id":"d-1","id":"e-1","status":"started"}`
	if string(e.Canonical) != want {
		t.Fatalf("canonical form\n%s\nwant\n%s", e.Canonical, want)
	}
	// The same report without artifact is the same report as accepted.
	e2, err := log.ParseExecution(executionWith("context", `{"a":2,"b":1}`), now)
	if err != nil || string(e2.Canonical) != want || e2.Artifact != "" || e2.ArtifactDigest != "" {
		t.Fatalf("without artifact: %v %+v", err, e2)
	}
	// Escaped, the token is the string's value.
	e3, err := log.ParseExecution(executionWith("artifact", `"`+strings.Replace(testArtifact, "e", `\u0065`, 1)+`"`), now)
	if err != nil || e3.Artifact != testArtifact || e3.ArtifactDigest != e.ArtifactDigest {
		t.Fatalf("escaped artifact: %v %+v", err, e3)
	}
	for _, bad := range []string{`""`, `"a.b"`, `"a.b.c.d"`, `"a..c"`, `".b.c"`, `"a.b."`, `"a.b.c="`, `"a+b.c.d"`, `"a.b/.c"`, `"a b.c.d"`, `1`, `null`,
		`"` + strings.Repeat("a", log.MaxArtifactBytes) + `.b.c"`} {
		_, err := log.ParseExecution(executionWith("artifact", bad), now)
		wantFieldError(t, err, log.ErrInvalidExecution, "artifact")
	}

	for _, c := range []struct {
		status, claim string
		ok            bool
	}{
		{"succeeded", `"e-0"`, true},
		{"failed", `"e-0"`, true},
		{"aborted", `"e-0"`, true},
		{"succeeded", "", true},
		{"started", `"e-0"`, false},
		{"succeeded", `"a b"`, false},
		{"succeeded", `""`, false},
		{"succeeded", `null`, false},
		{"succeeded", `"batch"`, false},
	} {
		x, err := log.ParseExecution(executionWith("status", `"`+c.status+`"`, "claim_id", c.claim), now)
		if !c.ok {
			wantFieldError(t, err, log.ErrInvalidExecution, "claim_id")
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", c.status, c.claim, err)
		}
		if want := strings.Trim(c.claim, `"`); x.ClaimID != want {
			t.Fatalf("ClaimID %q, want %q", x.ClaimID, want)
		}
	}
}

func TestParseRevocation(t *testing.T) {
	now := vectors.NowTime()
	r, err := log.ParseRevocation([]byte(` { "reason" : "key \u00e9 leaked", "revoked_at":"2026-11-25T19:00:02+01:00", "decision_id": "d-1", "id": "r-1" } `), now)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "r-1" || r.DecisionID != "d-1" || r.Reason != "key é leaked" || !r.RevokedAt.Equal(time.Date(2026, 11, 25, 18, 0, 2, 0, time.UTC)) {
		t.Fatalf("%+v", r)
	}
	const want = `{"decision_id":"d-1","id":"r-1","reason":"key é leaked","revoked_at":"2026-11-25T19:00:02+01:00"}`
	if string(r.Canonical) != want {
		t.Fatalf("canonical form\n%s\nwant\n%s", r.Canonical, want)
	}
	if r, err := log.ParseRevocation(revocationWith(), now); err != nil || r.Reason != "" {
		t.Fatalf("without reason: %v", err)
	}
	for _, c := range []struct {
		name  string
		body  []byte
		field string
	}{
		{"missing id", revocationWith("id", ""), "id"},
		{"missing decision_id", revocationWith("decision_id", ""), "decision_id"},
		{"missing revoked_at", revocationWith("revoked_at", ""), "revoked_at"},
		{"id batch", revocationWith("id", `"batch"`), "id"},
		{"decision_id syntax", revocationWith("decision_id", `"d/1"`), "decision_id"},
		{"revoked_at lenient", revocationWith("revoked_at", `"2026-11-25T18:00:00+24:00"`), "revoked_at"},
		{"revoked_at ahead", revocationWith("revoked_at", `"2026-11-25T18:05:01Z"`), "revoked_at"},
		{"reason empty", revocationWith("reason", `""`), "reason"},
		{"reason 1025 chars", revocationWith("reason", `"`+strings.Repeat("é", 1025)+`"`), "reason"},
		{"reason null", revocationWith("reason", `null`), "reason"},
		{"unknown field", revocationWith("outcome", `"deny"`), "outcome"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := log.ParseRevocation(c.body, now)
			wantFieldError(t, err, log.ErrInvalidRevocation, c.field)
			if errors.Is(err, log.ErrInvalidDecision) {
				t.Fatal("a revocation's error wraps ErrInvalidDecision")
			}
		})
	}
	for _, body := range [][]byte{nil, []byte(`[]`), []byte(`{"id":"r","id":"r"}`), []byte(`{`)} {
		if _, err := log.ParseRevocation(body, now); !errors.Is(err, log.ErrInvalidJSON) {
			t.Fatalf("%q: got %v, want invalid JSON", body, err)
		}
	}
	if _, err := log.ParseRevocation(make([]byte, log.MaxSubmissionBytes+1), now); !errors.Is(err, log.ErrTooLarge) {
		t.Fatalf("got %v, want too large", err)
	}
}
