package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.com/govlog"

// noteKey returns a note key pair derived from a fixed seed byte, and the
// verifier key text.
func noteKey(seed byte) (note.Signer, string, error) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), testOrigin)
	if err != nil {
		return nil, "", err
	}
	s, err := note.NewSigner(skey)
	return s, vkey, err
}

// memLog is an in-memory RFC 6962 log of real govlog entries.
type memLog struct {
	signer note.Signer
	tree   *testonly.Tree
	leaves [][]byte
	ids    []string
	clock  time.Time
}

func newMemLog(signer note.Signer) *memLog {
	return &memLog{signer: signer, tree: testonly.New(rfc6962.DefaultHasher),
		clock: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)}
}

// add logs a submission and returns its index.
func (l *memLog) add(s *log.Submission) (uint64, error) {
	e, err := log.NewEntry(s, l.clock, 300*time.Second)
	if err != nil {
		return 0, err
	}
	l.leaves = append(l.leaves, e.Leaf)
	l.ids = append(l.ids, s.ID)
	l.tree.AppendData(e.Leaf)
	return uint64(len(l.leaves) - 1), nil
}

// tick advances the log's clock: the next entry's logged_at.
func (l *memLog) tick() time.Time {
	l.clock = l.clock.Add(time.Second + 123456789)
	return l.clock
}

func (l *memLog) receipt(index, size uint64) (*log.Receipt, error) {
	cp, err := log.SignCheckpoint(l.signer, size, [32]byte(l.tree.HashAt(size)))
	if err != nil {
		return nil, err
	}
	p, err := l.tree.InclusionProof(index, size)
	if err != nil {
		return nil, err
	}
	hashes := make([][32]byte, len(p))
	for i := range p {
		hashes[i] = [32]byte(p[i])
	}
	return log.NewReceipt(l.ids[index], index, l.leaves[index], cp, hashes), nil
}

// writeLog builds a log of n entries signed by signer (decisions d-i,
// allow when i is even; entry 4, if any, is the execution report x-4 of
// d-2) and writes the receipt of each against the checkpoint of size n to
// dir as r<i>.tlog-proof and r<i>.receipt.json.
func writeLog(dir string, signer note.Signer, n int) error {
	l := newMemLog(signer)
	for i := range n {
		now := l.tick()
		var sub *log.Submission
		if i == 4 {
			x, err := log.ParseExecution([]byte(`{"id":"x-4","decision_id":"d-2","status":"succeeded","at":"2026-11-25T18:00:01Z"}`), now)
			if err != nil {
				return err
			}
			sub = log.ExecutionSubmission(x, "runtime-1")
		} else {
			outcome := "allow"
			if i%2 == 1 {
				outcome = "deny"
			}
			d, err := log.ParseDecision(fmt.Appendf(nil, `{"id":"d-%d","outcome":%q,"decided_at":"2026-11-25T18:00:00Z",`+
				`"subject":"agent-7","action":"deploy","resource":"svc/%d","policy":{"id":"prod-deploy"}}`, i, outcome, i), now)
			if err != nil {
				return err
			}
			sub = log.DecisionSubmission(d, "control-plane-1")
		}
		if _, err := l.add(sub); err != nil {
			return err
		}
	}
	for i := range uint64(n) {
		r, err := l.receipt(i, uint64(n))
		if err != nil {
			return err
		}
		js, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.tlog-proof", i)), []byte(r.TLogProof), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.receipt.json", i)), js, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fakeAPI serves POST /v1/decisions and /v1/executions like a govlog
// server, over a memLog, with failures injected per request.
type fakeAPI struct {
	srv *httptest.Server

	mu     sync.Mutex
	log    *memLog
	index  map[string]uint64
	orig   map[uint64]*log.Receipt
	inject []http.HandlerFunc
	// loggedRules judges decisions by the rules of entries already
	// logged, not of new submissions.
	loggedRules bool
}

func newFakeAPI(signer note.Signer) *fakeAPI {
	f := &fakeAPI{log: newMemLog(signer), index: map[string]uint64{}, orig: map[uint64]*log.Receipt{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/decisions", func(w http.ResponseWriter, r *http.Request) { f.submit(w, r, log.KindDecision) })
	mux.HandleFunc("POST /v1/executions", func(w http.ResponseWriter, r *http.Request) { f.submit(w, r, log.KindExecution) })
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
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
	return f
}

func (f *fakeAPI) failNext(status int, code, retryAfter string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, status, code, "injected "+code)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *fakeAPI) submit(w http.ResponseWriter, r *http.Request, kind log.Kind) {
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
	now := f.log.tick()
	var sub *log.Submission
	if kind == log.KindDecision {
		parse := log.ParseDecision
		if f.loggedRules {
			parse = log.ParseLoggedDecision
		}
		d, err := parse(body, now)
		if err != nil {
			writeParseError(w, err, "invalid_decision")
			return
		}
		sub = log.DecisionSubmission(d, "anonymous")
	} else {
		x, err := log.ParseExecution(body, now)
		if err != nil {
			writeParseError(w, err, "invalid_execution")
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
		if !log.SameSubmission(f.log.leaves[i], sub) {
			writeError(w, http.StatusConflict, "id_conflict", "id already logged with different content")
			return
		}
		writeJSON(w, http.StatusOK, f.orig[i])
		return
	}
	i, err := f.log.add(sub)
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	rec, err := f.log.receipt(i, i+1)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "log_unavailable", err.Error())
		return
	}
	f.index[key], f.orig[i] = i, rec
	writeJSON(w, http.StatusCreated, rec)
}

func writeParseError(w http.ResponseWriter, err error, code string) {
	if errors.Is(err, log.ErrInvalidJSON) {
		code = "invalid_json"
	}
	writeError(w, http.StatusBadRequest, code, err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// runCLI runs govlog in-process and returns its exit status and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, bytes.NewBufferString(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}
