package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Rate limits.
//
// With Config.RateLimit set, each identity (Anonymous included) has a
// token bucket of Config.RateBurst submissions that refills at RateLimit
// submissions per second. A decision or an execution report costs one
// submission; a batch costs one per item. A request that finds too few in
// its identity's bucket gets 429 overloaded with a Retry-After (whole
// seconds) after which it would be admitted, and nothing is logged. A
// batch larger than the bucket is admitted when the bucket is full and
// leaves it in debt, so the long-run rate holds whatever the batch size.

// maxBuckets is how many buckets the limiter keeps before it forgets the
// full ones (a full bucket is the same as no bucket).
const maxBuckets = 10000

// rateLimiter is a token bucket per identity. Its methods are safe for
// concurrent use.
type rateLimiter struct {
	rate  float64 // submissions per second
	burst float64
	clock func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket // guarded by mu
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newRateLimiter returns a limiter of rate submissions per second with
// bursts of burst (default: rate rounded up, at least 1), or nil when rate
// is not positive (no limit).
func newRateLimiter(rate float64, burst int, clock func() time.Time) *rateLimiter {
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rate)))
	}
	return &rateLimiter{rate: rate, burst: float64(burst), clock: clock, buckets: map[string]*bucket{}}
}

// take takes n submissions from id's bucket. It returns 0 when they were
// taken, or how long to wait until they would be.
func (l *rateLimiter) take(id string, n int) time.Duration {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[id]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[id] = b
	}
	l.refill(b, now)
	need := min(float64(n), l.burst)
	if b.tokens >= need {
		b.tokens -= float64(n)
		return 0
	}
	return time.Duration((need - b.tokens) / l.rate * float64(time.Second))
}

// refill adds what b earned since its last refill, up to the burst.
func (l *rateLimiter) refill(b *bucket, now time.Time) {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
}

// sweep forgets the buckets that are full.
func (l *rateLimiter) sweep(now time.Time) {
	for id, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, id)
		}
	}
}

// charge takes n submissions from who's bucket, or answers 429 overloaded
// with the Retry-After that would let them through.
func (s *Server) charge(c echo.Context, who string, n int) error {
	if s.limiter == nil {
		return nil
	}
	wait := s.limiter.take(who, n)
	if wait == 0 {
		return nil
	}
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return &apiError{http.StatusTooManyRequests, codeOverloaded,
		clip(fmt.Sprintf("%q exceeds its rate limit of %g submissions per second; retry in %d s", who, s.limiter.rate, secs))}
}
