// Package strictjson reads JSON the way evidence must be read: the same
// by every parser. encoding/json keeps the last of duplicate members
// silently (another parser may keep the first), reads invalid UTF-8 and
// lone surrogates as U+FFFD, and a null as a zero value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// loneSurrogate reports whether JSON text has a \u escape of a UTF-16
// surrogate that is not half of a pair (encoding/json reads it as U+FFFD).
func loneSurrogate(data []byte) bool {
	surrogate := func(i int) (uint64, bool) {
		if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
		return v, err == nil && v >= 0xd800 && v <= 0xdfff
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		v, ok := surrogate(i)
		switch {
		case !ok:
			i++ // skip the escaped character
		case v >= 0xdc00:
			return true
		default:
			if w, ok := surrogate(i + 6); !ok || w < 0xdc00 {
				return true
			}
			i += 11
		}
	}
	return false
}

// ObjectKeys returns the member names of the JSON object in data, in
// order. It fails when data is not one JSON object, or when any object in
// it, at any depth, has a member name twice: encoding/json keeps the last
// of duplicate members silently, another parser may keep the first, and
// evidence must read the same to all of them. For the same reason it fails
// on invalid UTF-8 and lone surrogates (encoding/json reads both as
// U+FFFD) and on null values (encoding/json reads null as a zero value:
// "index":null as 0).
func ObjectKeys(data []byte) ([]string, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("invalid UTF-8")
	}
	if bytes.Contains(data, []byte(`\u`)) && loneSurrogate(data) {
		return nil, errors.New("a lone UTF-16 surrogate")
	}
	type frame struct {
		object    bool
		names     map[string]bool
		expectKey bool
		member    string // the name of the member being read
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var (
		stack []*frame
		top   []string
	)
	// valueDone records that the value of the enclosing object's member
	// (if any) is complete, so the next string there is a member name.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	for i := 0; ; i++ {
		tok, err := dec.Token()
		if err == io.EOF && i > 0 && len(stack) == 0 {
			return top, nil
		}
		if err != nil {
			return nil, err
		}
		if i == 0 && tok != json.Delim('{') {
			return nil, errors.New("not a JSON object")
		}
		if i > 0 && len(stack) == 0 {
			return nil, errors.New("data after the JSON object")
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, names: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		default:
			f := stack[len(stack)-1]
			if f.object && f.expectKey {
				name := t.(string)
				if f.names[name] {
					return nil, fmt.Errorf("duplicate member %q", name)
				}
				f.names[name] = true
				f.expectKey, f.member = false, name
				if len(stack) == 1 {
					top = append(top, name)
				}
				continue
			}
			if t == nil {
				if f.object {
					return nil, fmt.Errorf("member %q is null", f.member)
				}
				return nil, errors.New("an array holds a null")
			}
			valueDone()
		}
	}
}

// DecodeStrict decodes one JSON object into v, refusing what ObjectKeys
// refuses (duplicate members at any depth, invalid UTF-8, lone surrogates,
// null values, trailing data) and unknown members. SPEC: RFC 7519 §4.1.4
// (of exp, and alike of nbf and iat): "Its value MUST be a number
// containing a NumericDate value": a null is none.
func DecodeStrict(data []byte, v any) error {
	if _, err := ObjectKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
