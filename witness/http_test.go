package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func post(t *testing.T, url string, body []byte) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestHTTP drives the handler over real HTTP through every status of
// tlog-witness.
func TestHTTP(t *testing.T) {
	lg := newTestLog(t, "example.com/log").grow(12)
	unknown := newTestLog(t, "example.com/unknown").grow(3)
	other := newTestLog(t, "example.com/log").grow(3)
	reg := prometheus.NewRegistry()
	skey, _, err := GenerateKey("witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(context.Background(), Config{Key: skey, Logs: []string{lg.vkey}, Database: t.TempDir() + "/w.db", Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()

	cpHash := sha256.Sum256([]byte(lg.origin))
	cpURL := srv.URL + "/" + hex.EncodeToString(cpHash[:]) + "/checkpoint"
	if resp, err := http.Get(cpURL); err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET checkpoint before any cosignature: %v %v", resp.StatusCode, err)
	}

	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		resp   string // the exact body, when set
	}{
		{"empty body", nil, 400, ""},
		{"no old line", []byte("\n" + string(lg.checkpoint(3))), 400, ""},
		{"old 00", []byte("old 00\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"old 01", []byte("old 01\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"old +1", []byte("old +1\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"old -1", []byte("old -1\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"two spaces", []byte("old  0\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"OLD", []byte("OLD 0\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"old beyond uint64", []byte("old 18446744073709551616\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"CRLF", []byte("old 0\r\n\r\n" + string(lg.checkpoint(3))), 400, ""},
		{"no empty line", []byte("old 0\n" + string(lg.checkpoint(3))), 400, ""},
		{"proof line not base64", []byte("old 0\nnot base64!\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"proof line of 31 bytes", []byte("old 0\n" + strings.Repeat("A", 40) + "4=\n\n" + string(lg.checkpoint(3))), 400, ""},
		{"64 proof lines", request(2, make64(), lg.checkpoint(3)), 400, ""},
		{"no checkpoint", []byte("old 0\n\n"), 400, ""},
		{"unknown origin", request(0, nil, unknown.checkpoint(3)), 404, ""},
		{"untrusted key", request(0, nil, other.checkpoint(3)), 403, ""},
		{"old > size", request(4, nil, lg.checkpoint(3)), 400, ""},
		{"old 0 with a proof", request(0, lg.proof(2, 3), lg.checkpoint(3)), 422, ""},
		{"first", request(0, nil, lg.checkpoint(3)), 200, ""},
		{"conflict", request(0, nil, lg.checkpoint(5)), 409, "3\n"},
		{"bad proof", request(3, lg.proof(2, 5), lg.checkpoint(5)), 422, ""},
		{"next", request(3, lg.proof(3, 5), lg.checkpoint(5)), 200, ""},
		{"too large", append(request(5, lg.proof(5, 7), lg.checkpoint(7)), bytes.Repeat([]byte("x"), MaxBodyBytes)...), 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ct, body := post(t, srv.URL, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.resp != "" && string(body) != tc.resp {
				t.Fatalf("body %q, want %q", body, tc.resp)
			}
			switch status {
			case 409:
				if ct != "text/x.tlog.size" {
					t.Fatalf("409 Content-Type %q", ct)
				}
			case 200:
				if !bytes.HasPrefix(body, []byte("— witness.test/w1 ")) {
					t.Fatalf("200 body %q", body)
				}
			}
		})
	}

	// The 200 bodies verify on the checkpoint they answer.
	status, _, cosig := post(t, srv.URL, request(5, lg.proof(5, 12), lg.checkpoint(12)))
	if status != 200 {
		t.Fatalf("status %d: %s", status, cosig)
	}
	checkCosignature(t, cosig, w.VerifierKey(), lg.body(12))

	// GET /: the info document.
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	want := map[string]any{
		"name":         "witness.test/w1",
		"verifier_key": w.VerifierKey(),
		"logs":         []any{map[string]any{"origin": lg.origin, "verifier_key": lg.vkey, "tree_size": 12.0}},
	}
	if g, _ := json.Marshal(info); !bytes.Equal(g, mustJSON(want)) {
		t.Fatalf("GET / = %s\nwant %s", g, mustJSON(want))
	}

	// GET /<hash>/checkpoint: the log's note with both signatures.
	resp, err = http.Get(cpURL)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wv, _ := fnote.NewVerifierForCosignatureV1(w.VerifierKey())
	lv, _ := note.NewVerifier(lg.vkey)
	n, err := note.Open(stored, note.VerifierList(lv, wv))
	if err != nil || len(n.Sigs) != 2 || n.Text != lg.body(12) {
		t.Fatalf("stored checkpoint %q: %v", stored, err)
	}
	if resp, err := http.Get(srv.URL + "/" + strings.Repeat("00", 32) + "/checkpoint"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("GET checkpoint of an unknown hash: %v", err)
	}
	if resp, err := http.Get(srv.URL + "/add-checkpoint"); err != nil || resp.StatusCode != 405 {
		t.Fatalf("GET /add-checkpoint: %v %v", resp.StatusCode, err)
	}

	// Metrics, by result.
	for result, want := range map[string]float64{"cosigned": 3, "conflict": 1, "bad_proof": 1, "inconsistent": 1, "forbidden": 1, "malformed": 1} {
		if got := metricValue(t, reg, "govlog_witness_updates_total", "origin", lg.origin, "result", result); got != want {
			t.Errorf("updates{%s} = %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, reg, "govlog_witness_updates_total", "origin", "", "result", "unknown_log"); got != 1 {
		t.Errorf("updates{unknown_log} = %v", got)
	}
	if got := metricValue(t, reg, "govlog_witness_tree_size", "origin", lg.origin); got != 12 {
		t.Errorf("tree size = %v", got)
	}
}

func make64() [][]byte {
	p := make([][]byte, 64)
	for i := range p {
		p[i] = make([]byte, 32)
	}
	return p
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseRequest(t *testing.T) {
	lg := newTestLog(t, "example.com/log").grow(9)
	body := request(7, lg.proof(7, 9), lg.checkpoint(9))
	old, proof, cp, err := ParseRequest(body)
	if err != nil || old != 7 || len(proof) != len(lg.proof(7, 9)) || !bytes.Equal(cp, lg.checkpoint(9)) {
		t.Fatalf("ParseRequest = %d, %d hashes, %q, %v", old, len(proof), cp, err)
	}
	for i := range proof {
		if !bytes.Equal(proof[i], lg.proof(7, 9)[i]) {
			t.Fatalf("hash %d differs", i)
		}
	}
	// 63 lines are allowed.
	if _, p, _, err := ParseRequest(request(1, make64()[:63], lg.checkpoint(9))); err != nil || len(p) != 63 {
		t.Fatalf("63 proof lines: %v", err)
	}
	// Every truncation of a valid body is malformed or yields a shorter
	// checkpoint (which then fails signature verification).
	for i := range len(body) - len(lg.checkpoint(9)) {
		if _, _, _, err := ParseRequest(body[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
}

// metricValue reads a counter or gauge of reg with the given label pairs.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}
