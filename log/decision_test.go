package log_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest/vectors"
)

// testdata is the module's shared vectors directory.
const testdata = "../testdata"

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("failed to read a vector: %v", err)
	}
	return b
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, name), v); err != nil {
		t.Fatalf("failed to decode %s: %v", name, err)
	}
}

// validVectors returns the names of the vectors in dir (NAME.json with
// NAME.canonical).
func validVectors(t *testing.T, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(testdata, dir, "*.json"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no vectors in %s: %v", dir, err)
	}
	var names []string
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(m), ".json"))
	}
	return names
}

// errCode is the API error code of a parse error.
func errCode(t *testing.T, err error) string {
	t.Helper()
	switch {
	case errors.Is(err, log.ErrInvalidJSON):
		return "invalid_json"
	case errors.Is(err, log.ErrTooLarge):
		return "too_large"
	case errors.Is(err, log.ErrInvalidDecision):
		return "invalid_decision"
	case errors.Is(err, log.ErrInvalidExecution):
		return "invalid_execution"
	}
	t.Fatalf("error %v wraps none of the parse errors", err)
	return ""
}

// checkRefusal checks err against an invalid vector.
func checkRefusal(t *testing.T, err error, v vectors.Invalid) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s", v.WantCode)
	}
	if got := errCode(t, err); got != v.WantCode {
		t.Fatalf("got %s (%v), want %s", got, err, v.WantCode)
	}
	var fe *log.FieldError
	isField := errors.As(err, &fe)
	if v.WantField == "" {
		if isField {
			t.Fatalf("got a FieldError for %q (%v), want none", fe.Field, err)
		}
		return
	}
	if !isField {
		t.Fatalf("got %v, want a FieldError for %q", err, v.WantField)
	}
	if fe.Field != v.WantField {
		t.Fatalf("error names field %q (%v), want %q", fe.Field, err, v.WantField)
	}
	if !strings.Contains(err.Error(), v.WantField) {
		t.Fatalf("message %q does not name the field", err.Error())
	}
}

func TestParseDecisionValid(t *testing.T) {
	now := vectors.NowTime()
	for _, name := range validVectors(t, "decisions/valid") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, "decisions/valid/"+name+".json")
			want := readFile(t, "decisions/valid/"+name+".canonical")
			parse := log.ParseDecision
			if vectors.LoggedOnly(name) {
				// Refused at submission since v1.1, valid in an entry.
				var fe *log.FieldError
				if _, err := log.ParseDecision(body, now); !errors.As(err, &fe) || !strings.Contains(fe.Reason, "control characters") {
					t.Fatalf("ParseDecision: got %v, want a refusal of control characters", err)
				}
				parse = log.ParseLoggedDecision
			}
			d, err := parse(body, now)
			if err != nil {
				t.Fatalf("ParseDecision: %v", err)
			}
			if !bytes.Equal(d.Canonical, want) {
				t.Fatalf("canonical form\n%s\nwant\n%s", d.Canonical, want)
			}
			// The canonical form is accepted as is, and is a fixed point.
			d2, err := parse(d.Canonical, now)
			if err != nil || !bytes.Equal(d2.Canonical, d.Canonical) {
				t.Fatalf("re-parsing the canonical form: %v", err)
			}
			// Nothing is added or dropped: the canonical form holds the
			// same JSON value as the body.
			if !sameJSON(t, body, d.Canonical) {
				t.Fatalf("canonical form is not the same JSON value as the body")
			}
		})
	}
}

// sameJSON compares two JSON texts as values (numbers as float64).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb) // -0 == 0, as in RFC 8785
}

func TestParseDecisionInvalid(t *testing.T) {
	var vs []vectors.Invalid
	readJSON(t, "decisions/invalid.json", &vs)
	seen := make(map[string]bool)
	for _, v := range vs {
		if seen[v.Name] {
			t.Fatalf("two vectors named %q", v.Name)
		}
		seen[v.Name] = true
		t.Run(v.Name, func(t *testing.T) {
			d, err := log.ParseDecision(v.Bytes(), vectors.NowTime())
			if d != nil && err != nil {
				t.Fatal("returned both a decision and an error")
			}
			checkRefusal(t, err, v)
		})
	}
}

func TestParseExecutionValid(t *testing.T) {
	now := vectors.NowTime()
	for _, name := range validVectors(t, "executions/valid") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, "executions/valid/"+name+".json")
			want := readFile(t, "executions/valid/"+name+".canonical")
			e, err := log.ParseExecution(body, now)
			if err != nil {
				t.Fatalf("ParseExecution: %v", err)
			}
			if !bytes.Equal(e.Canonical, want) {
				t.Fatalf("canonical form\n%s\nwant\n%s", e.Canonical, want)
			}
			e2, err := log.ParseExecution(e.Canonical, now)
			if err != nil || !bytes.Equal(e2.Canonical, e.Canonical) {
				t.Fatalf("re-parsing the canonical form: %v", err)
			}
		})
	}
}

func TestParseExecutionInvalid(t *testing.T) {
	var vs []vectors.Invalid
	readJSON(t, "executions/invalid.json", &vs)
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			_, err := log.ParseExecution(v.Bytes(), vectors.NowTime())
			checkRefusal(t, err, v)
		})
	}
}

// TestParseDecisionFields checks the fields of a Decision, not only its
// canonical form.
func TestParseDecisionFields(t *testing.T) {
	d, err := log.ParseDecision(readFile(t, "decisions/valid/full.json"), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	want := log.Decision{
		ID: "d-3", Outcome: "allow", DecidedAt: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC),
		Subject: "spiffe://example.org/agent-7", Action: "deploy", Resource: "k8s://prod/payments/deployment/api",
		PolicyID: "prod-deploy", ParentID: "d-1", Sequence: 42,
		InputDigest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	got := *d
	got.Canonical = nil
	if !got.DecidedAt.Equal(want.DecidedAt) {
		t.Fatalf("DecidedAt %v, want %v", got.DecidedAt, want.DecidedAt)
	}
	got.DecidedAt = want.DecidedAt
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if _, offset := d.DecidedAt.Zone(); offset != 3600 {
		t.Fatalf("DecidedAt lost the offset as written: %v", d.DecidedAt)
	}

	m, err := log.ParseDecision(readFile(t, "decisions/valid/minimal.json"), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	if m.Resource != "" || m.ParentID != "" || m.Sequence != 0 || m.InputDigest != "" || m.Outcome != log.OutcomeAllow {
		t.Fatalf("absent fields are not zero: %+v", m)
	}

	e, err := log.ParseExecution(readFile(t, "executions/valid/full.json"), vectors.NowTime())
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "e-2" || e.DecisionID != "d-3" || e.Status != "succeeded" || !e.At.Equal(time.Date(2026, 11, 25, 18, 1, 0, 123e6, time.UTC)) {
		t.Fatalf("execution fields: %+v", e)
	}
}

// TestContextNumbers checks, independently of the vectors, that numbers in
// context are logged in RFC 8785 form, and that integers beyond ±2^53
// are refused however they are written.
func TestContextNumbers(t *testing.T) {
	tests := []struct {
		in, want string // want "" means refused (field context)
	}{
		{"0", "0"},
		{"-0", "0"},
		{"-0.0", "0"},
		{"1", "1"},
		{"1.0", "1"},
		{"1.50", "1.5"},
		{"1e3", "1000"},
		{"1E+3", "1000"},
		{"1e-7", "1e-7"},
		{"0.000001", "0.000001"},
		{"0.0000001", "1e-7"},
		{"123.456e2", "12345.6"},
		{"0.1", "0.1"},
		{"5e-324", "5e-324"},
		{"1e-400", "0"},
		{"4.5e15", "4500000000000000"},
		{"4503599627370496.5", "4503599627370496"},
		{"9007199254740991", "9007199254740991"},
		{"9007199254740992", "9007199254740992"},
		{"-9007199254740992", "-9007199254740992"},
		{"9007199254740992.0", "9007199254740992"},
		{"9.007199254740992e15", "9007199254740992"},
		{"9007199254740992.5", "9007199254740992"},
		{"3.141592653589793238462643383279", "3.141592653589793"},
		{"9007199254740993", ""},
		{"-9007199254740993", ""},
		{"9007199254740993.0", ""},
		{"9007199254740993.5", ""}, // logged as 9007199254740994
		{"9007199254740994", ""},
		{"123456789012345678901", ""},
		{"1e20", ""},
		{"1E21", ""},
		{"-1e20", ""},
		{"1.5e300", ""},
		{"1.7976931348623157e308", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			body := `{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"},"context":{"n":` + tt.in + `,"l":[` + tt.in + `]}}`
			d, err := log.ParseDecision([]byte(body), vectors.NowTime())
			if tt.want == "" {
				var fe *log.FieldError
				if !errors.As(err, &fe) || fe.Field != "context" || !errors.Is(err, log.ErrInvalidDecision) {
					t.Fatalf("got %v, want a refusal of context", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := `"context":{"l":[` + tt.want + `],"n":` + tt.want + `}`
			if !bytes.Contains(d.Canonical, []byte(want)) {
				t.Fatalf("canonical form %s does not hold %s", d.Canonical, want)
			}
		})
	}
	// Beyond the range of a double: not a number RFC 8785 can write.
	_, err := log.ParseDecision([]byte(`{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"},"context":{"n":1e400}}`), vectors.NowTime())
	if !errors.Is(err, log.ErrInvalidJSON) && !errors.Is(err, log.ErrInvalidDecision) {
		t.Fatalf("1e400: got %v, want a refusal", err)
	}
}

// TestSizeLimits checks the body and context limits at their edges.
func TestSizeLimits(t *testing.T) {
	now := vectors.NowTime()
	// pad returns a decision body of exactly n bytes, padded with white
	// space (which the limit counts).
	pad := func(t *testing.T, body string, n int) []byte {
		t.Helper()
		if len(body) > n {
			t.Fatalf("body is already %d bytes", len(body))
		}
		return []byte(body[:len(body)-1] + strings.Repeat(" ", n-len(body)) + "}")
	}
	base := `{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"}}`
	if _, err := log.ParseDecision(pad(t, base, log.MaxSubmissionBytes), now); err != nil {
		t.Fatalf("a body of exactly 64 KiB: %v", err)
	}
	_, err := log.ParseDecision(pad(t, base, log.MaxSubmissionBytes+1), now)
	if !errors.Is(err, log.ErrTooLarge) {
		t.Fatalf("a body of 64 KiB + 1: got %v, want ErrTooLarge", err)
	}
	_, err = log.ParseDecision(bytes.Repeat([]byte("x"), 1<<20), now)
	if !errors.Is(err, log.ErrTooLarge) {
		t.Fatalf("1 MiB of garbage: got %v, want ErrTooLarge (checked first)", err)
	}
	execBase := `{"id":"e","decision_id":"d","status":"started","at":"2026-11-25T18:00:00Z"}`
	if _, err := log.ParseExecution(pad(t, execBase, log.MaxSubmissionBytes), now); err != nil {
		t.Fatalf("an execution of exactly 64 KiB: %v", err)
	}
	_, err = log.ParseExecution(pad(t, execBase, log.MaxSubmissionBytes+1), now)
	if !errors.Is(err, log.ErrTooLarge) {
		t.Fatalf("an execution of 64 KiB + 1: got %v, want ErrTooLarge", err)
	}

	// context: at most 16 KiB once canonicalized. {"k":"…"} is 8 bytes
	// plus the string; white space and escapes do not count.
	ctx := func(n int, escaped bool) string {
		s := strings.Repeat("x", n-8)
		if escaped {
			s = strings.Repeat(`\u0078`, 2000) + s[2000:]
		}
		return `{ "k" : "` + s + `" }`
	}
	for _, c := range []struct {
		name    string
		context string
		ok      bool
	}{
		{"16 KiB", ctx(log.MaxContextBytes, false), true},
		{"16 KiB written with escapes", ctx(log.MaxContextBytes, true), true},
		{"16 KiB + 1", ctx(log.MaxContextBytes+1, false), false},
		{"16 KiB + 1 written with escapes", ctx(log.MaxContextBytes+1, true), false},
		{"16 KiB of three-byte characters", `{"k":"` + strings.Repeat("€", (log.MaxContextBytes-8)/3) + `"}`, true},
		{"over 16 KiB of three-byte characters", `{"k":"` + strings.Repeat("€", (log.MaxContextBytes-8)/3+1) + `"}`, false},
		{"16 KiB once numbers are canonical", `{"k":"` + strings.Repeat("x", log.MaxContextBytes-8-12) + `","n":1e15}`, false},
	} {
		t.Run("context "+c.name, func(t *testing.T) {
			body := strings.Replace(base, `"policy"`, `"context":`+c.context+`,"policy"`, 1)
			_, err := log.ParseDecision([]byte(body), now)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			var fe *log.FieldError
			if !c.ok && (!errors.As(err, &fe) || fe.Field != "context") {
				t.Fatalf("got %v, want a refusal of context", err)
			}
			_, err = log.ParseExecution([]byte(strings.Replace(execBase, `"status"`, `"context":`+c.context+`,"status"`, 1)), now)
			if c.ok != (err == nil) {
				t.Fatalf("execution: got %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestFutureLimit checks the 5-minute limit against the now passed in.
func TestFutureLimit(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at string
		ok bool
	}{
		{"2026-11-25T18:05:00Z", true},
		{"2026-11-25T18:05:00.000000001Z", false},
		{"2026-11-25T19:05:00+01:00", true},
		{"2026-11-25T19:05:00.1+01:00", false},
		{"2026-11-25T13:05:00-05:00", true},
		{"1970-01-01T00:00:00Z", true},
		{"0001-01-01T00:00:00Z", true},
		{"2026-11-25T18:04:59.999999999Z", true},
	} {
		// The limit is judged against now, not the machine's clock.
		t.Run(c.at, func(t *testing.T) {
			d := `{"id":"d","outcome":"deny","decided_at":"` + c.at + `","subject":"s","action":"a","policy":{"id":"p"}}`
			_, err := log.ParseDecision([]byte(d), now)
			if c.ok != (err == nil) {
				t.Fatalf("decision: got %v, want ok=%v", err, c.ok)
			}
			e := `{"id":"e","decision_id":"d","status":"started","at":"` + c.at + `"}`
			_, err = log.ParseExecution([]byte(e), now)
			if c.ok != (err == nil) {
				t.Fatalf("execution: got %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestFieldError(t *testing.T) {
	_, err := log.ParseDecision([]byte(`{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p","digest":"sha256:X"}}`), vectors.NowTime())
	var fe *log.FieldError
	if !errors.As(err, &fe) || fe.Field != "policy.digest" || fe.Err != log.ErrInvalidDecision || fe.Reason == "" {
		t.Fatalf("got %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "invalid decision: policy.digest: ") {
		t.Fatalf("message %q", err.Error())
	}
	if errors.Is(err, log.ErrInvalidExecution) || errors.Is(err, log.ErrInvalidJSON) {
		t.Fatal("a decision's FieldError wraps another error")
	}
	noField := &log.FieldError{Err: log.ErrInvalidExecution, Reason: "bad"}
	if noField.Error() != "invalid execution: bad" || !errors.Is(noField, log.ErrInvalidExecution) {
		t.Fatalf("FieldError without a field: %q", noField.Error())
	}
	// Error messages quote at most a bounded part of the input.
	_, err = log.ParseDecision([]byte(`{"id":"d","outcome":"deny","decided_at":"2026-11-25T18:00:00Z","subject":"s","action":"a","policy":{"id":"p"},"context":{"n":1`+strings.Repeat("0", 5000)+`}}`), vectors.NowTime())
	if err == nil || len(err.Error()) > 600 {
		t.Fatalf("error of %d bytes: a long number must be clipped", len(err.Error()))
	}
}
