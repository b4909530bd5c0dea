package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
)

// BenchmarkOverhead measures what the gate adds to a request (artifact
// mode): the same small POST sent directly to the tool, through the gate
// with the claim answered at once (the gate's own work: routing, offline
// verification, proxying, digesting), and through the gate with the
// claim and the terminal report logged by a real govlog server on SQLite
// (fsync'd). One client, keep-alive; it reports the p50 and p90 latency of
// each (ns/op is their mean).
//
//	go test ./internal/gate -run '^$' -bench Overhead -benchtime 2000x
func BenchmarkOverhead(b *testing.B) {
	f := newFixture(b, nil)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	send := func(b *testing.B, url, artifact string) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(`{"q":"hello"}`)))
		req.Header.Set("Content-Type", "application/json")
		if artifact != "" {
			req.Header.Set("Authorization", "GovLog "+artifact)
		}
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	run := func(b *testing.B, url string, artifacts []string) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			tok := ""
			if artifacts != nil {
				tok = artifacts[i]
			}
			start := time.Now()
			send(b, url, tok)
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
		f.waitReports()
	}
	b.Run("direct", func(b *testing.B) { run(b, f.tool.srv.URL+"/tools/echo", nil) })
	b.Run("gate-no-log", func(b *testing.B) {
		arts := f.artifacts(b, b.N)
		real := f.gate.submitExecution
		f.gate.submitExecution = func(context.Context, []byte) (*log.Receipt, bool, error) { return &log.Receipt{}, true, nil }
		defer func() { f.gate.submitExecution = real }()
		run(b, f.url+"/tools/echo", arts)
	})
	b.Run("gate", func(b *testing.B) { run(b, f.url+"/tools/echo", f.artifacts(b, b.N)) })
}

// artifacts logs n allow decisions for tool/echo in batches and returns
// their artifacts.
func (f *fixture) artifacts(b *testing.B, n int) []string {
	b.Helper()
	var arts []string
	for len(arts) < n {
		var items []map[string]any
		for i := len(arts); i < min(n, len(arts)+1000); i++ {
			items = append(items, map[string]any{"id": fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), "outcome": "allow",
				"decided_at": time.Now().UTC().Format(time.RFC3339), "subject": "agent-7", "action": "tool.call",
				"resource": "tool/echo", "policy": map[string]string{"id": "bench"}})
		}
		body, _ := json.Marshal(map[string]any{"decisions": items})
		resp, err := http.Post(f.logSrv.URL+"/v1/decisions/batch", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		var out struct{ Results []struct{ Artifact string } }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || len(out.Results) != len(items) {
			b.Fatalf("batch: %v", err)
		}
		for _, r := range out.Results {
			if r.Artifact == "" {
				b.Fatal("no artifact")
			}
			arts = append(arts, r.Artifact)
		}
	}
	return arts
}
