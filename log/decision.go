package log

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Limits of the wire contract.
const (
	// MaxSubmissionBytes is the largest accepted decision or execution body.
	MaxSubmissionBytes = 64 << 10
	// MaxContextBytes is the largest context object, once canonicalized.
	MaxContextBytes = 16 << 10
	// MaxEntryBytes is the largest entry (the tlog-tiles entry bundle limit).
	MaxEntryBytes = 65535
	// MaxFutureSkew is how far in the future decided_at and at may be.
	MaxFutureSkew = 5 * time.Minute
	// MaxSequence is the largest sequence number (2^53 - 1).
	MaxSequence = 1<<53 - 1
	// MaxReasons is the most reasons a decision may carry.
	MaxReasons = 32
)

// Outcomes of a decision.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
)

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// Decision is a validated decision, as a control plane submitted it.
type Decision struct {
	ID          string
	Outcome     string
	DecidedAt   time.Time
	Subject     string
	Action      string
	Resource    string // "" when absent
	PolicyID    string
	ParentID    string // "" when absent
	Sequence    uint64 // 0 when absent
	Canonical   []byte // the decision as accepted: RFC 8785 canonical JSON
	InputDigest string // "" when absent
}

// Execution is a validated execution report, as a runtime submitted it.
type Execution struct {
	ID         string
	DecisionID string
	Status     string
	At         time.Time
	Canonical  []byte // RFC 8785 canonical JSON
}

// ExecutionStatuses lists the allowed execution report statuses.
var ExecutionStatuses = []string{"started", "succeeded", "failed", "aborted"}

// ParseDecision validates a decision body against the schema of the wire
// contract and returns it with its canonical form. now is the reference for
// the future limit of decided_at. Errors wrap ErrInvalidJSON, or are a
// *FieldError wrapping ErrInvalidDecision, or wrap ErrTooLarge.
func ParseDecision(body []byte, now time.Time) (*Decision, error) {
	canon, obj, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	v := validator{kind: ErrInvalidDecision, obj: obj}
	d := &Decision{Canonical: canon}
	v.allowOnly("id", "outcome", "decided_at", "subject", "action", "resource", "policy",
		"input_digest", "reasons", "parent_id", "context", "sequence")
	d.ID = v.id("id", true)
	d.Outcome = v.enum("outcome", OutcomeAllow, OutcomeDeny)
	d.DecidedAt = v.timestamp("decided_at", now)
	d.Subject = v.str("subject", true, 256)
	d.Action = v.str("action", true, 256)
	d.Resource = v.str("resource", false, 1024)
	if pol, ok := v.object("policy", true); ok {
		pv := validator{kind: ErrInvalidDecision, obj: pol, prefix: "policy."}
		pv.allowOnly("id", "version", "digest")
		d.PolicyID = pv.str("id", true, 256)
		pv.str("version", false, 256)
		pv.digest("digest")
		v.adopt(&pv)
	}
	d.InputDigest = v.digest("input_digest")
	v.reasons("reasons")
	d.ParentID = v.id("parent_id", false)
	v.context("context")
	d.Sequence = v.sequence("sequence")
	if v.err != nil {
		return nil, v.err
	}
	return d, nil
}

// ParseExecution validates an execution report body (wire contract §2b).
func ParseExecution(body []byte, now time.Time) (*Execution, error) {
	canon, obj, err := parseObject(body)
	if err != nil {
		return nil, err
	}
	v := validator{kind: ErrInvalidExecution, obj: obj}
	e := &Execution{Canonical: canon}
	v.allowOnly("id", "decision_id", "status", "at", "runtime", "result_digest", "context")
	e.ID = v.id("id", true)
	e.DecisionID = v.id("decision_id", true)
	e.Status = v.enum("status", ExecutionStatuses...)
	e.At = v.timestamp("at", now)
	v.str("runtime", false, 256)
	v.digest("result_digest")
	v.context("context")
	if v.err != nil {
		return nil, v.err
	}
	return e, nil
}

// parseObject checks that body is strict JSON (no duplicate keys, valid
// UTF-8, no lone surrogates: RFC 8785 refuses all three) holding an object,
// and returns its canonical form and its members.
func parseObject(body []byte) ([]byte, map[string]json.RawMessage, error) {
	if len(body) > MaxSubmissionBytes {
		return nil, nil, fmt.Errorf("%w: body is %d bytes, the limit is %d", ErrTooLarge, len(body), MaxSubmissionBytes)
	}
	canon, err := jcs.Transform(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidJSON, clip(err.Error()))
	}
	if len(canon) == 0 || canon[0] != '{' {
		return nil, nil, fmt.Errorf("%w: the body must be a JSON object", ErrInvalidJSON)
	}
	// Members come from the body as written: sequence must be an integer
	// literal, and a number's exact value matters; the canonical form has
	// lost both.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrInvalidJSON, clip(err.Error()))
	}
	return canon, obj, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// validator checks the members of one JSON object and keeps the first error.
type validator struct {
	kind   error // ErrInvalidDecision or ErrInvalidExecution
	obj    map[string]json.RawMessage
	prefix string
	err    error
}

func (v *validator) fail(field, format string, args ...any) {
	if v.err == nil {
		// An unknown member's name is the submitter's text: bound it, so
		// that an error message never echoes a whole body.
		if len(field) > maxFieldName {
			field = strings.ToValidUTF8(field[:maxFieldName], "") + "…"
		}
		v.err = &FieldError{Err: v.kind, Field: v.prefix + field, Reason: fmt.Sprintf(format, args...)}
	}
}

// maxFieldName bounds the field name quoted in an error.
const maxFieldName = 64

func (v *validator) adopt(o *validator) {
	if v.err == nil {
		v.err = o.err
	}
}

func (v *validator) allowOnly(fields ...string) {
	for k := range v.obj {
		known := false
		for _, f := range fields {
			if k == f {
				known = true
				break
			}
		}
		if !known {
			v.fail(k, "unknown field")
			return
		}
	}
}

// raw returns a member, or nil when absent. A JSON null counts as present
// (and is then refused by the type check).
func (v *validator) raw(field string, required bool) json.RawMessage {
	r, ok := v.obj[field]
	if !ok {
		if required {
			v.fail(field, "is required")
		}
		return nil
	}
	return r
}

func (v *validator) str(field string, required bool, maxChars int) string {
	r := v.raw(field, required)
	if r == nil {
		return ""
	}
	var s string
	if r[0] != '"' || json.Unmarshal(r, &s) != nil {
		v.fail(field, "must be a string")
		return ""
	}
	if n := utf8.RuneCountInString(s); n < 1 || n > maxChars {
		v.fail(field, "must be 1 to %d characters, got %d", maxChars, n)
	}
	return s
}

func (v *validator) id(field string, required bool) string {
	s := v.str(field, required, 128)
	if s == "" {
		return ""
	}
	if !idPattern.MatchString(s) {
		v.fail(field, "must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$")
	} else if s == "batch" {
		v.fail(field, `"batch" is reserved`)
	}
	return s
}

func (v *validator) enum(field string, allowed ...string) string {
	s := v.str(field, true, 64)
	if s == "" {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	v.fail(field, "must be one of %q", allowed)
	return ""
}

func (v *validator) digest(field string) string {
	s := v.str(field, false, 71)
	if s != "" && !digestPattern.MatchString(s) {
		v.fail(field, `must be "sha256:" and 64 lowercase hex digits`)
	}
	return s
}

func (v *validator) timestamp(field string, now time.Time) time.Time {
	s := v.str(field, true, 64)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		v.fail(field, "must be an RFC 3339 timestamp")
		return time.Time{}
	}
	if t.After(now.Add(MaxFutureSkew)) {
		v.fail(field, "is more than %v in the future", MaxFutureSkew)
	}
	return t
}

func (v *validator) object(field string, required bool) (map[string]json.RawMessage, bool) {
	r := v.raw(field, required)
	if r == nil {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if r[0] != '{' || json.Unmarshal(r, &obj) != nil {
		v.fail(field, "must be an object")
		return nil, false
	}
	return obj, true
}

func (v *validator) reasons(field string) {
	r := v.raw(field, false)
	if r == nil {
		return
	}
	var list []json.RawMessage
	if r[0] != '[' || json.Unmarshal(r, &list) != nil {
		v.fail(field, "must be an array of strings")
		return
	}
	if len(list) > MaxReasons {
		v.fail(field, "must have at most %d items, got %d", MaxReasons, len(list))
		return
	}
	for i, item := range list {
		iv := validator{kind: v.kind, obj: map[string]json.RawMessage{"": item}}
		iv.str("", true, 1024)
		if iv.err != nil {
			v.fail(fmt.Sprintf("%s[%d]", field, i), "%s", iv.err.(*FieldError).Reason)
			return
		}
	}
}

// context checks the free-form context object: its canonical size, and that
// no number in it is an integer beyond ±2^53, which RFC 8785 cannot keep
// exact.
func (v *validator) context(field string) {
	r := v.raw(field, false)
	if r == nil {
		return
	}
	if r[0] != '{' {
		v.fail(field, "must be an object")
		return
	}
	canon, err := jcs.Transform(r)
	if err != nil { // unreachable: the whole body was canonicalized
		v.fail(field, "must be an object")
		return
	}
	if len(canon) > MaxContextBytes {
		v.fail(field, "is %d bytes once canonicalized, the limit is %d", len(canon), MaxContextBytes)
		return
	}
	// Numbers as written: 9007199254740993 is beyond 2^53 even though its
	// nearest double, the canonical form, is not.
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if n, ok := tok.(json.Number); ok && unsafeInteger(string(n)) {
			v.fail(field, "holds %s, an integer beyond ±2^53 that RFC 8785 cannot represent exactly", clip(string(n)))
			return
		}
	}
}

// unsafeInteger reports whether a JSON number, however written, is an integer
// whose magnitude exceeds 2^53, or is too large for a double at all, or
// whose RFC 8785 form (its nearest double) is such an integer: every double
// beyond ±2^53 is an integer, so 9007199254740993.5, logged as
// 9007199254740994, would make a decision as accepted that this rule
// refuses.
func unsafeInteger(n string) bool {
	f, err := strconv.ParseFloat(n, 64)
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return true
	}
	if math.Abs(f) < 1<<52 {
		return false
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return true
	}
	if !r.IsInt() {
		return false
	}
	return r.Num().CmpAbs(big.NewInt(1<<53)) > 0
}

// sequence checks the sequence number: an integer literal 1…2^53-1.
func (v *validator) sequence(field string) uint64 {
	r := v.raw(field, false)
	if r == nil {
		return 0
	}
	s := string(r)
	for i, c := range s {
		if c < '0' || c > '9' || (i == 0 && c == '0') {
			v.fail(field, "must be an integer from 1 to %d", uint64(MaxSequence))
			return 0
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxSequence {
		v.fail(field, "must be an integer from 1 to %d", uint64(MaxSequence))
		return 0
	}
	return n
}
