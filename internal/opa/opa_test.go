package opa

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		result, want string
	}{
		{`true`, "allow"},
		{`false`, "deny"},
		{` true `, "allow"},
		{`{"allow":true,"reasons":["ok"]}`, "allow"},
		{`{"allow":false}`, "deny"},
		{`{"allow":"true"}`, ""},
		{`{"allow":null}`, ""},
		{`{"deny":true}`, ""},
		{`"allow"`, ""},
		{`1`, ""},
		{`null`, ""},
		{``, ""},
		{`[true]`, ""},
		{`{"allow":true`, ""},
	} {
		got, err := Outcome(json.RawMessage(c.result))
		if got != c.want || (c.want == "") != errors.Is(err, ErrUnmappable) {
			t.Errorf("Outcome(%s) = %q, %v; want %q", c.result, got, err, c.want)
		}
	}
}

func TestPolicyVersion(t *testing.T) {
	long := strings.Repeat("r", 257)
	for _, c := range []struct {
		bundles  map[string]Bundle
		revision string
		want     string
		bad      bool
	}{
		{nil, "", "", false},
		{nil, "old-style", "old-style", false},
		{map[string]Bundle{"authz": {"r42"}}, "ignored", "r42", false},
		{map[string]Bundle{"b": {"2"}, "a": {"1"}, "c": {""}}, "", "a@1,b@2", false},
		{map[string]Bundle{"authz": {long}}, "", "", true},
		{nil, long[:256], long[:256], false},
	} {
		got, err := PolicyVersion(c.bundles, c.revision)
		if got != c.want || c.bad != errors.Is(err, ErrUnmappable) {
			t.Errorf("PolicyVersion(%v, %q) = %q, %v; want %q", c.bundles, c.revision, got, err, c.want)
		}
	}
}

func TestInputDigest(t *testing.T) {
	// The same input however written: RFC 8785 makes one form of it.
	a, err := InputDigest(json.RawMessage(`{"b": [1.50, "x"], "a": 1e3}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := InputDigest(json.RawMessage(`{"a":1000,"b":[1.5,"x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	// sha256 of {"a":1000,"b":[1.5,"x"]}
	const want = "sha256:60f0676c566ae36ec538adc9c6bd02bec79a0e19c15d121e0ecb8b4e620750a3"
	if a != want || b != want {
		t.Fatalf("digests %s and %s, want %s", a, b, want)
	}
	if _, err := InputDigest(json.RawMessage(`{"a":1,"a":2}`)); err == nil {
		t.Error("a duplicate key was canonicalized")
	}
}

func TestPointer(t *testing.T) {
	var doc any
	json.Unmarshal([]byte(`{"foo":["bar","baz"],"":0,"a/b":1,"m~n":8,"k":{"l":"v"}}`), &doc)
	for _, c := range []struct {
		ptr  string
		want any
		ok   bool
	}{
		{"/foo/0", "bar", true},
		{"/foo/1", "baz", true},
		{"/foo/2", nil, false},
		{"/foo/01", nil, false},
		{"/foo/-1", nil, false},
		{"/foo/+1", nil, false},
		{"/", 0.0, true},
		{"/a~1b", 1.0, true},
		{"/m~0n", 8.0, true},
		{"/k/l", "v", true},
		{"/k/l/x", nil, false},
		{"/missing", nil, false},
		{"k", nil, false},
	} {
		got, ok := Pointer(doc, c.ptr)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Pointer(%q) = %v, %v; want %v, %v", c.ptr, got, ok, c.want, c.ok)
		}
	}
}

const golden = `{"decision_id":"4ca636c1-55e4-417a-b1d8-4aceb67960d1","path":"authz/allow",` +
	`"input":{"subject":"agent-7","action":"deploy"},"result":true,` +
	`"bundles":{"authz":{"revision":"r42"}},"timestamp":"2026-03-01T12:00:00.5Z",` +
	`"labels":{"id":"opa-1","version":"1.22.4"},"metrics":{"timer_rego_query_eval_ns":1}}`

// TestDecisionGolden is the worked example of the package comment.
func TestDecisionGolden(t *testing.T) {
	var ev Event
	if err := json.Unmarshal([]byte(golden), &ev); err != nil {
		t.Fatal(err)
	}
	body, err := Mapping{}.Decision(&ev)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, "2026-03-01T12:00:00Z")
	d, err := log.ParseDecision(body, now)
	if err != nil {
		t.Fatalf("the log refuses %s: %v", body, err)
	}
	digest, _ := InputDigest(json.RawMessage(`{"action":"deploy","subject":"agent-7"}`))
	want := `{"action":"deploy","context":{"opa":{"labels":{"id":"opa-1","version":"1.22.4"}}},` +
		`"decided_at":"2026-03-01T12:00:00.5Z","id":"4ca636c1-55e4-417a-b1d8-4aceb67960d1",` +
		`"input_digest":"` + digest + `","outcome":"allow","policy":{"id":"authz/allow","version":"r42"},` +
		`"subject":"agent-7"}`
	if string(d.Canonical) != want {
		t.Errorf("decision\n%s\nwant\n%s", d.Canonical, want)
	}
	// StoreInput keeps the raw input in the context.
	body, err = Mapping{StoreInput: true}.Decision(&ev)
	if err != nil || !strings.Contains(string(body), `"input":{"subject":"agent-7","action":"deploy"}`) {
		t.Errorf("StoreInput: %s, %v", body, err)
	}
	// Other pointers.
	ev.Input = json.RawMessage(`{"user":{"name":"u1"},"op":"read","obj":["x","doc/9"]}`)
	body, err = Mapping{Subject: "/user/name", Action: "/op", Resource: "/obj/1"}.Decision(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := log.ParseDecision(body, now); err != nil || d.Subject != "u1" || d.Action != "read" || d.Resource != "doc/9" {
		t.Errorf("pointers: %s, %v", body, err)
	}
	// Without a subject anywhere, the event cannot be a decision.
	ev.Input = json.RawMessage(`{}`)
	if _, err := (Mapping{}).Decision(&ev); !errors.Is(err, ErrUnmappable) {
		t.Errorf("no subject: %v", err)
	}
}

func TestMappingValidate(t *testing.T) {
	if err := (Mapping{Subject: "subject"}).Validate(); err == nil {
		t.Error("a pointer without / was accepted")
	}
	if err := (Mapping{Subject: "/a", Action: "", Resource: "/r/0"}).Validate(); err != nil {
		t.Error(err)
	}
}

// FuzzDecision: whatever the event, the mapping is deterministic, and a
// decision the log accepts holds the event's id, path, outcome and input
// digest, never the raw input.
func FuzzDecision(f *testing.F) {
	f.Add([]byte(golden))
	f.Add([]byte(`{"decision_id":"x","path":"p","result":{"allow":false},"requested_by":"1.2.3.4","timestamp":"2026-03-01T12:00:00Z"}`))
	f.Add([]byte(`{"decision_id":"x","path":"p","input":{"subject":"s","secret":"hunter2"},"result":true,"timestamp":"2026-03-01T12:00:00Z"}`))
	now, _ := time.Parse(time.RFC3339, "2026-03-01T12:00:00Z")
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev Event
		if json.Unmarshal(raw, &ev) != nil {
			return
		}
		body, err := Mapping{}.Decision(&ev)
		again, err2 := Mapping{}.Decision(&ev)
		if string(body) != string(again) || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %s / %s", body, again)
		}
		if err != nil {
			if !errors.Is(err, ErrUnmappable) {
				t.Fatalf("error %v does not wrap ErrUnmappable", err)
			}
			return
		}
		d, err := log.ParseDecision(body, now)
		if err != nil {
			return // the log refuses it: an invalid id, timestamp, …
		}
		outcome, _ := Outcome(ev.Result)
		if d.ID != ev.DecisionID || d.PolicyID != ev.Path || d.Outcome != outcome {
			t.Fatalf("decision %s from event %s", body, raw)
		}
		if len(ev.Input) > 0 {
			digest, _ := InputDigest(ev.Input)
			if d.InputDigest != digest {
				t.Fatalf("input digest %s, want %s", d.InputDigest, digest)
			}
			if strings.Contains(string(d.Canonical), `"input":`) {
				t.Fatalf("the raw input is in the decision: %s", d.Canonical)
			}
		}
	})
}
