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

// gatedPipeliner is a log.Pipeliner on a SQLite backend: StartAppend
// appends the batch at once, and its finish waits until the test lets
// it return. It records the order of the calls.
type gatedPipeliner struct {
	log.Backend
	started chan int      // the number of each batch StartAppend began
	release chan struct{} // one value lets one finish return

	mu       sync.Mutex
	n        int     // batches started
	finished int     // batches finished
	errs     []error // order violations
}

func (g *gatedPipeliner) StartAppend(ctx context.Context, batch []*log.Entry, sign log.SignFunc) (func(context.Context) ([]log.AppendResult, log.Checkpoint, error), error) {
	g.mu.Lock()
	g.n++
	k := g.n
	if g.n-g.finished > 2 {
		g.errs = append(g.errs, fmt.Errorf("batch %d started while batches %d to %d were unfinished", k, g.finished+1, k-1))
	}
	g.mu.Unlock()
	results, cp, err := g.Backend.Append(ctx, batch, sign)
	g.started <- k
	return func(ctx context.Context) ([]log.AppendResult, log.Checkpoint, error) {
		<-g.release
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.finished != k-1 {
			g.errs = append(g.errs, fmt.Errorf("batch %d finished after batch %d", k, g.finished))
		}
		g.finished = k
		return results, cp, err
	}, nil
}

// TestPipelinedSequencer checks that the Log starts the next batch of a
// Pipeliner while the previous one finishes, finishes them in order, and
// answers each submitter only when its batch finished.
func TestPipelinedSequencer(t *testing.T) {
	ctx := context.Background()
	b, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedPipeliner{Backend: b, started: make(chan int, 16), release: make(chan struct{})}
	signer, verifier := logtest.Keys(t)
	l, err := log.New(ctx, log.Config{Backend: g, Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	now := time.Now()
	submit := func(id string) chan *log.Result {
		d, err := log.ParseDecision([]byte(fmt.Sprintf(`{"id":%q,"outcome":"deny","decided_at":%q,"subject":"s","action":"a","policy":{"id":"p"}}`,
			id, now.UTC().Format(time.RFC3339))), now)
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan *log.Result, 1)
		go func() {
			res, err := l.Submit(ctx, log.DecisionSubmission(d, "s"))
			if err != nil {
				t.Errorf("Submit(%s): %v", id, err)
			}
			out <- res
		}()
		return out
	}
	wait := func(what string, c <-chan int) int {
		t.Helper()
		select {
		case k := <-c:
			return k
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not happen", what)
			return 0
		}
	}
	first := submit("d-1")
	if k := wait("the first batch's start", g.started); k != 1 {
		t.Fatalf("batch %d started; want 1", k)
	}
	// The first batch is finishing (held): the second starts meanwhile.
	second := submit("d-2")
	if k := wait("the second batch's start while the first finishes", g.started); k != 2 {
		t.Fatalf("batch %d started; want 2", k)
	}
	select {
	case <-first:
		t.Fatal("the first submitter was answered before its batch finished")
	default:
	}
	// A third submission waits: two batches are in flight.
	third := submit("d-3")
	for i, c := range []chan *log.Result{first, second, third} {
		g.release <- struct{}{}
		if i == 0 {
			// The first batch finished: the second is finishing, the
			// third starts.
			if k := wait("the third batch's start", g.started); k != 3 {
				t.Fatalf("batch %d started; want 3", k)
			}
		}
		res := <-c
		if res == nil {
			t.FailNow()
		}
		if res.Receipt.Index != uint64(i) || !res.Created || res.Checkpoint.Size != uint64(i+1) {
			t.Fatalf("submission %d: index %d created %v checkpoint size %d", i+1, res.Receipt.Index, res.Created, res.Checkpoint.Size)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, err := range g.errs {
		t.Error(err)
	}
}
