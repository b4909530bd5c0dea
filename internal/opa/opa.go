// Package opa maps Open Policy Agent decisions to govlog decisions (wire
// contract §2). Both ends of govlog's OPA support use it: govlogd's
// decision-log endpoint, which receives the events of OPA's decision_logs
// plugin, and govlog-gate, which asks OPA's data API itself. So a decision
// logged either way has the same outcome, policy and input digest.
//
// # The mapping
//
//	OPA                                   govlog decision
//	decision_id                           id
//	path ("authz/allow")                  policy.id
//	bundles[*].revision (or revision)     policy.version: the one revision, or
//	                                      "name@revision" of each bundle, sorted, joined by ","
//	result true / false                   outcome "allow" / "deny"
//	result {"allow": true|false, …}       outcome from the boolean allow member
//	input                                 input_digest = "sha256:" + hex SHA-256 of its RFC 8785 form
//	input at Mapping.Subject (/subject)   subject; absent: requested_by (the OPA client's address)
//	input at Mapping.Action (/action)     action; absent: the path
//	input at Mapping.Resource (/resource) resource; absent: none
//	timestamp                             decided_at
//	labels (OPA's id, version, …)         context.opa.labels
//	input, when Mapping.StoreInput        context.opa.input
//
// Anything else is refused with an error wrapping ErrUnmappable: a result
// of another shape, or none (an evaluation error, an undefined decision),
// an event without path (an ad-hoc query), a pointer that names something
// other than a string, a version longer than a decision allows. The raw
// input is never part of the decision unless Mapping.StoreInput is set.
//
// For example the event
//
//	{"decision_id":"4ca636c1-55e4-417a-b1d8-4aceb67960d1","path":"authz/allow",
//	 "input":{"subject":"agent-7","action":"deploy"},"result":true,
//	 "bundles":{"authz":{"revision":"r42"}},"timestamp":"2026-03-01T12:00:00.5Z",
//	 "labels":{"id":"opa-1","version":"1.22.4"}}
//
// is the decision
//
//	{"action":"deploy","context":{"opa":{"labels":{"id":"opa-1","version":"1.22.4"}}},
//	 "decided_at":"2026-03-01T12:00:00.5Z","id":"4ca636c1-55e4-417a-b1d8-4aceb67960d1",
//	 "input_digest":"sha256:…","outcome":"allow","policy":{"id":"authz/allow","version":"r42"},
//	 "subject":"agent-7"}
package opa

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// ErrUnmappable is wrapped by the errors of events that can never become a
// decision.
var ErrUnmappable = errors.New("the OPA decision cannot be mapped to a govlog decision")

// Default JSON pointers (RFC 6901) into the input.
const (
	DefaultSubject  = "/subject"
	DefaultAction   = "/action"
	DefaultResource = "/resource"
)

// maxVersion is the longest policy.version of a decision, in chars.
const maxVersion = 256

// Event is one event of OPA's decision-log upload (the decision_logs
// plugin's EventV1): only the members the mapping reads. Other members are
// ignored: the format is OPA's and grows.
type Event struct {
	DecisionID  string            `json:"decision_id"`
	Path        string            `json:"path"`
	Query       string            `json:"query"`
	Input       json.RawMessage   `json:"input"`
	Result      json.RawMessage   `json:"result"`
	Error       json.RawMessage   `json:"error"`
	Revision    string            `json:"revision"`
	Bundles     map[string]Bundle `json:"bundles"`
	Timestamp   string            `json:"timestamp"`
	RequestedBy string            `json:"requested_by"`
	Labels      json.RawMessage   `json:"labels"`
}

// Bundle is a bundle's entry in an event or in provenance.
type Bundle struct {
	Revision string `json:"revision"`
}

// DataResponse is the answer of OPA's data API (POST /v1/data/<path>) with
// provenance=true: only the members govlog-gate reads.
type DataResponse struct {
	// Result is absent when the decision is undefined.
	Result     json.RawMessage `json:"result"`
	DecisionID string          `json:"decision_id"`
	Provenance *Provenance     `json:"provenance"`
}

// Provenance is OPA's build and bundle information.
type Provenance struct {
	Version  string            `json:"version"`
	Revision string            `json:"revision"`
	Bundles  map[string]Bundle `json:"bundles"`
}

// Mapping says where the subject, action and resource of a decision are in
// OPA's input. The zero value selects the defaults.
type Mapping struct {
	// Subject is the JSON pointer of the subject. Default DefaultSubject.
	Subject string
	// Action is the JSON pointer of the action. Default DefaultAction.
	Action string
	// Resource is the JSON pointer of the resource. Default
	// DefaultResource.
	Resource string
	// StoreInput puts the raw input in the decision's context
	// (context.opa.input). Default false: only its digest is logged.
	StoreInput bool
}

// Validate checks the pointers.
func (m Mapping) Validate() error {
	for _, p := range []string{m.Subject, m.Action, m.Resource} {
		if p != "" && p[0] != '/' {
			return fmt.Errorf("invalid JSON pointer %q: it must be empty or start with /", p)
		}
	}
	return nil
}

// Outcome maps a policy result to an outcome: true is "allow", false
// "deny", and an object is its boolean "allow" member. Anything else,
// including no result (an undefined decision), wraps ErrUnmappable.
func Outcome(result json.RawMessage) (string, error) {
	r := bytes.TrimSpace(result)
	if len(r) > 0 && r[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r, &obj); err != nil {
			return "", fmt.Errorf("%w: the result is not valid JSON", ErrUnmappable)
		}
		a, ok := obj["allow"]
		if !ok {
			return "", fmt.Errorf("%w: the result is an object without an allow member", ErrUnmappable)
		}
		r = bytes.TrimSpace(a)
	}
	switch string(r) {
	case "true":
		return "allow", nil
	case "false":
		return "deny", nil
	case "":
		return "", fmt.Errorf("%w: no result (the decision is undefined)", ErrUnmappable)
	}
	return "", fmt.Errorf("%w: the result must be true, false or an object with a boolean allow member", ErrUnmappable)
}

// PolicyVersion is the policy version of a decision made with these bundle
// revisions: the one revision, or "name@revision" of each bundle sorted by
// name and joined by ","; the deprecated single revision when there are no
// bundles; "" when there is none. A version longer than a decision allows
// wraps ErrUnmappable.
func PolicyVersion(bundles map[string]Bundle, revision string) (string, error) {
	var v string
	switch names := sortedNames(bundles); len(names) {
	case 0:
		v = revision
	case 1:
		v = bundles[names[0]].Revision
	default:
		parts := make([]string, 0, len(names))
		for _, n := range names {
			if r := bundles[n].Revision; r != "" {
				parts = append(parts, n+"@"+r)
			}
		}
		v = strings.Join(parts, ",")
	}
	if utf8.RuneCountInString(v) > maxVersion {
		return "", fmt.Errorf("%w: the bundle revisions make a policy version of more than %d chars", ErrUnmappable, maxVersion)
	}
	return v, nil
}

func sortedNames(bundles map[string]Bundle) []string {
	names := make([]string, 0, len(bundles))
	for n := range bundles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// InputDigest is the input_digest of an input: "sha256:" and the lowercase
// hex SHA-256 of its RFC 8785 canonical form.
func InputDigest(input json.RawMessage) (string, error) {
	canon, err := jcs.Transform(input)
	if err != nil {
		return "", fmt.Errorf("failed to canonicalize the input: %w", err)
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Decision is the JSON body of a govlog decision (wire contract §2) made
// from an OPA decision: the members this mapping sets.
type Decision struct {
	ID          string `json:"id"`
	Outcome     string `json:"outcome"`
	DecidedAt   string `json:"decided_at"`
	Subject     string `json:"subject"`
	Action      string `json:"action"`
	Resource    string `json:"resource,omitempty"`
	Policy      Policy `json:"policy"`
	InputDigest string `json:"input_digest,omitempty"`
	Context     any    `json:"context,omitempty"`
}

// Policy is a decision's policy member.
type Policy struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
}

// Decision maps an event to the JSON body of a govlog decision (wire
// contract §2), the same bytes for the same event. The log still validates
// it: a decision_id that is not a decision id, for example, is refused
// there. Errors wrap ErrUnmappable.
func (m Mapping) Decision(ev *Event) ([]byte, error) {
	if ev.Path == "" {
		return nil, fmt.Errorf("%w: the event has no path (an ad-hoc query is not a policy decision)", ErrUnmappable)
	}
	if len(ev.Error) > 0 && string(ev.Error) != "null" {
		return nil, fmt.Errorf("%w: the evaluation failed, so there is no decision", ErrUnmappable)
	}
	d := Decision{ID: ev.DecisionID, DecidedAt: ev.Timestamp, Policy: Policy{ID: ev.Path}}
	var err error
	if d.Outcome, err = Outcome(ev.Result); err != nil {
		return nil, err
	}
	if d.Policy.Version, err = PolicyVersion(ev.Bundles, ev.Revision); err != nil {
		return nil, err
	}
	var input any
	if len(ev.Input) > 0 {
		if d.InputDigest, err = InputDigest(ev.Input); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnmappable, err)
		}
		if err := json.Unmarshal(ev.Input, &input); err != nil {
			return nil, fmt.Errorf("%w: the input is not valid JSON", ErrUnmappable)
		}
	}
	if d.Subject, err = m.lookup(input, m.Subject, DefaultSubject, ev.RequestedBy); err != nil {
		return nil, err
	}
	if d.Subject == "" {
		return nil, fmt.Errorf("%w: no subject: the input has none at %s and the event no requested_by", ErrUnmappable, or(m.Subject, DefaultSubject))
	}
	if d.Action, err = m.lookup(input, m.Action, DefaultAction, ev.Path); err != nil {
		return nil, err
	}
	if d.Resource, err = m.lookup(input, m.Resource, DefaultResource, ""); err != nil {
		return nil, err
	}
	o := map[string]any{}
	if len(ev.Labels) > 0 && string(ev.Labels) != "null" {
		o["labels"] = ev.Labels
	}
	if m.StoreInput && len(ev.Input) > 0 {
		o["input"] = ev.Input
	}
	if len(o) > 0 {
		d.Context = map[string]any{"opa": o}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnmappable, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lookup returns the string at the pointer (or its default) in input, or
// fallback when nothing is there. Something there that is not a string
// wraps ErrUnmappable.
func (m Mapping) lookup(input any, ptr, def, fallback string) (string, error) {
	ptr = or(ptr, def)
	v, ok := Pointer(input, ptr)
	if !ok || v == nil {
		return fallback, nil
	}
	s, isString := v.(string)
	if !isString {
		return "", fmt.Errorf("%w: the input at %s is not a string", ErrUnmappable, ptr)
	}
	return s, nil
}

// Pointer resolves an RFC 6901 JSON pointer in a value decoded by
// encoding/json. "" is the whole value.
func Pointer(v any, ptr string) (any, bool) {
	if ptr == "" {
		return v, true
	}
	if ptr[0] != '/' {
		return nil, false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || (len(tok) > 1 && tok[0] == '0') || tok[0] == '+' {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}
