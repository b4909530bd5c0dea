package loadgen

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// LateAfter is how far past its due time an open-loop request may be taken
// by a client before it counts as late (Report.Late: all clients were busy).
const LateAfter = time.Millisecond

// schedule is an open-loop arrival schedule: request k (from 0) is due at
// start + k·every, and there are count requests.
type schedule struct {
	start time.Time
	every float64 // nanoseconds between due times; float: no rounding drift
	count int
}

// newSchedule plans the requests of an open-loop run at rate decisions/s in
// requests of batch decisions: n decisions (0: no limit) and requests due
// before start+d (0: no limit), whichever ends first. At least one limit
// must be set.
func newSchedule(start time.Time, rate float64, batch, n int, d time.Duration) schedule {
	s := schedule{start: start, every: float64(time.Second) * float64(batch) / rate, count: math.MaxInt}
	if n > 0 {
		s.count = (n + batch - 1) / batch
	}
	if d > 0 {
		// Requests due strictly before start+d.
		s.count = min(s.count, int(math.Ceil(float64(d)/s.every-1e-9)))
	}
	return s
}

// due is the time request k is due.
func (s schedule) due(k int) time.Time {
	return s.start.Add(time.Duration(math.Round(float64(k) * s.every)))
}

// late reports whether a request due at due and taken by a client at taken
// counts as late.
func late(due, taken time.Time) bool {
	return taken.Sub(due) > LateAfter
}

// runOpen runs the open-loop schedule of r.cfg: Concurrency clients take the
// requests in due order; each waits for its request's due time (a client
// that was busy past it sends at once) and the latency counts from the due
// time.
func (r *runner) runOpen(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	r.rep.Mode, r.rep.TargetRate = "open", cfg.Rate
	r.startCPU(ctx)
	start := time.Now()
	s := newSchedule(start, cfg.Rate, cfg.Batch, cfg.N, cfg.Duration)
	var next atomic.Int64
	var lateCount atomic.Int64
	var wg sync.WaitGroup
	for w := range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen, c := newGenerator(cfg.Prefix, w), r.ep.conn(ctx, requestTimeout)
			defer c.close()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= s.count {
					return
				}
				due := s.due(k)
				// Late: every client was busy past the due time (a timer
				// that wakes up late is not counted; its delay is still
				// in the latency).
				if late(due, time.Now()) {
					lateCount.Add(1)
				}
				if wait := time.Until(due); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						return
					case <-timer.C:
					}
				}
				n := cfg.Batch
				if cfg.N > 0 {
					n = min(n, cfg.N-k*cfg.Batch)
				}
				r.request(c, gen, n, due)
			}
		}()
	}
	wg.Wait()
	r.rep.Late = int(lateCount.Load())
	return r.finish(time.Since(start)), ctx.Err()
}
