package log_test

import (
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govlog/govlog/log"
	"github.com/govlog/govlog/log/logtest"
	"github.com/govlog/govlog/log/sqlite"
)

// gatedBackend holds its first armed Append until release is closed, and
// records at the start of each armed Append whether the submitter of the
// first batch had returned.
type gatedBackend struct {
	*sqlite.Backend
	armed    atomic.Bool
	calls    atomic.Int64
	started  chan struct{}
	release  chan struct{}
	returned *atomic.Bool
	sawFirst chan bool
}

func (b *gatedBackend) Append(ctx context.Context, entries []*log.Entry, sign log.SignFunc) ([]log.AppendResult, log.Checkpoint, error) {
	if b.armed.Load() {
		switch b.calls.Add(1) {
		case 1:
			close(b.started)
			<-b.release
		case 2:
			b.sawFirst <- b.returned.Load()
		}
	}
	return b.Backend.Append(ctx, entries, sign)
}

// TestSequencerYields checks that after a commit the sequencer lets the
// submitters it readied run before it starts the next commit, even with
// more submissions queued and a single P: their answers do not wait for
// the next commit.
//
// runtime.Gosched, the sequencer's yield, is the scheduler's best effort:
// once every 61 schedules it takes the global run queue (where Gosched
// puts the sequencer) before the local one (where the commit readied the
// submitter), so about one attempt in 50 sees the next commit first (7
// in 300 runs here). The check passes when one of three attempts sees the
// submitter first (chance of failing about 10^-5); without the yield
// every attempt sees the next commit first.
func TestSequencerYields(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const attempts = 3
	for i := range attempts {
		if sequencerYielded(t) {
			return
		}
		t.Logf("attempt %d: the next commit started before the first batch's submitter had run", i+1)
	}
	t.Errorf("in %d attempts, the next commit always started before the first batch's submitter had run", attempts)
}

// sequencerYielded runs TestSequencerYields once, on a new log: it reports
// whether the submitter of the first batch had returned when the next
// commit started.
func sequencerYielded(t *testing.T) bool {
	ctx := context.Background()
	sb, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "log.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var returned atomic.Bool
	b := &gatedBackend{Backend: sb, started: make(chan struct{}), release: make(chan struct{}), returned: &returned, sawFirst: make(chan bool, 1)}
	signer, verifier := logtest.Keys(t)
	l, err := log.New(ctx, log.Config{Backend: b, Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	first, second := denials(t, "y", 0, 4), denials(t, "y", 4, 4)
	b.armed.Store(true)
	done := make(chan error, 2)
	go func() {
		_, err := l.SubmitAll(ctx, first)
		returned.Store(true)
		done <- err
	}()
	<-b.started
	go func() {
		_, err := l.SubmitAll(ctx, second)
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); l.Queued() != int64(len(second)); {
		if time.Now().After(deadline) {
			t.Fatal("the second batch was never queued")
		}
		time.Sleep(time.Millisecond)
	}
	close(b.release)
	yielded := <-b.sawFirst
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	return yielded
}
