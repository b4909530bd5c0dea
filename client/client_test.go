package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/verifier"
	"golang.org/x/mod/sumdb/note"
)

func decision(id, outcome string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"outcome":%q,"decided_at":"2026-11-25T18:00:00Z","subject":"agent-7",`+
		`"action":"deploy","resource":"svc/api","policy":{"id":"prod-deploy"}}`, id, outcome)
}

// sleeps records the waits of a client instead of sleeping.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newClient(t *testing.T, f *fakeAPI, opts ...Option) (*Client, *sleeps) {
	t.Helper()
	c, err := New(f.srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	c.sleep = s.sleep
	return c, s
}

func TestSubmit(t *testing.T) {
	for _, verify := range []bool{false, true} {
		t.Run(fmt.Sprintf("verify=%v", verify), func(t *testing.T) {
			f := newFakeAPI(t)
			var opts []Option
			if verify {
				opts = append(opts, WithLogKey(f.key))
			}
			c, _ := newClient(t, f, opts...)
			ctx := context.Background()
			for i := range 5 {
				if _, _, err := c.Submit(ctx, decision(fmt.Sprintf("warmup-%d", i), "deny")); err != nil {
					t.Fatal(err)
				}
			}
			r, created, err := c.Submit(ctx, decision("d-1", "allow"))
			if err != nil {
				t.Fatal(err)
			}
			if !created || r.ID != "d-1" || r.Index != 5 {
				t.Fatalf("receipt %+v, created %v", r, created)
			}
			v, err := verifier.Receipt([]byte(r.TLogProof), f.key)
			if err != nil {
				t.Fatal(err)
			}
			if v.Entry.ID != "d-1" || v.Checkpoint.Size != 6 {
				t.Fatalf("the receipt proves %q in a tree of %d", v.Entry.ID, v.Checkpoint.Size)
			}

			// Resubmitting gets the original receipt, even after the log grew.
			if _, _, err := c.Submit(ctx, decision("d-2", "deny")); err != nil {
				t.Fatal(err)
			}
			again, created, err := c.Submit(ctx, decision("d-1", "allow"))
			if err != nil {
				t.Fatal(err)
			}
			if created || !reflect.DeepEqual(again, r) {
				t.Fatalf("resubmission: created %v, receipt %+v, want %+v", created, again, r)
			}

			// The same id with other content is a conflict, not retried.
			n := f.requestCount()
			_, _, err = c.Submit(ctx, decision("d-1", "deny"))
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != "id_conflict" {
				t.Fatalf("error %v, want a 409 id_conflict APIError", err)
			}
			if got := f.requestCount() - n; got != 1 {
				t.Fatalf("%d requests for a conflict, want 1", got)
			}
		})
	}
}

func TestSubmitRetries(t *testing.T) {
	f := newFakeAPI(t)
	c, s := newClient(t, f, WithLogKey(f.key), WithMaxAttempts(5))
	f.injectNext(
		errorAnswer(http.StatusServiceUnavailable, "log_unavailable", "2"),
		errorAnswer(http.StatusTooManyRequests, "overloaded", "1"),
		dropConnection,
		errorAnswer(http.StatusServiceUnavailable, "log_unavailable", ""),
	)
	r, created, err := c.Submit(context.Background(), decision("d-1", "allow"))
	if err != nil {
		t.Fatal(err)
	}
	if !created || r.ID != "d-1" {
		t.Fatalf("receipt %+v, created %v", r, created)
	}
	if n := f.requestCount(); n != 5 {
		t.Fatalf("%d requests, want 5", n)
	}
	if len(s.waits) != 4 || s.waits[0] != 2*time.Second || s.waits[1] != time.Second {
		t.Fatalf("waits %v, want 2s, 1s and two backoffs", s.waits)
	}
	for i, w := range s.waits[2:] {
		if d := min(backoffBase<<(i+2), backoffMax); w < d/2 || w > d {
			t.Errorf("backoff %d is %v, want between %v and %v", i+3, w, d/2, d)
		}
	}
}

// TestSubmitRetryAfter waits for real: the server refuses once with
// Retry-After: 1.
func TestSubmitRetryAfter(t *testing.T) {
	f := newFakeAPI(t)
	c, err := New(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	f.injectNext(errorAnswer(http.StatusServiceUnavailable, "log_unavailable", "1"))
	start := time.Now()
	if _, _, err := c.Submit(context.Background(), decision("d-1", "allow")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("answered after %v, before the server's Retry-After of 1s", d)
	}
	if n := f.requestCount(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestSubmitGivesUp(t *testing.T) {
	always503 := func(f *fakeAPI, n int) {
		for range n {
			f.injectNext(errorAnswer(http.StatusServiceUnavailable, "log_unavailable", "1"))
		}
	}
	t.Run("attempts", func(t *testing.T) {
		f := newFakeAPI(t)
		c, s := newClient(t, f, WithMaxAttempts(3))
		always503(f, 10)
		_, _, err := c.Submit(context.Background(), decision("d-1", "allow"))
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != "log_unavailable" || ae.RetryAfter != time.Second {
			t.Fatalf("error %v, want the 503 APIError", err)
		}
		if !strings.Contains(err.Error(), "gave up after 3 attempts") {
			t.Errorf("error %q does not say how many attempts", err)
		}
		if n := f.requestCount(); n != 3 || len(s.waits) != 2 {
			t.Fatalf("%d requests and %d waits, want 3 and 2", n, len(s.waits))
		}
	})
	t.Run("Retry-After too long", func(t *testing.T) {
		f := newFakeAPI(t)
		c, s := newClient(t, f, WithMaxRetryWait(10*time.Second))
		f.injectNext(errorAnswer(http.StatusTooManyRequests, "overloaded", "3600"))
		_, _, err := c.Submit(context.Background(), decision("d-1", "allow"))
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != "overloaded" || !strings.Contains(err.Error(), "retry after 1h0m0s") {
			t.Fatalf("error %v", err)
		}
		if n := f.requestCount(); n != 1 || len(s.waits) != 0 {
			t.Fatalf("%d requests and %d waits, want 1 and 0", n, len(s.waits))
		}
	})
	t.Run("deadline before Retry-After", func(t *testing.T) {
		f := newFakeAPI(t)
		c, s := newClient(t, f)
		f.injectNext(errorAnswer(http.StatusServiceUnavailable, "log_unavailable", "5"))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, err := c.Submit(ctx, decision("d-1", "allow"))
		var ae *APIError
		if !errors.As(err, &ae) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "the next one, due in 5s, would come after the deadline") {
			t.Fatalf("error %v", err)
		}
		if len(s.waits) != 0 {
			t.Fatalf("waited %v", s.waits)
		}
	})
	t.Run("canceled while waiting", func(t *testing.T) {
		f := newFakeAPI(t)
		c, err := New(f.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.sleep = func(context.Context, time.Duration) error { cancel(); return ctx.Err() }
		f.injectNext(errorAnswer(http.StatusServiceUnavailable, "log_unavailable", "1"))
		_, _, err = c.Submit(ctx, decision("d-1", "allow"))
		var ae *APIError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &ae) {
			t.Fatalf("error %v, want context.Canceled and the last APIError", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		f := newFakeAPI(t)
		c, s := newClient(t, f, WithMaxAttempts(2))
		f.srv.Close()
		_, _, err := c.Submit(context.Background(), decision("d-1", "allow"))
		if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
			t.Fatalf("error %v", err)
		}
		if len(s.waits) != 1 {
			t.Fatalf("waits %v, want 1", s.waits)
		}
	})
}

func TestAPIErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.token = "s3cret"
	c, s := newClient(t, f, WithBearerToken("s3cret"))
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		body   []byte
		inject http.HandlerFunc
		status int
		code   string
	}{
		{name: "invalid JSON", body: []byte(`{"id":`), status: 400, code: "invalid_json"},
		{name: "invalid decision", body: []byte(`{"id":"d-1"}`), status: 400, code: "invalid_decision"},
		{name: "forbidden", body: decision("d-1", "allow"), inject: errorAnswer(http.StatusForbidden, "forbidden", ""), status: 403, code: "forbidden"},
		{name: "violation with receipt", body: decision("d-1", "allow"), inject: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"uses_exhausted","message":"no use left"},"receipt":{"id":"x-1","index":7}}`))
		}, status: 409, code: "uses_exhausted"},
		{name: "not JSON", body: decision("d-1", "allow"), inject: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "<html>teapot</html>", http.StatusTeapot)
		}, status: http.StatusTeapot},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.inject != nil {
				f.injectNext(tc.inject)
			}
			n := f.requestCount()
			_, _, err := c.Submit(ctx, tc.body)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || ae.Message == "" {
				t.Fatalf("error %#v, want status %d code %q", err, tc.status, tc.code)
			}
			if (ae.Receipt != nil) != (tc.status == 409) || (ae.Receipt != nil && (ae.Receipt.ID != "x-1" || ae.Receipt.Index != 7)) {
				t.Fatalf("receipt %+v", ae.Receipt)
			}
			if got := f.requestCount() - n; got != 1 {
				t.Fatalf("%d requests, want 1", got)
			}
		})
	}
	if len(s.waits) != 0 {
		t.Fatalf("retried: %v", s.waits)
	}
	t.Run("no token", func(t *testing.T) {
		c, _ := newClient(t, f)
		_, _, err := c.Submit(ctx, decision("d-1", "allow"))
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || ae.Code != "unauthenticated" {
			t.Fatalf("error %v", err)
		}
	})
}

func TestSubmitVerifies(t *testing.T) {
	f := newFakeAPI(t)
	c, _ := newClient(t, f, WithLogKey(f.key))
	ctx := context.Background()
	if _, _, err := c.Submit(ctx, decision("d-0", "deny")); err != nil {
		t.Fatal(err)
	}
	other, err := c.Decision(ctx, "d-0")
	if err != nil {
		t.Fatal(err)
	}
	_, wrongKey, err := noteKeyPair(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(r *log.Receipt)
		key    note.Verifier
		want   error
		says   string
	}{
		{name: "wrong log key", key: wrongKey, want: verifier.ErrBadSignature},
		{name: "tlog_proof of another entry", tamper: func(r *log.Receipt) { r.TLogProof = other.TLogProof }, want: verifier.ErrMismatch},
		{name: "receipt of another decision", tamper: func(r *log.Receipt) { *r = *other }, says: "does not hold the submitted decision"},
		{name: "bad proof", tamper: func(r *log.Receipt) { r.TLogProof = strings.Replace(r.TLogProof, "index 1", "index 0", 1); r.Index = 0 }, want: verifier.ErrBadProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			f.tamper = tc.tamper
			f.mu.Unlock()
			key := tc.key
			if key == nil {
				key = f.key
			}
			c, _ := newClient(t, f, WithLogKey(key))
			_, _, err := c.Submit(ctx, decision("d-1", "allow"))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func noteKeyPair(seed byte) (note.Signer, note.Verifier, error) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), testOrigin)
	if err != nil {
		return nil, nil, err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, err
	}
	v, err := note.NewVerifier(vkey)
	return s, v, err
}

func TestLookups(t *testing.T) {
	f := newFakeAPI(t)
	c, _ := newClient(t, f, WithLogKey(f.key))
	ctx := context.Background()
	first, _, err := c.Submit(ctx, decision("d-1", "allow"))
	if err != nil {
		t.Fatal(err)
	}
	x, created, err := c.SubmitExecution(ctx, []byte(`{"id":"x-1","decision_id":"d-1","status":"started","at":"2026-11-25T18:00:01Z"}`))
	if err != nil || !created || x.ID != "x-1" || x.Index != 1 {
		t.Fatalf("execution receipt %+v, created %v, error %v", x, created, err)
	}
	_, _, err = c.SubmitExecution(ctx, []byte(`{"id":"x-2","decision_id":"d-9","status":"started","at":"2026-11-25T18:00:01Z"}`))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || ae.Code != "unknown_decision" {
		t.Fatalf("error %v, want 422 unknown_decision", err)
	}

	// Decision returns the receipt against the latest checkpoint.
	r, err := c.Decision(ctx, "d-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Index != first.Index || !bytes.Equal(r.Entry, first.Entry) || r.Checkpoint == first.Checkpoint || r.Artifact != "" {
		t.Fatalf("lookup %+v, submitted %+v", r, first)
	}
	if v, err := verifier.ReceiptJSON(mustJSON(t, r), f.key); err != nil || v.Checkpoint.Size != 2 {
		t.Fatalf("lookup receipt: %v", err)
	}
	if r, err := c.Execution(ctx, "x-1"); err != nil || r.ID != "x-1" {
		t.Fatalf("execution lookup %+v, %v", r, err)
	}
	_, err = c.Decision(ctx, "d-404")
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound || ae.Code != "not_found" ||
		ae.Method != http.MethodGet || !strings.HasSuffix(ae.URL, "/v1/decisions/d-404") {
		t.Fatalf("error %v (%s %s), want 404 not_found of GET …/v1/decisions/d-404", err, ae.Method, ae.URL)
	}
	// A decision id is looked up among decisions only.
	if _, err := c.Decision(ctx, "x-1"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("error %v, want 404", err)
	}

	t.Run("receipt of another entry", func(t *testing.T) {
		f.mu.Lock()
		f.tamper = func(r *log.Receipt) { *r = *x }
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.tamper = nil; f.mu.Unlock() }()
		if _, err := c.Decision(ctx, "d-1"); err == nil || !strings.Contains(err.Error(), `the server sent the receipt of execution "x-1"`) {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("checkpoint", func(t *testing.T) {
		cp, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Origin != testOrigin || cp.Size != 2 {
			t.Fatalf("checkpoint %+v", cp)
		}
		noKey, _ := newClient(t, f)
		if _, err := noKey.Checkpoint(ctx); !errors.Is(err, ErrNoLogKey) {
			t.Fatalf("error %v, want ErrNoLogKey", err)
		}
		_, wrongKey, _ := noteKeyPair(2)
		wrong, _ := newClient(t, f, WithLogKey(wrongKey))
		if _, err := wrong.Checkpoint(ctx); !errors.Is(err, verifier.ErrBadSignature) {
			t.Fatalf("error %v, want ErrBadSignature", err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "http://x/?q=1", "http://x/#f", "://"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := New("http://127.0.0.1:1/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.JoinPath("/v1/decisions/" + "a:b").String(); got != "http://127.0.0.1:1/prefix/v1/decisions/a:b" {
		t.Fatalf("URL %s", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1", time.Second},
		{"120", 2 * time.Minute},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
