// Package fastentry parses govlog entries exactly as log.ParseEntry does,
// fast: the verifiers check every entry of a receipt and, in an audit,
// every entry of a log.
package fastentry

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"

	"github.com/govlog/govlog/log"
)

// Parse parses and validates a leaf exactly as log.ParseEntry does,
// fast. log.ParseEntry canonicalizes the leaf with a general RFC 8785
// implementation and decodes it several times, which costs tens of
// microseconds; replaying a log of millions of entries needs a few.
//
// fastEntry reads a leaf in one pass and accepts only leaves it can prove
// valid on its own: RFC 8785 canonical JSON (checked directly: no white
// space, members in strictly increasing order, strings without escapes,
// numbers in their ECMAScript form) of the entry shape, whose decision or
// execution report obeys every rule of the schema. Anything else, valid or
// not (an escaped string, a non-ASCII member name, a number near 2^53,
// deep nesting, any rule broken), is left to log.ParseEntry, which then
// decides and explains. So an accepted leaf is one log.ParseEntry accepts,
// with the same result; the differential tests and the fuzz target check
// that.
func Parse(leaf []byte) (*log.ParsedEntry, error) {
	if p, ok := fastEntry(leaf); ok {
		return p, nil
	}
	return log.ParseEntry(leaf)
}

// maxFastDepth bounds the nesting the fast path follows in a context.
const maxFastDepth = 32

// scan reads canonical JSON. Every method returns false as soon as the
// input is not what the fast path accepts.
type scan struct {
	b []byte
	i int
}

func (s *scan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string without escapes or control characters, in valid
// UTF-8, and returns its raw bytes and its length in code points.
func (s *scan) str() ([]byte, int, bool) {
	if !s.eat('"') {
		return nil, 0, false
	}
	end := bytes.IndexByte(s.b[s.i:], '"')
	if end < 0 {
		return nil, 0, false
	}
	raw := s.b[s.i : s.i+end]
	s.i += end + 1
	ascii := true
	// Eight bytes at a time while they are plain printable ASCII.
	rest := raw
	for len(rest) >= 8 && plainASCII(binary.LittleEndian.Uint64(rest)) {
		rest = rest[8:]
	}
	for _, c := range rest {
		if c < 0x20 || c == '\\' {
			return nil, 0, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if ascii {
		return raw, len(raw), true
	}
	if !utf8.Valid(raw) {
		return nil, 0, false
	}
	return raw, utf8.RuneCount(raw), true
}

// plainASCII reports whether the eight bytes of w are all in 0x20..0x7F
// and none is a backslash.
func plainASCII(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	below20 := (w - 0x20*ones) & ^w & highs // a byte < 0x20 (when none ≥ 0x80)
	bs := w ^ 0x5c*ones                     // a zero byte where w has '\\'
	backslash := (bs - ones) & ^bs & highs
	return (w&highs)|below20|backslash == 0
}

// name reads a member name of ASCII characters (so that byte order is
// RFC 8785's UTF-16 order) followed by ':'; it must sort after prev.
func (s *scan) name(prev []byte) ([]byte, bool) {
	n, _, ok := s.str()
	if !ok || !s.eat(':') || bytes.Compare(prev, n) >= 0 {
		return nil, false
	}
	for _, c := range n {
		if c >= 0x80 {
			return nil, false
		}
	}
	return n, true
}

// number reads a number in its RFC 8785 form whose magnitude is below
// 2^52 (so no integer in it can be beyond ±2^53, whatever its form).
func (s *scan) number() bool {
	start := s.i
	s.eat('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		for c := s.peek(); c >= '0' && c <= '9'; c = s.peek() {
			s.i++
		}
	default:
		return false
	}
	if s.eat('.') {
		if c := s.peek(); c < '0' || c > '9' {
			return false
		}
		for c := s.peek(); c >= '0' && c <= '9'; c = s.peek() {
			s.i++
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if c := s.peek(); c < '0' || c > '9' {
			return false
		}
		for c := s.peek(); c >= '0' && c <= '9'; c = s.peek() {
			s.i++
		}
	}
	tok := string(s.b[start:s.i])
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil || f >= 1<<52 || f <= -(1<<52) {
		return false
	}
	canonical, err := jcs.NumberToJSON(f)
	return err == nil && canonical == tok
}

// value reads any canonical JSON value (of a context).
func (s *scan) value(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		s.i++
		if s.eat('}') {
			return true
		}
		var prev []byte
		for {
			n, ok := s.name(prev)
			if !ok || !s.value(depth+1) {
				return false
			}
			prev = n
			if s.eat('}') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		if s.eat(']') {
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *scan) literal(l string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(l)) {
		s.i += len(l)
		return true
	}
	return false
}

// object reads the members of an object, calling member for each with its
// name; member reads the value.
func (s *scan) object(member func(name []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	var prev []byte
	for {
		n, ok := s.name(prev)
		if !ok || !member(n) {
			return false
		}
		prev = n
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// text reads a string of 1 to maxChars code points, as the schema's
// string fields are.
func (s *scan) text(maxChars int) ([]byte, bool) {
	raw, n, ok := s.str()
	return raw, ok && n >= 1 && n <= maxChars
}

// textString is text as a string.
func (s *scan) textString(maxChars int) (string, bool) {
	raw, ok := s.text(maxChars)
	if !ok {
		return "", false
	}
	return string(raw), true
}

// id reads an id: 1 to 128 characters of ^[A-Za-z0-9][A-Za-z0-9._:-]*$,
// not "batch".
func (s *scan) id() (string, bool) {
	raw, n, ok := s.str()
	if !ok || n < 1 || n > 128 || string(raw) == "batch" {
		return "", false
	}
	for i, c := range raw {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return "", false
		}
	}
	return string(raw), true
}

// digest reads "sha256:" and 64 lowercase hex digits.
func (s *scan) digest() ([]byte, bool) {
	raw, _, ok := s.str()
	if !ok || len(raw) != 71 || !bytes.HasPrefix(raw, []byte("sha256:")) {
		return nil, false
	}
	for _, c := range raw[7:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	return raw, true
}

// timestamp reads an RFC 3339 timestamp as the schema parses it; the
// caller checks the future limit once logged_at is known.
func (s *scan) timestamp() (time.Time, bool) {
	raw, n, ok := s.str()
	if !ok || n < 1 || n > 64 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(raw))
	return t, err == nil
}

// exact reads a UTC timestamp written exactly in the entry's layout of
// logged_at (with nanoseconds, "2006-01-02T15:04:05.000000000Z") or of
// authorized_until (without, "2006-01-02T15:04:05Z"), and accepts what
// time.Parse with that layout accepts and Format writes back the same.
func (s *scan) exact(nanos bool) (time.Time, bool) {
	raw, _, ok := s.str()
	n := len("2006-01-02T15:04:05Z")
	if nanos {
		n = len("2006-01-02T15:04:05.000000000Z")
	}
	if !ok || len(raw) != n || raw[4] != '-' || raw[7] != '-' || raw[10] != 'T' || raw[13] != ':' || raw[16] != ':' ||
		raw[n-1] != 'Z' || (nanos && raw[19] != '.') {
		return time.Time{}, false
	}
	num := func(b []byte) int {
		v := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(raw[0:4]), num(raw[5:7]), num(raw[8:10])
	hour, minute, sec := num(raw[11:13]), num(raw[14:16]), num(raw[17:19])
	nsec := 0
	if nanos {
		nsec = num(raw[20:29])
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
		sec < 0 || sec > 59 || nsec < 0 {
		return time.Time{}, false
	}
	// The last day of the month: day 0 of the next one.
	if last := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day(); day > last {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

// context reads a context object: canonical JSON, at most
// log.MaxContextBytes.
func (s *scan) context() bool {
	start := s.i
	return s.peek() == '{' && s.value(1) && s.i-start <= log.MaxContextBytes
}

// sequence reads a sequence number: 1 to 2^53-1, digits only.
func (s *scan) sequence() (uint64, bool) {
	start := s.i
	for c := s.peek(); c >= '0' && c <= '9'; c = s.peek() {
		s.i++
	}
	tok := s.b[start:s.i]
	if len(tok) == 0 || tok[0] == '0' || len(tok) > 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(tok), 10, 64)
	if err != nil || n > log.MaxSequence {
		return 0, false
	}
	return n, true
}

// fastDecision reads a decision object (its canonical bytes are the
// caller's to slice).
func (s *scan) decision() (*log.Decision, bool) {
	d := &log.Decision{}
	var hasID, hasOutcome, hasDecidedAt, hasSubject, hasAction, hasPolicy bool
	ok := s.object(func(name []byte) bool {
		var ok bool
		switch string(name) {
		case "action":
			d.Action, ok = s.textString(256)
			hasAction = true
		case "context":
			ok = s.context()
		case "decided_at":
			d.DecidedAt, ok = s.timestamp()
			hasDecidedAt = true
		case "id":
			d.ID, ok = s.id()
			hasID = true
		case "input_digest":
			var raw []byte
			raw, ok = s.digest()
			d.InputDigest = string(raw)
		case "outcome":
			var raw []byte
			raw, ok = s.text(64)
			switch string(raw) {
			case log.OutcomeAllow:
				d.Outcome = log.OutcomeAllow
			case log.OutcomeDeny:
				d.Outcome = log.OutcomeDeny
			default:
				ok = false
			}
			hasOutcome = true
		case "parent_id":
			d.ParentID, ok = s.id()
		case "policy":
			d.PolicyID, ok = s.policy()
			hasPolicy = true
		case "reasons":
			ok = s.reasons()
		case "resource":
			d.Resource, ok = s.textString(1024)
		case "sequence":
			d.Sequence, ok = s.sequence()
		case "subject":
			d.Subject, ok = s.textString(256)
			hasSubject = true
		}
		return ok
	})
	return d, ok && hasID && hasOutcome && hasDecidedAt && hasSubject && hasAction && hasPolicy
}

func (s *scan) policy() (string, bool) {
	var id string
	ok := s.object(func(name []byte) bool {
		var ok bool
		switch string(name) {
		case "digest":
			_, ok = s.digest()
		case "id":
			id, ok = s.textString(256)
		case "version":
			_, ok = s.text(256)
		}
		return ok
	})
	return id, ok && id != ""
}

func (s *scan) reasons() bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for n := 1; n <= log.MaxReasons; n++ {
		if _, ok := s.text(1024); !ok {
			return false
		}
		if s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
	return false
}

func (s *scan) execution() (*log.Execution, bool) {
	x := &log.Execution{}
	var hasID, hasDecision, hasStatus, hasAt bool
	ok := s.object(func(name []byte) bool {
		var ok bool
		switch string(name) {
		case "at":
			x.At, ok = s.timestamp()
			hasAt = true
		case "context":
			ok = s.context()
		case "decision_id":
			x.DecisionID, ok = s.id()
			hasDecision = true
		case "id":
			x.ID, ok = s.id()
			hasID = true
		case "result_digest":
			_, ok = s.digest()
		case "runtime":
			_, ok = s.text(256)
		case "status":
			var raw []byte
			raw, ok = s.text(64)
			x.Status, ok = status(raw, ok)
			hasStatus = true
		}
		return ok
	})
	return x, ok && hasID && hasDecision && hasStatus && hasAt
}

// status returns the execution status raw names, if it is one.
func status(raw []byte, ok bool) (string, bool) {
	for _, v := range log.ExecutionStatuses {
		if ok && string(raw) == v {
			return v, true
		}
	}
	return "", false
}

// fastEntry is the fast path of Parse: ok is false when it cannot
// prove the leaf valid by itself.
func fastEntry(leaf []byte) (*log.ParsedEntry, bool) {
	if len(leaf) > log.MaxEntryBytes {
		return nil, false
	}
	s := &scan{b: leaf}
	p := &log.ParsedEntry{}
	var (
		until                     time.Time
		hasUntil, hasLogged, hasV bool
		start                     int
	)
	ok := s.object(func(name []byte) bool {
		var ok bool
		switch string(name) {
		case "authorized_until":
			until, ok = s.exact(false)
			hasUntil = true
		case "decision":
			start = s.i
			p.Kind = log.KindDecision
			p.Decision, ok = s.decision()
			p.Content = leaf[start:s.i:s.i]
		case "execution":
			start = s.i
			p.Kind = log.KindExecution
			p.Execution, ok = s.execution()
			p.Content = leaf[start:s.i:s.i]
		case "logged_at":
			p.LoggedAt, ok = s.exact(true)
			hasLogged = true
		case "submitter":
			var raw []byte
			raw, _, ok = s.str()
			p.Submitter = string(raw)
			ok = ok && len(raw) > 0
		case "v":
			// Anything after the 1 ("10", "1.0") is not ',' or '}'.
			ok = s.literal("1")
			hasV = true
		}
		return ok
	})
	// The whole leaf is the one object, with exactly one of decision and
	// execution (the switch below).
	if !ok || s.i != len(leaf) || !hasLogged || !hasV || p.Submitter == "" {
		return nil, false
	}
	limit := p.LoggedAt.Add(log.MaxFutureSkew)
	switch {
	case p.Decision != nil && p.Execution == nil:
		d := p.Decision
		if d.DecidedAt.After(limit) || (d.Outcome == log.OutcomeAllow) != hasUntil {
			return nil, false
		}
		d.Canonical = p.Content
		p.ID = d.ID
		if hasUntil {
			p.AuthorizedUntil = until
		}
	case p.Execution != nil && p.Decision == nil:
		x := p.Execution
		if hasUntil || x.At.After(limit) {
			return nil, false
		}
		x.Canonical = p.Content
		p.ID = x.ID
	default:
		return nil, false
	}
	return p, true
}
