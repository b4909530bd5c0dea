package log

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// This file reads a submission once: it checks that the body is strict JSON,
// writes its RFC 8785 (JCS) canonical form as it goes, and captures the
// members the schema looks at (decision.go validates them afterwards).
//
// Strict JSON is RFC 8259 without its latitude, as RFC 8785 requires: no
// duplicate member names (compared after unescaping), valid UTF-8, no lone
// surrogate escapes, no number beyond the range of a double, nesting at most
// maxJSONDepth deep. It accepts exactly what github.com/gowebpki/jcs
// accepts, and writes the same bytes (the tests and fuzz targets check both,
// and a second implementation).
//
// The canonical form, RFC 8785 §3.2: no white space; strings with only '"',
// '\\' and the control characters escaped (\b \f \n \r \t, else \u00xx);
// numbers in their ECMAScript form (jcs.NumberToJSON); object members sorted
// by their names as UTF-16 code units. Members are written in the order they
// come, each span remembered, and an object that was not in order is
// rearranged once it is complete, so most objects cost no copy and the worst
// case is one copy per nesting level.

// maxJSONDepth bounds nesting (objects and arrays) anywhere in a body, as
// gowebpki/jcs and encoding/json do. Context has a much lower limit of its
// own (MaxContextDepth).
const maxJSONDepth = 10000

// jsonValue is a value the schema looks at: its kind (the first byte of its
// JSON text: '"', '{', '[', 't', 'f', 'n', or '-' and digits for numbers),
// and what was captured of it.
type jsonValue struct {
	kind byte
	// str is a string's value, unescaped.
	str string
	// num is a number's token, as written.
	num []byte
	// members are an object's members, or an array's items (without
	// names): captured only where the schema looks inside (policy,
	// reasons).
	members []jsonMember
	// free describes a free-form object (context).
	free *freeForm
}

// freeForm describes a free-form object: the size of its canonical form,
// how deep it nests (itself at depth 1), and its first number that is an
// integer beyond ±2^53 (see unsafeInteger), nil if none.
type freeForm struct {
	canonical int
	depth     int
	unsafe    []byte
}

func (v *jsonValue) isNumber() bool { return v.kind == '-' || ('0' <= v.kind && v.kind <= '9') }

type jsonMember struct {
	name  string
	value jsonValue
}

// span is one member of an object being canonicalized: where its
// unescaped name lies in the canonicalizer's names, and its canonical text
// ("name":value) in the output (start -1: left out of the output). It
// holds no pointers: sorting spans moves no pointers the garbage collector
// must see.
type span struct {
	name       [2]int
	start, end int
}

// canonicalizer reads one JSON text (in) and appends its canonical form to
// out. Methods return false once the text is not strict JSON; err then says
// why.
type canonicalizer struct {
	in       []byte
	inString string // in, once text needed it
	i        int
	out      []byte
	err      error

	depth   int
	deepest int // deepest nesting since reset by a free-form capture
	// checkNumbers makes every number be checked by unsafeInteger; the
	// first that fails is kept in unsafe.
	checkNumbers bool
	unsafe       []byte
	// omit, set by a member function, leaves the member out of the output.
	omit bool
	// wasEscaped tells that the last string read had escapes (its value
	// is in strbuf).
	wasEscaped bool

	strbuf  []byte   // the unescaped text of the last string with escapes
	scratch []byte   // rearranging the members of an object
	names   []byte   // the unescaped member names read so far
	spans   [][]span // per depth, reused
	// spare is an output buffer kept between uses, for a caller that
	// only compares the output (ParseEntry).
	spare []byte
}

// canonicalizers keeps the scratch space of canonicalizers between uses.
var canonicalizers = sync.Pool{New: func() any { return new(canonicalizer) }}

// newCanonicalizer returns a canonicalizer of in, appending to out. Give
// it back with release.
func newCanonicalizer(in, out []byte) *canonicalizer {
	c := canonicalizers.Get().(*canonicalizer)
	c.in, c.out = in, out
	return c
}

// release gives c back, holding nothing of its text.
func (c *canonicalizer) release() {
	*c = canonicalizer{spans: c.spans, strbuf: c.strbuf[:0], scratch: c.scratch[:0], names: c.names[:0], spare: c.spare[:0]}
	canonicalizers.Put(c)
}

func (c *canonicalizer) fail(format string, args ...any) bool {
	if c.err == nil {
		c.err = fmt.Errorf("%w: %s at byte %d", ErrInvalidJSON, fmt.Sprintf(format, args...), c.i)
	}
	return false
}

func (c *canonicalizer) ws() {
	for c.i < len(c.in) {
		switch c.in[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end.
func (c *canonicalizer) peek() byte {
	c.ws()
	if c.i < len(c.in) {
		return c.in[c.i]
	}
	return 0
}

func (c *canonicalizer) unexpected() bool {
	if c.i >= len(c.in) {
		return c.fail("unexpected end of input")
	}
	b := c.in[c.i]
	if b < 0x20 || b >= 0x7f {
		return c.fail("unexpected byte 0x%02x", b)
	}
	return c.fail("unexpected %q", b)
}

// document reads a whole body that must be one object; member handles each
// of its members (nil: any member).
func (c *canonicalizer) document(member func(name []byte) bool) bool {
	if c.peek() != '{' {
		if c.i == len(c.in) {
			return c.unexpected()
		}
		return c.fail("the body must be a JSON object")
	}
	if !c.object(member) {
		return false
	}
	if c.ws(); c.i != len(c.in) {
		return c.fail("data after the object")
	}
	return true
}

// value reads any value and appends its canonical form.
func (c *canonicalizer) value() bool {
	switch b := c.peek(); {
	case b == '{':
		return c.object(nil)
	case b == '[':
		return c.array(nil)
	case b == '"':
		s, ok := c.str()
		if ok {
			c.out = appendJCSString(c.out, s)
		}
		return ok
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	case b == '-' || ('0' <= b && b <= '9'):
		_, ok := c.number()
		return ok
	}
	return c.unexpected()
}

func (c *canonicalizer) literal(lit string) bool {
	if len(c.in)-c.i < len(lit) || string(c.in[c.i:c.i+len(lit)]) != lit {
		return c.fail("invalid literal")
	}
	c.i += len(lit)
	c.out = append(c.out, lit...)
	return true
}

// number reads a number (RFC 8259 §6 grammar) and appends its canonical
// form; it returns the token as written.
func (c *canonicalizer) number() ([]byte, bool) {
	start := c.i
	in := c.in
	i := c.i
	if i < len(in) && in[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		c.i = i
		return nil, c.fail("invalid number")
	}
	integer := true
	if i < len(in) && in[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			c.i = i
			return nil, c.fail("invalid number")
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		integer = false
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			c.i = i
			return nil, c.fail("invalid number")
		}
	}
	tok := in[start:i]
	// An integer of at most 15 digits is exactly a double, and is its own
	// ECMAScript form (the grammar has no leading zeros); -0 is 0.
	digits15 := len(tok) <= 15 || (len(tok) == 16 && tok[0] == '-')
	if integer && digits15 {
		if string(tok) == "-0" {
			c.out = append(c.out, '0')
		} else {
			c.out = append(c.out, tok...)
		}
		c.i = i
		return tok, true
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil { // the grammar is right, so: beyond the range of a double
		return nil, c.fail("number %s is out of range", clip(string(tok)))
	}
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return nil, c.fail("number %s is out of range", clip(string(tok)))
	}
	c.out = append(c.out, s...)
	if c.checkNumbers && c.unsafe == nil && unsafeInteger(string(tok), f) {
		c.unsafe = tok
	}
	c.i = i
	return tok, true
}

// str reads a string at c.i (at its '"') and returns its unescaped value:
// a slice of the input when it has no escapes, else of c.strbuf (valid
// until the next string). It appends nothing.
func (c *canonicalizer) str() ([]byte, bool) {
	c.i++
	start := c.i
	ascii := true
	c.wasEscaped = false
	for c.i < len(c.in) {
		if c.i+8 <= len(c.in) && !special8(load64(c.in, c.i), true) {
			c.i += 8
			continue
		}
		b := c.in[c.i]
		switch {
		case b == '"':
			s := c.in[start:c.i]
			if !ascii && !utf8.Valid(s) {
				return nil, c.fail("invalid UTF-8 in a string")
			}
			c.i++
			return s, true
		case b == '\\':
			return c.escaped(start)
		case b < 0x20:
			return nil, c.fail("control character 0x%02x in a string", b)
		case b >= 0x80:
			ascii = false
		}
		c.i++
	}
	return nil, c.fail("unterminated string")
}

// escaped reads the rest of a string that has escapes, from start; c.i is
// at the first backslash.
func (c *canonicalizer) escaped(start int) ([]byte, bool) {
	c.wasEscaped = true
	buf := append(c.strbuf[:0], c.in[start:c.i]...)
	for c.i < len(c.in) {
		b := c.in[c.i]
		switch {
		case b == '"':
			c.i++
			c.strbuf = buf
			// Escapes write whole, valid sequences, so this is the check of
			// the raw bytes: a broken sequence stays broken next to them.
			if !utf8.Valid(buf) {
				return nil, c.fail("invalid UTF-8 in a string")
			}
			return buf, true
		case b < 0x20:
			return nil, c.fail("control character 0x%02x in a string", b)
		case b != '\\':
			buf = append(buf, b)
			c.i++
			continue
		}
		if c.i+1 >= len(c.in) {
			c.i++
			return nil, c.fail("unterminated string")
		}
		esc := c.in[c.i+1]
		c.i += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := c.hex4()
			if !ok {
				return nil, false
			}
			switch {
			case 0xDC00 <= r && r <= 0xDFFF:
				return nil, c.fail("lone low surrogate \\u%04x", r)
			case 0xD800 <= r && r <= 0xDBFF:
				if c.i+1 >= len(c.in) || c.in[c.i] != '\\' || c.in[c.i+1] != 'u' {
					return nil, c.fail("lone high surrogate \\u%04x", r)
				}
				c.i += 2
				lo, ok := c.hex4()
				if !ok {
					return nil, false
				}
				if lo < 0xDC00 || lo > 0xDFFF {
					return nil, c.fail("high surrogate \\u%04x followed by \\u%04x, not a low surrogate", r, lo)
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			c.i--
			return nil, c.fail("invalid escape")
		}
	}
	return nil, c.fail("unterminated string")
}

// hex4 reads the four hex digits of a \u escape.
func (c *canonicalizer) hex4() (rune, bool) {
	if len(c.in)-c.i < 4 {
		c.i = len(c.in)
		return 0, c.fail("truncated \\u escape")
	}
	var r rune
	for _, h := range c.in[c.i : c.i+4] {
		switch {
		case '0' <= h && h <= '9':
			r = r<<4 | rune(h-'0')
		case 'a' <= h && h <= 'f':
			r = r<<4 | rune(h-'a'+10)
		case 'A' <= h && h <= 'F':
			r = r<<4 | rune(h-'A'+10)
		default:
			return 0, c.fail("invalid \\u escape")
		}
	}
	c.i += 4
	return r, true
}

func (c *canonicalizer) enter() bool {
	c.i++
	c.depth++
	c.deepest = max(c.deepest, c.depth)
	if c.depth > maxJSONDepth {
		return c.fail("nested more than %d deep", maxJSONDepth)
	}
	return true
}

// object reads an object at c.i (at its '{') and appends its canonical
// form. member reads each member's value (and appends its canonical form);
// nil reads any value.
func (c *canonicalizer) object(member func(name []byte) bool) bool {
	if !c.enter() {
		return false
	}
	for len(c.spans) <= c.depth {
		c.spans = append(c.spans, nil)
	}
	spans := c.spans[c.depth][:0]
	c.out = append(c.out, '{')
	first := len(c.out)
	kept := 0
	if c.peek() == '}' {
		c.i++
	} else {
		for {
			if c.peek() != '"' {
				return c.unexpected()
			}
			name, ok := c.str()
			if !ok {
				return false
			}
			// A copy: the value may reuse strbuf.
			ns := len(c.names)
			c.names = append(c.names, name...)
			name = c.names[ns:]
			if c.peek() != ':' {
				return c.unexpected()
			}
			c.i++
			at := len(c.out)
			if kept > 0 {
				c.out = append(c.out, ',')
			}
			s := span{name: [2]int{ns, len(c.names)}, start: len(c.out)}
			c.out = appendJCSString(c.out, name)
			c.out = append(c.out, ':')
			c.omit = false
			if member != nil {
				ok = member(name)
			} else {
				ok = c.value()
			}
			if !ok {
				return false
			}
			if c.omit {
				c.omit = false
				c.out = c.out[:at]
				s.start = -1
			} else {
				s.end = len(c.out)
				kept++
			}
			spans = append(spans, s)
			switch c.peek() {
			case ',':
				c.i++
				continue
			case '}':
				c.i++
			default:
				return c.unexpected()
			}
			break
		}
	}
	c.spans[c.depth] = spans
	if !c.order(spans, first) {
		return false
	}
	c.out = append(c.out, '}')
	c.depth--
	return true
}

// order refuses duplicate names and puts the members of the object whose
// text starts at first in canonical order.
func (c *canonicalizer) order(spans []span, first int) bool {
	cmp := func(a, b span) int {
		return compareUTF16(c.names[a.name[0]:a.name[1]], c.names[b.name[0]:b.name[1]])
	}
	sorted := true
	for k := 1; k < len(spans); k++ {
		if cmp(spans[k-1], spans[k]) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return true
	}
	slices.SortStableFunc(spans, cmp)
	for k := 1; k < len(spans); k++ {
		if cmp(spans[k-1], spans[k]) == 0 {
			n := spans[k].name
			return c.fail("duplicate member name %q", clip(string(c.names[n[0]:n[1]])))
		}
	}
	c.scratch = append(c.scratch[:0], c.out[first:]...)
	c.out = c.out[:first]
	n := 0
	for _, s := range spans {
		if s.start < 0 {
			continue
		}
		if n > 0 {
			c.out = append(c.out, ',')
		}
		n++
		c.out = append(c.out, c.scratch[s.start-first:s.end-first]...)
	}
	return true
}

// array reads an array at c.i (at its '[') and appends its canonical form.
// item reads the k-th item (nil: any value).
func (c *canonicalizer) array(item func(k int) bool) bool {
	if !c.enter() {
		return false
	}
	c.out = append(c.out, '[')
	if c.peek() == ']' {
		c.i++
	} else {
		for k := 0; ; k++ {
			if k > 0 {
				c.out = append(c.out, ',')
			}
			var ok bool
			if item != nil {
				ok = item(k)
			} else {
				ok = c.value()
			}
			if !ok {
				return false
			}
			switch c.peek() {
			case ',':
				c.i++
				continue
			case ']':
				c.i++
			default:
				return c.unexpected()
			}
			break
		}
	}
	c.out = append(c.out, ']')
	c.depth--
	return true
}

// scalar reads a value into v: a string's value or a number's token is
// captured; anything else only has its kind recorded.
func (c *canonicalizer) scalar(v *jsonValue) bool {
	v.kind = c.peek()
	switch {
	case v.kind == '"':
		s, ok := c.str()
		if !ok {
			return false
		}
		v.str = c.text(s)
		c.out = appendJCSString(c.out, s)
		return true
	case v.isNumber():
		tok, ok := c.number()
		v.num = tok
		return ok
	}
	return c.value()
}

// fields reads a value into v, capturing an object's members with scalar
// (names in known are not copied).
func (c *canonicalizer) fields(v *jsonValue, known ...string) bool {
	if v.kind = c.peek(); v.kind != '{' {
		return c.scalar(v)
	}
	v.members = make([]jsonMember, 0, len(known))
	return c.object(func(name []byte) bool {
		v.members = append(v.members, jsonMember{name: intern(name, known)})
		return c.scalar(&v.members[len(v.members)-1].value)
	})
}

// items reads a value into v, capturing an array's items with scalar.
func (c *canonicalizer) items(v *jsonValue) bool {
	if v.kind = c.peek(); v.kind != '[' {
		return c.scalar(v)
	}
	return c.array(func(int) bool {
		v.members = append(v.members, jsonMember{})
		return c.scalar(&v.members[len(v.members)-1].value)
	})
}

// free reads a free-form value into v: of an object, its canonical size,
// its depth and its first unsafe integer.
func (c *canonicalizer) free(v *jsonValue) bool {
	if v.kind = c.peek(); v.kind != '{' {
		return c.scalar(v)
	}
	start, depth, deepest := len(c.out), c.depth, c.deepest
	c.deepest, c.checkNumbers, c.unsafe = depth, true, nil
	ok := c.object(nil)
	v.free = &freeForm{canonical: len(c.out) - start, depth: c.deepest - depth, unsafe: c.unsafe}
	c.deepest, c.checkNumbers = max(deepest, c.deepest), false
	return ok
}

// text returns a string str read as a string: a substring of one copy of
// the whole input when it had no escapes (one allocation for every
// captured string).
func (c *canonicalizer) text(s []byte) string {
	if c.wasEscaped {
		return string(s)
	}
	if c.inString == "" {
		c.inString = string(c.in)
	}
	at := cap(c.in) - cap(s) // s is c.in[at:at+len(s)]
	return c.inString[at : at+len(s)]
}

// intern returns name as a string, the one of known when it is there.
func intern(name []byte, known []string) string {
	for _, k := range known {
		if string(name) == k {
			return k
		}
	}
	return string(name)
}

// appendJCSString appends the RFC 8785 form of the string s (valid UTF-8).
func appendJCSString[T string | []byte](out []byte, s T) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if i+8 <= len(s) && !special8(load64(s, i), false) {
			i += 7
			continue
		}
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		out = appendEscaped(append(out, s[start:i]...), b)
		start = i + 1
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// appendEscaped appends the escape of an ASCII byte that a JSON string
// cannot hold as it is ('"', '\\', a control character), as RFC 8785 and
// encoding/json both write it: \" \\ \b \f \n \r \t, else \u00xx.
func appendEscaped(dst []byte, b byte) []byte {
	switch b {
	case '"', '\\':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
}

const hexDigits = "0123456789abcdef"

// load64 returns the 8 bytes of s from i, little-endian.
func load64[T string | []byte](s T, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

// special8 reports whether one of the 8 bytes of w is a '"', a '\\' or a
// control character (below 0x20), or, with nonASCII, above 0x7f: the bytes
// a JSON string cannot copy through as they are.
func special8(w uint64, nonASCII bool) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	// A byte below 0x20 borrows in w - 0x20 and has no high bit of its
	// own; a byte 0x20 or above never borrows, so a bit is set only where
	// there is such a byte (or above one).
	below := (w - 0x20*ones) & ^w & highs
	q := w ^ '"'*ones // a zero byte where w has '"'
	b := w ^ '\\'*ones
	zero := ((q-ones) & ^q | (b-ones) & ^b) & highs
	high := uint64(0)
	if nonASCII {
		high = w & highs
	}
	return below|zero|high != 0
}

// compareUTF16 compares two UTF-8 strings by their UTF-16 code units, the
// order of RFC 8785 §3.2.3.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	if a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf {
		return int(a[i]) - int(b[i])
	}
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	return int(utf16Rank(ra)) - int(utf16Rank(rb))
}

// utf16Rank orders code points as their UTF-16 encodings sort: below
// U+D800 as they are, then everything beyond U+FFFF (a surrogate pair,
// D800–DBFF first), then U+E000–U+FFFF.
func utf16Rank(r rune) rune {
	if 0xE000 <= r && r <= 0xFFFF {
		return r + 0x200000
	}
	return r
}
