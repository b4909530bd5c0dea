package loadgen

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchDecision is a decision as the generator submits it, for
// encoding/json to write the reference.
type benchDecision struct {
	ID          string        `json:"id"`
	Outcome     string        `json:"outcome"`
	DecidedAt   string        `json:"decided_at"`
	Subject     string        `json:"subject"`
	Action      string        `json:"action"`
	Resource    string        `json:"resource"`
	Policy      benchPolicy   `json:"policy"`
	InputDigest string        `json:"input_digest"`
	Reasons     []string      `json:"reasons,omitempty"`
	ParentID    string        `json:"parent_id,omitempty"`
	Context     *benchContext `json:"context,omitempty"`
}

type benchPolicy struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

type benchContext struct {
	Session string  `json:"session"`
	Risk    float64 `json:"risk"`
	Tool    string  `json:"tool"`
	Args    string  `json:"args"`
}

// referenceDecision is the generator's decision as it was written with
// fmt and encoding/json: appendDecision must write the same bytes from
// the same random draws.
func referenceDecision(g *generator, prefix string, worker int) []byte {
	g.n++
	d := benchDecision{
		ID:          fmt.Sprintf("%s-%03d-%07d", prefix, worker, g.n),
		Outcome:     "allow",
		DecidedAt:   g.now().UTC().Format(time.RFC3339Nano),
		Subject:     fmt.Sprintf("spiffe://prod.example/ns/agents/sa/agent-%d", g.rng.IntN(500)),
		Action:      actions[g.rng.IntN(len(actions))],
		Resource:    fmt.Sprintf("arn:example:service/%s/item-%d", strings.Repeat("x", g.rng.IntN(64)), g.rng.IntN(1e6)),
		Policy:      benchPolicy{ID: "agent-guardrails", Version: "2026.11.3", Digest: fmt.Sprintf("sha256:%064x", g.rng.Uint64())},
		InputDigest: fmt.Sprintf("sha256:%064x", g.rng.Uint64()),
	}
	if g.rng.IntN(10) < 3 {
		d.Outcome, d.Reasons = "deny", []string{"action not permitted for this subject outside the change window", "risk score above threshold"}
	}
	if g.rng.IntN(10) == 0 {
		d.ParentID = g.last
	}
	if d.Outcome == "allow" {
		g.allows[d.ID] = true
	}
	if g.rng.IntN(2) == 0 {
		d.Context = &benchContext{Session: fmt.Sprintf("s-%d", g.rng.Uint32()), Risk: g.rng.Float64(), Tool: "kubectl", Args: strings.Repeat("a", g.rng.IntN(300))}
	}
	b, _ := json.Marshal(d)
	return b
}

func TestDecisionAsEncodingJSON(t *testing.T) {
	at := []time.Time{
		time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 23, 1, 2, 123456789, time.FixedZone("x", 3600)),
		time.Date(2026, 12, 6, 23, 1, 2, 120000000, time.UTC),
	}
	for _, prefix := range []string{"bench-1f2e3d4c5b", "floor-1765058400000000000", `odd "<&>" prefix`} {
		for _, worker := range []int{0, 7, 1234} {
			got, want := newGenerator(prefix, worker), newGenerator(prefix, worker)
			for i := range 3000 {
				got.now = func() time.Time { return at[i%len(at)] }
				want.now = got.now
				g, w := got.decision(), referenceDecision(want, prefix, worker)
				if string(g) != string(w) {
					t.Fatalf("decision %d:\n got %s\nwant %s", i, g, w)
				}
				if !json.Valid(g) {
					t.Fatalf("not JSON: %s", g)
				}
				// Acknowledge every third: later decisions link to them.
				if i%3 == 0 {
					var d benchDecision
					json.Unmarshal(g, &d)
					got.acked(d.ID)
					want.acked(d.ID)
				}
			}
		}
	}
	for _, f := range []float64{0, 0.5, 1e-7, 1.5e-9, 0.123456789012345678, 1e21} {
		b, _ := json.Marshal(f)
		if got := string(appendFloat(nil, f)); got != string(b) {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, b)
		}
	}
}

func BenchmarkDecision(b *testing.B) {
	g := newGenerator("bench-1f2e3d4c5b", 3)
	b.ReportAllocs()
	for b.Loop() {
		g.decision()
	}
}

func BenchmarkDecisionReference(b *testing.B) {
	g := newGenerator("bench-1f2e3d4c5b", 3)
	b.ReportAllocs()
	for b.Loop() {
		referenceDecision(g, "bench-1f2e3d4c5b", 3)
	}
}
