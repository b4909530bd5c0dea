package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/govlog/govlog/log"
)

// metricValue returns the value of the sample line that starts with series
// (a metric name with its labels in Prometheus order), or -1 if none.
func metricValue(t *testing.T, e *env, series string) float64 {
	t.Helper()
	r := e.get("/metrics")
	if r.status != 200 {
		t.Fatalf("GET /metrics: %s", r)
	}
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return v
		}
	}
	return -1
}

// filled returns an env whose log holds n entries: the artifact key's
// entry, which New logs first, then decisions d-1 … d-n-1; recs[i] is the
// receipt of entry i.
func filled(t *testing.T, n int) (*env, []*receipt) {
	e := newEnv(t, envOptions{})
	var items [][]byte
	for i := 1; i < n; i++ {
		items = append(items, decision(fmt.Sprintf("d-%d", i), "deny", nil))
	}
	recs := make([]*receipt, n)
	key, err := e.srv.log.Lookup(context.Background(), log.KindKey, e.keys.Artifact.KeyID())
	if err != nil || key.Receipt.Index != 0 {
		t.Fatalf("the artifact key's entry: %v", err)
	}
	recs[0] = &receipt{ID: key.Receipt.ID, Index: 0, LeafHash: key.Receipt.LeafHash, Entry: key.Receipt.Entry,
		Checkpoint: string(key.Receipt.Checkpoint)}
	for len(items) > 0 {
		chunk := items[:min(len(items), MaxBatchItems)]
		items = items[len(chunk):]
		r, results := e.batch(chunk...)
		if r.status != 200 {
			t.Fatalf("setup: %s", r)
		}
		for _, raw := range results {
			rec := parseReceipt(t, raw)
			recs[rec.Index] = rec
		}
	}
	return e, recs
}

func (e *env) checkpoint() log.Checkpoint {
	e.t.Helper()
	r := e.get("/v1/checkpoint")
	if r.status != 200 || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		e.t.Fatalf("GET /v1/checkpoint: %s %v", r, r.header)
	}
	cp, err := log.OpenCheckpoint(r.body, e.verifier)
	if err != nil {
		e.t.Fatal(err)
	}
	return cp
}

func TestCheckpointAndLog(t *testing.T) {
	e, _ := filled(t, 5)
	cp := e.checkpoint()
	if cp.Size != 5 || cp.Origin != testOrigin {
		t.Fatalf("checkpoint %+v", cp)
	}
	if r := e.do(http.MethodHead, "/v1/checkpoint", "", nil); r.status != 200 {
		t.Fatalf("HEAD /v1/checkpoint: %s", r)
	}
	r := e.get("/v1/log")
	var info map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&info); err != nil || r.status != 200 {
		t.Fatalf("GET /v1/log: %s", r)
	}
	want := map[string]any{
		"origin": testOrigin, "verifier_key": e.keys.VerifierKey, "tree_size": json.Number("5"),
		"witness_policy": "", "jwks_uri": JWKSPath, "artifact_ttl_seconds": json.Number("300"),
	}
	if fmt.Sprint(info) != fmt.Sprint(want) {
		t.Errorf("GET /v1/log = %v, want %v", info, want)
	}

	set := e.jwks()
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys", set.Len())
	}
	key, _ := set.Key(0)
	if isPrivate, _ := jwk.IsPrivateKey(key); isPrivate || bytes.Contains(e.get(JWKSPath).body, []byte(`"d"`)) {
		t.Fatal("the JWKS publishes a private key")
	}
	if key.KeyID() != e.keys.Artifact.KeyID() || key.Algorithm().String() != "EdDSA" || key.KeyUsage() != "sig" {
		t.Errorf("JWKS key kid %q alg %v use %q", key.KeyID(), key.Algorithm(), key.KeyUsage())
	}
}

func TestInclusionProof(t *testing.T) {
	e, recs := filled(t, 9)
	cp := e.checkpoint()
	oldSize := uint64(5)
	b64url := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	for _, tc := range []struct {
		name, query string
		index, size uint64
	}{
		{"index, latest", "index=3", 3, 9},
		{"index, size", "index=3&tree_size=5", 3, 5},
		{"first", "index=0&tree_size=1", 0, 1},
		{"last", "index=8", 8, 9},
		{"leaf hash", "leaf_hash=" + b64url(recs[7].LeafHash), 7, 9},
		{"leaf hash padded", "leaf_hash=" + base64.URLEncoding.EncodeToString(recs[2].LeafHash) + "&tree_size=5", 2, 5},
		{"leaf hash in base64, as receipts carry it", "leaf_hash=" + url.QueryEscape(base64.StdEncoding.EncodeToString(recs[3].LeafHash)), 3, 9},
		{"leaf hash in base64 without padding", "leaf_hash=" + base64.RawStdEncoding.EncodeToString(recs[4].LeafHash), 4, 9},
		{"percent-encoded", "%69ndex=%34", 4, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			r := e.get("/v1/proofs/inclusion?" + tc.query)
			if r.status != 200 {
				t.Fatalf("%s", r)
			}
			var p struct {
				Index    uint64   `json:"index"`
				TreeSize uint64   `json:"tree_size"`
				Hashes   [][]byte `json:"hashes"`
			}
			dec := json.NewDecoder(bytes.NewReader(r.body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil || p.Hashes == nil {
				t.Fatalf("%s: %v", r.body, err)
			}
			if p.Index != tc.index || p.TreeSize != tc.size {
				t.Fatalf("proof of %d in %d, want %d in %d", p.Index, p.TreeSize, tc.index, tc.size)
			}
			root := cp.Hash
			if tc.size != cp.Size {
				root = e.rootAt(tc.size, cp)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, p.TreeSize, recs[p.Index].LeafHash, p.Hashes, root[:]); err != nil {
				t.Fatalf("proof does not verify: %v", err)
			}
		})
	}
	unknown := log.LeafHash([]byte("not in the log"))
	for _, tc := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"neither", "tree_size=5", 400, "invalid_request"},
		{"none", "", 400, "invalid_request"},
		{"both", "index=1&leaf_hash=" + b64url(recs[1].LeafHash), 400, "invalid_request"},
		{"index = size", "index=5&tree_size=5", 400, "invalid_request"},
		{"index beyond", "index=9", 400, "invalid_request"},
		{"size beyond", "index=1&tree_size=10", 400, "invalid_request"},
		{"size zero", "index=0&tree_size=0", 400, "invalid_request"},
		{"leaf beyond size", "leaf_hash=" + b64url(recs[7].LeafHash) + "&tree_size=" + strconv.FormatUint(oldSize, 10), 400, "invalid_request"},
		{"unknown leaf", "leaf_hash=" + b64url(unknown[:]), 404, "not_found"},
		{"short leaf hash", "leaf_hash=" + b64url(unknown[:31]), 400, "invalid_request"},
		{"unknown base64 leaf hash, + unescaped", "leaf_hash=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), 404, "not_found"},
		{"both alphabets", "leaf_hash=" + strings.Replace(base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), "/", "_", 1), 400, "invalid_request"},
		{"empty leaf hash", "leaf_hash=", 400, "invalid_request"},
		{"plus", "index=%2B1", 400, "invalid_request"},
		{"plus raw", "index=+1", 400, "invalid_request"},
		{"leading zero", "index=01", 400, "invalid_request"},
		{"space", "index=%201", 400, "invalid_request"},
		{"fraction", "index=1.0", 400, "invalid_request"},
		{"negative", "index=-1", 400, "invalid_request"},
		{"hex", "index=0x1", 400, "invalid_request"},
		{"empty", "index=", 400, "invalid_request"},
		{"no value", "index", 400, "invalid_request"},
		{"overflow", "index=18446744073709551616", 400, "invalid_request"},
		{"huge", "index=1&tree_size=18446744073709551615", 400, "invalid_request"},
		{"duplicate", "index=1&index=1", 400, "invalid_request"},
		{"unknown", "index=1&foo=bar", 400, "invalid_request"},
		{"empty parameter", "index=1&&tree_size=5", 400, "invalid_request"},
		{"semicolon", "index=1;tree_size=5", 400, "invalid_request"},
		{"bad escape", "index=%zz", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.with(t).get("/v1/proofs/inclusion?"+tc.query), tc.status, tc.code)
		})
	}
}

// rootAt returns the root hash of the tree of the given size, checked by a
// consistency proof to cp.
func (e *env) rootAt(size uint64, cp log.Checkpoint) [32]byte {
	e.t.Helper()
	var leaves [][]byte
	r := e.get(fmt.Sprintf("/v1/entries?start=0&count=%d", size))
	var out struct {
		Entries []struct {
			Index uint64 `json:"index"`
			Entry []byte `json:"entry"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || uint64(len(out.Entries)) != size {
		e.t.Fatalf("entries: %s", r)
	}
	for _, x := range out.Entries {
		leaves = append(leaves, x.Entry)
	}
	return rootOf(leaves)
}

// rootOf computes the RFC 6962 root of leaves (a reference implementation
// for the tests, straight from RFC 6962 §2.1).
func rootOf(leaves [][]byte) [32]byte {
	if len(leaves) == 1 {
		return log.LeafHash(leaves[0])
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := rootOf(leaves[:k]), rootOf(leaves[k:])
	return [32]byte(rfc6962.DefaultHasher.HashChildren(l[:], r[:]))
}

func TestConsistencyProof(t *testing.T) {
	e, _ := filled(t, 9)
	cp := e.checkpoint()
	for _, tc := range []struct{ from, to uint64 }{{1, 9}, {5, 9}, {9, 9}, {3, 7}, {1, 1}} {
		t.Run(fmt.Sprintf("%d-%d", tc.from, tc.to), func(t *testing.T) {
			e := e.with(t)
			r := e.get(fmt.Sprintf("/v1/proofs/consistency?from=%d&to=%d", tc.from, tc.to))
			if r.status != 200 {
				t.Fatalf("%s", r)
			}
			var p struct {
				From   uint64   `json:"from"`
				To     uint64   `json:"to"`
				Hashes [][]byte `json:"hashes"`
			}
			if err := json.Unmarshal(r.body, &p); err != nil || p.From != tc.from || p.To != tc.to || p.Hashes == nil {
				t.Fatalf("%s", r)
			}
			r1, r2 := e.rootAt(tc.from, cp), e.rootAt(tc.to, cp)
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, p.From, p.To, p.Hashes, r1[:], r2[:]); err != nil {
				t.Fatalf("proof does not verify: %v", err)
			}
		})
	}
	if r2 := e.rootAt(9, cp); r2 != cp.Hash {
		t.Fatal("the reference root differs from the checkpoint")
	}
	for _, q := range []string{"from=0&to=5", "from=6&to=5", "from=1&to=10", "from=1", "to=5", "", "from=1&to=5&x=1", "from=01&to=5", "from=1&to=5&to=5"} {
		t.Run(q, func(t *testing.T) {
			wantError(t, e.with(t).get("/v1/proofs/consistency?"+q), 400, "invalid_request")
		})
	}
}

func TestEntries(t *testing.T) {
	e, recs := filled(t, MaxEntries+5)
	get := func(t *testing.T, q string) []uint64 {
		r := e.with(t).get("/v1/entries?" + q)
		if r.status != 200 {
			t.Fatalf("%s", r)
		}
		var out struct {
			Entries []struct {
				Index uint64 `json:"index"`
				Entry []byte `json:"entry"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		var idx []uint64
		for _, x := range out.Entries {
			if !bytes.Equal(x.Entry, recs[x.Index].Entry) {
				t.Fatalf("entry %d differs from its receipt's", x.Index)
			}
			idx = append(idx, x.Index)
		}
		return idx
	}
	for _, tc := range []struct {
		q        string
		first, n uint64
	}{
		{"start=0", 0, MaxEntries},
		{"start=0&count=3", 0, 3},
		{"start=1000&count=1000", 1000, 5},
		{"count=2&start=7", 7, 2},
		{"start=1&count=5000", 1, MaxEntries},
		{"start=1004", 1004, 1},
	} {
		t.Run(tc.q, func(t *testing.T) {
			idx := get(t, tc.q)
			if uint64(len(idx)) != tc.n || idx[0] != tc.first || idx[len(idx)-1] != tc.first+tc.n-1 {
				t.Fatalf("got %d entries from %d", len(idx), idx[0])
			}
		})
	}
	for _, q := range []string{"start=1005", "start=99999999999", "count=5", "start=0&count=0", "start=0&count=-1", "start=-0", "start=0&count=1&count=1", "start=0&limit=3", "start=%200", "start=+0"} {
		t.Run(q, func(t *testing.T) {
			wantError(t, e.with(t).get("/v1/entries?"+q), 400, "invalid_request")
		})
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	if r := e.get("/healthz"); r.status != 200 {
		t.Fatalf("healthz: %s", r)
	}
	if r := e.get("/readyz"); r.status != 200 {
		t.Fatalf("readyz: %s", r)
	}
	e.backend.failReady.Store(true)
	wantError(t, e.get("/readyz"), 503, "log_unavailable")
	if r := e.get("/healthz"); r.status != 200 {
		t.Fatalf("healthz while storage fails: %s", r)
	}
	e.backend.failReady.Store(false)
	if r := e.get("/readyz"); r.status != 200 {
		t.Fatalf("readyz after recovery: %s", r)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.post("/v1/decisions", decision("m-1", "allow", nil))
	e.post("/v1/decisions", decision("m-1", "deny", nil))
	e.batch(decision("m-2", "deny", nil), decision("m-3", "deny", nil))
	e.get("/nope/nope")
	r := e.get("/metrics")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %v", r.status, r.header)
	}
	for series, want := range map[string]float64{
		`govlog_http_requests_total{code="201",route="/v1/decisions"}`:       1,
		`govlog_http_requests_total{code="409",route="/v1/decisions"}`:       1,
		`govlog_http_requests_total{code="200",route="/v1/decisions/batch"}`: 1,
		`govlog_http_requests_total{code="404",route="other"}`:               1,
		`govlog_http_request_duration_seconds_count{route="/v1/decisions"}`:  2,
		`govlog_batch_request_items_sum`:                                     2,
		`govlog_tree_size`:                                                   4, // with the key's entry
		`govlog_commit_errors_total`:                                         0,
	} {
		if got := metricValue(t, e, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := metricValue(t, e, "govlog_commit_entries_sum"); got != 5 {
		t.Errorf("govlog_commit_entries_sum = %v, want 5 (the key and 3 appended, 1 refused)", got)
	}
	if got := metricValue(t, e, "govlog_commit_duration_seconds_count"); got < 1 {
		t.Errorf("no commit duration observed")
	}
	wantError(t, e.get("/metrics?x=1"), 400, "invalid_request")
	_ = http.StatusOK
}

// TestConfigFromLog checks that the server reports and signs with the
// Log's own artifact lifetime and origin: it has no copy to disagree with.
func TestConfigFromLog(t *testing.T) {
	e := newEnv(t, envOptions{ttl: 90 * time.Second})
	r := e.get("/v1/log")
	var info struct {
		Origin string `json:"origin"`
		TTL    int64  `json:"artifact_ttl_seconds"`
	}
	if err := json.Unmarshal(r.body, &info); err != nil || r.status != 200 {
		t.Fatalf("GET /v1/log: %s", r)
	}
	if info.TTL != 90 || info.Origin != testOrigin {
		t.Fatalf("GET /v1/log says origin %q and a TTL of %ds, want %q and the log's 90s", info.Origin, info.TTL, testOrigin)
	}
	body := decision("ttl-1", "allow", nil)
	resp := e.post("/v1/decisions", body)
	if resp.status != 201 {
		t.Fatalf("POST: %s", resp)
	}
	e.verifyArtifact(parseReceipt(t, resp.body), body)
}
