package gate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/govlog/govlog/internal/opa"
	"github.com/govlog/govlog/internal/opatest"
	"github.com/govlog/govlog/log"
)

// gatePolicy allows alice to call any tool but "delete", and nobody else.
const gatePolicy = `package govlog.gate

default allow := false

allow if {
	input.subject == "alice"
	input.action == "tool.call"
	input.params.name != "delete"
	input.headers["x-ticket"] != ""
}
`

// TestPolicyMode: OPA decides, the gate logs the decision, allow or deny,
// and forwards only an allow, claimed with its artifact.
func TestPolicyMode(t *testing.T) {
	o := opatest.Start(t, gatePolicy, "")
	f := newFixture(t, func(c *Config) {
		c.Mode = ModePolicy
		c.Identity.Header = "X-Agent"
		c.OPA = &OPAConfig{URL: o.URL, Path: "govlog/gate/allow", Headers: []string{"X-Ticket"}}
	})
	a := f.do("POST", "/tools/echo", "", strings.NewReader(`{}`), map[string]string{"X-Agent": "alice", "X-Ticket": "OPS-1", "Authorization": "Bearer tool-token"})
	if a.status != 200 {
		t.Fatalf("alice: %d %s", a.status, a.body)
	}
	// In policy mode the caller's Authorization is the tool's business.
	if got := f.tool.calls[0].Header.Get("Authorization"); got != "Bearer tool-token" {
		t.Errorf("the tool got Authorization %q", got)
	}
	for _, c := range []map[string]string{
		{"X-Agent": "bob", "X-Ticket": "OPS-1"},
		{"X-Agent": "alice"}, // no ticket
	} {
		body := f.refused(f.do("POST", "/tools/echo", "", strings.NewReader(`{}`), c), 403, "policy_denied")
		id, _ := body["decision_id"].(string)
		rec, err := f.log.Decision(context.Background(), id)
		if err != nil {
			t.Fatalf("the deny %q is not in the log: %v", id, err)
		}
		entry, err := log.ParseEntry(rec.Entry)
		if err != nil || body["index"] != float64(rec.Index) {
			t.Fatalf("deny entry %v, index %v: %v", rec.Index, body["index"], err)
		}
		var d map[string]any
		json.Unmarshal(entry.Content, &d)
		in, _ := json.Marshal(Input{Method: "POST", Path: "/tools/echo", Params: map[string]string{"name": "echo"},
			Subject: c["X-Agent"], Action: "tool.call", Resource: "tool/echo", Headers: headersOf(c)})
		digest, _ := opa.InputDigest(in)
		if d["outcome"] != "deny" || d["subject"] != c["X-Agent"] || d["input_digest"] != digest ||
			d["policy"].(map[string]any)["id"] != "govlog/gate/allow" {
			t.Errorf("deny decision %v, want input digest %s", d, digest)
		}
	}
	f.refused(f.do("POST", "/tools/echo", "", nil, nil), 403, "identity_missing")
	if n := f.tool.count(); n != 1 {
		t.Fatalf("the tool was called %d times, want once (alice)", n)
	}
	// OPA gone: nothing passes, nothing is logged.
	o.Stop(0)
	f.refused(f.do("POST", "/tools/echo", "", nil, map[string]string{"X-Agent": "alice", "X-Ticket": "OPS-1"}), 503, "policy_unavailable")
	if n := f.tool.count(); n != 1 {
		t.Fatalf("the tool was called while OPA was down")
	}
	f.waitReports()
	reps := f.claims.reports()
	if len(reps) != 2 || reps[0]["status"] != "started" || reps[1]["status"] != "succeeded" {
		t.Errorf("reports %v", reps)
	}
}

func headersOf(c map[string]string) map[string]string {
	h := map[string]string{}
	if v := c["X-Ticket"]; v != "" {
		h["x-ticket"] = v
	}
	return h
}
