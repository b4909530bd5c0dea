package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.com/govlog"

// fakeAPI is a small in-memory server that speaks the decision, execution
// and checkpoint endpoints of the wire contract, with real entries, a real
// RFC 6962 tree and real signatures. Failures are injected per request.
type fakeAPI struct {
	t      testing.TB
	srv    *httptest.Server
	signer note.Signer
	key    note.Verifier
	// token, when set, is the bearer token writes need.
	token string

	mu       sync.Mutex
	tree     *testonly.Tree
	leaves   [][]byte
	index    map[string]uint64       // "decision/id" → index
	receipts map[uint64]*log.Receipt // original receipts
	clock    time.Time
	// inject holds handlers that answer the next requests instead of the
	// API, one each.
	inject []http.HandlerFunc
	// tamper, when set, rewrites every receipt before it is sent.
	tamper func(*log.Receipt)
	// requests lists "METHOD path" of every request received.
	requests []string
}

func newFakeAPI(t testing.TB) *fakeAPI {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 32)), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{t: t, tree: testonly.New(rfc6962.DefaultHasher), index: map[string]uint64{},
		receipts: map[uint64]*log.Receipt{}, clock: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)}
	if f.signer, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if f.key, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/decisions", func(w http.ResponseWriter, r *http.Request) { f.submit(w, r, log.KindDecision) })
	mux.HandleFunc("POST /v1/executions", func(w http.ResponseWriter, r *http.Request) { f.submit(w, r, log.KindExecution) })
	mux.HandleFunc("GET /v1/decisions/{id}", func(w http.ResponseWriter, r *http.Request) { f.lookup(w, r, log.KindDecision) })
	mux.HandleFunc("GET /v1/executions/{id}", func(w http.ResponseWriter, r *http.Request) { f.lookup(w, r, log.KindExecution) })
	mux.HandleFunc("GET /v1/checkpoint", f.checkpoint)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		var h http.HandlerFunc
		if len(f.inject) > 0 {
			h, f.inject = f.inject[0], f.inject[1:]
		}
		f.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) injectNext(hs ...http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, hs...)
}

func (f *fakeAPI) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// errorAnswer answers with a JSON API error and, when retryAfter is not
// empty, a Retry-After header.
func errorAnswer(status int, code, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, status, code, "injected "+code)
	}
}

// dropConnection closes the connection without answering.
func dropConnection(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *fakeAPI) submit(w http.ResponseWriter, r *http.Request, kind log.Kind) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeError(w, http.StatusUnauthorized, "unauthenticated", "a bearer token is required")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, log.MaxSubmissionBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(time.Second + 123456789)
	var sub *log.Submission
	switch kind {
	case log.KindDecision:
		d, err := log.ParseDecision(body, f.clock)
		if err != nil {
			f.parseError(w, err, "invalid_decision")
			return
		}
		sub = log.DecisionSubmission(d, "anonymous")
	default:
		x, err := log.ParseExecution(body, f.clock)
		if err != nil {
			f.parseError(w, err, "invalid_execution")
			return
		}
		if _, ok := f.index["decision/"+x.DecisionID]; !ok {
			writeError(w, http.StatusUnprocessableEntity, "unknown_decision", "decision_id names no decision in the log")
			return
		}
		sub = log.ExecutionSubmission(x, "anonymous")
	}
	key := kind.String() + "/" + sub.ID
	if i, ok := f.index[key]; ok {
		if !log.SameSubmission(f.leaves[i], sub) {
			writeError(w, http.StatusConflict, "id_conflict", "id already logged with different content")
			return
		}
		f.writeReceipt(w, http.StatusOK, f.receipts[i])
		return
	}
	e, err := log.NewEntry(sub, f.clock, 300*time.Second)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	i := uint64(len(f.leaves))
	f.leaves = append(f.leaves, e.Leaf)
	f.tree.AppendData(e.Leaf)
	f.index[key] = i
	f.receipts[i] = f.receiptLocked(i, f.tree.Size())
	f.writeReceipt(w, http.StatusCreated, f.receipts[i])
}

func (f *fakeAPI) parseError(w http.ResponseWriter, err error, code string) {
	if errors.Is(err, log.ErrInvalidJSON) {
		code = "invalid_json"
	}
	writeError(w, http.StatusBadRequest, code, err.Error())
}

func (f *fakeAPI) receiptLocked(index, size uint64) *log.Receipt {
	cp, err := log.SignCheckpoint(f.signer, size, [32]byte(f.tree.HashAt(size)))
	if err != nil {
		f.t.Error(err)
	}
	p, err := f.tree.InclusionProof(index, size)
	if err != nil {
		f.t.Error(err)
	}
	hashes := make([][32]byte, len(p))
	for i := range p {
		hashes[i] = [32]byte(p[i])
	}
	pe, err := log.ParseEntry(f.leaves[index])
	if err != nil {
		f.t.Error(err)
	}
	return log.NewReceipt(pe.ID, index, f.leaves[index], cp, hashes)
}

func (f *fakeAPI) writeReceipt(w http.ResponseWriter, status int, r *log.Receipt) {
	c := *r
	if f.tamper != nil {
		f.tamper(&c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(&c)
}

func (f *fakeAPI) lookup(w http.ResponseWriter, r *http.Request, kind log.Kind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.index[kind.String()+"/"+r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no %v %q", kind, r.PathValue("id")))
		return
	}
	f.writeReceipt(w, http.StatusOK, f.receiptLocked(i, f.tree.Size()))
}

func (f *fakeAPI) checkpoint(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	size := f.tree.Size()
	cp, err := log.SignCheckpoint(f.signer, size, [32]byte(f.tree.HashAt(size)))
	if err != nil {
		f.t.Error(err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(cp.Note)
}
