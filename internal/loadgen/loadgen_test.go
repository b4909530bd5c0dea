package loadgen

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func TestQuantile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1
	}
	for _, tc := range []struct {
		name string
		d    []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.999, 7 * time.Millisecond},
		{"median of 4", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p90 of 10 is the 9th", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 100 is the max", ms(hundred...), 0.999, 100 * time.Millisecond},
		{"p99.9 of 1000", ms(thousand...), 0.999, 999 * time.Millisecond},
		{"max", ms(1, 5, 9), 1, 9 * time.Millisecond},
		{"tiny q is the min", ms(1, 5, 9), 0.0001, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Quantile(tc.d, tc.q); got != tc.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
	p := percentiles(ms(thousand...))
	if p.P50 != 500 || p.P90 != 900 || p.P99 != 990 || p.P999 != 999 || p.Max != 1000 {
		t.Fatalf("percentiles = %+v", p)
	}
}

func TestSchedule(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		rate      float64
		batch, n  int
		d         time.Duration
		count     int
		due3      time.Duration // due time of request 3 after start
		dueLastAt time.Duration
	}{
		{"n at 1000/s", 1000, 1, 10, 0, 10, 3 * time.Millisecond, 9 * time.Millisecond},
		{"duration at 2000/s", 2000, 1, 0, time.Second, 2000, 1500 * time.Microsecond, 999500 * time.Microsecond},
		{"n ends first", 100, 1, 5, time.Second, 5, 30 * time.Millisecond, 40 * time.Millisecond},
		{"duration ends first", 100, 1, 1000, 100 * time.Millisecond, 10, 30 * time.Millisecond, 90 * time.Millisecond},
		{"batches: rate counts decisions", 1000, 50, 120, 0, 3, 150 * time.Millisecond, 100 * time.Millisecond},
		{"fractional interval does not drift", 3, 1, 0, 10 * time.Second, 30, time.Second, 9666666667},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(t0, tc.rate, tc.batch, tc.n, tc.d)
			if s.count != tc.count {
				t.Fatalf("count = %d, want %d", s.count, tc.count)
			}
			if got := s.due(3).Sub(t0); got != tc.due3 {
				t.Errorf("due(3) = start+%v, want start+%v", got, tc.due3)
			}
			if got := s.due(s.count - 1).Sub(t0); got != tc.dueLastAt {
				t.Errorf("due(last) = start+%v, want start+%v", got, tc.dueLastAt)
			}
			if s.due(0) != t0 {
				t.Errorf("due(0) = %v, want the start", s.due(0))
			}
		})
	}
}

func TestLate(t *testing.T) {
	due := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		sent time.Duration
		want bool
	}{{-time.Millisecond, false}, {0, false}, {LateAfter, false}, {LateAfter + 1, true}, {time.Second, true}} {
		if got := late(due, due.Add(tc.sent)); got != tc.want {
			t.Errorf("late(sent at due%+v) = %v, want %v", tc.sent, got, tc.want)
		}
	}
}

// TestOpenLoopCoordinatedOmission runs the open loop against a server that
// takes 40 ms per request, with one client and requests due every 10 ms: a
// closed loop would report ~40 ms for every request; the open loop must
// count the queueing too, and the requests as late.
func TestOpenLoopCoordinatedOmission(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(40 * time.Millisecond)
		http.Error(w, `{"error":{"code":"busy"}}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, vkey, err := note.GenerateKey(rand.Reader, "test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	open, err := Run(ctx, Config{URL: srv.URL, N: 10, Rate: 100, Concurrency: 1, LogKey: v})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := Run(ctx, Config{URL: srv.URL, N: 10, Concurrency: 1, LogKey: v})
	if err != nil {
		t.Fatal(err)
	}
	if open.Mode != "open" || closed.Mode != "closed" || open.TargetRate != 100 {
		t.Fatalf("modes: %q %q rate %v", open.Mode, closed.Mode, open.TargetRate)
	}
	if open.Requests != 10 || open.Errors["busy"] != 10 || open.Acknowledged != 0 {
		t.Fatalf("open: %+v", open)
	}
	// Request k is sent at ~40k ms and answered at ~40(k+1) ms but was due
	// at 10k ms: the last waited ~30×9 ms before it was sent.
	if open.Late < 8 {
		t.Errorf("late = %d, want ≥ 8 of 10", open.Late)
	}
	if open.LatencyMS.Max < 250 {
		t.Errorf("open-loop max latency %.1f ms, want ≥ 250 ms (queueing hidden)", open.LatencyMS.Max)
	}
	if closed.LatencyMS.Max > 200 || closed.Late != 0 {
		t.Errorf("closed-loop max latency %.1f ms (late %d), want ~40 ms", closed.LatencyMS.Max, closed.Late)
	}
	if !slices.IsSorted(open.Latencies) || len(open.Latencies) != 10 {
		t.Errorf("latencies: %v", open.Latencies)
	}
	// The latency from due time splits into the wait for a free client
	// (the send lag, ~30×9 ms for the last) and the round trip (~40 ms).
	if open.SendLagMS == nil || open.FromSendMS == nil {
		t.Fatalf("open loop without send lag or latency from send: %+v", open)
	}
	if lag := open.SendLagMS; lag.Max < 200 || lag.Max > open.LatencyMS.Max {
		t.Errorf("send lag max %.1f ms, want ≥ 200 and ≤ the latency's %.1f", lag.Max, open.LatencyMS.Max)
	}
	if fs := open.FromSendMS; fs.P50 < 35 || fs.Max > 200 {
		t.Errorf("latency from send p50 %.1f max %.1f ms, want ~40", fs.P50, fs.Max)
	}
	if closed.SendLagMS != nil || closed.FromSendMS != nil {
		t.Errorf("closed loop with send lag %v or latency from send %v", closed.SendLagMS, closed.FromSendMS)
	}
}

func TestDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"nope"}}`, http.StatusBadRequest)
	}))
	defer srv.Close()
	_, vkey, err := note.GenerateKey(rand.Reader, "test")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		cfg        Config
		minR, maxR int
	}{
		{"open loop: rate × duration requests", Config{Rate: 200, Duration: 300 * time.Millisecond, Concurrency: 4}, 60, 60},
		{"closed loop stops at the deadline", Config{Duration: 200 * time.Millisecond, Concurrency: 2}, 2, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL, cfg.LogKey = srv.URL, v
			start := time.Now()
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < cfg.Duration*8/10 || took > cfg.Duration+2*time.Second {
				t.Errorf("took %v for a %v run", took, cfg.Duration)
			}
			if rep.Requests < tc.minR || rep.Requests > tc.maxR || rep.Errors["nope"] != rep.Decisions {
				t.Errorf("report: %+v", rep)
			}
		})
	}
	if _, err := Run(context.Background(), Config{URL: srv.URL, LogKey: v}); err == nil {
		t.Error("no N and no Duration: no error")
	}
}
