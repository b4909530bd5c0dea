package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
)

// The calls of FuzzServerAnswer, by the fuzzer's op modulo their number.
const (
	opSubmit = iota
	opDecision
	opCheckpoint
	opConsistency
	opTile
	opEntryBundle
	opTilesCheckpoint
	opCount
)

// fuzzWidth is the width of the tile and bundle FuzzServerAnswer asks for.
const fuzzWidth = 5

// fuzzDecisionID is the id of the decision FuzzServerAnswer submits and
// looks up.
const fuzzDecisionID = "fz-1"

// stubServer answers every request with one status, Retry-After and body.
type stubServer struct {
	srv *httptest.Server

	mu         sync.Mutex
	status     int
	retryAfter string
	body       []byte
	requests   int
}

func newStubServer(t testing.TB) *stubServer {
	s := &stubServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		status, retryAfter, body := s.status, s.retryAfter, s.body
		s.requests++
		s.mu.Unlock()
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// printable keeps the bytes of s that may appear in a header value.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

// fakeAnswers returns real answers of the fake API (real entries, tree and
// signatures, with the key derived from 32 bytes of 0x01 and a fixed
// clock): the receipt of fuzzDecisionID as created and as looked up, the
// checkpoint, and an error.
func fakeAnswers(t testing.TB) (created, lookup, checkpoint, apiErr []byte) {
	f := newFakeAPI(t)
	get := func(method, path string, body []byte) []byte {
		req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	get(http.MethodPost, "/v1/decisions", decision("fz-0", "deny"))
	created = get(http.MethodPost, "/v1/decisions", decision(fuzzDecisionID, "allow"))
	get(http.MethodPost, "/v1/decisions", decision("fz-2", "deny"))
	lookup = get(http.MethodGet, "/v1/decisions/"+fuzzDecisionID, nil)
	checkpoint = get(http.MethodGet, "/v1/checkpoint", nil)
	apiErr = get(http.MethodGet, "/v1/decisions/nope", nil)
	return created, lookup, checkpoint, apiErr
}

// FuzzServerAnswer fuzzes what a govlog server answers the client: one
// status (200 to 599), Retry-After and body, for every request of one call
// (Submit, Decision, Checkpoint, ConsistencyProof, Tile, EntryBundle or
// TilesCheckpoint), with the log key configured and two attempts. The
// client never panics, and:
//
//   - an answer of the wrong status is an *APIError with that status, a
//     non-negative RetryAfter, and the JSON error's code and message when
//     the body is one (a non-empty, clipped message otherwise);
//   - a receipt it returns verifies, checked here with the merkle package
//     alone: its checkpoint is signed by the log key, its inclusion proof
//     verifies, and its entry holds the decision submitted (or looked up);
//   - a checkpoint it returns is the body, and opens with the log key;
//   - a consistency proof is for the sizes asked, a tile has exactly the
//     width asked, bundles and tiles checkpoints are the body as sent.
//
// The seeds are real answers of the fake API (fakeAnswers) and mangled
// ones (testdata/fuzz/FuzzServerAnswer).
func FuzzServerAnswer(f *testing.F) {
	created, lookup, checkpoint, apiErr := fakeAnswers(f)
	f.Add(uint8(opSubmit), uint16(201), "", created)
	f.Add(uint8(opSubmit), uint16(200), "", created)
	f.Add(uint8(opDecision), uint16(200), "", lookup)
	f.Add(uint8(opCheckpoint), uint16(200), "", checkpoint)
	f.Add(uint8(opDecision), uint16(404), "", apiErr)
	f.Add(uint8(opSubmit), uint16(503), "1", apiErr)
	f.Add(uint8(opConsistency), uint16(200), "", []byte(`{"from":3,"to":5,"hashes":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}`))
	f.Add(uint8(opTile), uint16(200), "", bytes.Repeat([]byte{7}, 32*fuzzWidth))
	f.Add(uint8(opTilesCheckpoint), uint16(200), "", checkpoint)

	_, key, err := noteKeyPair(1)
	if err != nil {
		f.Fatal(err)
	}
	stub := newStubServer(f)
	submitted := decision(fuzzDecisionID, "allow")
	f.Fuzz(func(t *testing.T, op uint8, status uint16, retryAfter string, body []byte) {
		code := int(status)
		if code < 200 || code >= 600 {
			code = 200 + code%400
		}
		stub.mu.Lock()
		stub.status, stub.retryAfter, stub.body, stub.requests = code, printable(retryAfter), body, 0
		stub.mu.Unlock()
		c, err := New(stub.srv.URL, WithLogKey(key), WithMaxAttempts(2), WithHTTPClient(stub.srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		c.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
		ctx := context.Background()
		// ok is whether the call accepts a status; check checks what it
		// returned when it succeeded.
		ok := func(s int) bool { return s == http.StatusOK }
		var (
			callErr error
			check   func(t *testing.T)
		)
		switch int(op) % opCount {
		case opSubmit:
			ok = func(s int) bool { return s == http.StatusOK || s == http.StatusCreated }
			r, created, err := c.Submit(ctx, submitted)
			callErr, check = err, func(t *testing.T) {
				if created != (code == http.StatusCreated) {
					t.Fatalf("created %v for a %d", created, code)
				}
				checkReceipt(t, r, key, submitted)
			}
		case opDecision:
			r, err := c.Decision(ctx, fuzzDecisionID)
			callErr, check = err, func(t *testing.T) { checkReceipt(t, r, key, submitted) }
		case opCheckpoint:
			cp, err := c.Checkpoint(ctx)
			callErr, check = err, func(t *testing.T) {
				opened, err := log.OpenCheckpoint(body, key)
				if err != nil || !bytes.Equal(cp.Note, body) || opened.Size != cp.Size || opened.Hash != cp.Hash {
					t.Fatalf("returned checkpoint %+v of %q (%v)", cp, body, err)
				}
			}
		case opConsistency:
			hashes, err := c.ConsistencyProof(ctx, 3, 5)
			callErr, check = err, func(t *testing.T) {
				var p struct {
					From, To uint64
					Hashes   [][]byte
				}
				if json.Unmarshal(body, &p) != nil || p.From != 3 || p.To != 5 || len(p.Hashes) != len(hashes) {
					t.Fatalf("returned %d hashes of %q", len(hashes), body)
				}
			}
		case opTile:
			data, err := c.Tile(ctx, 0, 0, fuzzWidth)
			callErr, check = err, func(t *testing.T) {
				if len(data) != 32*fuzzWidth || !bytes.Equal(data, body) {
					t.Fatalf("a tile of width %d with %d bytes", fuzzWidth, len(data))
				}
			}
		case opEntryBundle:
			data, err := c.EntryBundle(ctx, 0, fuzzWidth)
			callErr, check = err, func(t *testing.T) {
				if !bytes.Equal(data, body) {
					t.Fatal("the bundle returned is not the body")
				}
			}
		case opTilesCheckpoint:
			data, err := c.TilesCheckpoint(ctx)
			callErr, check = err, func(t *testing.T) {
				if !bytes.Equal(data, body) || len(data) > verifier.MaxCheckpointBytes {
					t.Fatalf("the checkpoint returned is %d bytes, not the body", len(data))
				}
			}
		}
		if callErr == nil {
			check(t)
		}
		checkFailure(t, callErr, code, body, ok, stub)
	})
}

// checkFailure checks a call's error: an answer of a status the call does
// not accept is an *APIError describing it.
func checkFailure(t *testing.T, err error, code int, body []byte, ok func(int) bool, stub *stubServer) {
	t.Helper()
	stub.mu.Lock()
	requests := stub.requests
	stub.mu.Unlock()
	if requests < 1 || requests > 2 {
		t.Fatalf("%d requests", requests)
	}
	if ok(code) || (code >= 200 && code < 300 && err != nil && !isAPIError(err)) {
		return
	}
	if err == nil {
		t.Fatalf("a %d is accepted", code)
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		t.Fatalf("a %d gives %v, not an *APIError", code, err)
	}
	if ae.Status != code || ae.RetryAfter < 0 {
		t.Fatalf("APIError %+v for a %d", ae, code)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
		if ae.Code != e.Error.Code || ae.Message != e.Error.Message {
			t.Fatalf("APIError %+v for the error %+v", ae, e.Error)
		}
		return
	}
	if ae.Code != "" || ae.Message == "" || len(ae.Message) > 200+len("…") {
		t.Fatalf("APIError %+v for a body that is not a JSON error", ae)
	}
}

func isAPIError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae)
}

// checkReceipt verifies a receipt the client returned with the merkle
// package: the checkpoint is signed by the log key, the inclusion proof of
// the entry verifies, and the entry holds the decision.
func checkReceipt(t *testing.T, r *log.Receipt, key note.Verifier, submitted []byte) {
	t.Helper()
	cp, err := log.OpenCheckpoint([]byte(r.Checkpoint), key)
	if err != nil {
		t.Fatalf("the receipt's checkpoint does not open: %v", err)
	}
	lh := log.LeafHash(r.Entry)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.Index, cp.Size, lh[:], r.InclusionProof, cp.Hash[:]); err != nil {
		t.Fatalf("the receipt's inclusion proof does not verify: %v", err)
	}
	e, err := log.ParseEntry(r.Entry)
	if err != nil {
		t.Fatalf("the receipt's entry: %v", err)
	}
	d, err := log.ParseDecision(submitted, e.LoggedAt)
	if err != nil || e.Kind != log.KindDecision || e.ID != fuzzDecisionID || !bytes.Equal(e.Content, d.Canonical) {
		t.Fatalf("the receipt's entry is not the decision: %q", r.Entry)
	}
}
