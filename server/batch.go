package server

import (
	"encoding/json"
)

// splitBatch is parseBatch's fast path: it splits a batch of the usual
// shape, {"decisions":[…]} with the member name written plainly, into its
// items in one pass that checks the JSON grammar as encoding/json does
// (strings, escapes, numbers, literals, nesting) without decoding
// anything. ok is false for anything else, valid or not: parseBatch then
// judges the body with encoding/json, which also writes the errors. So
// splitBatch never accepts a body that encoding/json refuses, and returns
// the items encoding/json returns (FuzzParseBatch holds it to that).
func splitBatch(body []byte) (items []json.RawMessage, ok bool) {
	s := batchScanner{b: body}
	s.space()
	if !s.literal(`{`) {
		return nil, false
	}
	s.space()
	if !s.literal(`"decisions"`) {
		return nil, false
	}
	s.space()
	if !s.literal(`:`) {
		return nil, false
	}
	s.space()
	if !s.literal(`[`) {
		return nil, false
	}
	s.space()
	items = make([]json.RawMessage, 0, 64)
	if !s.literal(`]`) {
		for {
			if len(items) == MaxBatchItems {
				return nil, false
			}
			start := s.i
			if !s.value(0) {
				return nil, false
			}
			items = append(items, body[start:s.i:s.i])
			s.space()
			if s.literal(`]`) {
				break
			}
			if !s.literal(`,`) {
				return nil, false
			}
			s.space()
		}
	}
	s.space()
	if !s.literal(`}`) {
		return nil, false
	}
	s.space()
	return items, s.i == len(body)
}

// batchScanner reads JSON from b at i.
type batchScanner struct {
	b []byte
	i int
}

// maxBatchDepth bounds the nesting splitBatch follows; deeper bodies go
// to encoding/json (which allows 10,000 levels).
const maxBatchDepth = 512

// space skips JSON whitespace.
func (s *batchScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// literal consumes lit if the input continues with it.
func (s *batchScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// value consumes one JSON value at nesting depth.
func (s *batchScanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		if depth >= maxBatchDepth {
			return false
		}
		s.i++
		s.space()
		if s.literal(`}`) {
			return true
		}
		for {
			if !s.str() {
				return false
			}
			s.space()
			if !s.literal(`:`) {
				return false
			}
			s.space()
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.literal(`}`) {
				return true
			}
			if !s.literal(`,`) {
				return false
			}
			s.space()
		}
	case c == '[':
		if depth >= maxBatchDepth {
			return false
		}
		s.i++
		s.space()
		if s.literal(`]`) {
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			s.space()
			if s.literal(`]`) {
				return true
			}
			if !s.literal(`,`) {
				return false
			}
			s.space()
		}
	case c == '"':
		return s.str()
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

// str consumes a string: no control characters, only JSON's escapes.
// Like encoding/json, it lets invalid UTF-8 through (the decision parser
// refuses it).
func (s *batchScanner) str() bool {
	if !s.literal(`"`) {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 6
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *batchScanner) number() bool {
	s.literal("-")
	switch {
	case s.literal("0"):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.literal(".") && !s.digits() {
		return false
	}
	if s.literal("e") || s.literal("E") {
		if !s.literal("+") {
			s.literal("-")
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits consumes one or more digits.
func (s *batchScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
