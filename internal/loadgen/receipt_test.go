package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// vectorReceipts returns the receipts of testdata/receipts as the server
// writes them (log.Receipt.AppendJSON), by name.
func vectorReceipts(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../testdata/receipts/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no receipt vectors: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r log.Receipt
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = r.AppendJSON(nil)
	}
	return out
}

func vectorKey(t testing.TB) note.Verifier {
	t.Helper()
	b, err := os.ReadFile("../../testdata/keys/log.vkey")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sameAsJSON checks that decodeReceipt and decodeBatch make of body (as a
// receipt, and as the only item of a batch) what json.Unmarshal makes of
// it, and returns whether the fast path took it.
func sameAsJSON(t *testing.T, body []byte) bool {
	t.Helper()
	var want receipt
	wantErr := json.Unmarshal(body, &want)
	var got receipt
	err := decodeReceipt(body, &got)
	if (err == nil) != (wantErr == nil) || (err == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("decodeReceipt(%q) = %+v, %v; json.Unmarshal: %+v, %v", body, got, err, want, wantErr)
	}
	var fast receipt
	rest, fastOK := fastReceipt(body, &fast)
	fastOK = fastOK && len(bytes.TrimLeft(rest, " \t\r\n")) == 0
	if fastOK && (wantErr != nil || !reflect.DeepEqual(fast, want)) {
		t.Fatalf("fastReceipt(%q) = %+v; json.Unmarshal: %+v, %v", body, fast, want, wantErr)
	}

	batch := append(append([]byte(`{"results":[`), body...), "]}\n"...)
	var wantBatch struct {
		Results []batchResult `json:"results"`
	}
	wantErr = json.Unmarshal(batch, &wantBatch)
	results, err := decodeBatch(batch)
	if (err == nil) != (wantErr == nil) || (err == nil && !reflect.DeepEqual(results, wantBatch.Results)) {
		t.Fatalf("decodeBatch(%q) = %+v, %v; json.Unmarshal: %+v, %v", batch, results, err, wantBatch.Results, wantErr)
	}
	return fastOK
}

func TestDecodeReceipt(t *testing.T) {
	for name, body := range vectorReceipts(t) {
		t.Run(name, func(t *testing.T) {
			if !sameAsJSON(t, body) {
				t.Errorf("the fast path refused the server's form: %s", body)
			}
			if !sameAsJSON(t, append(body, '\n')) {
				t.Error("the fast path refused the server's form with its newline")
			}
			// Indented, or with an escape the server does not write:
			// encoding/json's, and the same result.
			var ind bytes.Buffer
			if err := json.Indent(&ind, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			if sameAsJSON(t, ind.Bytes()) {
				t.Error("the fast path took an indented receipt")
			}
			if sameAsJSON(t, bytes.Replace(body, []byte(`\n`), []byte(`\u000a`), 1)) {
				t.Error("the fast path took a \\u escape")
			}
			// Every byte changed, one at a time, to a few others (about
			// 300 places of a receipt).
			for i := 0; i < len(body); i += max(1, len(body)/300) {
				for _, c := range []byte{'"', '\\', 'n', '0', 'A', ',', ' ', 0x01, 0xff} {
					if body[i] == c {
						continue
					}
					m := bytes.Clone(body)
					m[i] = c
					sameAsJSON(t, m)
				}
				sameAsJSON(t, body[:i])
			}
		})
	}
	for _, body := range []string{
		`{"results":[]}`,
		`{"results":[{"error":{"code":"invalid_decision","message":"x"}}]}`,
		`{"id":"x","index":01,"leaf_hash":"","entry":"","checkpoint":"","inclusion_proof":null,"tlog_proof":""}`,
		`{"id":"x","index":1e3,"leaf_hash":"","entry":"","checkpoint":"","inclusion_proof":null,"tlog_proof":""}`,
		`{"id":"x","index":18446744073709551616,"leaf_hash":"","entry":"","checkpoint":"","inclusion_proof":null,"tlog_proof":""}`,
		`{"id":"x","index":1,"leaf_hash":"YQ","entry":"","checkpoint":"","inclusion_proof":null,"tlog_proof":""}`,
		`{"id":"\xff","index":1,"leaf_hash":"","entry":"","checkpoint":"","inclusion_proof":null,"tlog_proof":""}`,
		`{"id":"x\\n","index":1,"leaf_hash":"","entry":"","checkpoint":"","inclusion_proof":[],"tlog_proof":"","artifact":"a"}`,
	} {
		sameAsJSON(t, []byte(body))
	}
	// Nothing decoded is a slice of the answer, which its worker reuses.
	body := []byte(`{"id":"x","index":1,"leaf_hash":"YWJj","entry":"","checkpoint":"","inclusion_proof":null,"tlog_proof":"plain","artifact":"a"}`)
	var rc receipt
	if err := decodeReceipt(body, &rc); err != nil {
		t.Fatal(err)
	}
	clear(body)
	if rc.ID != "x" || string(rc.LeafHash) != "abc" || string(rc.TLogProof) != "plain" || rc.Artifact != "a" {
		t.Fatalf("the receipt changed with the answer's buffer: %+v", rc)
	}
	results, err := decodeBatch([]byte(`{"results":[{"error":{"code":"id_conflict","message":"x"}}]}`))
	if err != nil || len(results) != 1 || results[0].Error == nil || results[0].Error.Code != "id_conflict" {
		t.Fatalf("batch with an error: %+v, %v", results, err)
	}
}

func FuzzFastReceipt(f *testing.F) {
	for _, body := range vectorReceipts(f) {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsJSON(t, body)
	})
}

// TestVerifyTampered serves a vector receipt, whole and tampered with, to
// a run that accepts receipts of other decisions than the ones it sends
// (Config.Replayed): the whole one is acknowledged, each tampered one
// counts as a verification failure, never as throughput. Without
// Replayed, the whole one fails too: it is not of a decision the run
// submitted.
func TestVerifyTampered(t *testing.T) {
	good := vectorReceipts(t)["allow"]
	var tp receipt
	if err := json.Unmarshal(good, &tp); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(tp.TLogProof), "\n")
	// lines: header, extra, index, hashes…, "", the checkpoint.
	// tamper replaces the last old: the tlog_proof is the last member,
	// and what the receipt's other members repeat of it is not what is
	// verified.
	tamper := func(old, new string) []byte {
		i := bytes.LastIndex(good, []byte(old))
		if i < 0 {
			t.Fatalf("no %q in the receipt", old)
		}
		return slices.Concat(good[:i], []byte(new), good[i+len(old):])
	}
	flip := func(s string) string { // the first base64 character changed
		c := byte('A')
		if s[0] == 'A' {
			c = 'B'
		}
		return string(c) + s[1:]
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		ok     bool
		strict bool // not Replayed
	}{
		{"whole", good, true, false},
		{"whole, of another decision than the one submitted", good, false, true},
		{"leaf_hash", tamper(`"leaf_hash":"`, `"leaf_hash":"A`), false, false},
		{"index", tamper(`"index":0,`, `"index":1,`), false, false},
		{"entry in the tlog_proof", tamper(lines[1], lines[1][:len("extra ")]+flip(lines[1][len("extra "):])), false, false},
		{"proof hash", tamper(`\n`+lines[3]+`\n`, `\n`+flip(lines[3])+`\n`), false, false},
		{"checkpoint root", tamper(`\n`+lines[len(lines)-4]+`\n\n`, `\n`+flip(lines[len(lines)-4])+`\n\n`), false, false},
		{"signature", tamper(lines[len(lines)-2][len(lines[len(lines)-2])-10:], "AAAAAAAAA="), false, false},
		{"not JSON", good[:len(good)-1], false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/metrics" {
					w.Write([]byte("process_cpu_seconds_total 1\n"))
					return
				}
				w.WriteHeader(http.StatusCreated)
				w.Write(tc.body)
			}))
			defer srv.Close()
			rep, err := Run(context.Background(), Config{URL: srv.URL, N: 3, Concurrency: 1, LogKey: vectorKey(t), Replayed: !tc.strict})
			if err != nil {
				t.Fatal(err)
			}
			if tc.strict && !strings.Contains(rep.FirstVerifyErr, "not of") {
				t.Errorf("first failure %q does not say the receipt is of another entry", rep.FirstVerifyErr)
			}
			if tc.ok && (rep.Acknowledged != 3 || rep.VerifyFailures != 0) {
				t.Fatalf("whole receipt: %d acknowledged, %d failures (%s)", rep.Acknowledged, rep.VerifyFailures, rep.FirstVerifyErr)
			}
			if !tc.ok && (rep.Acknowledged != 0 || rep.VerifyFailures != 3) {
				t.Fatalf("tampered receipt: %d acknowledged, %d failures", rep.Acknowledged, rep.VerifyFailures)
			}
		})
	}
}

// BenchmarkReceipt decodes and verifies the receipt of an allow as the
// load generator does each one it gets (the checkpoint's signature
// checked once): through the fast path, and through encoding/json.
func BenchmarkReceipt(b *testing.B) {
	body := vectorReceipts(b)["allow-full"]
	for _, bc := range []struct {
		name   string
		decode func([]byte, *receipt) error
	}{
		{"fast", decodeReceipt},
		{"encoding-json", func(body []byte, rc *receipt) error { return json.Unmarshal(body, rc) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &runner{receipts: verifier.NewReceiptVerifier(vectorKey(b))}
			b.ReportAllocs()
			for b.Loop() {
				var rc receipt
				if err := bc.decode(body, &rc); err != nil {
					b.Fatal(err)
				}
				if err := r.verify(&rc, rc.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// proofAnswers are answers of GET /v1/proofs/inclusion as the server
// writes them (appendProofJSON), with 0, 1, 3 and 20 hashes.
func proofAnswers() [][]byte {
	var out [][]byte
	for _, n := range []int{0, 1, 3, 20} {
		b := []byte(`{"index":12345,"tree_size":2000000,"hashes":[`)
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			h := sha256.Sum256([]byte{byte(i), byte(n)})
			b = append(base64.StdEncoding.AppendEncode(append(b, '"'), h[:]), '"')
		}
		out = append(out, append(b, "]}\n"...))
	}
	return out
}

// sameProofAsJSON checks that decodeProof makes of body what
// json.Unmarshal makes of it.
func sameProofAsJSON(t *testing.T, body []byte) {
	t.Helper()
	var want, got proofAnswer
	wantErr := json.Unmarshal(body, &want)
	err := decodeProof(body, &got)
	if (err == nil) != (wantErr == nil) || (err == nil && !reflect.DeepEqual(got, want)) {
		t.Fatalf("decodeProof(%q) = %+v, %v; json.Unmarshal: %+v, %v", body, got, err, want, wantErr)
	}
}

func TestDecodeProof(t *testing.T) {
	for _, body := range proofAnswers() {
		sameProofAsJSON(t, body)
		for i := range body {
			for _, c := range []byte{'"', '\\', 'n', '0', 'A', ',', ' ', ']', 0xff} {
				if body[i] != c {
					m := bytes.Clone(body)
					m[i] = c
					sameProofAsJSON(t, m)
				}
			}
			sameProofAsJSON(t, body[:i])
		}
	}
	var p proofAnswer
	if err := decodeProof(proofAnswers()[3], &p); err != nil || len(p.Hashes) != 20 || len(p.Hashes[19]) != 32 {
		t.Fatalf("decodeProof: %d hashes, %v", len(p.Hashes), err)
	}
}

func FuzzDecodeProof(f *testing.F) {
	for _, body := range proofAnswers() {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameProofAsJSON(t, body)
	})
}
