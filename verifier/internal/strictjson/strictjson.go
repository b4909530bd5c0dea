// Package strictjson reads JSON the way evidence must be read: the same
// by every parser. encoding/json keeps the last of duplicate members
// silently; another parser may keep the first.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ObjectKeys returns the member names of the JSON object in data, in
// order. It fails when data is not one JSON object, or when any object in
// it, at any depth, has a member name twice: encoding/json keeps the last
// of duplicate members silently, another parser may keep the first, and
// evidence must read the same to all of them.
func ObjectKeys(data []byte) ([]string, error) {
	type frame struct {
		object    bool
		names     map[string]bool
		expectKey bool
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
				f.expectKey = false
				if len(stack) == 1 {
					top = append(top, name)
				}
				continue
			}
			valueDone()
		}
	}
}

// DecodeStrict decodes one JSON object into v, refusing duplicate members
// (at any depth), unknown members, null values and trailing data.
func DecodeStrict(data []byte, v any) error {
	if _, err := ObjectKeys(data); err != nil {
		return err
	}
	// encoding/json leaves a field as it is for a null: a null exp, nbf,
	// iat or sub would read as 0 or "". SPEC: RFC 7519 §4.1.4: "Its value
	// MUST be a number containing a NumericDate value."
	var name string
	for dec := json.NewDecoder(bytes.NewReader(data)); ; {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case nil:
			return fmt.Errorf("member %q is null", name)
		case string:
			name = t
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
