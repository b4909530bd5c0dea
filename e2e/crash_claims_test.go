package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	flog "github.com/govlog/govlog/log"
)

// TestCrashClaims kills govlogd with SIGKILL at random moments while
// runtimes claim a few authorizations as fast as they can, restarts it,
// and checks that no acknowledged claim or violation was lost (each 201
// is an accepted claim in the log, each 409 a recorded violation) and
// that no authorization was ever used more than its max_executions.
func TestCrashClaims(t *testing.T) {
	const (
		rounds = 3
		maxUse = 3 // max_executions of each authorization
	)
	data := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var (
		acks     []ack
		accepted = map[string]bool{} // claim id -> answered 201 (else 409)
		allows   = map[string]int{}  // decision id -> max_executions
	)
	for round := range rounds {
		d := startDaemon(t, data, "")
		v := d.logKey(t)
		verifyAcks(t, d.url, v, acks, nil)
		// A few fresh authorizations for this round, each claimed by
		// many runtimes at once.
		var arts []string
		var ids []string
		for i := range 4 {
			id := fmt.Sprintf("crash-claims-%d-%d", round, i)
			body, _ := json.Marshal(map[string]any{"id": id, "outcome": "allow", "decided_at": time.Now().UTC().Format(time.RFC3339),
				"subject": "agent-7", "action": "deploy", "policy": map[string]string{"id": "e2e"}, "max_executions": maxUse})
			status, resp, err := postJSON(context.Background(), d.url+"/v1/decisions", body)
			if err != nil || status != http.StatusCreated {
				t.Fatalf("allow %s: %d %s %v", id, status, resp, err)
			}
			r, _, _ := checkReceipt(t, resp, v, body)
			acks = append(acks, ack{id, r.Index, r.LeafHash})
			arts, ids = append(arts, r.Artifact), append(ids, id)
			allows[id] = maxUse
		}
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu sync.Mutex
			wg sync.WaitGroup
		)
		for w := range 12 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					k := (w + i) % len(ids)
					id := fmt.Sprintf("run-%d-%02d-%04d", round, w, i)
					body, _ := json.Marshal(map[string]string{"id": id, "decision_id": ids[k], "status": "started",
						"at": time.Now().UTC().Format(time.RFC3339Nano), "artifact": arts[k]})
					status, resp, err := postJSON(ctx, d.url+"/v1/executions", body)
					if err != nil {
						if ctx.Err() != nil {
							return
						}
						time.Sleep(5 * time.Millisecond)
						continue
					}
					var r receipt
					switch status {
					case http.StatusCreated:
						r, _, _ = checkReceipt(t, resp, v, nil)
					case http.StatusConflict:
						var vb struct {
							Error   struct{ Code string }
							Receipt json.RawMessage
						}
						if err := json.Unmarshal(resp, &vb); err != nil || vb.Error.Code != flog.ViolationUsesExhausted {
							t.Errorf("claim %s: 409 %s", id, resp)
							return
						}
						r, _, _ = checkReceipt(t, vb.Receipt, v, nil)
					case http.StatusServiceUnavailable:
						continue
					default:
						t.Errorf("claim %s: %d %s", id, status, resp)
						return
					}
					mu.Lock()
					acks = append(acks, ack{id, r.Index, r.LeafHash})
					accepted[id] = status == http.StatusCreated
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		d.kill()
		cancel()
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	d := startDaemon(t, data, "")
	cur := verifyAcks(t, d.url, d.logKey(t), acks, nil)
	// What the log holds: accepted claims per authorization, and the fate
	// of every claim.
	uses := map[string]int{}
	fate := map[string]string{} // claim id -> violation ("" accepted)
	for i, leaf := range replay(t, d.url, cur) {
		p, err := flog.ParseEntry(leaf)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if p.Execution == nil {
			continue
		}
		fate[p.ID] = p.Violation
		if p.Violation == "" {
			uses[p.Execution.DecisionID]++
		}
	}
	for id, ok := range accepted {
		if v, found := fate[id]; !found || (v == "") != ok {
			t.Fatalf("LOST: claim %s was answered accepted=%v, the log holds %q (found %v)", id, ok, v, found)
		}
	}
	for id, limit := range allows {
		if uses[id] > limit {
			t.Fatalf("authorization %s was used %d times, its max_executions is %d", id, uses[id], limit)
		}
		var st struct{ Uses int }
		if getJSON(t, d.url+"/v1/authorizations/"+id, &st) != 200 || st.Uses != uses[id] {
			t.Fatalf("authorization %s: status says %d uses, the log holds %d", id, st.Uses, uses[id])
		}
	}
	if len(accepted) == 0 {
		t.Fatal("no claim was acknowledged: the test proved nothing")
	}
	t.Logf("%d rounds, %d claims acknowledged (%d entries in all), every one in the log; uses %v", rounds, len(accepted), len(acks), uses)
}
