package distributor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"github.com/govlog/govlog/log/logtest/vectors"
	"github.com/govlog/govlog/log/sqlite"
	"github.com/govlog/govlog/witness"
)

// The witness of FuzzWitnessResponse has the fixed key of the witness
// package's documentation (32 bytes of 0x02), and the log holds the entries
// of testdata (signed by logtest's key). The cosignatures in the seeds under
// testdata/fuzz are dated when the seeds were made, so the worker refuses
// them as stale (its clock check); the seed a real witness makes at each
// run is the accepted one.
const (
	fuzzWitnessKey  = "PRIVATE+KEY+witness.example/w1+df1c0a35+BAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC"
	fuzzWitnessVKey = "witness.example/w1+df1c0a35+BIE5dw6ofRdfVqNUZsNMfszLjYqRtO43ol32D1uPybOU"
)

// goldenLog is the entries of testdata in a real SQLite backend, and an
// RFC 6962 tree of its stored leaves built by the test.
type goldenLog struct {
	backend log.Backend
	cp      log.Checkpoint
	tree    *testonly.Tree
}

func newGoldenLog(t testing.TB) *goldenLog {
	t.Helper()
	files, err := vectors.Files()
	if err != nil {
		t.Fatal(err)
	}
	var vs []vectors.Entry
	if err := json.Unmarshal(files["entries/valid.json"], &vs); err != nil {
		t.Fatal(err)
	}
	signer, _ := logtest.Keys(t)
	g := &goldenLog{tree: testonly.New(rfc6962.DefaultHasher)}
	var batch []*log.Entry
	for _, v := range vs {
		at, err := time.Parse(time.RFC3339Nano, v.LoggedAt)
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := vectors.Submission([]byte(v.Content), v.Kind == "execution", v.Submitter, at)
		if err != nil {
			t.Fatal(err)
		}
		e, err := log.NewEntry(s, at, time.Duration(v.TTLSeconds)*time.Second)
		if err != nil || string(e.Leaf) != v.Leaf {
			t.Fatalf("entry vector %s: %v", v.Name, err)
		}
		// The vectors exercise a parent_id of maximal length that names
		// no decision of the golden log: the backend would refuse it.
		// The leaf stays the golden one.
		e.ParentID = ""
		batch = append(batch, e)
	}
	ctx := context.Background()
	if g.backend, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "log.db"), sqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.backend.Close() })
	sign := func(size uint64, hash [32]byte) (log.Checkpoint, error) {
		return log.SignCheckpoint(signer, size, hash)
	}
	results, cp, err := g.backend.Append(ctx, batch, sign)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil || r.Existing {
			t.Fatalf("entry vector %s: %v", vs[i].Name, r.Err)
		}
		// The stored leaf: the rule book records the golden log's
		// execution reports, which carry no artifact, with a violation,
		// so the tree is the one of the stored leaves, not testdata's.
		g.tree.AppendData(r.Leaf)
	}
	g.cp = cp
	if cp.Size != uint64(len(vs)) || cp.Hash != [32]byte(g.tree.Hash()) {
		t.Fatalf("the log's checkpoint is not the tree of its leaves:\n%s", g.cp.Note)
	}
	return g
}

// stubWitness answers add-checkpoint requests with the fuzzed answers: the
// first, then the second for every later request.
type stubWitness struct {
	srv *httptest.Server

	mu       sync.Mutex
	answers  [2]stubAnswer
	requests [][]byte
}

type stubAnswer struct {
	status int
	body   []byte
}

func newStubWitness(t testing.TB) *stubWitness {
	s := &stubWitness{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		a := s.answers[min(len(s.requests), 1)]
		s.requests = append(s.requests, body)
		s.mu.Unlock()
		rw.WriteHeader(a.status)
		rw.Write(a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// fuzzStatus maps a fuzzed number to a status from 200 to 599 (itself when
// it is one).
func fuzzStatus(n uint16) int {
	if n >= 200 && n < 600 {
		return int(n)
	}
	return 200 + int(n)%400
}

// FuzzWitnessResponse fuzzes what a witness answers the distributor: the
// status and body of the answer to each add-checkpoint request (the first
// answer, then the second to every retry after a 409) and the size the
// worker believes the witness cosigned. A real worker pushes the golden
// checkpoint (size 8) over real HTTP to a stub witness that answers that.
// The worker never panics; it accepts only a 200 whose line is a
// cosignature that verifies, with crypto/ed25519 alone, on the checkpoint
// body by the witness's key, and is one of the lines of the answer; every
// request it sends parses (witness.ParseRequest) and carries the golden
// checkpoint and a consistency proof that verifies from the size it
// claims; it follows at most two 409s, each to the size the 409 gave;
// every failure has a result label of the metrics, the one its status
// maps to, and the push is counted under it. A real witness's answer is
// accepted.
func FuzzWitnessResponse(f *testing.F) {
	g := newGoldenLog(f)
	// A real witness's answer to the golden checkpoint.
	w, err := witness.New(context.Background(), witness.Config{Key: fuzzWitnessKey, Logs: []string{logtest.VerifierKey},
		Database: filepath.Join(f.TempDir(), "w.db")})
	if err != nil {
		f.Fatal(err)
	}
	cosig, err := w.Update(context.Background(), 0, g.cp.Note, nil)
	w.Close()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(200), cosig, uint16(200), cosig, uint8(0))
	f.Add(uint16(409), []byte("3\n"), uint16(200), cosig, uint8(0))

	wkey, err := fnote.NewVerifierForCosignatureV1(fuzzWitnessVKey)
	if err != nil {
		f.Fatal(err)
	}
	stub := newStubWitness(f)
	reg := prometheus.NewRegistry()
	d := &Distributor{
		cfg:    Config{Source: g.backend, PushTimeout: 10 * time.Second},
		logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		http:   stub.srv.Client(),
		ctx:    context.Background(),
		latest: g.cp,
	}
	if d.metrics, err = newMetrics(reg, d); err != nil {
		f.Fatal(err)
	}
	body := g.cp.Body()
	f.Fuzz(func(t *testing.T, status1 uint16, body1 []byte, status2 uint16, body2 []byte, known uint8) {
		stub.mu.Lock()
		stub.answers = [2]stubAnswer{{fuzzStatus(status1), body1}, {fuzzStatus(status2), body2}}
		stub.requests = nil
		stub.mu.Unlock()
		wk := &worker{d: d, url: stub.srv.URL + "/add-checkpoint", key: wkey, size: uint64(known % 10)}
		start := wk.size
		before := pushCounts(t, reg)

		line, err := wk.push(g.cp)
		d.metrics.push(wk.key.Name(), err, time.Second) // as run does

		stub.mu.Lock()
		requests := stub.requests
		stub.mu.Unlock()
		if len(requests) > 1+maxConflictRetries {
			t.Fatalf("%d requests for one push", len(requests))
		}
		// Replay the answers: the size each request must claim, and the
		// outcome.
		old, followed, result, sent := start, 0, "", 0
		for result == "" {
			if old > g.cp.Size {
				result = "conflict" // no request: the witness is ahead
				break
			}
			if sent == len(requests) {
				t.Fatalf("the worker stopped after %d requests: %v", sent, err)
			}
			checkRequest(t, g, requests[sent], old)
			a := stub.answers[min(sent, 1)]
			if a.status == http.StatusNoContent || a.status == http.StatusNotModified {
				a.body = nil // net/http sends no body with these
			}
			sent++
			switch {
			case len(a.body) > maxResponseBytes:
				result = "unreachable"
			case a.status == http.StatusOK:
				result = "cosigned"
				if err != nil {
					result = "invalid_cosignature"
				}
			case a.status == http.StatusConflict && sent <= maxConflictRetries:
				n, perr := strconv.ParseUint(strings.TrimSpace(string(a.body)), 10, 64)
				if perr != nil || n == old {
					result = "conflict"
				} else {
					old = n
					followed++
				}
			default:
				result = map[int]string{400: "bad_request", 403: "forbidden", 404: "unknown_log", 409: "conflict", 422: "inconsistent"}[a.status]
				if result == "" {
					result = "refused"
				}
			}
		}
		if sent != len(requests) {
			t.Fatalf("%d requests, but the answer to request %d ended the push", len(requests), sent)
		}
		var pe *pushError
		switch {
		case err == nil:
			if result != "cosigned" {
				t.Fatalf("accepted %q after a %d", line, stub.answers[min(len(requests)-1, 1)].status)
			}
			checkCosignatureLine(t, line, body)
			if !containsLine(stub.answers[min(len(requests)-1, 1)].body, line) {
				t.Fatalf("accepted %q, which is not a line of the witness's answer", line)
			}
			if wk.size != g.cp.Size || !bytes.Equal(wk.lastLine, line) {
				t.Fatalf("after a cosignature the worker has size %d", wk.size)
			}
		case !errors.As(err, &pe):
			t.Fatalf("a failure that is not a *pushError: %v", err)
		case pe.result != result:
			t.Fatalf("result %q, want %q: %v", pe.result, result, err)
		case wk.lastLine != nil:
			t.Fatal("a failed push left a cosignature")
		}
		if err != nil && followed > 0 && wk.size != old {
			t.Fatalf("after 409s down to size %d the worker believes size %d", old, wk.size)
		}
		// Counted: the push under its result, and each 409 followed under
		// conflict.
		after := pushCounts(t, reg)
		want := map[string]float64{result: 1}
		want["conflict"] += float64(followed)
		for label, n := range after {
			if n-before[label] != want[label] {
				t.Fatalf("pushes counted under %q: %v, want %v (result %q, %d 409s followed)", label, n-before[label], want[label], result, followed)
			}
		}
	})
}

// checkRequest checks an add-checkpoint request the worker sent from size
// old: it parses, carries the golden checkpoint, and its proof verifies.
func checkRequest(t *testing.T, g *goldenLog, req []byte, old uint64) {
	t.Helper()
	gotOld, hashes, cp, err := witness.ParseRequest(req)
	if err != nil || gotOld != old || !bytes.Equal(cp, g.cp.Note) {
		t.Fatalf("request %q: old %d (want %d), %v", req, gotOld, old, err)
	}
	if old == 0 || old == g.cp.Size {
		if len(hashes) != 0 {
			t.Fatalf("a proof of %d hashes from size %d", len(hashes), old)
		}
		return
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old, g.cp.Size, hashes, g.tree.HashAt(old), g.cp.Hash[:]); err != nil {
		t.Fatalf("the consistency proof from %d does not verify: %v", old, err)
	}
}

// checkCosignatureLine verifies a cosignature/v1 line on body with
// crypto/ed25519 only, as tlog-cosignature specifies it: "— <name>
// base64(key ID || timestamp || signature)", the key ID being SHA-256(name
// || "\n" || 0x04 || public key)[:4] and the signature over
// "cosignature/v1\ntime <timestamp>\n" || body.
func checkCosignatureLine(t *testing.T, line, body []byte) {
	t.Helper()
	name, rest, _ := strings.Cut(fuzzWitnessVKey, "+")
	_, key64, _ := strings.Cut(rest, "+")
	key, _ := base64.StdEncoding.DecodeString(key64)
	pub := ed25519.PublicKey(key[1:])
	text, ok := strings.CutPrefix(string(line), "— "+name+" ")
	if !ok || !strings.HasSuffix(text, "\n") || strings.Count(text, "\n") != 1 {
		t.Fatalf("not a signature line of %s: %q", name, line)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(text, "\n"))
	if err != nil || len(sig) != 4+8+64 {
		t.Fatalf("not a cosignature/v1 signature: %q", line)
	}
	id := sha256.Sum256(append([]byte(name+"\n\x04"), pub...))
	if !bytes.Equal(sig[:4], id[:4]) {
		t.Fatalf("key ID %x, want %x", sig[:4], id[:4])
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	msg := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, body)
	if ts == 0 || !ed25519.Verify(pub, msg, sig[12:]) {
		t.Fatalf("the cosignature %q does not verify", line)
	}
}

// containsLine reports whether line is one of the lines of text.
func containsLine(text, line []byte) bool {
	for l := range bytes.Lines(text) {
		if bytes.Equal(l, line) {
			return true
		}
	}
	return false
}

// pushCounts is govlog_witness_pushes_total by result.
func pushCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "govlog_witness_pushes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" {
					out[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
