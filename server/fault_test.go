package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/govlog/govlog/log"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{log.ErrInvalidJSON, 400, "invalid_json"},
		{&log.FieldError{Err: log.ErrInvalidDecision, Field: "policy.id", Reason: "is required"}, 400, "invalid_decision"},
		{&log.FieldError{Err: log.ErrInvalidExecution, Field: "status", Reason: "bad"}, 400, "invalid_execution"},
		{log.ErrOutOfRange, 400, "invalid_request"},
		{log.ErrTooLarge, 413, "too_large"},
		{log.ErrIDConflict, 409, "id_conflict"},
		{log.ErrSequenceConflict, 409, "sequence_conflict"},
		{log.ErrNotAuthorized, 409, "not_authorized"},
		{log.ErrUnknownParent, 422, "unknown_parent"},
		{log.ErrUnknownDecision, 422, "unknown_decision"},
		{log.ErrNotFound, 404, "not_found"},
		{log.ErrPushback, 429, "overloaded"},
		{log.ErrUnavailable, 503, "log_unavailable"},
		{log.ErrFork, 503, "log_unavailable"},
		{context.DeadlineExceeded, 503, "log_unavailable"},
		{context.Canceled, 503, "log_unavailable"},
		{errors.New("disk on fire"), 503, "log_unavailable"},
		{errPanic{"boom"}, 503, "log_unavailable"},
		{fmt.Errorf("failed to x: %w", log.ErrIDConflict), 409, "id_conflict"},
		// Unavailability wins over what it wraps.
		{fmt.Errorf("%w: %w", log.ErrUnavailable, log.ErrNotFound), 503, "log_unavailable"},
		{fmt.Errorf("%w: %w", log.ErrFork, log.ErrOutOfRange), 503, "log_unavailable"},
		{echo.ErrNotFound, 404, "not_found"},
		{echo.ErrMethodNotAllowed, 405, "method_not_allowed"},
		{echo.ErrUnsupportedMediaType, 415, "unsupported_media_type"},
		{echo.ErrStatusRequestEntityTooLarge, 413, "too_large"},
		{echo.ErrBadRequest, 400, "invalid_request"},
		{echo.ErrInternalServerError, 503, "log_unavailable"},
		{&http.MaxBytesError{Limit: 10}, 413, "too_large"},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			ae := classify(tc.err)
			if ae.Status != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Errorf("classify(%v) = %+v, want %d %s", tc.err, ae, tc.status, tc.code)
			}
			if ae.Status >= 500 && strings.Contains(ae.Message, tc.err.Error()) {
				t.Errorf("a 503 message reveals the cause: %q", ae.Message)
			}
		})
	}
}

func TestStorageFailure(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := decision("d-1", "allow", nil)
	e.backend.failAppend.Store(true)
	wantError(t, e.post("/v1/decisions", body), 503, "log_unavailable")
	wantError(t, e.post("/v1/executions", execution("x-1", "d-1")), 503, "log_unavailable")
	// A batch where nothing could be acknowledged is refused whole.
	r, _ := e.batch(body, decision("d-2", "deny", nil), []byte(`{}`))
	wantError(t, r, 503, "log_unavailable")
	if got := metricValue(t, e, "govlog_commit_errors_total"); got < 1 {
		t.Errorf("govlog_commit_errors_total = %v", got)
	}
	// Storage recovers: the same submission is logged.
	e.backend.failAppend.Store(false)
	if r := e.post("/v1/decisions", body); r.status != http.StatusCreated {
		t.Fatalf("after recovery: %s", r)
	}
}

func TestPanicRecovered(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.backend.panicLookup.Store(true)
	wantError(t, e.get("/v1/decisions/d-1"), 503, "log_unavailable")
	e.backend.panicLookup.Store(false)
	wantError(t, e.get("/v1/decisions/d-1"), 404, "not_found")
}

func TestSubmitTimeout(t *testing.T) {
	e := newEnv(t, envOptions{submitTimeout: 200 * time.Millisecond})
	e.backend.hold()
	wantError(t, e.post("/v1/decisions", decision("d-1", "allow", nil)), 503, "log_unavailable")
	e.backend.release()
}

// TestPushback fills the queue of a log that takes one pending submission:
// the next ones get 429 overloaded, a batch of them a whole 429.
func TestPushback(t *testing.T) {
	e := newEnv(t, envOptions{maxPending: 1})
	e.backend.hold()
	var wg sync.WaitGroup
	statuses := make(chan int, 64)
	submit := func(id string) {
		wg.Go(func() { statuses <- e.post("/v1/decisions", decision(id, "deny", nil)).status })
	}
	submit("held") // taken by the sequencer, held in Append
	e.backend.waitEntered(t)
	// Fill the queue: submissions are taken until one is refused.
	var refused bool
	for i := 0; i < 32 && !refused; i++ {
		submit(fmt.Sprintf("q-%d", i))
		select {
		case st := <-statuses:
			if st != http.StatusTooManyRequests {
				t.Fatalf("status %d while the log is held", st)
			}
			refused = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !refused {
		t.Fatal("the queue never filled")
	}
	wantError(t, e.post("/v1/decisions", decision("late", "deny", nil)), 429, "overloaded")
	r, _ := e.batch(decision("b-1", "deny", nil), decision("b-2", "deny", nil))
	wantError(t, r, 429, "overloaded")
	e.backend.release()
	wg.Wait()
	close(statuses)
	// The held submission and the one the queue holds are logged; on a
	// loaded machine a submission of the fill loop may reach the queue
	// only after the one that found it full, and be refused too.
	created := 0
	for st := range statuses {
		switch st {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a submission made while the log was held got %d", st)
		}
	}
	if created < 2 {
		t.Errorf("%d submissions logged after the release, want the held one and the queued one", created)
	}
}

// TestDrain: once draining, readiness and new submissions are refused, and
// the submission in flight is answered with its receipt before the log
// closes.
func TestDrain(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.backend.hold()
	inflight := make(chan response, 1)
	body := decision("d-1", "allow", nil)
	go func() { inflight <- e.post("/v1/decisions", body) }()
	e.backend.waitEntered(t)

	e.srv.Drain()
	wantError(t, e.get("/readyz"), 503, "log_unavailable")
	wantError(t, e.post("/v1/decisions", decision("d-2", "allow", nil)), 503, "log_unavailable")
	r, _ := e.batch(decision("d-3", "allow", nil))
	wantError(t, r, 503, "log_unavailable")
	wantError(t, e.post("/v1/executions", execution("x-1", "d-1")), 503, "log_unavailable")
	if r := e.get("/healthz"); r.status != 200 {
		t.Errorf("healthz while draining: %s", r)
	}

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- e.srv.Close(ctx)
	}()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the submission in flight was answered", err)
	case <-time.After(100 * time.Millisecond):
	}
	e.backend.release()
	got := <-inflight
	if got.status != http.StatusCreated {
		t.Fatalf("submission in flight: %s", got)
	}
	e.verifyArtifact(parseReceipt(t, got.body), body)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantError(t, e.post("/v1/decisions", decision("d-4", "allow", nil)), 503, "log_unavailable")
}
