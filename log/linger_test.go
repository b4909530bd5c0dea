package log_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"github.com/govlog/govlog/log/sqlite"
)

// denials returns n submissions of deny decisions with the ids
// prefix-from … prefix-(from+n-1), decided now.
func denials(t *testing.T, prefix string, from, n int) []*log.Submission {
	t.Helper()
	now := time.Now()
	out := make([]*log.Submission, n)
	for i := range out {
		d, err := log.ParseDecision([]byte(fmt.Sprintf(`{"id":"%s-%d","outcome":"deny","decided_at":%q,"subject":"s","action":"a","policy":{"id":"p"}}`,
			prefix, from+i, now.UTC().Format(time.RFC3339))), now)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = log.DecisionSubmission(d, "s")
	}
	return out
}

// TestLinger checks Config.Linger: a batch much smaller than the previous
// one waits for more submissions, up to the previous batch's size, or
// until Linger has passed.
func TestLinger(t *testing.T) {
	for _, c := range []struct {
		name   string
		linger time.Duration
		// rest is submitted once the first submission of the second
		// batch was taken; want are the batch sizes after the first.
		want []int
	}{
		// The sequencer holds the lone submission until the other seven
		// arrive (a whole group, taken at once): one batch of eight.
		{"waits for the previous batch's size", time.Hour, []int{8}},
		// Nothing more arrives within Linger: the lone submission goes
		// alone, then the rest.
		{"waits no longer than Linger", time.Millisecond, []int{1, 7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "log.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu      sync.Mutex
				batches []int
			)
			appended := make(chan struct{}, 16)
			signer, verifier := logtest.Keys(t)
			l, err := log.New(ctx, log.Config{Backend: b, Signer: signer, Verifier: verifier, Linger: c.linger,
				OnBatch: func(n int, _ time.Duration, err error) {
					if err != nil {
						t.Errorf("batch of %d: %v", n, err)
					}
					mu.Lock()
					batches = append(batches, n)
					mu.Unlock()
					appended <- struct{}{}
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := l.Close(ctx); err != nil {
					t.Error(err)
				}
			}()
			subs := func(from, n int) []*log.Submission { return denials(t, "d", from, n) }
			submitAll := func(s []*log.Submission) {
				out, err := l.SubmitAll(ctx, s)
				if err != nil {
					t.Error(err)
					return
				}
				for _, o := range out {
					if o.Err != nil || !o.Result.Created {
						t.Errorf("submission: %v", o.Err)
					}
				}
			}
			// The first batch: eight.
			submitAll(subs(0, 8))
			<-appended
			// A lone submission, taken while nothing else waits; then
			// the other seven, one group.
			var wg sync.WaitGroup
			wg.Go(func() { submitAll(subs(8, 1)) })
			if c.linger < time.Hour {
				// The lone submission's batch is appended first.
				<-appended
			} else {
				// Give the sequencer time to take the lone submission:
				// were the seven queued by then, they would make one
				// batch of eight all the same.
				time.Sleep(20 * time.Millisecond)
			}
			wg.Go(func() { submitAll(subs(9, 7)) })
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			got := batches[1:]
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("batches after the first: %v, want %v", got, c.want)
			}
		})
	}
}
