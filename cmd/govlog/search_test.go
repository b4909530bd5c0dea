package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govlog/govlog/internal/testenv"
	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/server"
)

// realServer serves a real embedded log over HTTP and returns its URL
// and the path of its verifier key file.
func realServer(t *testing.T) (string, string) {
	t.Helper()
	tl := testenv.NewLog(t, "example.com/govlog-cli")
	l, err := log.New(context.Background(), tl.Config())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m, err := server.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	k := tl.Keys
	srv, err := server.New(server.Config{Log: l, ArtifactKey: k.Artifact, VerifierKey: k.VerifierKey, Registry: reg, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Serve(t, srv).URL, filepath.Join(tl.Dir, "log.vkey")
}

// TestSearchExportVerify: govlog search finds what was submitted, govlog
// get prints one entry verified, govlog export writes a bundle that govlog
// verify accepts and summarises, and a changed bundle fails.
func TestSearchExportVerify(t *testing.T) {
	url, vkey := realServer(t)
	for i := range 6 {
		outcome := "allow"
		if i%3 == 0 {
			outcome = "deny"
		}
		body := fmt.Sprintf(`{"id":"d-%d","outcome":%q,"decided_at":%q,"subject":"agent-%d","action":"deploy","policy":{"id":"p"}}`,
			i, outcome, time.Now().UTC().Format(time.RFC3339), i%2)
		resp, err := http.Post(url+"/v1/decisions", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("submit: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	dir := t.TempDir()

	code, out, errOut := runCLI(t, "", "search", "--url", url, "--subject", "agent-0", "--json")
	var page struct {
		Results []struct{ ID string } `json:"results"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Results) != 3 {
		t.Fatalf("search: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "search", "--url", url, "--outcome", "deny", "--limit", "1")
	if code != 0 || !strings.Contains(out, "d-0") || !strings.Contains(out, "more: --after ") {
		t.Fatalf("search --limit 1: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "get", "--url", url, "--log-key", vkey, "d-3")
	if code != 0 || !strings.Contains(out, "OK: entry 4") || !strings.Contains(out, "id: d-3") || !strings.Contains(out, "outcome: deny") {
		t.Fatalf("get: %d %s %s", code, out, errOut)
	}
	if code, _, _ = runCLI(t, "", "get", "--url", url, "nope"); code != 1 {
		t.Fatalf("get of an unknown id: exit %d, want 1", code)
	}

	bundle := filepath.Join(dir, "agent-0.evidence.json")
	if code, out, errOut = runCLI(t, "", "export", "--url", url, "--subject", "agent-0", "-o", bundle); code != 0 {
		t.Fatalf("export: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "verify", "--log-key", vkey, bundle)
	if code != 0 || !strings.Contains(out, "OK: evidence bundle") || !strings.Contains(out, "3 entries") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	// agent-0: d-0 (deny), d-2 (allow), d-4 (allow).
	if !strings.Contains(out, "agent-0") || !strings.Contains(strings.Join(strings.Fields(out[strings.Index(out, "agent-0  "):]), " "), "agent-0 2 1 0 0 0") {
		t.Fatalf("verify summary:\n%s", out)
	}
	code, out, _ = runCLI(t, "", "verify", "--log-key", vkey, "--json", bundle)
	var rep bundleReportJSON
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.Verified || rep.Entries != 3 || len(rep.Subjects) != 1 || rep.Subjects[0].Allowed != 2 {
		t.Fatalf("verify --json: %d %s", code, out)
	}

	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	// Entry 0 is the log's artifact key: agent-0's entries are 1, 3, 5.
	changed := strings.Replace(string(data), `"index":3,`, `"index":2,`, 1)
	if changed == string(data) {
		t.Fatalf("no entry 3 in %s", data)
	}
	if err := os.WriteFile(bundle, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "", "verify", "--log-key", vkey, bundle)
	if code != 1 || !strings.Contains(errOut, "does NOT verify") {
		t.Fatalf("a changed bundle: exit %d, %s", code, errOut)
	}
}
