package log

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits of the wire contract.
const (
	// MaxSubmissionBytes is the largest accepted decision or execution body.
	MaxSubmissionBytes = 64 << 10
	// MaxContextBytes is the largest context object, once canonicalized.
	MaxContextBytes = 16 << 10
	// MaxContextDepth is how deep a context may nest objects and arrays,
	// context itself being depth 1: {"a":{"b":[1]}} is 3 deep. Auditors
	// parse entries with recursive JSON parsers (Python's json module
	// gives up near 1,000 levels); a log must not hold what they cannot
	// read.
	MaxContextDepth = 64
	// MaxEntryBytes is the largest entry (the tlog-tiles entry bundle limit).
	MaxEntryBytes = 65535
	// MaxFutureSkew is how far in the future decided_at and at may be.
	MaxFutureSkew = 5 * time.Minute
	// MaxSequence is the largest sequence number (2^53 - 1).
	MaxSequence = 1<<53 - 1
	// MaxReasons is the most reasons a decision may carry.
	MaxReasons = 32
	// MaxExecutions is the largest max_executions of an allow.
	MaxExecutions = 1000
	// MaxArtifactBytes bounds the artifact of an execution report.
	MaxArtifactBytes = 8192
)

// Outcomes of a decision.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
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
	// MaxExecutions is how many claims the allow permits; 0 when absent,
	// which means 1 (nothing is added to the decision as accepted).
	MaxExecutions int
	// Executor is the identity that may execute the allow; "" when absent.
	Executor string
}

// Execution is a validated execution report, as a runtime submitted it.
type Execution struct {
	ID         string
	DecisionID string
	Status     string
	At         time.Time
	// ClaimID is the id of the started report a terminal report ends; ""
	// when absent.
	ClaimID string
	// Artifact is the authorization artifact (a compact JWS) the report
	// carries, "" when none. It is not part of Canonical: the entry holds
	// ArtifactDigest instead, "sha256:" and the hex SHA-256 of the token's
	// ASCII bytes.
	Artifact       string
	ArtifactDigest string
	// Canonical is the report as accepted, without its artifact: RFC 8785
	// canonical JSON.
	Canonical []byte
}

// Revocation is a validated revocation (wire contract §2c): a control plane
// withdraws an allow.
type Revocation struct {
	ID         string
	DecisionID string
	RevokedAt  time.Time
	Reason     string // "" when absent
	Canonical  []byte // RFC 8785 canonical JSON
}

// ExecutionStatuses lists the allowed execution report statuses.
var ExecutionStatuses = []string{"started", "succeeded", "failed", "aborted"}

var outcomes = []string{OutcomeAllow, OutcomeDeny}

// FieldErrors lists every field of a submission that breaks the schema, one
// error a field, in the order of the schema (unknown fields first, as they
// come). Its message is the first error's; errors.As finds the first
// *FieldError, and errors.Is the sentinel they all wrap.
type FieldErrors []*FieldError

func (e FieldErrors) Error() string { return e[0].Error() }

func (e FieldErrors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, fe := range e {
		errs[i] = fe
	}
	return errs
}

// rules tells which version of the schema a body is judged by.
type rules uint8

const (
	// submitted: a submission, by every rule of the wire contract.
	submitted rules = iota
	// logged: the content of a logged entry, by the rules it was accepted
	// under. The rules added for submissions in v1.1 (timestamps by the
	// RFC 3339 grammar, no control characters in short fields, the context
	// depth limit) do not apply: entries logged before them stay valid.
	logged
)

// ParseDecision validates a decision body against the schema of the wire
// contract and returns it with its canonical form. now is the reference for
// the future limit of decided_at. Errors wrap ErrInvalidJSON or
// ErrTooLarge, or are FieldErrors wrapping ErrInvalidDecision.
func ParseDecision(body []byte, now time.Time) (*Decision, error) {
	return parseDecision(body, now, submitted)
}

// ParseLoggedDecision validates the decision of a logged entry, logged at
// loggedAt: by the schema it was accepted under, so that every entry a log
// ever wrote parses (see ParseEntry).
func ParseLoggedDecision(content []byte, loggedAt time.Time) (*Decision, error) {
	return parseDecision(content, loggedAt, logged)
}

var decisionMembers = []string{"id", "outcome", "decided_at", "subject", "action", "resource", "policy",
	"input_digest", "reasons", "parent_id", "max_executions", "executor", "context", "sequence"}

func parseDecision(body []byte, now time.Time, r rules) (*Decision, error) {
	v, canon, err := read(body, decisionMembers, "", ErrInvalidDecision, r)
	if err != nil {
		return nil, err
	}
	defer v.release()
	d := &Decision{}
	d.ID = v.id("id", true)
	d.Outcome = v.enum("outcome", outcomes)
	d.DecidedAt = v.timestamp("decided_at", now)
	d.Subject = v.short("subject", true, 256)
	d.Action = v.short("action", true, 256)
	d.Resource = v.short("resource", false, 1024)
	if pol := v.object("policy", true); pol != nil {
		pv := validator{kind: ErrInvalidDecision, obj: pol, prefix: "policy.", rules: r, errs: v.errs}
		pv.allowOnly(policyMembers)
		d.PolicyID = pv.short("id", true, 256)
		pv.short("version", false, 256)
		pv.digest("digest")
	}
	d.InputDigest = v.digest("input_digest")
	v.reasons("reasons")
	d.ParentID = v.id("parent_id", false)
	d.MaxExecutions = int(v.integer("max_executions", MaxExecutions))
	d.Executor = v.short("executor", false, 256)
	if d.Outcome == OutcomeDeny {
		for _, f := range []string{"max_executions", "executor"} {
			if v.get(f) != nil {
				v.fail(f, "is only for allow decisions")
			}
		}
	}
	v.context("context")
	d.Sequence = v.integer("sequence", MaxSequence)
	if err := v.failed(); err != nil {
		return nil, err
	}
	d.Canonical = canon
	return d, nil
}

var policyMembers = []string{"id", "version", "digest"}

// ParseExecution validates an execution report body (wire contract §2b).
// Its artifact, if any, is returned apart from the canonical form.
func ParseExecution(body []byte, now time.Time) (*Execution, error) {
	return parseExecution(body, now, submitted)
}

// ParseLoggedExecution validates the execution report of a logged entry, as
// ParseLoggedDecision does decisions.
func ParseLoggedExecution(content []byte, loggedAt time.Time) (*Execution, error) {
	return parseExecution(content, loggedAt, logged)
}

var executionMembers = []string{"id", "decision_id", "status", "at", "runtime", "result_digest", "context",
	"artifact", "claim_id"}

func parseExecution(body []byte, now time.Time, r rules) (*Execution, error) {
	v, canon, err := read(body, executionMembers, "artifact", ErrInvalidExecution, r)
	if err != nil {
		return nil, err
	}
	defer v.release()
	e := &Execution{}
	e.ID = v.id("id", true)
	e.DecisionID = v.id("decision_id", true)
	e.Status = v.enum("status", ExecutionStatuses)
	e.At = v.timestamp("at", now)
	v.short("runtime", false, 256)
	v.digest("result_digest")
	v.context("context")
	e.Artifact = v.compactJWS("artifact")
	e.ClaimID = v.id("claim_id", false)
	if e.ClaimID != "" && e.Status == "started" {
		v.fail("claim_id", "is only for a terminal report (succeeded, failed or aborted)")
	}
	if err := v.failed(); err != nil {
		return nil, err
	}
	if e.Artifact != "" {
		sum := sha256.Sum256([]byte(e.Artifact))
		e.ArtifactDigest = "sha256:" + hex.EncodeToString(sum[:])
	}
	e.Canonical = canon
	return e, nil
}

var revocationMembers = []string{"id", "decision_id", "revoked_at", "reason"}

// ParseRevocation validates a revocation body (wire contract §2c). Errors
// wrap ErrInvalidJSON or ErrTooLarge, or are FieldErrors wrapping
// ErrInvalidRevocation.
func ParseRevocation(body []byte, now time.Time) (*Revocation, error) {
	return parseRevocation(body, now, submitted)
}

// ParseLoggedRevocation validates the revocation of a logged entry, as
// ParseLoggedDecision does decisions.
func ParseLoggedRevocation(content []byte, loggedAt time.Time) (*Revocation, error) {
	return parseRevocation(content, loggedAt, logged)
}

func parseRevocation(body []byte, now time.Time, r rules) (*Revocation, error) {
	v, canon, err := read(body, revocationMembers, "", ErrInvalidRevocation, r)
	if err != nil {
		return nil, err
	}
	defer v.release()
	rv := &Revocation{}
	rv.ID = v.id("id", true)
	rv.DecisionID = v.id("decision_id", true)
	rv.RevokedAt = v.timestamp("revoked_at", now)
	rv.Reason = v.str("reason", false, 1024)
	if err := v.failed(); err != nil {
		return nil, err
	}
	rv.Canonical = canon
	return rv, nil
}

// readObject reads a body that must be one strict JSON object (no duplicate
// names, valid UTF-8, no lone surrogates: RFC 8785 refuses all three) in
// one pass, and returns its members and its canonical form. Of the known
// members, policy's members and reasons' items are captured, and context
// is measured; the member named omit is left out of the canonical form.
func readObject(body []byte, known []string, omit string, members []jsonMember) ([]jsonMember, []byte, error) {
	if len(body) > MaxSubmissionBytes {
		return nil, nil, fmt.Errorf("%w: body is %d bytes, the limit is %d", ErrTooLarge, len(body), MaxSubmissionBytes)
	}
	c := newCanonicalizer(body, make([]byte, 0, len(body)))
	defer c.release()
	ok := c.document(func(name []byte) bool {
		members = append(members, jsonMember{name: intern(name, known)})
		m := &members[len(members)-1]
		switch m.name {
		case "policy":
			return c.fields(&m.value, policyMembers...)
		case "reasons":
			return c.items(&m.value)
		case "context":
			return c.free(&m.value)
		}
		ok := c.scalar(&m.value)
		c.omit = omit != "" && m.name == omit
		return ok
	})
	if !ok {
		return nil, nil, c.err
	}
	return members, c.out, nil
}

// read reads body (readObject) and returns a validator of its members,
// which has checked that they are all known, and the canonical form. Give
// the validator back with release once done with it: what the Parse
// functions return holds no part of it.
func read(body []byte, known []string, omit string, kind error, r rules) (*validator, []byte, error) {
	rd := readers.Get().(*reader)
	obj, canon, err := readObject(body, known, omit, rd.members[:0])
	if err != nil {
		clear(rd.members[:cap(rd.members)]) // what the read captured
		readers.Put(rd)
		return nil, nil, err
	}
	rd.members = obj
	v := &rd.v
	*v = validator{kind: kind, obj: obj, rules: r, errs: &rd.errs, rd: rd}
	v.allowOnly(known)
	return v, canon, nil
}

// reader is the validator of one read with the space it uses, kept
// between reads (readers): the members of a decision are about 1.3 KiB.
type reader struct {
	v       validator
	errs    FieldErrors
	members []jsonMember
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// release gives the space of a validator that read returned back.
func (v *validator) release() {
	rd := v.rd
	clear(rd.members) // holds strings of the body
	rd.members = rd.members[:0]
	// The errors' array belongs to the error returned, if any.
	rd.errs = nil
	rd.v = validator{}
	readers.Put(rd)
}

// failed returns the errors found, nil if none.
func (v *validator) failed() error {
	if len(*v.errs) == 0 {
		return nil
	}
	return *v.errs
}

// validator checks the members of one JSON object and collects the errors.
type validator struct {
	kind   error // ErrInvalidDecision, ErrInvalidExecution or ErrInvalidRevocation
	obj    []jsonMember
	prefix string
	rules  rules
	errs   *FieldErrors
	rd     *reader // what read took from readers
}

// fail records the first error of a field.
func (v *validator) fail(field, format string, args ...any) {
	// An unknown member's name is the submitter's text: bound it, so
	// that an error message never echoes a whole body.
	if len(field) > maxFieldName {
		field = strings.ToValidUTF8(field[:maxFieldName], "") + "…"
	}
	field = v.prefix + field
	for _, e := range *v.errs {
		if e.Field == field {
			return
		}
	}
	*v.errs = append(*v.errs, &FieldError{Err: v.kind, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// maxFieldName bounds the field name quoted in an error.
const maxFieldName = 64

func (v *validator) allowOnly(fields []string) {
	for _, m := range v.obj {
		known := false
		for _, f := range fields {
			if m.name == f {
				known = true
				break
			}
		}
		if !known {
			v.fail(m.name, "unknown field")
		}
	}
}

// get returns a member, or nil when absent. A JSON null counts as present
// (and is then refused by the type check).
func (v *validator) get(field string) *jsonValue {
	for i := range v.obj {
		if v.obj[i].name == field {
			return &v.obj[i].value
		}
	}
	return nil
}

func (v *validator) raw(field string, required bool) *jsonValue {
	m := v.get(field)
	if m == nil && required {
		v.fail(field, "is required")
	}
	return m
}

func (v *validator) str(field string, required bool, maxChars int) string {
	m := v.raw(field, required)
	if m == nil {
		return ""
	}
	if m.kind != '"' {
		v.fail(field, "must be a string")
		return ""
	}
	if n := utf8.RuneCountInString(m.str); n < 1 || n > maxChars {
		v.fail(field, "must be 1 to %d characters, got %d", maxChars, n)
	}
	return m.str
}

// short checks a short string that names something (a subject, an
// action…): submissions may not put control characters in it, which would
// let logged content pass for a tool's own output on a terminal.
func (v *validator) short(field string, required bool, maxChars int) string {
	s := v.str(field, required, maxChars)
	if v.rules == submitted && hasControl(s) {
		v.fail(field, "must not contain control characters (U+0000–U+001F, U+007F–U+009F)")
	}
	return s
}

// hasControl reports whether s holds a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b < 0x20 || b == 0x7f:
			return true
		case b == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f: // U+0080–U+009F
			return true
		}
	}
	return false
}

func (v *validator) id(field string, required bool) string {
	s := v.str(field, required, 128)
	if s == "" {
		return ""
	}
	if !validID(s) {
		v.fail(field, "must match ^[A-Za-z0-9][A-Za-z0-9._:-]*$")
	} else if s == "batch" {
		v.fail(field, `"batch" is reserved`)
	}
	return s
}

// validID reports whether s matches ^[A-Za-z0-9][A-Za-z0-9._:-]*$.
func validID(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case i > 0 && (b == '.' || b == '_' || b == ':' || b == '-'):
		default:
			return false
		}
	}
	return s != ""
}

func (v *validator) enum(field string, allowed []string) string {
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
	if s != "" && !validDigest(s) {
		v.fail(field, `must be "sha256:" and 64 lowercase hex digits`)
	}
	return s
}

// base64URL reports whether s is non-empty and all in the base64url
// alphabet, without padding.
func base64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return s != ""
}

// validDigest reports whether s matches ^sha256:[0-9a-f]{64}$.
func validDigest(s string) bool {
	if len(s) != 71 || s[:7] != "sha256:" {
		return false
	}
	for i := 7; i < len(s); i++ {
		if b := s[i]; (b < '0' || b > '9') && (b < 'a' || b > 'f') {
			return false
		}
	}
	return true
}

// compactJWS checks a JWS in compact serialization (RFC 7515 §7.1): three
// non-empty base64url parts separated by dots. Whether it verifies is the
// log's judgement of the report, not a schema rule.
func (v *validator) compactJWS(field string) string {
	s := v.str(field, false, MaxArtifactBytes)
	if s == "" {
		return ""
	}
	header, rest, _ := strings.Cut(s, ".")
	payload, signature, _ := strings.Cut(rest, ".")
	if !base64URL(header) || !base64URL(payload) || !base64URL(signature) {
		v.fail(field, "must be a JWS in compact serialization: three base64url parts separated by dots")
		return ""
	}
	return s
}

func (v *validator) timestamp(field string, now time.Time) time.Time {
	s := v.str(field, true, 64)
	if s == "" {
		return time.Time{}
	}
	var t time.Time
	ok := false
	if v.rules == submitted {
		t, ok = parseTimestamp(s)
	} else {
		var err error
		t, err = time.Parse(time.RFC3339Nano, s)
		ok = err == nil
	}
	if !ok {
		v.fail(field, "must be an RFC 3339 timestamp")
		return time.Time{}
	}
	if t.After(now.Add(MaxFutureSkew)) {
		v.fail(field, "is more than %v in the future", MaxFutureSkew)
	}
	return t
}

// parseTimestamp parses an RFC 3339 date-time (RFC 3339 §5.6) by its
// grammar:
//
//	YYYY-MM-DDTHH:MM:SS[.F]Z  or  …[.F]+HH:MM  or  …[.F]-HH:MM
//
// with a real date (year 0001 to 9999), an hour below 24, minutes and
// seconds below 60, an offset below 24:00, and 1 to 9 fraction digits. It
// is stricter than RFC 3339 where independent parsers disagree, so that
// every timestamp a log holds reads the same everywhere (Python's
// datetime.fromisoformat, JavaScript's Date, Go's time.Parse): "T" and "Z"
// upper case only (the RFC allows lower case; Python refuses "z"); no leap
// second 60 (Python, JavaScript and Go refuse it); no year 0000 (Python
// refuses it); at most nanoseconds.
func parseTimestamp(s string) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, b := range []byte(s[i : i+n]) {
			if b < '0' || b > '9' {
				return -1
			}
			v = v*10 + int(b-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
		year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if s[i] == '.' {
		i++
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			nsec = nsec*10 + int(s[i]-'0')
			i++
			n++
		}
		if n < 1 || n > 9 {
			return time.Time{}, false
		}
		for ; n < 9; n++ {
			nsec *= 10
		}
	}
	loc := time.UTC
	switch {
	case i == len(s)-1 && s[i] == 'Z':
	case i == len(s)-6 && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, om := num(i+1, 2), num(i+4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, false
		}
		if offset := (oh*60 + om) * 60; offset != 0 {
			if s[i] == '-' {
				offset = -offset
			}
			loc = time.FixedZone("", offset)
		}
	default:
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), true
}

// daysIn is the number of days of a month of the proleptic Gregorian
// calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// object returns an object member's members, or nil (absent, or not an
// object).
func (v *validator) object(field string, required bool) []jsonMember {
	m := v.raw(field, required)
	if m == nil {
		return nil
	}
	if m.kind != '{' {
		v.fail(field, "must be an object")
		return nil
	}
	if m.members == nil {
		return []jsonMember{}
	}
	return m.members
}

func (v *validator) reasons(field string) {
	m := v.raw(field, false)
	if m == nil {
		return
	}
	if m.kind != '[' {
		v.fail(field, "must be an array of strings")
		return
	}
	if len(m.members) > MaxReasons {
		v.fail(field, "must have at most %d items, got %d", MaxReasons, len(m.members))
		return
	}
	for i := range m.members {
		iv := validator{kind: v.kind, obj: m.members[i : i+1], errs: new(FieldErrors)}
		iv.str("", true, 1024)
		if len(*iv.errs) > 0 {
			v.fail(fmt.Sprintf("%s[%d]", field, i), "%s", (*iv.errs)[0].Reason)
			return
		}
	}
}

// context checks the free-form context object: its canonical size, that no
// number in it is an integer beyond ±2^53, which RFC 8785 cannot keep
// exact, and (submissions) its depth.
func (v *validator) context(field string) {
	m := v.raw(field, false)
	if m == nil {
		return
	}
	if m.kind != '{' {
		v.fail(field, "must be an object")
		return
	}
	switch f := m.free; {
	case f.canonical > MaxContextBytes:
		v.fail(field, "is %d bytes once canonicalized, the limit is %d", f.canonical, MaxContextBytes)
	case f.unsafe != nil:
		// Numbers as written: 9007199254740993 is beyond 2^53 even though
		// its nearest double, the canonical form, is not.
		v.fail(field, "holds %s, an integer beyond ±2^53 that RFC 8785 cannot represent exactly", clip(string(f.unsafe)))
	case v.rules == submitted && f.depth > MaxContextDepth:
		v.fail(field, "nests %d deep, the limit is %d", f.depth, MaxContextDepth)
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// unsafeInteger reports whether a JSON number n, whose nearest double is f,
// is an integer whose magnitude exceeds 2^53, or whose RFC 8785 form (its
// nearest double) is such an integer: every double beyond ±2^53 is an
// integer, so 9007199254740993.5, logged as 9007199254740994, would make a
// decision as accepted that this rule refuses.
func unsafeInteger(n string, f float64) bool {
	if math.Abs(f) > 1<<53 {
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

// integer checks an integer literal (no sign, fraction or exponent) from 1
// to maxValue; 0 when absent.
func (v *validator) integer(field string, maxValue uint64) uint64 {
	m := v.raw(field, false)
	if m == nil {
		return 0
	}
	ok := m.isNumber() && m.num[0] != '0'
	for _, b := range m.num {
		ok = ok && '0' <= b && b <= '9'
	}
	n, err := strconv.ParseUint(string(m.num), 10, 64)
	if !ok || err != nil || n > maxValue {
		v.fail(field, "must be an integer from 1 to %d", maxValue)
		return 0
	}
	return n
}
