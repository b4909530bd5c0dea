package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// ack is one acknowledged receipt: what the log promised.
type ack struct {
	id       string
	index    uint64
	leafHash []byte
}

// loadResult is what a load run saw.
type loadResult struct {
	mu          sync.Mutex
	acks        []ack
	checkpoints []checkpoint
	statuses    map[int]int
	transport   int // requests that got no HTTP answer
	wait        func()
}

// load submits decisions from workers until ctx ends, verifying and recording
// every acknowledged receipt.
func load(ctx context.Context, t *testing.T, url string, v note.Verifier, prefix string, workers int) *loadResult {
	res := &loadResult{statuses: map[int]int{}}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("%s-%02d-%05d", prefix, w, i)
				body := decision(id, []string{"allow", "deny"}[i%2], "", 0)
				status, resp, err := postJSON(ctx, url+"/v1/decisions", body)
				res.mu.Lock()
				if err != nil {
					res.transport++
				} else {
					res.statuses[status]++
				}
				res.mu.Unlock()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					time.Sleep(5 * time.Millisecond) // the server is gone; try again until told to stop
					continue
				}
				if status != http.StatusCreated {
					if status != http.StatusServiceUnavailable {
						t.Errorf("POST %s: unexpected %d %s", id, status, resp)
					}
					continue
				}
				r, cp, _ := checkReceipt(t, resp, v, body)
				res.mu.Lock()
				res.acks = append(res.acks, ack{id, r.Index, r.LeafHash})
				res.checkpoints = append(res.checkpoints, cp)
				res.mu.Unlock()
			}
		}()
	}
	t.Cleanup(wg.Wait)
	res.wait = wg.Wait // after the caller cancels ctx
	return res
}

// verifyAcks checks that every acknowledged entry is in the log at its index,
// and that every checkpoint ever issued is consistent with the latest.
func verifyAcks(t *testing.T, url string, v note.Verifier, acks []ack, cps []checkpoint) checkpoint {
	t.Helper()
	cur := latest(t, url, v)
	for _, a := range acks {
		if a.index >= cur.Size {
			t.Fatalf("acknowledged %s at index %d, but the log now has size %d", a.id, a.index, cur.Size)
		}
		var page struct {
			Entries []struct {
				Index uint64 `json:"index"`
				Entry []byte `json:"entry"`
			} `json:"entries"`
		}
		if st := getJSON(t, fmt.Sprintf("%s/v1/entries?start=%d&count=1", url, a.index), &page); st != 200 || len(page.Entries) != 1 {
			t.Fatalf("entry %d: status %d", a.index, st)
		}
		if !bytes.Equal(rfc6962.DefaultHasher.HashLeaf(page.Entries[0].Entry), a.leafHash) {
			t.Fatalf("LOST: acknowledged %s at index %d, the log holds something else there", a.id, a.index)
		}
	}
	for _, cp := range cps {
		checkConsistent(t, url, cp, cur)
	}
	replay(t, url, cur)
	return cur
}

// TestCrashUnderLoad kills govlogd with SIGKILL at random moments under load,
// restarts it and checks that nothing acknowledged was lost and that every
// checkpoint it ever issued is consistent with the new ones. Rounds:
// GOVLOG_CRASH_ROUNDS (default 4).
func TestCrashUnderLoad(t *testing.T) {
	rounds := 4
	if s := os.Getenv("GOVLOG_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		rounds = n
	}
	data := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var acks []ack
	var cps []checkpoint
	for round := range rounds {
		d := startDaemon(t, data, "")
		v := d.logKey(t)
		cur := verifyAcks(t, d.url, v, acks, cps)
		cps = append(cps, cur)
		ctx, cancel := context.WithCancel(context.Background())
		res := load(ctx, t, d.url, v, fmt.Sprintf("crash%02d", round), 16)
		time.Sleep(time.Duration(150+rng.IntN(600)) * time.Millisecond)
		d.kill()
		cancel()
		res.wait()
		acks = append(acks, res.acks...)
		cps = append(cps, res.checkpoints...)
		t.Logf("round %d: %d acknowledged before SIGKILL (statuses %v, %d without answer)", round, len(res.acks), res.statuses, res.transport)
		if t.Failed() {
			return
		}
	}
	d := startDaemon(t, data, "")
	cur := verifyAcks(t, d.url, d.logKey(t), acks, cps)
	if len(acks) == 0 {
		t.Fatal("no submission was acknowledged in any round: the test proved nothing")
	}
	t.Logf("%d rounds, %d acknowledged entries all present, log size %d", rounds, len(acks), cur.Size)
}

// TestGracefulShutdown sends SIGTERM under load: every submission in flight
// is answered (201, or 503 once draining), the process exits within 20 s,
// and nothing acknowledged is lost.
func TestGracefulShutdown(t *testing.T) {
	data := t.TempDir()
	d := startDaemon(t, data, "")
	v := d.logKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := load(ctx, t, d.url, v, "term", 16)
	time.Sleep(400 * time.Millisecond)
	took := d.term(t, 20*time.Second)
	cancel()
	res.wait()
	for status := range res.statuses {
		if status != http.StatusCreated && status != http.StatusServiceUnavailable {
			t.Fatalf("status %d during shutdown", status)
		}
	}
	if len(res.acks) == 0 {
		t.Fatal("nothing acknowledged before SIGTERM")
	}
	t.Logf("exited %v after SIGTERM; %d acknowledged; statuses %v", took, len(res.acks), res.statuses)
	d2 := startDaemon(t, data, "")
	verifyAcks(t, d2.url, v, res.acks, res.checkpoints)
}
