package server

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
)

// discardWriter is the cheapest http.ResponseWriter: the benchmark below
// measures the handler, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

// BenchmarkPostDecision is POST /v1/decisions through the whole handler
// (echo's router and middleware, admission, parsing, the rule book, the
// group commit on the real SQLite log, the receipt, the artifact of an
// allow, the JSON answer), without a socket, from 32 goroutines so that
// group commits hold several decisions as under load: decisions like the
// load generator's, 70% allows, one in ten naming an earlier allow as its
// parent. The requests are built before the timer starts; allocs/op and
// B/op are then a single decision's on the server's side of the socket.
func BenchmarkPostDecision(b *testing.B) {
	e := newEnv(b, envOptions{})
	h := e.srv
	// The parents, logged before the timer starts.
	const parents = 100
	for i := range parents {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, postRequest(b, decision(fmt.Sprintf("parent-%03d", i), "allow", nil)))
		if w.status != http.StatusCreated {
			b.Fatalf("parent %d: status %d", i, w.status)
		}
	}
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		outcome := "allow"
		if i%10 >= 7 {
			outcome = "deny"
		}
		var extra map[string]any
		if i%10 == 1 {
			extra = map[string]any{"parent_id": fmt.Sprintf("parent-%03d", i%parents)}
		}
		reqs[i] = postRequest(b, decision(fmt.Sprintf("bench-%08d", i), outcome, extra))
	}
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, reqs[i])
			if w.status != http.StatusCreated {
				b.Errorf("decision %d: status %d", i, w.status)
				return
			}
		}
	})
}

func postRequest(b *testing.B, body []byte) *http.Request {
	req, err := http.NewRequest(http.MethodPost, "/v1/decisions", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}
